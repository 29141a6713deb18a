"""Calls Dash callbacks over HTTP the way the browser does (POST /_dash-update-component), so a
test exercises the real path: request hooks, the registered function, the error handler and the
JSON response. Pattern-matching ids get concrete values chosen by the caller."""
from __future__ import annotations

from typing import Any, Callable

from dash._utils import stringify_id
from dash.dependencies import Wildcard


def server_callbacks(app) -> dict[str, dict]:
    """Callback map entries that run on the server (clientside ones have no function here)."""
    return {key: cb for key, cb in app.callback_map.items() if "callback" in cb}


def _concrete(id_: Any, fill: Any) -> Any:
    if isinstance(id_, dict):
        return {k: (fill if isinstance(v, Wildcard) else v) for k, v in id_.items()}
    return id_


def _is_pattern(id_: Any) -> bool:
    return isinstance(id_, dict) and any(isinstance(v, Wildcard) for v in id_.values())


def request_body(app, key: str, value: Callable[[Any, str], Any], fills: list, trigger: int = 0) -> dict:
    """The body the renderer would POST for callback `key`: `value(id, prop)` gives each input
    or state value; every wildcard expands to one concrete id per item of `fills`."""
    cb = app.callback_map[key]

    def dep(id_, prop, with_value=True):
        def one(cid):
            d = {"id": cid, "property": prop}
            if with_value:
                d["value"] = value(cid, prop)
            return d
        return [one(_concrete(id_, f)) for f in fills] if _is_pattern(id_) else one(id_)

    outputs = cb["output"] if isinstance(cb["output"], (list, tuple)) else [cb["output"]]
    out = [dep(o.component_id, o.component_property, False) for o in outputs]
    inputs = [dep(i.component_id, i.component_property) for i in cb["raw_inputs"]]
    state = [dep(s["id"], s["property"]) for s in _state_deps(cb)]
    first = inputs[trigger % len(inputs)] if inputs else None
    if isinstance(first, list):
        first = first[0] if first else None
    changed = [f"{stringify_id(first['id'])}.{first['property']}"] if first else []
    return {"output": key, "outputs": out if isinstance(cb["output"], (list, tuple)) else out[0],
            "inputs": inputs, "state": state, "changedPropIds": changed}


def _state_deps(cb: dict) -> list[dict]:
    """State deps with real id objects (the map stores pattern ids as JSON strings)."""
    import json

    from dash.dependencies import ALL

    deps = []
    for s in cb["state"]:
        id_ = s["id"]
        if isinstance(id_, str) and id_.startswith("{"):
            id_ = {k: (ALL if v == ["ALL"] else v) for k, v in json.loads(id_).items()}
        deps.append({"id": id_, "property": s["property"]})
    return deps


def call(client, body: dict):
    """POST a callback request; returns the Flask test response."""
    return client.post("/_dash-update-component", json=body)


def call_with(app, client, key: str, values: dict[tuple[str, str], Any], fills: list = (), trigger: int = 0):
    """Call `key` with {(stringified id, prop): value} (missing ones are None)."""
    body = request_body(app, key, lambda i, p: values.get((stringify_id(i), p)), list(fills), trigger)
    return call(client, body)


def find_key(app, output_id: Any, prop: str) -> str:
    """The callback-map key of the (first) callback writing `output_id.prop`."""
    want = f"{stringify_id(output_id)}.{prop}"
    for key in server_callbacks(app):
        if want in key:
            return key
    raise KeyError(want)
