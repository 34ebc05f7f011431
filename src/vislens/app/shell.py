"""The workbench shell: one Dash app, shared navigation, and a page registry.

A page is a URL prefix, a name for the navigation bar, a ``layout(ctx, subpath, query)``
function and an optional ``register(app, ctx)`` that adds its callbacks. Later stages add
pages (explorer, feature dashboards, patch viewer) with :func:`register_page`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from vislens.app.context import AppContext
from vislens.app.pages import _EXTRA_PAGES, Page, extra_pages, register_page
from vislens.app.style import index_html
from vislens.errors import VislensError

__all__ = ["_EXTRA_PAGES", "Page", "create_app", "default_pages", "register_page", "serve"]


def default_pages() -> list[Page]:
    import vislens.app.annotate as annotate
    import vislens.app.explorer_page as explorer_page
    import vislens.app.study_pages as study_pages

    return [*study_pages.pages(), *explorer_page.pages(), *annotate.pages(), *extra_pages()]


# Why a script at all: Dash has no keyboard events, so a key press clicks the button whose
# data-key matches (one code path for mouse and keys). Why the queue: clicks made while a
# save is still in flight wait for it, so events reach the server in the order made and
# each is made on the item the annotator is looking at.
KEYS_JS = """
(function () {
  // gates: presses whose request has not started yet; pending: requests in flight.
  var pending = 0, gates = [], nextGate = 0, queue = [];
  function busy() { return pending > 0 || gates.length > 0; }
  function hold() {
    var id = ++nextGate;
    gates.push(id);
    setTimeout(function () {  // no request came for this press: stop holding
      var i = gates.indexOf(id);
      if (i >= 0) { gates.splice(i, 1); drain(); }
    }, 1000);
  }
  var origFetch = window.fetch;
  window.fetch = function (input) {
    var url = String((input && input.url) || input);
    var tracked = url.indexOf('_dash-update-component') >= 0;
    if (tracked) { pending++; gates.shift(); }
    var p = origFetch.apply(this, arguments);
    if (tracked) p.finally(applied);
    return p;
  };
  // A request counts until its answer is on the page (the next DOM change, or 500 ms),
  // so a queued press is sent with the state that answer brought.
  function applied() {
    var done = false;
    var obs = new MutationObserver(function () { finish(); });
    function finish() {
      if (done) return;
      done = true;
      obs.disconnect();
      setTimeout(function () { pending--; drain(); }, 0);
    }
    obs.observe(document.body, {subtree: true, childList: true, characterData: true});
    setTimeout(finish, 500);
  }
  function press(btn) {
    hold();
    btn.setAttribute('data-vl-replay', '1');
    btn.click();
  }
  function drain() {
    if (busy() || !queue.length) return;
    var btn = document.getElementById(queue.shift());
    if (btn && !btn.disabled) press(btn); else drain();
  }
  function enqueue(btn) { queue.push(btn.id); drain(); }
  document.addEventListener('click', function (ev) {
    var btn = ev.target && ev.target.closest ? ev.target.closest('button[data-key]') : null;
    if (!btn) return;
    // A clicked button keeps the focus, and Enter/Space on a focused button click it again:
    // drop the focus so the next key press means what the page says it means.
    setTimeout(function () { if (document.activeElement === btn) btn.blur(); }, 0);
    if (btn.getAttribute('data-vl-replay')) { btn.removeAttribute('data-vl-replay'); return; }
    if (busy() || queue.length) { ev.preventDefault(); ev.stopPropagation(); enqueue(btn); return; }
    hold();  // a direct mouse click: later presses wait until its request is answered
  }, true);
  document.addEventListener('keydown', function (ev) {
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
    var key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    // Enter/Space on a focused button would press that button: never let them.
    var onButton = t && t.tagName === 'BUTTON';
    if (onButton && (key === 'Enter' || key === ' ')) ev.preventDefault();
    var btn = document.querySelector('button[data-key="' + key.replace(/["\\\\]/g, '') + '"]');
    if (!btn || btn.disabled) return;
    ev.preventDefault();
    if (busy() || queue.length) enqueue(btn); else press(btn);
  });
})();
"""

INDEX = index_html(KEYS_JS)


def create_app(
    study: Any,
    pages: list[Page] | None = None,
    *,
    store: Any = None,
    host: str = "127.0.0.1",
    allowed_hosts: tuple[str, ...] = (),
    crop_context: int | None = None,
) -> Any:
    """The workbench as a Dash app (its Flask server is ``app.server``).

    ``host`` is the address the server will listen on: the Host header of every request is
    checked against it (plus ``allowed_hosts``), and any address beyond loopback makes
    personal token links mandatory. ``crop_context``: patches on each side of the patch in
    annotation pages' zoomed crop (None: chosen from the model's grid, crop.py)."""
    import dash
    import dash_ag_grid  # noqa: F401 - component libraries must load before the app starts
    import dash_mantine_components  # noqa: F401
    from dash import Input, Output, dcc, html

    from vislens.app import security, ui
    from vislens.app.api import register_api
    from vislens.app.media import register_media
    from vislens.store.annotations import AnnotationStore

    ctx = AppContext(
        study=study,
        store=store or AnnotationStore.for_study(study),
        force_tokens=not security.is_loopback(host),
        crop_context=crop_context,
    )
    pages = pages if pages is not None else default_pages()
    app = dash.Dash(
        __name__,
        title=f"vislens · {study.config.name or Path(study.root).name}",
        suppress_callback_exceptions=True,
        update_title="",
    )
    security.install(app.server, security.allowed_hosts(host, allowed_hosts))
    app.index_string = INDEX
    links = [(p.name, p.path) for p in pages if p.in_nav]
    name = study.config.name or Path(study.root).name
    app.layout = ui.provider(
        html.Div(
            [
                dcc.Location(id="vl-url"),
                ui.header("vislens", f"study {name}", ui.nav_links(links, "/")),
                # Opening a page that reads much (a large code store, a map of a million
                # points) shows a bar under the header until the page is drawn.
                ui.busy(
                    html.Main(id="vl-page", className="vl-main"),
                    {"vl-page": "children"},
                    custom_spinner=html.Div(className="vl-topbar", id="vl-page-busy"),
                ),
            ]
        )
    )

    def _route(pathname: str | None, search: str | None) -> Any:
        pathname = pathname or "/"
        query = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
        for page in sorted(pages, key=lambda p: -len(p.path)):
            base = page.path.rstrip("/")
            if pathname == page.path or (base and pathname.startswith(base + "/")):
                try:
                    return page.layout(ctx, pathname[len(base) :].strip("/"), query)
                except Exception as e:  # a broken file must give a message, not a blank page
                    import logging

                    logging.getLogger("vislens.app").exception("page %s failed", pathname)
                    msg = str(e) if isinstance(e, VislensError) else f"{type(e).__name__}: {e}"
                    return ui.page("This page could not be drawn", ui.note(msg[:500], color="red"))
        return ui.page("Not found", ui.note(f"No page at {pathname}."))

    app.callback(
        Output("vl-page", "children"), Input("vl-url", "pathname"), Input("vl-url", "search")
    )(_route)
    app.callback(Output("vl-nav", "children"), Input("vl-url", "pathname"))(
        lambda pathname: ui.nav_links(links, pathname or "/")
    )
    for page in pages:
        if page.register is not None:
            page.register(app, ctx)
    register_api(app.server, ctx)
    register_media(app.server, ctx)
    app.vislens_context = ctx  # type: ignore[attr-defined]
    return app


def open_study(study_dir: Path) -> Any:
    """The study at ``study_dir``, its root made absolute (files are served by absolute path,
    whatever the server's working directory). A folder without study.toml is one clear error."""
    from vislens.errors import ConfigError
    from vislens.study import STUDY_FILE, Study

    root = Path(study_dir).expanduser().resolve()
    if not (root / STUDY_FILE).is_file():
        raise ConfigError(
            f"{root}: not a study (no {STUDY_FILE}) — create one with `vislens init {study_dir}`"
        )
    return Study.open(root)


def run_server(
    app: Any, *, host: str, port: int, debug: bool = False, on_ready: Any = None
) -> None:
    """Serve a Dash app: waitress (a production WSGI server) unless ``debug``, which uses
    Flask's development server with reloading. ``on_ready()`` runs once the port is bound."""
    if debug:
        if on_ready is not None:
            on_ready()
        app.run(host=host, port=port, debug=True, threaded=True)
        return
    from waitress.server import create_server

    server = create_server(app.server, host=host, port=port, threads=8, ident="vislens")
    if on_ready is not None:
        on_ready()
    server.run()


def serve(
    study_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    debug: bool = False,
    on_ready: Any = None,
    crop_context: int | None = None,
) -> None:
    """Run the workbench for a study (blocking). Bound to localhost unless ``host`` says."""
    app = create_app(open_study(study_dir), host=host, crop_context=crop_context)
    run_server(app, host=host, port=port, debug=debug, on_ready=on_ready)
