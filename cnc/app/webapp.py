"""Builds the Dash app: header, navigation, a small router and each page's callbacks."""
from __future__ import annotations

from pathlib import Path

import dash
import flask
from dash import Input, Output, State, dcc, html, no_update

from cnc.app import bad_requests, first_page, lazy_grid, plotly_bundle, transfer
from cnc.app.routes import answer_404_off_pages
from cnc.pages import compare, overview
from cnc.server import device
from cnc.server.auth import load_credentials, protect
from cnc.server.context import AppContext
from cnc.server.urlstate import fits_address, open_views, parse_query
from cnc.ui import errors, experiment_download, urlsync
from cnc.ui.ids import PAGE, URL, url_part

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PAGES = {"/": overview, "/compare": compare}
FIRST_PAGES = ("/",)  # drawn into the first layout; Compare on a big selection takes a while: its spinner shows meanwhile
RENDERED = "rendered-path"
FIRST = "first-search"  # the query the first layout's page was drawn for, until the router has seen it
STATUS = "status-line"
STATUS_TICK = "status-tick"
MODEL_COUNT = "model-count"
POLL_MS, POLL_MAX_MS = 3000, 60000  # the status poll: every 3 s, doubling up to 60 s while nothing changes


class _Dash(dash.Dash):
    def _generate_scripts_html(self) -> str:  # the page's script tags, built per request
        html_tags = super()._generate_scripts_html()
        return lazy_grid.defer_grid(html_tags, flask.request.path) if flask.has_request_context() else html_tags


def build_app(ctx: AppContext) -> dash.Dash:
    app = _Dash(
        __name__, title=ctx.title, assets_folder=str(ASSETS),
        suppress_callback_exceptions=True, update_title=None, on_error=errors.handle,
    )
    app.index_string = transfer.preload_plotly(app.index_string, app.config.requests_pathname_prefix)
    views = open_views(ctx.config.cache_dir, ctx.config.views.max_age_days, ctx.config.views.max_mb)

    def render(pathname: str, search: str):
        expanded, notices = views.expand(search)
        return PAGES[pathname].layout(ctx, parse_query(expanded), notices)

    def layout() -> html.Div:  # a function: a reloaded experiment shows on the next page load
        asked = first_page.requested(FIRST_PAGES)
        if asked and not fits_address(asked[1]):  # a long link: the router draws it and the URL is shortened
            asked = None
        page, (path, search) = (render(*asked), asked) if asked else (None, (None, None))
        return html.Div([
            dcc.Location(id=URL, refresh=False),
            dcc.Store(id=RENDERED, data=path),
            dcc.Store(id=FIRST, data=search),
            _header(ctx),
            errors.area(),
            dcc.Interval(id=STATUS_TICK, interval=POLL_MS),
            # a page that takes a while to draw (Compare on a big selection) shows that it is working
            dcc.Loading(html.Main(page, id=PAGE, className="page"), target_components={PAGE: "children"},
                        type="dot", delay_show=300, parent_className="page-loading",
                        overlay_style={"visibility": "visible", "opacity": 0.6}),
        ])

    app.layout = layout

    # Each request reads one experiment, whichever reload happens meanwhile (see AppContext.pin).
    app.server.before_request(ctx.pin)
    app.server.teardown_request(lambda _exc: ctx.unpin())
    app.server.before_request(lambda: device.select_from_request(lambda q: views.expand(q)[0]))
    app.server.teardown_request(lambda _exc: device.clear())

    @app.callback(Output(STATUS, "children"), Output(MODEL_COUNT, "children"), Output(STATUS_TICK, "interval"),
                  Input(STATUS_TICK, "n_intervals"),
                  State(STATUS, "children"), State(MODEL_COUNT, "children"), State(STATUS_TICK, "interval"),
                  prevent_initial_call=True)  # the page is drawn with both: no round trip while it draws
    def status(_, shown_line, shown_count, interval):
        line, count = ctx.status_line(), _count(ctx)
        if (line or None, count) == (shown_line or None, shown_count):
            return no_update, no_update, next_poll(interval, changed=False)
        return line, count, next_poll(interval, changed=True)

    @app.callback(
        Output(PAGE, "children"), Output(RENDERED, "data"), Output(FIRST, "data"),
        Input(URL, "pathname"), Input(URL, "search"),
        State(RENDERED, "data"), State(FIRST, "data"), State(url_part(dash.ALL), "data"),
    )
    def route(pathname, search, rendered, first, parts):
        pathname, search = (v if isinstance(v, str) else "" for v in (pathname, search))
        if first is not None and pathname == rendered and search == first:
            return no_update, no_update, None  # the first layout holds this page already
        if pathname == rendered and urlsync.same_state(search or "", parts, views):
            return no_update, no_update, no_update
        if (pathname or "/") not in PAGES:
            return html.Div([html.H2("Page not found"), dcc.Link("Back to the overview", href="/")],
                            className="notice"), pathname, None
        return render(pathname or "/", search), pathname, None

    urlsync.register(app, views)
    experiment_download.register(app, ctx)
    errors.register(app, URL)
    for page in PAGES.values():
        page.register(app, ctx)
    ctx.warm_with(overview.warm)  # the landing page's memos, built while nobody waits (servers only)

    protect(app.server, load_credentials())
    transfer.enable(app.server)
    plotly_bundle.install(app.server, app.config.requests_pathname_prefix)
    answer_404_off_pages(app, PAGES)
    bad_requests.install(app)

    @app.server.route("/health")
    def health():
        return {"status": "ok", "models": len(ctx.experiment.models)}

    return app


def _header(ctx: AppContext) -> html.Header:
    return html.Header([
        html.Div("Compress and Compare", className="brand"),
        html.Div(ctx.title, className="title"),
        html.Nav([
            dcc.Link("Overview", href="/", className="nav-link"),
            dcc.Link("Compare", href="/compare", className="nav-link"),
        ]),
        html.Div(_count(ctx), id=MODEL_COUNT, className="model-count"),
        experiment_download.button(),
        html.Div(ctx.status_line() or None, id=STATUS, className="status-line"),
    ], className="header")


def next_poll(interval: object, changed: bool) -> int:
    """The status poll's next interval: back to 3 s after a change, else double (up to 60 s), so an
    idle tab asks once a minute instead of twenty times (a bad value from the browser restarts)."""
    if changed or not isinstance(interval, (int, float)) or isinstance(interval, bool):
        return POLL_MS
    return int(min(POLL_MAX_MS, max(POLL_MS, interval * 2)))


def _count(ctx: AppContext) -> str:
    return f"{len(ctx.experiment.models)} models"
