"""Shared by the identity tests: reading codes from the development outbox."""

from __future__ import annotations

import re

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Account, Patient
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import Identity
from fairslot.services import accounts, messaging
from fairslot.services.context import RequestContext


def last_code(platform: Platform, phone: str, kind: str | None = None, *,
              account_id: int | None = None) -> str:
    """The code in the newest outbox message to ``phone`` (E.164), for ``account_id``."""
    with platform.uow() as uow:
        for message in messaging.dev_outbox(uow, limit=500):
            if message.recipient == phone and (kind is None or message.kind == kind) and (
                    account_id is None or message.account_id == account_id):
                found = re.search(r"\b(\d{6})\b", message.body)
                assert found, message.body
                return found.group(1)
    raise AssertionError(f"no code sent to {phone}")


def link_with_consent(platform: Platform, account: Account, identity: Identity | Patient,
                      registered_phone: str, ctx: RequestContext | None = None) -> Patient:
    """Link ``identity`` to ``account`` the way a relative does when another account's
    phone speaks for it: ask, get the code the registered phone received, ask again."""
    ctx = ctx or RequestContext(ip="203.0.113.9")
    try:
        return platform.run(accounts.add_patient, account, identity.id_number, identity.name,
                            None, ctx)
    except FairslotError as exc:
        if exc.code != "consent_required":
            raise
    code = last_code(platform, registered_phone, "link.consent")
    return platform.run(accounts.add_patient, account, identity.id_number, identity.name,
                        None, ctx, consent_code=code)
