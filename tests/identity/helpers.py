"""Shared by the identity tests: reading codes from the development outbox."""

from __future__ import annotations

import re

from fairslot.bootstrap import Platform
from fairslot.services import messaging


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
