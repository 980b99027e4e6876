"""The optional hub: a tiny app that serves nothing but the consortium's routes. It is a
member of its own (a key pair, pinned by the hospitals as a hub), subscribes to every
hospital's feed with ``fairslot consortium sync`` and relays each feed verbatim, signed by
its issuer; it cannot change an entry or sign one, only be late (which subscribers see in
the heads' times)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from fairslot.clock import Clock
from fairslot.consortium.service import Consortium

__all__ = ["create_hub_app"]


def create_hub_app(engine: Engine, clock: Clock) -> FastAPI:
    from fairslot.web.api.consortium import router
    from fairslot.web.problems import install_problem_handlers

    app = FastAPI(title="fairslot consortium hub", openapi_url="/api/v1/openapi.json",
                  docs_url=None, redoc_url=None)
    app.state.consortium = Consortium(engine, clock)
    install_problem_handlers(app)
    app.include_router(router, prefix="/api/v1")

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
