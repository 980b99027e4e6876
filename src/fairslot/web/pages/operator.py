"""The operator's day: every session with its capacity, free slots and bookings by
status."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Role
from fairslot.domain.errors import InvalidInput
from fairslot.services import catalog
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.pages.common import Viewer, page_router, render, today

__all__ = ["router"]

router = page_router()


def _day(raw: str | None, default: dt.date) -> dt.date:
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("the date is YYYY-MM-DD",
                           code="invalid_date") from None


@router.get("/operator")
def operator(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             date: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    account = who.logged_in(Role.OPERATOR)
    day = _day(date, today(deps))
    rows = catalog.day_sessions(uow, deps, day)
    return render(request, "operator.html", account=account, rows=rows, day=day,
                  prev_day=day - dt.timedelta(days=1), next_day=day + dt.timedelta(days=1),
                  zone=deps.settings.timezone,
                  totals={"capacity": sum(r.session.capacity for r in rows),
                          "booked": sum(r.counts.booked for r in rows),
                          "free": sum(r.counts.free for r in rows)})
