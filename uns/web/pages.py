"""The browser pages: the single-page UI, the login page and their static files (no build step)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "page_routes"]

STATIC_DIR = Path(__file__).parent / "static"
"""HTML, JavaScript and CSS served under ``/static``."""


async def _index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


async def _login(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "login.html", headers={"Cache-Control": "no-store"})


def page_routes() -> list[BaseRoute]:
    """``/`` (the UI), ``/login`` and ``/static/...``."""
    return [
        Route("/", _index, methods=["GET"], name="index"),
        Route("/login", _login, methods=["GET"], name="login"),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
