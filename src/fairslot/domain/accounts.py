"""Accounts, the roles they play, and the patients (family members) an account manages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

__all__ = ["STAFF_ROLES", "Account", "Patient", "Role"]


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
    id: int | None = None


@dataclasses.dataclass(eq=False)
class Patient:
    """A person who can be seen by a doctor, with a verified real-name identity."""

    id_number: str
    name: str
    phone: str | None
    verified_at: dt.datetime
    created_at: dt.datetime
    id: int | None = None
