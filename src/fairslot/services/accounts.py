"""Accounts: registration, log-in and tokens, staff users, and the family patients an account
manages (each with a verified real-name identity)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

import limits
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import STAFF_ROLES, Account, Patient, Role
from fairslot.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    TooManyRequests,
    Unauthenticated,
)
from fairslot.domain.identity import Identity, normalize_phone
from fairslot.services.context import RequestContext
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "add_patient",
    "authenticate",
    "create_user",
    "hash_password",
    "issue_token",
    "list_patients",
    "log_in",
    "log_out",
    "register",
    "remove_patient",
    "verified_patient",
]

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,31}$")
_hasher = PasswordHasher()
# A real hash to verify against when the username is unknown, so a miss costs the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
_login_limit = limits.parse("5/minute")


def _check_credentials_format(username: str, password: str, minimum: int) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise InvalidInput("a username is 3-32 characters: a-z, 0-9, '_', '.', '-'",
                           code="invalid_username")
    if len(password) < minimum or len(password) > 256:
        raise InvalidInput(f"a password has at least {minimum} characters",
                           code="weak_password")
    return name


def register(platform: Platform, username: str, password: str, phone: str,
             ctx: RequestContext) -> Account:
    """A patient account. A phone number backs at most ``max_accounts_per_phone`` accounts."""
    name = _check_credentials_format(username, password, platform.settings.password_min_length)
    phone_e164 = normalize_phone(phone)
    now = platform.clock.now()
    with platform.uow() as uow:
        if uow.accounts.by_username(name) is not None:
            raise Conflict("that username is taken", code="username_taken")
        if uow.accounts.count_with_phone(phone_e164) >= platform.settings.max_accounts_per_phone:
            raise QuotaExceeded(
                f"this phone number already backs {platform.settings.max_accounts_per_phone} "
                "accounts", code="quota_accounts_per_phone")
        account = Account(username=name, role=Role.PATIENT, password_hash=_hasher.hash(password),
                          phone=phone_e164, created_at=now)
        uow.accounts.add(account)
        try:
            uow.flush()
        except IntegrityError as exc:
            raise Conflict("that username is taken", code="username_taken") from exc
        uow.events.append("account.registered", now, account_id=account.id, **ctx.event_fields())
        uow.commit()
        return account


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(platform: Platform, username: str, password: str, role: Role,
                phone: str | None = None, *, password_hash: str | None = None) -> Account:
    """Any role, for the CLI and the admin API. ``password_hash`` lets a bulk creator (the
    demo seed, the simulator) hash one shared password once instead of once per account."""
    name = _check_credentials_format(username, password, platform.settings.password_min_length)
    phone_e164 = normalize_phone(phone) if phone else None
    now = platform.clock.now()
    with platform.uow() as uow:
        if uow.accounts.by_username(name) is not None:
            raise Conflict("that username is taken", code="username_taken")
        account = Account(username=name, role=role,
                          password_hash=password_hash or _hasher.hash(password),
                          phone=phone_e164, created_at=now)
        uow.accounts.add(account)
        uow.flush()
        uow.events.append("account.created", now, account_id=account.id,
                          detail={"role": role.value})
        uow.commit()
        return account


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(platform: Platform, limiter: limits.strategies.RateLimiter, username: str,
           password: str, ctx: RequestContext) -> tuple[str, Account]:
    """Check the password (Argon2) and issue a bearer token. Attempts are throttled per
    username and per client IP, whether the password was right or not."""
    name = username.strip().lower()
    for key in (f"user:{name}", f"ip:{ctx.ip}"):
        if not limiter.hit(_login_limit, "login", key):
            raise TooManyRequests("too many log-in attempts; wait a minute and try again",
                                  retry_after=60, code="login_throttled")
    now = platform.clock.now()
    with platform.uow() as uow:
        account = uow.accounts.by_username(name)
        try:
            _hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
            ok = account is not None and not account.disabled
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or account is None:
            uow.events.append("auth.login_failed", now,
                              account_id=account.id if account else None,
                              **ctx.event_fields())
            uow.commit()
            raise Unauthenticated("wrong username or password", code="bad_credentials")
        token = secrets.token_urlsafe(32)
        uow.accounts.add_token(_token_hash(token), account.id or 0, now,
                               now + dt.timedelta(hours=platform.settings.auth_token_hours))
        uow.events.append("auth.login", now, account_id=account.id, **ctx.event_fields())
        uow.commit()
        return token, account


def issue_token(platform: Platform, account_id: int) -> str:
    """A token without a password check: for the simulator and tests acting as a user."""
    now = platform.clock.now()
    token = secrets.token_urlsafe(32)
    with platform.uow() as uow:
        uow.accounts.add_token(_token_hash(token), account_id, now,
                               now + dt.timedelta(hours=platform.settings.auth_token_hours))
        uow.commit()
    return token


def authenticate(platform: Platform, token: str) -> Account:
    with platform.uow() as uow:
        account = uow.accounts.by_token(_token_hash(token), platform.clock.now())
    if account is None or account.disabled:
        raise Unauthenticated("log in first (the token is missing, wrong or expired)")
    return account


def log_out(platform: Platform, token: str) -> None:
    with platform.uow() as uow:
        uow.accounts.drop_token(_token_hash(token))
        uow.commit()


def verified_patient(platform: Platform, uow: UnitOfWork, identity: Identity,
                     phone: str | None = None) -> Patient:
    """The patient with this identity after the real-name check, made on first sight (an
    identity exists once in fairslot, whoever brings it: a family account or the desk)."""
    if not platform.verifier.verify(uow, identity):
        raise InvalidInput("the ID number and name do not match a known resident",
                           code="identity_not_verified")
    patient = uow.patients.by_id_number(identity.id_number)
    if patient is None:
        now = platform.clock.now()
        patient = Patient(id_number=identity.id_number, name=identity.name, phone=phone,
                          verified_at=now, created_at=now)
        uow.patients.add(patient)
        uow.flush()
    return patient


def add_patient(platform: Platform, account: Account, id_number: str, name: str,
                phone: str | None, ctx: RequestContext) -> Patient:
    """Add a family member to the account after the real-name check. An identity exists once
    in fairslot; a second account adding it links to the same patient."""
    identity = Identity.parse(id_number, name)
    phone_e164 = normalize_phone(phone) if phone else None
    now = platform.clock.now()
    limit = platform.settings.max_patients_per_account
    with platform.uow() as uow:
        known = platform.verifier.verify(uow, identity) and uow.patients.by_id_number(
            identity.id_number)
        if known and uow.patients.is_managed_by(known.id or 0, account.id or 0):
            return known
        if uow.patients.count_of_account(account.id or 0) >= limit:
            raise QuotaExceeded(f"an account manages at most {limit} patients",
                                code="quota_patients_per_account")
        patient = verified_patient(platform, uow, identity, phone_e164)
        uow.patients.link(account.id or 0, patient.id or 0, now)
        uow.events.append("patient.linked", now, account_id=account.id, patient_id=patient.id,
                          **ctx.event_fields())
        uow.commit()
        return patient


def list_patients(platform: Platform, account: Account) -> list[Patient]:
    with platform.uow() as uow:
        return list(uow.patients.of_account(account.id or 0))


def remove_patient(platform: Platform, account: Account, patient_id: int,
                   ctx: RequestContext) -> None:
    with platform.uow() as uow:
        if uow.patients.unlink(account.id or 0, patient_id) == 0:
            raise NotFound("no such patient on this account", code="patient_not_found")
        uow.events.append("patient.unlinked", platform.clock.now(), account_id=account.id,
                          patient_id=patient_id, **ctx.event_fields())
        uow.commit()


def require_role(account: Account, *roles: Role) -> None:
    if account.role not in roles and account.role is not Role.ADMIN:
        raise Forbidden("your role may not do this", code="forbidden_role")


def is_staff(account: Account) -> bool:
    return account.role in STAFF_ROLES
