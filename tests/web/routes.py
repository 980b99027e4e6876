"""Every route of the app with its full path. FastAPI 0.16x keeps an included router as one
entry of ``app.routes`` (its routes inside), so a flat ``app.routes`` no longer lists them:
a test that walked it would walk nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

__all__ = ["all_routes"]


def all_routes(app: Any) -> list[tuple[str, APIRoute]]:
    """(full path, route) of every APIRoute, in included routers too."""
    found = list(_walk(app.routes, ""))
    assert found, "no routes found: has FastAPI changed how it keeps included routers?"
    return found


def _walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):
            yield from _walk(route.original_router.routes,
                             prefix + route.include_context.prefix)
