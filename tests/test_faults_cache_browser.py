"""In the browser: a suspect model (garbled checkpoint) and a damaged summary are named in the
header and the Overview, and Compare says which selected model is suspect."""
import numpy as np

from tests.conftest import screenshot, wait_until
from tests.test_faults_cache import _ctx, _experiment, _garble_checkpoint


def test_suspect_and_damaged_models_are_named_in_the_page(tmp_path, serve, chrome):
    cfg = _experiment(tmp_path)
    _garble_checkpoint(tmp_path / "m4.pt")
    _ctx(cfg, tmp_path / "cache", precompute=True)
    ctx = _ctx(cfg, tmp_path / "cache")
    store = ctx.store
    key = ("params", ctx.task_hash, ctx._model_hash("m3"))
    (rowid, blob), = store.cache._sql("SELECT rowid, value FROM Cache WHERE key = ?", store.cache._disk.put(key)[:1])
    garbled = bytearray(blob)
    garbled[-8:] = np.arange(8, dtype=np.uint8).tobytes()
    store.cache._sql("UPDATE Cache SET value = ? WHERE rowid = ?", (bytes(garbled), rowid))
    assert ctx.params("m3") is None  # a view read it: dropped, reported

    url = serve(ctx)
    chrome.get(url + "/")
    header = lambda: chrome.find_element("css selector", ".status-line").text  # noqa: E731
    wait_until(lambda: "suspect outputs (m4)" in header())
    assert "1 summary was damaged and will be recomputed" in header()
    body = chrome.find_element("css selector", ".notices").text
    assert "m4 (m4) is suspect: non-finite outputs (40 of 40 instances" in body
    screenshot(chrome, "faults-overview-suspect")

    chrome.get(url + "/compare?models=m0,m4")
    wait_until(lambda: "m4 (m4) is suspect" in chrome.find_element("css selector", ".notices").text)
    screenshot(chrome, "faults-compare-suspect")
