"""The explorer's web app (Starlette): one page, two JSON endpoints, static files.

``GET /`` serves the page, ``GET /api/market`` the starting market (a file
given to ``ipfl explore --file`` or ``examples/market.json``'s market), and
``POST /api/compute`` runs :func:`ipfl.explorer.compute.compute` on the form.
Bad input comes back as ``{"ok": false, "errors": [...]}`` with status 200;
an unexpected exception as status 500 with its message. The server never
stops on either.

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
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .compute import compute
from .presets import presets

__all__ = ["DEFAULT_MARKET", "create_app"]

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


def create_app(market: Mapping | None = None) -> Starlette:
    """Return the app; ``market`` is the starting ``ipfl.market/1`` document."""
    start = dict(market or DEFAULT_MARKET)

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def get_market(request: Request) -> JSONResponse:
        return JSONResponse(start)

    async def post_compute(request: Request) -> JSONResponse:
        try:
            form = await request.json()
        except ValueError:
            return JSONResponse({"ok": False, "errors": [
                {"field": "market", "message": "the request body is not JSON"}]})
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
    ])
