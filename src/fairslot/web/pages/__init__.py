"""Server-rendered pages for patients, the registration desk and operators (docs/pages.md).

Plain HTML forms over the same services as the JSON API, one module per audience. Every
POST carries a per-session CSRF token; book, pay and cancel also carry the guard's
single-use action token, issued by the page that leads to the action (bound to account,
action and target) and spent by the POST. When the guard asks for proof of work, the page
comes back with the ALTCHA challenge on its form and ``/static/altcha-solver.js`` solves it
and submits again. Errors a user can cause are shown on the page in words, never as a
traceback or JSON."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fairslot.web.pages import (
    account,
    booking,
    browse,
    catalogue,
    console,
    consortium,
    desk,
    dev,
    identity,
    investigations,
    operator,
    proposals,
    rounds,
)
from fairslot.web.pages.common import HERE, install_errors

__all__ = ["install_pages"]

STATIC_DIR = HERE / "static"


def install_pages(app: FastAPI) -> None:
    """Add the pages and ``/static`` to ``app``. Call after the problem+json handlers are
    installed."""
    for module in (browse, account, booking, rounds, desk, operator, catalogue, proposals, dev,
                   identity, console, investigations, consortium):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_errors(app)
