"""The hub's web server: health, the history HTTP API, and (later) the UI."""

from __future__ import annotations

from uns.web.server import WebServer

__all__ = ["WebServer"]
