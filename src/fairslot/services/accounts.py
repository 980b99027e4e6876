"""Accounts: registration, log-in and tokens, staff users, and the family patients an account
manages (each with a verified real-name identity).

A log-in token reads ``<account id>.<random>.<mac>``: the MAC (a key derived from the
master secret) lets the request guard key its limits on the account before the database is
asked, so a client cannot spend another account's budget by naming it; the token itself
(its SHA-256) is checked against the database inside the request's transaction."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re

import zxcvbn
from argon2.exceptions import InvalidHashError, VerificationError

from fairslot.crypto import Keyring
from fairslot.domain.accounts import STAFF_ROLES, Account, Patient, Role
from fairslot.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    Unauthenticated,
)
from fairslot.domain.identity import Identity, mask_name, mask_phone, normalize_phone
from fairslot.domain.messages import language_of
from fairslot.services import messaging, outbox, realname, rules, shared_list, verification
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "add_patient",
    "authenticate",
    "change_account",
    "change_phone",
    "check_password_strength",
    "create_user",
    "is_staff",
    "issue_token",
    "list_patients",
    "log_in",
    "log_out",
    "register",
    "registered_phone_account",
    "remove_patient",
    "request_phone_code",
    "require_consent",
    "require_role",
    "require_verified_phone",
    "set_language",
    "staff_accounts",
    "token_account_id",
    "verified_patient",
    "verify_phone",
]

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,31}$")
_TOKEN_MAC = "auth-token/v1"  # noqa: S105 - a key label, not a secret


def _check_credentials_format(username: str, password: str, minimum: int) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise InvalidInput("a username is 3-32 characters: a-z, 0-9, '_', '.', '-'",
                           code="invalid_username")
    if len(password) < minimum or len(password) > 256:
        raise InvalidInput(f"a password has at least {minimum} characters",
                           code="weak_password")
    return name


def check_password_strength(deps: Deps, password: str, *user_data: str | None) -> None:
    """Refuse a password found in common-password lists, made of keyboard patterns,
    repeats, dates or sequences, or of the user's own data (user name, phone), as NIST SP
    800-63B asks: zxcvbn's estimate must reach ``password_min_strength`` (0-4)."""
    needed = deps.settings.password_min_strength
    if needed <= 0:
        return
    inputs = tuple(sorted({part for value in user_data if value
                           for part in _user_words(value)}))
    score, warning = _strength(password[:_ZXCVBN_MAX], inputs)
    if score < needed:
        why = f" ({warning.rstrip('.')})" if warning else ""
        raise InvalidInput("this password is too easy to guess" + why +
                           "; try a few unrelated words", code="weak_password")


_ZXCVBN_MAX = 72  # zxcvbn refuses longer input; what lies beyond makes a password stronger


def _user_words(value: str) -> list[str]:
    """A user's data as zxcvbn should look for it: whole, and each run of letters or
    digits (a phone's national number without its +86)."""
    text = value.strip().lower()
    return [text, *re.findall(r"[a-z]{3,}|[0-9]{4,}", text)]


@functools.lru_cache(maxsize=256)
def _strength(password: str, inputs: tuple[str, ...]) -> tuple[int, str]:
    result = zxcvbn.zxcvbn(password, user_inputs=list(inputs))
    return int(result["score"]), str(result["feedback"].get("warning") or "")


def register(uow: UnitOfWork, deps: Deps, username: str, password: str, phone: str,
             ctx: RequestContext, *, language: str | None = None) -> Account:
    """A patient account, its phone not verified yet: a code is sent to it. A phone number
    backs at most ``max_accounts_per_phone`` verified accounts (checked under the phone's
    lock here and again when the code comes back, so parallel registrations cannot exceed
    it)."""
    name = _check_credentials_format(username, password, deps.settings.password_min_length)
    phone_e164 = normalize_phone(phone)
    check_password_strength(deps, password, name, phone_e164)
    now = deps.clock.now()
    password_hash = deps.hasher.hash(password)  # slow on purpose: before any lock is held
    uow.lock(rules.phone_lock(uow, phone_e164))
    if uow.accounts.by_username(name) is not None:
        raise Conflict("that username is taken", code="username_taken")
    # Only verified accounts count: nobody can use up a stranger's number by typing it
    # into registrations they cannot verify (the codes sent to it are limited per hour).
    shared = shared_list.consult(uow, deps, shared_list.Point.REGISTRATION, ctx,
                                 phone=phone_e164)
    _check_phone_room(uow, deps, phone_e164, lowered=shared.lowered)
    account = Account(username=name, role=Role.PATIENT, password_hash=password_hash,
                      phone=phone_e164, created_at=now, language=language_of(language))
    uow.accounts.add(account)
    uow.flush()
    uow.events.append("account.registered", now, account_id=account.id,
                      detail={"phone_index": uow.keyring.blind_index("phone", phone_e164),
                              "channel": ctx.channel.value}, **ctx.event_fields())
    # The account can log in at once, but books, enters draws and links people only once
    # it has typed back the code this text carries (``verify_phone``).
    verification.send_code(uow, deps, account, verification.PHONE, phone_e164)
    uow.commit()
    _send_now(uow, deps)
    return account


def _send_now(uow: UnitOfWork, deps: Deps) -> None:
    """Hand the messages this transaction recorded (a code) to their channel at once, now
    that it has committed; one that fails stays in the outbox for the scheduler's retry."""
    for item in [i for i in uow.outbox.pending(messaging.SEND) if i.id in uow.outbox.added]:
        outbox.run_item(uow, deps, item.id)
    uow.outbox.added.clear()


def set_language(uow: UnitOfWork, deps: Deps, account: Account, language: str) -> Account:
    """The language the account's messages are written in (zh-CN or en)."""
    if language.strip().lower().split("-")[0] not in ("zh", "en"):
        raise InvalidInput("a language is zh-CN or en", code="invalid_language")
    stored = uow.accounts.get(account.id or 0)
    if stored is None:
        raise NotFound("no such account", code="account_not_found")
    stored.language = language_of(language)
    uow.commit()
    return stored


def require_verified_phone(account: Account) -> None:
    """Refuse a patient account that has not proved its phone by a code."""
    if account.role is Role.PATIENT and account.phone_verified_at is None:
        raise Forbidden("verify your phone number first: enter the code we sent to it",
                        code="phone_not_verified")


def request_phone_code(uow: UnitOfWork, deps: Deps, account: Account) -> tuple[str, dt.datetime]:
    """Send (again) a code to the phone the account has not verified yet. Returns the phone
    it went to and when the code expires."""
    if account.phone is None:
        raise InvalidInput("this account has no phone number", code="no_phone")
    if account.phone_verified_at is not None:
        raise Conflict("this phone number is verified already", code="phone_verified")
    expires = verification.send_code(uow, deps, account, verification.PHONE, account.phone)
    uow.commit()
    _send_now(uow, deps)
    return account.phone, expires


def change_phone(uow: UnitOfWork, deps: Deps, account: Account,
                 phone: str) -> tuple[str, dt.datetime]:
    """Start moving the account to another phone: a code goes to the new number, and the
    account keeps its old number (verified or not) until the code comes back."""
    phone_e164 = normalize_phone(phone)
    if phone_e164 == account.phone and account.phone_verified_at is not None:
        raise Conflict("this phone number is verified already", code="phone_verified")
    uow.lock(rules.phone_lock(uow, phone_e164))
    _check_phone_room(uow, deps, phone_e164)
    expires = verification.send_code(uow, deps, account, verification.PHONE, phone_e164)
    uow.commit()
    _send_now(uow, deps)
    return phone_e164, expires


def _check_phone_room(uow: UnitOfWork, deps: Deps, phone: str,
                      account: Account | None = None, *, lowered: bool = False) -> None:
    limit = deps.settings.max_accounts_per_phone
    if lowered:  # the shared list lowers this phone's quota
        limit = min(limit, deps.settings.consortium_lowered_quota)
    used = uow.accounts.count_with_phone(phone, verified_only=True)
    if account is not None and account.phone == phone and account.phone_verified_at:
        used -= 1
    if used >= limit:
        raise QuotaExceeded(f"this phone number already backs {limit} accounts",
                            code="quota_accounts_per_phone")


def verify_phone(uow: UnitOfWork, deps: Deps, account: Account, code: str,
                 ctx: RequestContext) -> Account:
    """Check the code sent to the account's (new) phone; on success that phone is the
    account's, verified."""
    used = verification.check_code(uow, deps, account, verification.PHONE, code)
    now = deps.clock.now()
    # The phone's lock (the accounts it backs) and the account's: the account's bookings
    # and entries count toward every phone it verified within the quota window, so a
    # booking reads that list under the account's lock and a verification may not change
    # it under a booking.
    uow.lock(rules.phone_lock(uow, used.phone), ("account", account.id or 0))
    stored = uow.accounts.get(account.id or 0)
    if stored is None:
        raise NotFound("no such account", code="account_not_found")
    _check_phone_room(uow, deps, used.phone, stored)
    changed = stored.phone != used.phone
    stored.phone = used.phone
    stored.phone_verified_at = now
    uow.events.append("account.phone_verified", now, account_id=stored.id,
                      detail={"changed": changed}, **ctx.event_fields())
    uow.commit()
    return stored


def create_user(uow: UnitOfWork, deps: Deps, username: str, password: str, role: Role,
                phone: str | None = None, *, password_hash: str | None = None,
                phone_verified: bool = False, language: str | None = None) -> Account:
    """Any role, for the CLI and the admin API. ``password_hash`` lets a bulk creator (the
    demo seed, the simulator) hash one shared password once instead of once per account.
    ``phone_verified``: whoever creates the account vouches for its phone (the demo seed,
    tests); otherwise the account verifies it by a code like a registered one."""
    name = _check_credentials_format(username, password, deps.settings.password_min_length)
    phone_e164 = normalize_phone(phone) if phone else None
    # A bulk creator's shared password is checked without the user's data (cached: one
    # estimate for all of them); everyone else's against their own name and phone too.
    check_password_strength(deps, password, *(() if password_hash else (name, phone_e164)))
    now = deps.clock.now()
    if uow.accounts.by_username(name) is not None:
        raise Conflict("that username is taken", code="username_taken")
    account = Account(username=name, role=role,
                      password_hash=password_hash or deps.hasher.hash(password),
                      phone=phone_e164, created_at=now, language=language_of(language),
                      phone_verified_at=now if phone_verified and phone_e164 else None)
    uow.accounts.add(account)
    uow.flush()
    uow.events.append("account.created", now, account_id=account.id,
                      detail={"role": role.value})
    uow.commit()
    return account


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _mac(keyring: Keyring, body: str) -> str:
    return hmac.new(keyring.derive(_TOKEN_MAC), body.encode(), hashlib.sha256).hexdigest()[:32]


def token_account_id(keyring: Keyring, token: str) -> int | None:
    """The account a log-in token was issued to, if its MAC is right (no database needed;
    whether the token is still valid is for ``authenticate`` to say)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 10:
        return None
    # Bytes: compare_digest refuses str with non-ASCII characters (a hostile header).
    if not hmac.compare_digest(_mac(keyring, f"{parts[0]}.{parts[1]}").encode(),
                               parts[2].encode()):
        return None
    return int(parts[0])


def issue_token(uow: UnitOfWork, deps: Deps, account_id: int) -> str:
    """A log-in token for the account (after a password check, or for the simulator and
    tests acting as a user). Commits."""
    now = deps.clock.now()
    body = f"{account_id}.{deps.random.token_urlsafe(32)}"
    token = f"{body}.{_mac(deps.keyring, body)}"
    uow.accounts.add_token(_token_hash(token), account_id, now,
                           now + dt.timedelta(hours=deps.settings.auth_token_hours))
    uow.commit()
    return token


def log_in(uow: UnitOfWork, deps: Deps, username: str, password: str,
           ctx: RequestContext) -> tuple[str, Account]:
    """Check the password (Argon2) and issue a bearer token. Throttling the attempts is the
    request guard's job, before this runs."""
    name = username.strip().lower()
    now = deps.clock.now()
    account = uow.accounts.by_username(name) if _USERNAME.match(name) else None
    try:
        deps.hasher.verify(account.password_hash if account else deps.dummy_hash, password)
        ok = account is not None and not account.disabled
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or account is None:
        uow.events.append("auth.login_failed", now, account_id=account.id if account else None,
                          **ctx.event_fields())
        uow.commit()
        raise Unauthenticated("wrong username or password", code="bad_credentials")
    uow.events.append("auth.login", now, account_id=account.id, **ctx.event_fields())
    return issue_token(uow, deps, account.id or 0), account


def authenticate(uow: UnitOfWork, deps: Deps, token: str) -> Account:
    account = None
    if token_account_id(deps.keyring, token) is not None:
        account = uow.accounts.by_token(_token_hash(token), deps.clock.now())
    if account is None or account.disabled:
        raise Unauthenticated("log in first (the token is missing, wrong or expired)")
    return account


def log_out(uow: UnitOfWork, deps: Deps, token: str) -> None:
    uow.accounts.drop_token(_token_hash(token))
    uow.commit()


def verified_patient(uow: UnitOfWork, deps: Deps, identity: Identity,
                     phone: str | None = None) -> Patient:
    """The patient with this identity after the real-name check, made on first sight (an
    identity exists once in fairslot, whoever brings it: a family account or the desk)."""
    if not deps.verifier.verify(uow, identity):
        raise InvalidInput("the ID number and name do not match a known resident",
                           code="identity_not_verified")
    patient = uow.patients.by_id_number(identity.id_number)
    if patient is None:
        now = deps.clock.now()
        patient = Patient(id_number=identity.id_number, name=identity.name, phone=phone,
                          verified_at=now, created_at=now)
        uow.patients.add(patient)
        uow.flush()
    return patient


def add_patient(uow: UnitOfWork, deps: Deps, account: Account, id_number: str, name: str,
                phone: str | None, ctx: RequestContext, *,
                consent_code: str | None = None) -> Patient:
    """Add a family member to the account after the real-name check (guarded and counted,
    ``services.realname``). An identity exists once in fairslot. The first account to link
    it registers it: its verified phone speaks for the identity until the person claims it
    (``services.identities``). Any other account needs that phone's consent: the first call
    sends a code there and answers ``consent_required``; the holder of that phone reads it to
    the asker, who calls again with ``consent_code``. (Or the desk, with the ID card.)

    The account may manage ``max_patients_per_account`` patients, counting those it
    unlinked within the quota window (unlinking one and linking another does not reset the
    count)."""
    require_verified_phone(account)
    identity = realname.checked_identity(uow, deps, account, id_number, name, ctx)
    phone_e164 = normalize_phone(phone) if phone else None
    now = deps.clock.now()
    limit = deps.settings.max_patients_per_account
    uow.lock(("account", account.id or 0),
             ("identity", uow.keyring.blind_index("id_number", identity.id_number)))
    known = uow.patients.by_id_number(identity.id_number)
    if known is not None and uow.patients.is_managed_by(known.id or 0, account.id or 0):
        return known
    # Only a verified identity is looked up (``realname.checked_identity`` refused any
    # other): an ID number without its name must not tell anyone whether it is listed.
    shared = shared_list.consult(uow, deps, shared_list.Point.IDENTITY_LINK, ctx,
                                 identity=identity.id_number, phone=phone_e164,
                                 patient_id=known.id if known else None,
                                 account_id=account.id)
    if shared.lowered:
        limit = min(limit, deps.settings.consortium_lowered_quota)
    window = dt.timedelta(days=deps.settings.quota_window_days)
    linked = uow.patients.linked_since(account.id or 0, now - window)
    if (known is None or known.id not in linked) and len(linked) >= limit:
        raise QuotaExceeded(f"an account manages at most {limit} patients within "
                            f"{window.days} days", code="quota_patients_per_account",
                            limit=limit, used=len(linked))
    if known is not None:
        require_consent(uow, deps, account, known, consent_code)
    patient = known or verified_patient(uow, deps, identity, phone_e164)
    if patient.registered_account_id is None:
        patient.registered_account_id = account.id
    uow.patients.link(account.id or 0, patient.id or 0, now)
    uow.events.append("patient.linked", now, account_id=account.id, patient_id=patient.id,
                      detail={"consented": known is not None
                              and patient.registered_account_id != account.id},
                      **ctx.event_fields())
    uow.commit()
    return patient


def registered_phone_account(uow: UnitOfWork, patient: Patient) -> Account | None:
    """The account whose verified phone speaks for the identity, if it still has one."""
    if patient.registered_account_id is None:
        return None
    holder = uow.accounts.get(patient.registered_account_id)
    if holder is None or holder.disabled or holder.phone is None \
            or holder.phone_verified_at is None:
        return None
    return holder


def require_consent(uow: UnitOfWork, deps: Deps, account: Account, patient: Patient,
             code: str | None, purpose: str = verification.LINK) -> None:
    """Return when the identity's registered phone consents to ``account`` (or nobody's
    phone speaks for it yet); else send it a code and raise ``consent_required``."""
    if patient.registered_account_id in (None, account.id):
        return
    holder = registered_phone_account(uow, patient)
    if holder is None:
        raise Forbidden("this identity's registered phone cannot be reached; bring the ID "
                        "card to the registration desk", code="consent_unavailable")
    if code:
        used = verification.check_code(uow, deps, account, purpose, code)
        if used.patient_id == patient.id:
            return
        raise InvalidInput("that code was for another identity", code="code_wrong")
    expires = verification.send_code(
        uow, deps, account, purpose, holder.phone or "", patient_id=patient.id,
        recipient=holder, requester=_masked_username(account.username),
        patient=mask_name(patient.name))
    uow.events.append(f"identity.{purpose}_consent_asked", deps.clock.now(),
                      account_id=account.id, patient_id=patient.id)
    uow.commit()
    _send_now(uow, deps)
    raise Forbidden("this person's identity is registered to another phone: a code was sent "
                    "there; ask its holder for it and send it as consent_code",
                    code="consent_required", sent_to=mask_phone(holder.phone or ""),
                    expires_at=expires.isoformat())


def _masked_username(username: str) -> str:
    return username[:2] + "*" * max(1, len(username) - 2)


def list_patients(uow: UnitOfWork, deps: Deps, account: Account) -> list[Patient]:
    return list(uow.patients.of_account(account.id or 0))


def remove_patient(uow: UnitOfWork, deps: Deps, account: Account, patient_id: int,
                   ctx: RequestContext) -> None:
    now = deps.clock.now()
    if uow.patients.unlink(account.id or 0, patient_id, now) == 0:
        raise NotFound("no such patient on this account", code="patient_not_found")
    uow.events.append("patient.unlinked", now, account_id=account.id, patient_id=patient_id,
                      **ctx.event_fields())
    uow.commit()


def require_role(account: Account, *roles: Role) -> None:
    if account.role not in roles and account.role is not Role.ADMIN:
        raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}",
                        code="forbidden_role")


def is_staff(account: Account) -> bool:
    return account.role in STAFF_ROLES


def staff_accounts(uow: UnitOfWork, deps: Deps) -> list[Account]:
    """Every staff account (patients are many and manage themselves)."""
    found = [a for role in STAFF_ROLES for a in uow.accounts.all(role=role)]
    return sorted(found, key=lambda a: a.id or 0)


def change_account(uow: UnitOfWork, deps: Deps, admin: Account, account_id: int, *,
                   role: Role | None = None, disabled: bool | None = None) -> Account:
    """An admin changes a staff account's role or disables it (its log-ins end at once).
    Nobody changes their own account here, so an admin cannot lock out the last admin by
    mistake; patients' accounts are not staff and stay as they are."""
    require_role(admin, Role.ADMIN)
    found = uow.accounts.get(account_id)
    if found is None or found.role is Role.PATIENT:
        raise NotFound("no such staff account", code="account_not_found")
    if found.id == admin.id:
        raise Conflict("change your own account through another admin",
                       code="own_account")
    if role is not None:
        if role is Role.PATIENT:
            raise InvalidInput("a staff account cannot become a patient account",
                               code="invalid_role")
        found.role = role
    if disabled is not None:
        found.disabled = disabled
    uow.accounts.drop_tokens_of(account_id)
    uow.events.append("account.changed", deps.clock.now(), account_id=admin.id,
                      detail={"account": account_id, "role": found.role.value,
                              "disabled": found.disabled})
    uow.commit()
    return found
