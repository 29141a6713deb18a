"""Optional basic auth: off by default, enforced when configured, /health always open."""
import base64

import pytest

from cnc.auth import load_credentials
from cnc.webapp import build_app


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_off_by_default(synthetic_ctx, monkeypatch):
    monkeypatch.delenv("CNC_AUTH", raising=False)
    monkeypatch.delenv("CNC_AUTH_FILE", raising=False)
    assert build_app(synthetic_ctx).server.test_client().get("/").status_code == 200


def test_enforced_from_env_and_file(synthetic_ctx, monkeypatch, tmp_path):
    f = tmp_path / "users"
    f.write_text("# team\nbob:s3cret\n")
    monkeypatch.setenv("CNC_AUTH", "alice:pw1")
    monkeypatch.setenv("CNC_AUTH_FILE", str(f))
    client = build_app(synthetic_ctx).server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/", headers=basic("alice", "nope")).status_code == 401
    assert client.get("/", headers=basic("alice", "pw1")).status_code == 200
    assert client.get("/_dash-layout", headers=basic("bob", "s3cret")).status_code == 200
    assert client.get("/health").status_code == 200


def test_bad_credentials_are_explained():
    with pytest.raises(ValueError, match="user:password"):
        load_credentials({"CNC_AUTH": "justaname"})
