"""Optional HTTP basic authentication for a shared instance.

Credentials come from CNC_AUTH ("user:password", several separated by commas) or a file named by
CNC_AUTH_FILE (one "user:password" per line). Off when neither is set. /health stays open so
container health checks work.
"""
from __future__ import annotations

import hmac
import os
from pathlib import Path

from flask import Flask, Response, request

OPEN_PATHS = ("/health",)


def load_credentials(env: dict | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    lines: list[str] = []
    if env.get("CNC_AUTH"):
        lines += env["CNC_AUTH"].split(",")
    if env.get("CNC_AUTH_FILE"):
        path = Path(env["CNC_AUTH_FILE"])
        try:
            lines += path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"CNC_AUTH_FILE={path}: cannot read credentials ({exc}).") from None
    creds = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError("credentials must be 'user:password' (CNC_AUTH or each line of CNC_AUTH_FILE).")
        creds[user] = password
    return creds


def protect(server: Flask, credentials: dict[str, str]) -> None:
    """Require one of `credentials` on every request except the open paths."""
    if not credentials:
        return

    @server.before_request
    def check():
        if request.path in OPEN_PATHS:
            return None
        auth = request.authorization
        if auth is not None and auth.username in credentials and hmac.compare_digest(
                (auth.password or "").encode(), credentials[auth.username].encode()):
            return None
        return Response("Authentication required.", 401, {"WWW-Authenticate": 'Basic realm="Compress and Compare"'})
