"""Optional HTTP basic authentication for a shared instance.

Credentials come from CNC_AUTH ("user:password", several separated by commas) or a file named by
CNC_AUTH_FILE (one "user:secret" per line). A secret is a password hash — werkzeug's
`generate_password_hash` format (`scrypt:…`, `pbkdf2:…`; print one with `python -m cnc.server.auth hash`)
or bcrypt (`$2b$…`, needs the `bcrypt` package) — or, as before, the plain password. Off when
neither is set. /health stays open so container health checks work.
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import threading
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.security import check_password_hash, generate_password_hash

OPEN_PATHS = ("/health",)
WERKZEUG_PREFIXES = ("scrypt:", "pbkdf2:")
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


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
            raise ValueError("credentials must be 'user:password' or 'user:<hash from python -m cnc.server.auth hash>' "
                             "(CNC_AUTH or each line of CNC_AUTH_FILE).")
        if password.startswith(BCRYPT_PREFIXES) and _bcrypt() is None:
            raise ValueError(f"the password of '{user}' is a bcrypt hash, but the bcrypt package is not installed. "
                             "Fix: pip install bcrypt, or use a hash from `python -m cnc.server.auth hash`.")
        creds[user] = password
    return creds


def _bcrypt():
    try:
        import bcrypt
    except ImportError:
        return None
    return bcrypt


def password_matches(stored: str, password: str) -> bool:
    """`password` against a stored werkzeug hash, bcrypt hash or plain password."""
    if stored.startswith(WERKZEUG_PREFIXES):
        return check_password_hash(stored, password)
    if stored.startswith(BCRYPT_PREFIXES):
        return _bcrypt().checkpw(password.encode(), stored.encode())
    return hmac.compare_digest(password.encode(), stored.encode())


class _Verified:
    """Remembers recent successful logins (as salted digests, in memory only): a password hash
    is deliberately slow, and a browser sends the same credentials with every request."""

    def __init__(self, size: int = 256):
        self.salt, self.size, self.seen, self.lock = secrets.token_bytes(16), size, set(), threading.Lock()

    def check(self, stored: str, user: str, password: str) -> bool:
        key = hashlib.sha256(self.salt + f"{user}\0{password}\0{stored}".encode()).digest()
        if key in self.seen:
            return True
        if not password_matches(stored, password):
            return False
        with self.lock:
            if len(self.seen) >= self.size:
                self.seen.clear()
            self.seen.add(key)
        return True


def protect(server: Flask, credentials: dict[str, str]) -> None:
    """Require one of `credentials` on every request except the open paths."""
    if not credentials:
        return
    verified = _Verified()

    @server.before_request
    def check():
        if request.path in OPEN_PATHS:
            return None
        auth = request.authorization
        if auth is not None and auth.username in credentials and verified.check(
                credentials[auth.username], auth.username, auth.password or ""):
            return None
        return Response("Authentication required.", 401, {"WWW-Authenticate": 'Basic realm="Compress and Compare"'})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cnc.server.auth", description="Helpers for CNC_AUTH_FILE.")
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("hash", help="print a password hash for CNC_AUTH_FILE (the password is read from a "
                                    "prompt, or from standard input when it is not a terminal)")
    h.add_argument("--user", help="print a whole 'user:hash' line")
    args = p.parse_args(argv)
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the passwords differ.", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: empty password.", file=sys.stderr)
        return 2
    secret = generate_password_hash(password)
    print(f"{args.user}:{secret}" if args.user else secret)
    return 0


if __name__ == "__main__":
    sys.exit(main())
