"""The development outbox page (demo only): the codes and notifications the demo "sent"."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from fairslot.domain.identity import mask_phone
from fairslot.web.api.dev import outbox_messages
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.pages.common import Viewer, local, page_router, render

__all__ = ["router"]

router = page_router()


@router.get("/dev/outbox")
def outbox_page(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                phone: str | None = None) -> Response:
    found = outbox_messages(uow, deps, phone or None)
    return render(request, "dev_outbox.html", phone=phone or "",
                  messages=[(m, mask_phone(m.recipient), local(deps, m.created_at))
                            for m in found])
