"""The Layers notes of quantized models fit (issue 30): under each cell of a GGUF variant the note
"Δ 28.1% · large 85% · Q2_K · err 28.06%" wraps under its histogram instead of widening the column,
so at 1280, 1440 and 1920 px the table of the base and three quantizations fits its box (the last
model column was cut at 1400 px) and no cell's text is cut. Screenshots: tests/screenshots/layers-notes-*.png."""
from __future__ import annotations

import pytest

from cnc.app.cli import load
from tests.conftest import screenshot, wait_until

IDS = "tiny-llama,tiny-llama-Q8_0,tiny-llama-Q4_K_M,tiny-llama-Q2_K"
WIDTHS = (1280, 1440, 1920)
FIT = """
var box = document.querySelector('.layers-scroll'), cut = [];
document.querySelectorAll('.layers-table th, .layers-table th div, .layers-table td, .layers-cell > *').forEach(function(e) {
  if (e.getClientRects().length && e.scrollWidth > e.clientWidth + 1) {
    cut.push(e.className + ' "' + e.textContent.slice(0, 40) + '" ' + e.scrollWidth + ' > ' + e.clientWidth);
  }
});
var last = Array.from(document.querySelectorAll('.layers-row')[0].querySelectorAll('td')).pop().getBoundingClientRect();
return {overflow: box.scrollWidth - box.clientWidth, lastRight: last.right, boxRight: box.getBoundingClientRect().right,
        cut: cut, notes: document.querySelectorAll('.layers-cell .quant-note').length};"""


@pytest.fixture
def folder_app_ctx(gguf_folder, tmp_path):
    return load(str(gguf_folder), str(tmp_path / "cache"), progress=False)


@pytest.mark.parametrize("query", ["&lsort=error&lsortby=tiny-llama-Q2_K", "&lsort=tree"])
def test_quantized_cell_notes_fit_at_common_widths(folder_app_ctx, serve, chrome, query):
    url = serve(folder_app_ctx)
    for width in WIDTHS:
        chrome.set_window_size(width, 1000)
        chrome.get(f"{url}/compare?models={IDS}&base=tiny-llama&tab=layers&lmode=weights{query}")
        wait_until(lambda: chrome.execute_script(
            "return document.querySelectorAll('.layers-row canvas.hist').length") >= 40, timeout=60)
        found = chrome.execute_script(FIT)
        screenshot(chrome, f"layers-notes-{query.split('=')[1].split('&')[0]}-{width}")
        assert found["notes"] >= 10, found  # the quantized models' notes are there to fit
        assert found["overflow"] <= 0 and found["lastRight"] <= found["boxRight"] + 0.5, (width, found)
        assert found["cut"] == [], (width, found["cut"][:5])
