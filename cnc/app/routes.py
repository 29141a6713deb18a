"""Unknown paths answer HTTP 404.

Dash serves its page shell for every path (a catch-all route) so that client-side routing works;
only the app's own pages should answer 200. An unknown path still gets the shell, whose router
shows "Page not found" with a link home, but with status 404, so crawlers, monitors and
scanners see the truth. Dash's own routes (/_dash-*, /assets/*, /_reload-hash…) and /health
have their own rules and are untouched.
"""
from __future__ import annotations

from typing import Iterable

import dash
from flask import request


def answer_404_off_pages(app: dash.Dash, pages: Iterable[str]) -> None:
    catch_all = app.config.routes_pathname_prefix + "<path:path>"
    known = set(pages)

    @app.server.after_request
    def not_found(response):
        rule = request.url_rule
        if rule is not None and rule.rule == catch_all and request.path not in known:
            response.status_code = 404
        return response
