"""Records what a real browser sends while a person uses the app, for the load test to replay.

Headless Chromium drives the demo through the main job (Overview, Selection Details, Compare with
Behaviors and Layers) against an in-process server that keeps a copy of every request. The
bodies are the ones Dash's renderer builds from the app's live callback map, so they stay valid
whenever callbacks change; a UI change that breaks a step fails the recording loudly.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from flask import request

CALLBACK = "/_dash-update-component"
STATIC = ("/_dash-component-suites/", "/assets/", "/_favicon.ico", "/_reload-hash", "/health")


@dataclass
class Step:
    """One user action and the requests the browser sent for it (method, path, body)."""

    name: str
    requests: list[tuple[str, str, bytes | None]] = field(default_factory=list)

    @property
    def callbacks(self) -> int:
        return sum(1 for _, path, _ in self.requests if is_callback(path))


def is_callback(path: str) -> bool:
    return path.split("?", 1)[0] == CALLBACK


class Recorder:
    """Keeps app requests (not static files) in the current step."""

    def __init__(self, server):
        self.steps: list[Step] = []
        self.lock = threading.Lock()
        self.last = time.monotonic()

        @server.before_request
        def keep():
            path = request.path
            if self.steps and not path.startswith(STATIC):
                with self.lock:
                    self.last = time.monotonic()
                    body = request.get_data() if request.method == "POST" else None
                    self.steps[-1].requests.append((request.method, request.full_path.rstrip("?"), body))

    def step(self, name: str, action: Callable[[], None], quiet: float = 1.5, timeout: float = 60) -> None:
        """Run `action`, then wait until the browser has sent nothing for `quiet` seconds."""
        self.steps.append(Step(name))
        self.last = time.monotonic()
        action()
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last < quiet and time.monotonic() < deadline:
            time.sleep(0.1)
        if not self.steps[-1].callbacks:
            raise RuntimeError(f"recording step '{name}': the browser sent no callback")


def record_demo_session(app, models: list[str], selection: list[str]) -> list[Step]:
    """Drive the demo in headless Chromium; `models` are compared, `selection` explained."""
    from selenium.webdriver.common.by import By

    from cnc.bench.browser import LiveServer, choose, chromium, wait_for

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    rec = Recorder(app.server)
    srv = LiveServer(app.server)
    try:
        with chromium() as d:
            def click(xpath: str) -> Callable[[], None]:
                return lambda: d.find_element(By.XPATH, xpath).click()

            def goto(path: str, css: str) -> Callable[[], None]:
                return lambda: (d.get(srv.url + path), wait_for(d, css))

            rec.step("overview.open", goto("/", ".cnc-model-map canvas"))
            rec.step("overview.map_by_operation", click("//label[.//span[text()='By operation']]"))
            rec.step("overview.select", goto("/?map=op&sel=" + ",".join(selection), ".selection-details .sd-table"))
            rec.step("compare.open", goto("/compare?models=" + ",".join(models), ".bh-grid .ag-row"))
            rec.step("behaviors.rows_instances", lambda: choose(d, 0, "Instances"))
            rec.step("behaviors.sort", lambda: next(
                h for h in wait_for(d, ".bh-grid .ag-header-cell") if "Flips" in h.text).click())
            rec.step("behaviors.page", lambda: d.execute_script(
                "document.querySelector('.bh-grid .ag-body-viewport').scrollTop = 1e6"))
            rec.step("layers.open", lambda: (click("//*[contains(@class,'tab')][normalize-space()='Layers']")(),
                                            wait_for(d, ".layers-row")))
            rec.step("layers.mode", click("//label[contains(., 'Weight distribution')]"))
            rec.step("layers.expand", click("//button[contains(., 'Expand all')]"))
    finally:
        srv.stop()
    return rec.steps
