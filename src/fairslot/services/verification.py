"""One-time codes sent to a phone: proof that an account receives texts at its number, and
consent from the holder of an identity's registered phone to a link or a claim.

A code is six digits, lives ``code_minutes``, allows ``code_attempts`` wrong entries and is
kept only as a keyed hash (HMAC under a key derived from the master secret: a copy of the
database does not give the codes away, even by trying all million). How many codes an
account may ask for, and how many one phone may receive, are limited per hour and per day,
so the code cannot be used to flood a stranger's phone. Consent codes (sent to the phone an
identity is registered to, at a stranger's request) are limited per (asking account,
identity) and per phone a day, apart from the phone's own verification codes, so asking
for consent can neither flood a phone nor use up its owner's own codes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math

from fairslot.domain.accounts import Account
from fairslot.domain.errors import InvalidInput, TooManyRequests
from fairslot.domain.identity import mask_phone
from fairslot.services import messaging, rules
from fairslot.services.deps import Deps
from fairslot.storage.repositories import VerificationCode
from fairslot.storage.uow import UnitOfWork

__all__ = ["CLAIM", "LINK", "PHONE", "check_code", "send_code"]

PHONE = "phone"
LINK = "link"
CLAIM = "claim"
_KINDS = {PHONE: "phone.code", LINK: "link.consent", CLAIM: "claim.consent"}
_KEY = "one-time-code/v1"


def _hash(deps: Deps, purpose: str, account_id: int, code: str) -> str:
    key = deps.keyring.derive(_KEY)
    return hmac.new(key, f"{purpose}:{account_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _check_rate(deps: Deps, sent: list[dt.datetime], per_hour: int, what: str) -> None:
    now = deps.clock.now()
    hour = [t for t in sent if t > now - dt.timedelta(hours=1)]
    for window, limit, recent in ((dt.timedelta(hours=1), per_hour, hour),
                                  (dt.timedelta(days=1), per_hour * 4, sent)):
        if len(recent) >= limit:
            wait = (recent[-limit] + window - now).total_seconds()
            raise TooManyRequests(f"too many codes sent {what}; try again later",
                                  retry_after=max(1, math.ceil(wait)), code="codes_rate_limited")


def _check_consent_rate(uow: UnitOfWork, deps: Deps, account: Account, phone: str,
                        patient_id: int | None, day: dt.datetime) -> None:
    """Consent codes are limited per (asking account, identity) and per phone a day: one
    asker cannot send more than ``consent_codes_per_identity`` codes about one identity,
    and a phone receives at most ``consent_codes_per_phone_per_day`` consent codes from
    everyone together (the flood stops there; its own codes are counted apart)."""
    s = deps.settings
    now = deps.clock.now()
    consent = [LINK, CLAIM]
    asked = uow.codes.sent_since(since=day, account_id=account.id, patient_id=patient_id,
                                 purposes=consent)
    if len(asked) >= s.consent_codes_per_identity:
        wait = asked[-s.consent_codes_per_identity] + dt.timedelta(days=1) - now
        raise TooManyRequests("too many codes asked for about this person today; try again "
                              "tomorrow or bring the ID card to the registration desk",
                              retry_after=max(1, math.ceil(wait.total_seconds())),
                              code="codes_rate_limited")
    received = uow.codes.sent_since(since=day, phone=phone, purposes=consent)
    if len(received) >= s.consent_codes_per_phone_per_day:
        wait = received[-s.consent_codes_per_phone_per_day] + dt.timedelta(days=1) - now
        raise TooManyRequests("this person's phone received as many consent codes as it may "
                              "today; try again tomorrow or bring the ID card to the "
                              "registration desk",
                              retry_after=max(1, math.ceil(wait.total_seconds())),
                              code="codes_rate_limited")


def send_code(uow: UnitOfWork, deps: Deps, account: Account, purpose: str, phone: str, *,
              patient_id: int | None = None, recipient: Account | None = None,
              **fields: object) -> dt.datetime:
    """Send a fresh code for ``purpose`` to ``phone`` (replacing the account's previous one
    for the same purpose), in the language of ``recipient`` (the account whose phone it is;
    ``account`` itself when it verifies its own phone). Returns when it expires. The caller
    commits."""
    s = deps.settings
    now = deps.clock.now()
    day = now - dt.timedelta(days=1)
    uow.lock(("codes", account.id or 0), rules.phone_lock(uow, phone))
    _check_rate(deps, list(uow.codes.sent_since(since=day, account_id=account.id)),
                s.codes_per_account_per_hour, "for this account")
    if purpose == PHONE:
        # A phone's own codes are counted apart from consent codes that strangers ask to
        # be sent to it: asking for consent cannot use up a person's own verification.
        _check_rate(deps, list(uow.codes.sent_since(since=day, phone=phone,
                                                    purposes=[PHONE])),
                    s.codes_per_phone_per_hour, "to this phone number")
    else:
        _check_consent_rate(uow, deps, account, phone, patient_id, day)
    code = f"{deps.random.randbelow(1_000_000):06d}"
    expires = now + dt.timedelta(minutes=s.code_minutes)
    uow.codes.add(purpose=purpose, account_id=account.id or 0, phone=phone,
                  patient_id=patient_id, code_hash=_hash(deps, purpose, account.id or 0, code),
                  now=now, expires_at=expires)
    to = recipient or (account if purpose == PHONE else None)
    messaging.send(uow, deps.messenger, now, channel=deps.messenger.text, address=phone,
                   kind=_KINDS[purpose], language=to.language if to else None,
                   account_id=to.id if to else None, code=code, minutes=s.code_minutes,
                   **fields)
    return expires


def check_code(uow: UnitOfWork, deps: Deps, account: Account, purpose: str,
               code: str) -> VerificationCode:
    """The account's live code for ``purpose`` if ``code`` is it (then spent). A wrong code
    is counted and committed before ``InvalidInput`` is raised; the last allowed wrong entry
    spends the code."""
    now = deps.clock.now()
    live = uow.codes.live(account.id or 0, purpose, now)
    if live is None or live.attempts >= deps.settings.code_attempts:
        raise InvalidInput("no valid code: it expired, was used, or was entered wrong too "
                           "often; ask for a new one", code="code_expired")
    typed = code.strip()
    if not (typed.isdigit() and hmac.compare_digest(
            live.code_hash, _hash(deps, purpose, account.id or 0, typed))):
        uow.codes.attempt(live.id)
        uow.events.append("code.failed", now, account_id=account.id,
                          detail={"purpose": purpose})
        uow.commit()
        left = deps.settings.code_attempts - live.attempts - 1
        raise InvalidInput(f"wrong code ({left} tries left)", code="code_wrong",
                           tries_left=left)
    uow.codes.use(live.id, now)
    return live


def sent_to(phone: str) -> str:
    return mask_phone(phone)
