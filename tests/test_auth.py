"""Optional basic auth: off by default, enforced when configured, /health always open."""
import base64

import pytest

from cnc.app.webapp import build_app
from cnc.server.auth import load_credentials


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


def test_hashed_passwords_from_the_file(synthetic_ctx, monkeypatch, tmp_path):
    from werkzeug.security import generate_password_hash

    f = tmp_path / "users"
    f.write_text(f"carol:{generate_password_hash('c4rol:pw')}\ndave:{generate_password_hash('d', 'pbkdf2')}\n"
                 "erin:plain-still-works\n")
    monkeypatch.delenv("CNC_AUTH", raising=False)
    monkeypatch.setenv("CNC_AUTH_FILE", str(f))
    client = build_app(synthetic_ctx).server.test_client()
    for _ in range(2):  # the second round is served from the verified-login memo
        assert client.get("/", headers=basic("carol", "c4rol:pw")).status_code == 200
        assert client.get("/", headers=basic("dave", "d")).status_code == 200
        assert client.get("/", headers=basic("erin", "plain-still-works")).status_code == 200
    assert client.get("/", headers=basic("carol", "c4rol")).status_code == 401
    assert client.get("/", headers=basic("dave", load_credentials()["dave"])).status_code == 401  # not the hash itself


def test_bcrypt_hashes(synthetic_ctx, monkeypatch, tmp_path):
    bcrypt = pytest.importorskip("bcrypt")
    monkeypatch.setenv("CNC_AUTH", "fay:" + bcrypt.hashpw(b"f", bcrypt.gensalt(4)).decode())
    client = build_app(synthetic_ctx).server.test_client()
    assert client.get("/", headers=basic("fay", "f")).status_code == 200
    assert client.get("/", headers=basic("fay", "g")).status_code == 401


def test_bcrypt_hash_without_bcrypt_is_explained(monkeypatch):
    import cnc.server.auth

    monkeypatch.setattr(cnc.server.auth, "_bcrypt", lambda: None)
    with pytest.raises(ValueError, match="pip install bcrypt"):
        load_credentials({"CNC_AUTH": "fay:$2b$04$abcdefghijklmnopqrstuv"})


def test_hash_helper_reads_stdin_not_argv():
    import subprocess
    import sys

    from werkzeug.security import check_password_hash

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-m", "cnc.server.auth", "hash", "--user", "gus"], input="s3 cr:et\n",
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    user, _, secret = out.partition(":")
    assert user == "gus" and secret.startswith("scrypt:") and check_password_hash(secret, "s3 cr:et")
    assert load_credentials({"CNC_AUTH": out})["gus"] == secret
    empty = subprocess.run([sys.executable, "-m", "cnc.server.auth", "hash"], input="", capture_output=True, text=True,
                           cwd=ROOT)
    assert empty.returncode == 2 and "empty password" in empty.stderr
