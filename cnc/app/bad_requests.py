"""Malformed requests answer 4xx, not 500 with a traceback.

Dash trusts the body of `/_dash-update-component`: `{}`, `[]`, an output no callback has, or
inputs of the wrong shape raised KeyError / TypeError deep inside Dash (HTTP 500, a traceback in
the log for each). A 500 is a bug report; these are bad requests. The body is checked against the
callback it names (output known, one input per declared input, each `{id, property}`, a list of
them for pattern-matching ids) before Dash sees it, and a bad one answers 400 with one sentence.
Component-suite paths that name no file Dash serves (`dash/../..`) answer 404. Each is logged once,
at warning level, without a traceback. Values inside a well-formed body are the callbacks' to
judge (they treat URL and input values as data).
"""
from __future__ import annotations

import json
import logging
from typing import Any

import dash
from dash._validate import validate_output_spec
from dash.exceptions import CallbackException, DependencyException
from flask import jsonify, request

log = logging.getLogger("cnc.requests")


def install(app: dash.Dash) -> None:
    """Guard the callback route and the component-suite route of `app`."""
    endpoint = app.config.routes_pathname_prefix + "_dash-update-component"
    dispatch = app.server.view_functions[endpoint]

    def guarded_dispatch():
        body = request.get_json(silent=True)
        problem = callback_body_problem(body, app.callback_map)
        if problem is not None:
            log.warning("400 for %s %s: %s", request.method, request.path, problem)
            return jsonify(error=f"Bad request: {problem}."), 400
        return dispatch()

    app.server.view_functions[endpoint] = guarded_dispatch

    @app.server.errorhandler(DependencyException)
    def no_such_file(exc):
        log.warning("404 for %s %s: %s", request.method, request.path, str(exc).splitlines()[0][:200])
        return jsonify(error="Not found."), 404


def callback_body_problem(body: Any, callback_map: dict[str, dict]) -> str | None:
    """What is structurally wrong with a callback request body, or None when Dash can dispatch it."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or "callback" not in callback_map.get(output, {}):
        return "'output' names no server callback of this app"
    spec = callback_map[output]
    for key in ("inputs", "state"):
        problem = _items_problem(body.get(key, []), spec.get(key) or [], key)
        if problem is not None:
            return problem
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "'changedPropIds' must be a list of strings"
    if spec.get("no_output"):
        return None
    outputs = body.get("outputs", [])
    declared = [part.split("@")[0].rsplit(".", 1)[0] for part in output.strip(".").split("...")]  # id.prop@hash
    if output.startswith(".."):
        if not isinstance(outputs, list) or len(outputs) != len(declared):
            return f"'outputs' must be a list of the callback's {len(declared)} outputs"
    else:
        outputs = [outputs]
    if not all(_is_prop(o, _is_multi(d)) for o, d in zip(outputs, declared)):
        return "'outputs' are malformed"
    try:  # Dash's own check, done later inside the callback where its exception becomes a 500
        validate_output_spec(spec["output"], body.get("outputs", []), dash.Output)
    except (CallbackException, KeyError, TypeError, AttributeError, IndexError):
        return "'outputs' do not match the callback's outputs"
    return None


def _items_problem(items: Any, declared: list[dict], key: str) -> str | None:
    if not isinstance(items, list) or len(items) != len(declared):
        return f"'{key}' must be a list of {len(declared)} item(s), one per declared {key}"
    for i, (item, spec) in enumerate(zip(items, declared)):
        multi = _is_multi(str(spec.get("id", "")))
        if not _is_prop(item, multi):
            return f"'{key}' item {i} must be " + ("a list of {id, property, value}" if multi else "{id, property, value}")
    return None


def _is_multi(component_id: str) -> bool:
    """An id with an ALL or ALLSMALLER wildcard stands for a list of components (MATCH: one)."""
    if not component_id.startswith("{"):
        return False
    try:
        parts = json.loads(component_id)
    except ValueError:
        return False
    return isinstance(parts, dict) and any(v in (["ALL"], ["ALLSMALLER"]) for v in parts.values())


def _is_prop(item: Any, multi: bool) -> bool:
    if multi:
        return isinstance(item, list) and all(_is_prop(i, False) for i in item)
    return isinstance(item, dict) and isinstance(item.get("id"), (str, dict)) and isinstance(item.get("property"), str)
