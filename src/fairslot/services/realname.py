"""The real-name check, guarded like a log-in: it is not an oracle.

An identity typed into fairslot (linking a patient, claiming one's own) is parsed, then
asked of the identity provider. Each failed check is stored and counted over a day per
account (``identity_failures_per_account``) and per (account, ID number)
(``identity_failures_per_id_number``); past either, further checks are refused (429
``identity_checks_limited``) without asking the provider, so 400 name guesses for a known ID
number cannot run. Failures from other accounts never refuse an account that has not failed
on the number itself: counting them for everyone let anyone lock a person out of linking or
claiming their own identity for a day with five wrong names. Against a ring guessing from
many accounts, past ``identity_failures_per_id_number_all`` failures on one number from all
accounts an account gets no second try on it. Every refusal, malformed or failed, is an
``identity.rejected`` event for monitoring (blind indexes only, never the number or
name tried)."""

from __future__ import annotations

import datetime as dt
import math

from fairslot.domain.accounts import Account
from fairslot.domain.errors import InvalidInput, TooManyRequests
from fairslot.domain.identity import (
    Identity,
    is_valid_id_number,
    normalize_id_number,
    normalize_name,
)
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["checked_identity"]

_DAY = dt.timedelta(days=1)


def _plausible(name: str) -> bool:
    try:
        normalize_name(name)
    except InvalidInput:
        return False
    return True


def _reject(uow: UnitOfWork, deps: Deps, account: Account, reason: str, id_number: str,
            name: str, ctx: RequestContext) -> None:
    keys = uow.keyring
    valid = is_valid_id_number(id_number)
    detail: dict[str, object] = {"reason": reason, "name_plausible": _plausible(name),
                                 "name_tried": keys.blind_index("resident", name.strip())}
    if valid:
        detail["tried"] = keys.blind_index("id_number", normalize_id_number(id_number))
    uow.events.append("identity.rejected", deps.clock.now(), account_id=account.id,
                      detail=detail, **ctx.event_fields())


def _wait(times: list[dt.datetime], limit: int, now: dt.datetime) -> int | None:
    """Seconds until one more check is allowed, or None if it is allowed now."""
    if len(times) < limit:
        return None
    return max(1, math.ceil((times[-limit] + _DAY - now).total_seconds()))


def checked_identity(uow: UnitOfWork, deps: Deps, account: Account, id_number: str,
                     name: str, ctx: RequestContext) -> Identity:
    """The identity, if well formed, not rate-limited and confirmed by the provider; else
    the refusal is recorded (and committed) and raised."""
    try:
        identity = Identity.parse(id_number, name)
    except InvalidInput as exc:
        _reject(uow, deps, account, exc.code, id_number, name, ctx)
        uow.commit()
        raise
    now = deps.clock.now()
    s = deps.settings
    id_index = uow.keyring.blind_index("id_number", identity.id_number)
    mine = uow.codes.identity_failures(now - _DAY, account_id=account.id,
                                       id_number_index=id_index)
    checks = [(uow.codes.identity_failures(now - _DAY, account_id=account.id),
               s.identity_failures_per_account, "from this account"),
              (mine, s.identity_failures_per_id_number, "for this ID number")]
    if mine:
        # Many accounts failing on one number (a ring guessing together): from then on an
        # account that failed on it once is refused. An account that has not (the person
        # themselves, typing their own name) is still checked: nobody can lock a person out
        # of their own identity by failing on it.
        everyone = uow.codes.identity_failures(now - _DAY, id_number_index=id_index)
        checks.append((everyone, s.identity_failures_per_id_number_all,
                       "for this ID number"))
    for times, limit, what in checks:
        wait = _wait(times, limit, now)
        if wait is not None:
            _reject(uow, deps, account, "identity_checks_limited", id_number, name, ctx)
            uow.commit()
            raise TooManyRequests(f"too many failed real-name checks {what}; try again "
                                  "later or bring the ID card to the registration desk",
                                  retry_after=wait, code="identity_checks_limited")
    if not deps.verifier.verify(uow, identity):
        uow.codes.identity_failed(now, account.id, id_index)
        _reject(uow, deps, account, "identity_not_verified", id_number, name, ctx)
        uow.commit()
        raise InvalidInput("the ID number and name do not match a known resident",
                           code="identity_not_verified")
    return identity
