"""The development outbox (demo only, ``FAIRSLOT_DEV_OUTBOX_PAGE``): every code and
notification the demo "sent", since nothing leaves the machine. Off (404) otherwise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fairslot.domain.errors import NotFound
from fairslot.domain.identity import mask_phone, normalize_phone
from fairslot.services import messaging
from fairslot.services.deps import Deps
from fairslot.services.messaging import SentMessage
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.routing import ReleasingRoute
from fairslot.web.schemas import OutboxMessageOut

__all__ = ["outbox_messages", "router"]

router = APIRouter(route_class=ReleasingRoute, responses=PROBLEM_RESPONSES)


def outbox_messages(uow: UnitOfWork, deps: Deps, phone: str | None,
                    limit: int = 50) -> list[SentMessage]:
    """The outbox's newest messages, to ``phone`` only when given. 404 unless enabled."""
    if not deps.settings.dev_outbox_page:
        raise NotFound("no such page", code="not_found")
    found = messaging.dev_outbox(uow, limit=500 if phone else limit)
    if phone:
        wanted = normalize_phone(phone)
        found = [m for m in found if m.recipient == wanted][:limit]
    return found


@router.get("/dev/outbox", tags=["demo"])
def dev_outbox(uow: UowDep, deps: DepsDep,
               phone: Annotated[str | None, Query(max_length=32)] = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[OutboxMessageOut]:
    """Demo only: the messages the development outbox holds, newest first (``phone``
    filters by recipient). Not served unless ``FAIRSLOT_DEV_OUTBOX_PAGE`` is on."""
    return [OutboxMessageOut(id=m.id, channel=m.channel, to=mask_phone(m.recipient),
                             kind=m.kind, language=m.language, subject=m.subject,
                             text=m.body, at=m.created_at)
            for m in outbox_messages(uow, deps, phone, limit)]
