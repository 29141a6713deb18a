"""Tables that fit: at 1280, 1440 and 1920 px no Behaviors or Layers cell, header or bar label is
cut (an element whose text is wider than its box), and Layers' bars sit under their numbers.
Screenshots for people: tests/screenshots/tables-*.png."""
from __future__ import annotations

import pytest
from conftest import screenshot, wait_until

WIDTHS = (1280, 1440, 1920)
MODELS = "base,mag10,mag30,mag50,mag70,mag90,layer50,layer90,mag50-ft,mag50-ft-int8d,mag50-ft-mag80-ft-int8s"
ROWS = "Array.from(document.querySelectorAll('.bh-grid .ag-row:not(.bh-spark-row) .bh-cell')).filter(c => c.textContent.trim()).length > 20"
VIEWS = {  # name: (query, a script that is true once the view is drawn)
    "behaviors-classes": ("", ROWS),
    "behaviors-relative": ("&brel=1", ROWS),
    "behaviors-exemplars-detail": ("&brows=exemplars&brel=1&bi=5", ROWS + " && !!document.querySelector('.bh-detail h4')"),
    "layers-sparsity": ("&tab=layers", "document.querySelectorAll('.layers-row .spars-bar').length > 5"),
}
CUT = """
var out = [];
document.querySelectorAll('.bh-grid .ag-cell, .bh-grid .ag-cell-value, .bh-grid .ag-header-cell-text, ' +
                          '.layers-table th, .layers-table th div, .layers-table td, .layers-cell > *').forEach(function(e) {
  if (e.getClientRects().length && e.scrollWidth > e.clientWidth + 1) {
    out.push(e.className + ' "' + e.textContent.slice(0, 40) + '" ' + e.scrollWidth + ' > ' + e.clientWidth);
  }
});
return out;"""
BAR_UNDER_TEXT = """
var bar = document.querySelector('.layers-row .spars-bar');
var style = getComputedStyle(bar), range = document.createRange();
range.selectNodeContents(bar);
var text = range.getBoundingClientRect(), box = bar.getBoundingClientRect();
var barTop = box.bottom - parseFloat(style.borderBottomWidth) - parseFloat(style.backgroundSize.split(' ')[1]);
return [text.bottom, barTop];"""


@pytest.mark.parametrize("width", WIDTHS)
def test_no_cell_is_cut(demo_ctx, serve, chrome, width):
    url = serve(demo_ctx)
    chrome.set_window_size(width, 1000)
    for name, (query, drawn) in VIEWS.items():
        chrome.get(f"{url}/compare?models={MODELS}{query}")
        wait_until(lambda: chrome.execute_script("return " + drawn), timeout=60)
        cut = chrome.execute_script(CUT)
        screenshot(chrome, f"tables-{name}-{width}")
        assert cut == [], (name, width, cut[:5])
        if name.startswith("layers"):
            text_bottom, bar_top = chrome.execute_script(BAR_UNDER_TEXT)
            assert text_bottom <= bar_top + 0.5, (text_bottom, bar_top)
