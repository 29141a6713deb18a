"""The app shell serves pages and the health endpoint (metrics-only experiment)."""
from cnc.app.webapp import build_app


def test_health_and_index(synthetic_ctx):
    client = build_app(synthetic_ctx).server.test_client()
    assert client.get("/health").get_json() == {"status": "ok", "models": 60}
    assert client.get("/").status_code == 200
    assert client.get("/compare?models=root0,m5").status_code == 200
