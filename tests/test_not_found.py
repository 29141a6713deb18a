"""Unknown paths answer 404 (with the app's "Page not found" page); pages and Dash's own routes work."""
import json

import pytest

from cnc.app.webapp import build_app


@pytest.fixture
def client(synthetic_ctx, monkeypatch):
    monkeypatch.delenv("CNC_AUTH", raising=False)
    monkeypatch.delenv("CNC_AUTH_FILE", raising=False)
    return build_app(synthetic_ctx).server.test_client()


@pytest.mark.parametrize("path", ["/nope", "/compare/extra", "/admin.php", "/.env", "/_dash-nothing", "/a/b/c",
                                  "/%C2%B2"])
def test_unknown_paths_answer_404(client, path):
    """Regression: Dash served its page shell with HTTP 200 for every path."""
    res = client.get(path)
    assert res.status_code == 404
    assert b"_dash-renderer" in res.data or b"dash" in res.data  # the shell, whose router says "Page not found"


def test_pages_and_dash_internals_keep_working(client):
    for path in ("/", "/compare", "/?sel=a", "/compare?models=x,y", "/_dash-layout", "/_dash-dependencies",
                 "/_reload-hash", "/_favicon.ico", "/health", "/assets/app.css"):
        assert client.get(path).status_code == 200, path
    assert json.loads(client.get("/_dash-dependencies").data)  # the callback map
    shell = client.get("/").data.decode()
    script = shell.split('src="')[1].split('"')[0]  # a component suite script of the shell
    assert client.get(script).status_code == 200, script
    assert client.get("/assets/missing.css").status_code == 404


def test_browser_shows_page_not_found_with_a_way_home(synthetic_ctx, serve, chrome):
    from selenium.webdriver.common.by import By

    from tests.conftest import wait_for

    chrome.get(serve(synthetic_ctx) + "/no-such-page")
    wait_for(chrome, ".notice")
    assert "Page not found" in chrome.find_element(By.CSS_SELECTOR, ".notice").text
    chrome.find_element(By.LINK_TEXT, "Back to the overview").click()
    wait_for(chrome, ".cnc-model-map canvas")
