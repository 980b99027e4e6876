"""Accounts: registration, log-in and tokens, staff users, and the family patients an account
manages (each with a verified real-name identity).

A log-in token reads ``<account id>.<random>.<mac>``: the MAC (a key derived from the
master secret) lets the request guard key its limits on the account before the database is
asked, so a client cannot spend another account's budget by naming it; the token itself
(its SHA-256) is checked against the database inside the request's transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

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
from fairslot.domain.identity import Identity, normalize_phone
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "add_patient",
    "authenticate",
    "change_account",
    "create_user",
    "is_staff",
    "issue_token",
    "list_patients",
    "log_in",
    "log_out",
    "register",
    "remove_patient",
    "require_role",
    "staff_accounts",
    "token_account_id",
    "verified_patient",
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


def register(uow: UnitOfWork, deps: Deps, username: str, password: str, phone: str,
             ctx: RequestContext) -> Account:
    """A patient account. A phone number backs at most ``max_accounts_per_phone`` accounts
    (checked under the phone's lock, so parallel registrations cannot exceed it)."""
    name = _check_credentials_format(username, password, deps.settings.password_min_length)
    phone_e164 = normalize_phone(phone)
    now = deps.clock.now()
    password_hash = deps.hasher.hash(password)  # slow on purpose: before any lock is held
    uow.lock(("phone", phone_e164))
    if uow.accounts.by_username(name) is not None:
        raise Conflict("that username is taken", code="username_taken")
    limit = deps.settings.max_accounts_per_phone
    if uow.accounts.count_with_phone(phone_e164) >= limit:
        raise QuotaExceeded(f"this phone number already backs {limit} accounts",
                            code="quota_accounts_per_phone")
    account = Account(username=name, role=Role.PATIENT, password_hash=password_hash,
                      phone=phone_e164, created_at=now)
    uow.accounts.add(account)
    uow.flush()
    uow.events.append("account.registered", now, account_id=account.id, **ctx.event_fields())
    uow.commit()
    return account


def create_user(uow: UnitOfWork, deps: Deps, username: str, password: str, role: Role,
                phone: str | None = None, *, password_hash: str | None = None) -> Account:
    """Any role, for the CLI and the admin API. ``password_hash`` lets a bulk creator (the
    demo seed, the simulator) hash one shared password once instead of once per account."""
    name = _check_credentials_format(username, password, deps.settings.password_min_length)
    phone_e164 = normalize_phone(phone) if phone else None
    now = deps.clock.now()
    if uow.accounts.by_username(name) is not None:
        raise Conflict("that username is taken", code="username_taken")
    account = Account(username=name, role=role,
                      password_hash=password_hash or deps.hasher.hash(password),
                      phone=phone_e164, created_at=now)
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
    if not hmac.compare_digest(_mac(keyring, f"{parts[0]}.{parts[1]}"), parts[2]):
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
                phone: str | None, ctx: RequestContext) -> Patient:
    """Add a family member to the account after the real-name check. An identity exists once
    in fairslot; a second account adding it links to the same patient. The account may
    manage ``max_patients_per_account`` patients, counting those it unlinked within the
    quota window (unlinking one and linking another does not reset the count)."""
    identity = Identity.parse(id_number, name)
    phone_e164 = normalize_phone(phone) if phone else None
    now = deps.clock.now()
    limit = deps.settings.max_patients_per_account
    uow.lock(("account", account.id or 0),
             ("identity", uow.keyring.blind_index("id_number", identity.id_number)))
    known = (uow.patients.by_id_number(identity.id_number)
             if deps.verifier.verify(uow, identity) else None)
    if known is not None and uow.patients.is_managed_by(known.id or 0, account.id or 0):
        return known
    window = dt.timedelta(days=deps.settings.quota_window_days)
    linked = uow.patients.linked_since(account.id or 0, now - window)
    if (known is None or known.id not in linked) and len(linked) >= limit:
        raise QuotaExceeded(f"an account manages at most {limit} patients within "
                            f"{window.days} days", code="quota_patients_per_account",
                            limit=limit, used=len(linked))
    patient = verified_patient(uow, deps, identity, phone_e164)
    uow.patients.link(account.id or 0, patient.id or 0, now)
    uow.events.append("patient.linked", now, account_id=account.id, patient_id=patient.id,
                      **ctx.event_fields())
    uow.commit()
    return patient


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
