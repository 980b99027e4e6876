"""Accounts, the roles they play, and the patients (family members) an account manages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

__all__ = ["LANGUAGES", "STAFF_ROLES", "Account", "Patient", "Role"]

LANGUAGES = ("zh-CN", "en")
"""The languages fairslot writes to people in; the first is the default."""


class Role(enum.StrEnum):
    PATIENT = "patient"
    REGISTRATION = "registration"
    OPERATOR = "operator"
    INVESTIGATOR = "investigator"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.REGISTRATION, Role.OPERATOR, Role.INVESTIGATOR, Role.ADMIN})


@dataclasses.dataclass(eq=False)
class Account:
    username: str
    role: Role
    password_hash: str
    phone: str | None
    created_at: dt.datetime
    disabled: bool = False
    phone_verified_at: dt.datetime | None = None
    """When the account proved, by a one-time code, that it receives texts at ``phone``."""
    language: str = "zh-CN"
    """The language its notifications are written in (zh-CN or en)."""
    id: int | None = None


@dataclasses.dataclass(eq=False)
class Patient:
    """A person who can be seen by a doctor, with a verified real-name identity."""

    id_number: str
    name: str
    phone: str | None
    verified_at: dt.datetime
    created_at: dt.datetime
    registered_account_id: int | None = None
    """The account whose verified phone speaks for this identity (see docs/identity.md)."""
    claimed_at: dt.datetime | None = None
    """When the person claimed the identity as their own (from that account or at a desk)."""
    id: int | None = None
