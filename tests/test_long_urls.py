"""Long view states (hundreds of selected models) live server-side behind a short ?view= id."""
from urllib.parse import parse_qs, urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from cnc.app.cli import load
from cnc.experiment.synthetic import write_experiment
from cnc.server.urlstate import MAX_QUERY, ViewStore, build_query, parse_query
from tests.conftest import screenshot, wait_for


def test_shorten_and_expand_round_trip():
    views = ViewStore({})
    long_query = build_query({"sel": [f"m{i}" for i in range(600)], "map": "op"})
    assert len(long_query) > MAX_QUERY
    short = views.shorten(long_query)
    assert short.startswith("?view=") and len(short) < 30
    assert views.shorten(long_query) == short  # same state, same id
    expanded, notices = views.expand(short)
    assert parse_query(expanded) == parse_query(long_query) and not notices
    assert views.shorten("?map=op") == "?map=op"  # short states stay readable


@pytest.fixture
def big_ctx(tmp_path):
    path = write_experiment(600, tmp_path / "big.json", seed=3)
    return load(str(path), str(tmp_path / "cache"), precompute=False)


def test_long_selection_link_reopens_through_a_view_id(big_ctx, serve, chrome):
    ids = list(big_ctx.experiment.models)[:400]
    base = serve(big_ctx)
    chrome.get(base + "/?sel=" + ",".join(ids))
    wait_for(chrome, ".cnc-model-map canvas")
    WebDriverWait(chrome, 20).until(lambda d: "view=" in d.current_url)  # the long link is shortened on load
    opened = chrome.current_url
    chrome.find_element(By.XPATH, "//label[.//span[text()='By operation']]").click()  # any change rewrites the URL
    WebDriverWait(chrome, 20).until(lambda d: "view=" in d.current_url and d.current_url != opened)
    link = chrome.current_url
    assert len(urlparse(link).query) < 30
    chrome.get("about:blank")
    chrome.get(link)
    wait_for(chrome, ".cnc-model-map canvas")
    WebDriverWait(chrome, 20).until(lambda d: d.find_element(By.CSS_SELECTOR, ".sel-count").text == "400 selected")
    assert "selected" in chrome.find_element(
        By.XPATH, "//label[.//span[text()='By operation']]").get_attribute("class")
    assert parse_qs(urlparse(chrome.current_url).query).get("view")  # still the short link
    screenshot(chrome, "overview_long_view_link")
