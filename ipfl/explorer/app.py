"""The explorer's web app (Starlette): one page, two JSON endpoints, static files.

``GET /`` serves the page, ``GET /api/market`` the starting market (a file
given to ``ipfl explore --file`` or ``examples/market.json``'s market), and
``POST /api/compute`` runs :func:`ipfl.explorer.compute.compute` on the form.
Bad input comes back as ``{"ok": false, "errors": [...]}`` with status 200;
an unexpected exception as status 500 with its message. The server never
stops on either.

Guards, before any work (``docs/reliability.md``):

* **Host allow-list** (DNS rebinding): a request whose ``Host`` is not
  ``localhost``, ``127.0.0.1`` or ``[::1]`` with the server's port gets 403.
* **Origin check on POST** (cross-site requests, the ``text/plain`` "simple"
  ones included): a POST whose ``Origin`` is not ``http://`` one of those hosts,
  or whose ``Sec-Fetch-Site`` says ``cross-site``, gets 403. A POST without
  ``Origin`` (not a browser: curl, scripts on this machine) is served.
* **Body cap**: a body over :data:`MAX_BODY` bytes gets 413, decided from
  ``Content-Length`` before reading, or while reading a chunked body.
* **JSON depth cap** (:func:`ipfl.market_files.loads_limited`) and the page's
  client cap (:data:`ipfl.explorer.compute.MAX_CLIENTS`), checked before the
  market is built.

``GET /api/presets`` lists the page's preset markets
(:func:`ipfl.explorer.presets.presets`).

Why Starlette: a small, well-kept ASGI toolkit (the base of FastAPI) with no
front-end framework of its own, so the page is plain HTML and JavaScript that
only draws what the Python mechanism computed, and nothing is fetched from the
internet at run time (no CDN).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..market_files import loads_limited
from .compute import compute
from .presets import presets

__all__ = ["DEFAULT_MARKET", "LOCAL_HOSTS", "MAX_BODY", "create_app"]

#: the largest request body served (an 8-client form with a distance matrix is < 4 KB)
MAX_BODY = 64 * 1024
#: the host names the explorer answers to (with its port): loopback only
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class _Guard:
    """ASGI middleware: the Host allow-list on every request, the Origin check on POST."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.app, self.port = app, port

    def _allowed(self, scope: Scope) -> set[str]:
        port = self.port if self.port is not None else (scope.get("server") or (None, 0))[1]
        hosts = {f"{h}:{port}" for h in LOCAL_HOSTS}
        if port == 80:  # a browser omits the default port
            hosts |= set(LOCAL_HOSTS)
        return hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        allowed = self._allowed(scope)
        host = headers.get("host", "").lower()
        why = None
        if host not in allowed:
            why = f"Host {host[:80]!r} is not this explorer ({sorted(allowed)[0]})"
        elif scope["method"] == "POST":
            origin = headers.get("origin")
            if origin is not None and origin.lower() not in {f"http://{h}" for h in allowed}:
                why = f"cross-origin POST from {origin[:80]!r} refused"
            elif headers.get("sec-fetch-site") == "cross-site":
                why = "cross-site POST refused"
        if why is not None:
            log.warning("explorer: 403, %s", why)
            await PlainTextResponse(f"403 Forbidden: {why}\n", status_code=403)(
                scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _body(request: Request) -> bytes | None:
    """Return the request body, or None when it exceeds :data:`MAX_BODY` (never read past)."""
    length = request.headers.get("content-length")
    if length is not None and (not (length.isascii() and length.isdigit())
                               or int(length) > MAX_BODY):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("ipfl.explorer")

#: the market shown when no file is given (the same as examples/market.json)
DEFAULT_MARKET: dict = {
    "schema": "ipfl.market/1", "lam": 0.2, "gain": "sqrt",
    "clients": [{"N": 120, "c": 0.05, "K": 400}, {"N": 300, "c": 0.1, "K": 900},
                {"N": 80, "c": 0.02, "K": 250}, {"N": 2000, "c": 0.4, "K": 0},
                {"N": 150, "c": "inf", "K": 1200}],
    "points": [[0, 0], [0.4, 0.1], [0.1, 0.5], [2.5, 1.5], [0.6, -0.4]],
}


def create_app(market: Mapping | None = None, port: int | None = None) -> Starlette:
    """Return the app; ``market`` is the starting ``ipfl.market/1`` document.

    ``port`` is the port the ``Host`` header must carry (None: the port the request
    came in on, as the server reports it).
    """
    start = dict(market or DEFAULT_MARKET)

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def get_market(request: Request) -> JSONResponse:
        return JSONResponse(start)

    async def post_compute(request: Request) -> JSONResponse:
        body = await _body(request)
        if body is None:
            return JSONResponse({"ok": False, "errors": [
                {"field": "market", "message": f"the request body exceeds {MAX_BODY:,} bytes"}]},
                status_code=413)
        try:
            form = loads_limited(body.decode("utf-8"))
        except UnicodeDecodeError:
            return JSONResponse({"ok": False, "errors": [
                {"field": "market", "message": "the request body is not UTF-8 JSON"}]})
        except ValueError as exc:
            message = ("the request body is not JSON" if str(exc).startswith("not valid")
                       else f"the request body: {exc}")
            return JSONResponse({"ok": False, "errors": [
                {"field": "market", "message": message}]})
        try:
            return JSONResponse(await asyncio.to_thread(compute, form))
        except Exception as exc:  # noqa: BLE001 - the page shows it; the server lives on
            log.exception("compute failed")
            return JSONResponse({"ok": False, "errors": [
                {"field": "market", "message": f"internal error: {exc}"}]}, status_code=500)

    async def get_presets(request: Request) -> JSONResponse:
        return JSONResponse(presets())

    return Starlette(routes=[
        Route("/", index),
        Route("/api/market", get_market),
        Route("/api/compute", post_compute, methods=["POST"]),
        Route("/api/presets", get_presets),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], middleware=[Middleware(_Guard, port=port)])
