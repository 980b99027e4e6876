"""The consortium's HTTP side (docs/consortium.md): a member's feed, served to the members
this hospital pinned (its own feed, and any other member's feed it holds, relayed verbatim:
that is all a hub does), the appeals other members forward to this hospital, and its public
key for operators to compare with what they pinned.

Every call but the key is a request signed by a pinned member; nothing here needs a user's
log-in, and nothing here carries a clear identifier."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from fairslot.clock import Clock
from fairslot.consortium.service import Consortium
from fairslot.consortium.signing import parse_public_key, verify_request
from fairslot.domain.errors import NotFound
from fairslot.web.problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/consortium", tags=["consortium"], responses=PROBLEM_RESPONSES)
MemberCode = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]


def consortium(request: Request) -> Consortium:
    """The process's one ``Consortium``, made on first use from the app's platform (or
    given by the hub app)."""
    state = request.app.state
    found: Consortium | None = getattr(state, "consortium", None)
    if found is None:
        platform = state.platform
        engine: Engine = platform.engine
        clock: Clock = platform.clock
        found = state.consortium = platform.consortium or Consortium(engine, clock)
    return found


def _authenticate(request: Request, body: bytes, c: Consortium) -> str:
    def pinned(code: str) -> Any:
        member = c.store.member(code)
        return None if member is None or member.removed else parse_public_key(member.public_key)

    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return verify_request(request.headers, request.method, target, body, c.clock.now(), pinned)


@router.get("/key")
def member_key(request: Request) -> dict[str, str]:
    """This hospital's member code and public key, to compare with the one pinned."""
    c = consortium(request)
    me = c.store.self_row()
    if me is None:
        raise NotFound("this hospital has no consortium key", code="consortium_no_key")
    return {"member": me.member, "name": me.name, "public_key": me.public_key}


@router.get("/feeds/{member}")
async def feed(request: Request, member: MemberCode,
               since: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> Any:
    """Changes of ``member``'s feed after version ``since`` (up to a page), with the head
    signed by the member. Served to pinned members only."""
    c = consortium(request)

    def page() -> Any:
        _authenticate(request, b"", c)
        found = c.store.feed_page(member, since, c.clock.now())
        if found is None:
            raise NotFound(f"this server holds no feed of {member}", code="consortium_no_feed")
        return found.as_json()

    return JSONResponse(await run_in_threadpool(page),
                        headers={"Cache-Control": "no-store"})


@router.post("/appeals", status_code=201,
             responses={200: {"description": "this appeal was already received"}})
async def receive_appeal(request: Request) -> Any:
    """An appeal a member forwards from one of its patients to this hospital, the issuer:
    the entry, its pseudonym and the patient's message, signed by the member."""
    c = consortium(request)
    raw = await request.body()

    def receive() -> Any:
        import json

        sender = _authenticate(request, raw, c)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        appeal, new = c.receive_appeal(sender, body)
        return JSONResponse({"ref": appeal.ref, "status": appeal.status},
                            status_code=201 if new else 200)

    return await run_in_threadpool(receive)
