"""Routes that give their database connection back before the response is written.

FastAPI runs a plain (``def``) endpoint in its thread pool, and then validates and writes
its response in the thread pool again. A connection still held between the two would wait
for a second thread while holding the pool's connection, and under load, with every
thread waiting for a connection, nothing moves (the 200-parallel-bookings test ran into
exactly that). So a plain endpoint's unit of work is released in the endpoint's own thread
as it returns: everything the response needs has been read by then."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from fairslot.storage.uow import UnitOfWork

__all__ = ["ReleasingRoute", "releases_uow"]


def _units(values: dict[str, Any]) -> list[UnitOfWork]:
    found = []
    for value in values.values():
        if isinstance(value, UnitOfWork):
            found.append(value)
        else:
            held = getattr(value, "uow", None)
            if isinstance(held, UnitOfWork):
                found.append(held)
    return found


def releases_uow(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a plain endpoint so that the units of work among its arguments are released
    (their transaction ended, their connection returned) when it returns or raises."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for uow in _units(kwargs):
                uow.release()

    return wrapped


class ReleasingRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, releases_uow(endpoint), **kwargs)
