"""Which device's benchmark numbers a request sees (URL key `device`, docs/urls.md).

A page load carries it in its query; a Dash callback in the page's URL, which the browser sends as
the Referer (a saved long view `?view=<id>` is expanded first). `AppContext.experiment` then
returns the experiment seen from that device (cnc/experiment/benchmarks/devices.py). An unknown
device is ignored (the default shows).
"""
from __future__ import annotations

from contextvars import ContextVar
from typing import Callable
from urllib.parse import parse_qs, urlparse

from cnc.experiment.benchmarks.devices import on_device
from cnc.experiment.forest import Experiment

KEY = "device"
_DEVICE: ContextVar[str | None] = ContextVar("cnc_device", default=None)


def device_in(query: str, expand: Callable[[str], str] | None = None) -> str | None:
    """The `device` of a query string (after expanding a saved view)."""
    query = query.lstrip("?")
    if expand is not None and "view=" in query:
        query = expand("?" + query).lstrip("?")
    values = parse_qs(query).get(KEY)
    return values[0] if values else None


def select_from_request(expand: Callable[[str], str] | None = None) -> None:
    """before_request: the device of this page load or of the page a callback came from."""
    from flask import request

    device = request.args.get(KEY)
    if device is None and request.referrer:
        try:
            device = device_in(urlparse(request.referrer).query, expand)
        except ValueError:  # a malformed Referer ("http://[::1/") is no page of ours: no device
            device = None
    _DEVICE.set(device)


def clear() -> None:
    _DEVICE.set(None)


def seen_from(exp: Experiment) -> Experiment:
    device = _DEVICE.get()
    return on_device(exp, device) if device else exp
