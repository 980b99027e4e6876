"""fairslot's application with one more route for the benchmarks: ``POST /bench/floor``, a
durable one-row write through the same stack (uvicorn, the middleware, the thread hop, a
pooled connection, one ``INSERT`` and its ``COMMIT``), without the guard, a log-in, rules or
quotas. Measured beside ``/healthz`` and the action, it splits what an action costs into
what any durable write through fairslot pays and what the action's own work adds.

Served only by the benchmarks (``_server.server(..., app=FLOOR_APP)``); the table is made
by ``_server.fresh_database``."""

from __future__ import annotations

from fastapi import Request

from fairslot.web.asgi import app
from fairslot.web.deps import get_platform

FLOOR_PATH = "/bench/floor"


@app.post(FLOOR_PATH, status_code=201, include_in_schema=False)
def floor(request: Request) -> dict[str, int]:
    with get_platform(request).engine.connect() as conn:
        row = conn.exec_driver_sql(
            "INSERT INTO bench_floor (written_at) VALUES (now()) RETURNING id").one()
        conn.commit()
    return {"id": int(row[0])}


# Matched first, as the action's route is matched before most of the site's.
app.router.routes.insert(0, app.router.routes.pop())
