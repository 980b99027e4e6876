"""Request and response bodies of the JSON API. PII leaves only masked."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from fairslot.consortium.store import Appeal, Review
from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.booking import BookingStatus, Channel
from fairslot.domain.identity import mask_id_number, mask_name, mask_phone
from fairslot.domain.schedule import Department, Doctor, Hospital, Period, ReleasePolicy
from fairslot.services.booking import BookingView
from fairslot.services.catalog import SessionView
from fairslot.services.shared_list import Affecting

__all__ = [
    "AccountOut",
    "BookingIn",
    "BookingOut",
    "BookingScreen",
    "CheckInIn",
    "Credentials",
    "DepartmentIn",
    "DepartmentOut",
    "DoctorIn",
    "DoctorOut",
    "HospitalOut",
    "IsoDate",
    "OnSiteBookingIn",
    "PatientIn",
    "PatientOut",
    "PaymentIn",
    "PaymentScreen",
    "RegisterIn",
    "ScheduleIn",
    "SessionOut",
    "Strict",
    "TokenOut",
    "UserIn",
]

Text = Annotated[str, Field(min_length=1, max_length=200)]


def _iso_date(value: Any) -> Any:
    # Pydantic's lax mode would read 0 as 1970-01-01; a date here is only ever YYYY-MM-DD.
    if isinstance(value, dt.date) or (isinstance(value, str)
                                      and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
# Request integers and booleans are strict: JSON 0 is not false, "5" is not 5.
Id = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class Credentials(Strict):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class RegisterIn(Credentials):
    phone: Annotated[str, Field(min_length=1, max_length=32)]
    language: Annotated[str | None, Field(max_length=16)] = None
    """zh-CN (the default) or en: the language of the account's messages."""


class UserIn(RegisterIn):
    role: Role


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    role: Role


class AccountOut(BaseModel):
    id: int
    username: str
    role: Role
    phone: str | None
    phone_verified: bool = False
    language: str = "zh-CN"

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(id=account.id or 0, username=account.username, role=account.role,
                   phone=mask_phone(account.phone) if account.phone else None,
                   phone_verified=account.phone_verified_at is not None,
                   language=account.language)


class CodeIn(Strict):
    code: Annotated[str, Field(min_length=1, max_length=12)]


class LanguageIn(Strict):
    language: Annotated[str, Field(min_length=2, max_length=16)]


class PhoneIn(Strict):
    phone: Annotated[str, Field(min_length=1, max_length=32)]


class CodeSentOut(BaseModel):
    sent_to: str
    """The masked phone the code went to."""
    expires_at: dt.datetime


class OutboxMessageOut(BaseModel):
    id: int
    channel: str
    to: str
    kind: str
    language: str
    subject: str
    text: str
    at: dt.datetime


class PatientIn(Strict):
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    phone: Annotated[str | None, Field(max_length=32)] = None
    consent_code: Annotated[str | None, Field(max_length=12)] = None
    """The code sent to the identity's registered phone, when linking answered
    ``consent_required``."""


class PatientOut(BaseModel):
    id: int
    id_number: str
    name: str
    phone: str | None

    @classmethod
    def of(cls, patient: Patient) -> PatientOut:
        return cls(id=patient.id or 0, id_number=mask_id_number(patient.id_number),
                   name=mask_name(patient.name),
                   phone=mask_phone(patient.phone) if patient.phone else None)


class HospitalOut(BaseModel):
    id: int
    code: str
    name: str

    @classmethod
    def of(cls, h: Hospital) -> HospitalOut:
        return cls(id=h.id or 0, code=h.code, name=h.name)


class DepartmentIn(Strict):
    hospital_id: Id
    code: Annotated[str, Field(min_length=1, max_length=32)]
    name: Text


class DepartmentOut(BaseModel):
    id: int
    hospital_id: int
    code: str
    name: str

    @classmethod
    def of(cls, d: Department) -> DepartmentOut:
        return cls(id=d.id or 0, hospital_id=d.hospital_id, code=d.code, name=d.name)


class DoctorIn(Strict):
    department_id: Id
    name: Annotated[str, Field(min_length=1, max_length=100)]
    title: Annotated[str, Field(min_length=1, max_length=100)]
    specialty: Annotated[str, Field(max_length=200)] = ""
    release_policy: ReleasePolicy = ReleasePolicy.FCFS
    hot: Annotated[bool, Field(strict=True)] = False


class DoctorOut(BaseModel):
    id: int
    department_id: int
    name: str
    title: str
    specialty: str
    release_policy: ReleasePolicy
    hot: bool

    @classmethod
    def of(cls, d: Doctor) -> DoctorOut:
        return cls(id=d.id or 0, department_id=d.department_id, name=d.name, title=d.title,
                   specialty=d.specialty, release_policy=d.release_policy, hot=d.hot)


class ScheduleIn(Strict):
    doctor_id: Id
    dates: Annotated[list[IsoDate], Field(min_length=1, max_length=62)]
    periods: Annotated[list[Period], Field(min_length=1, max_length=2)]
    capacity: Annotated[int, Field(ge=1, le=200, strict=True)]
    fee_cents: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
    release_days_before: Annotated[int, Field(ge=0, le=90, strict=True)] = 14
    release_policy: ReleasePolicy | None = None


class SessionOut(BaseModel):
    id: int
    doctor_id: int
    doctor_name: str
    date: dt.date
    period: Period
    starts_at: dt.datetime
    capacity: int
    fee: str
    release_at: dt.datetime
    release_policy: ReleasePolicy
    released: bool
    free: int

    @classmethod
    def of(cls, v: SessionView) -> SessionOut:
        s = v.session
        return cls(id=s.id or 0, doctor_id=s.doctor_id, doctor_name=v.doctor.name, date=s.date,
                   period=s.period, starts_at=s.starts_at, capacity=s.capacity,
                   fee=yuan(s.fee_cents), release_at=s.release_at,
                   release_policy=s.release_policy, released=v.released, free=v.free)


class BookingIn(Strict):
    session_id: Id
    patient_id: Id


class PaymentIn(Strict):
    payer_account: Annotated[str, Field(min_length=1, max_length=80)]


IdSourceField = Annotated[Literal["card", "typed"], Field(
    description="how the desk took the ID: read from the card, or typed (needs a reason)")]
ReasonField = Annotated[str, Field(max_length=200, description="why the card was not read")]


class CheckInIn(Strict):
    booking_id: Id
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    id_source: IdSourceField = "card"
    typed_reason: ReasonField = ""


class OnSiteBookingIn(Strict):
    session_id: Id
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    payer_account: Annotated[str, Field(
        min_length=1, max_length=80,
        description="'cash', 'insurance:<card number>' or an account like online")]
    id_source: IdSourceField
    typed_reason: ReasonField = ""


class DeskCancelIn(Strict):
    """The patient's ID card (present at the desk) or a second staff member's log-in, for a
    booking that is not the desk's own; and why."""

    id_number: Annotated[str, Field(max_length=32)] = ""
    name: Annotated[str, Field(max_length=60)] = ""
    approver_username: Annotated[str, Field(max_length=64)] = ""
    approver_password: Annotated[str, Field(max_length=256)] = ""
    reason: Annotated[str, Field(max_length=200)] = ""


class DeskFindIn(Strict):
    id_number: Annotated[str, Field(max_length=32)] = ""
    booking_id: Id | None = None


class BookingOut(BaseModel):
    id: int
    session_id: int
    slot_number: int
    slot_starts_at: dt.datetime | None = None
    patient: PatientOut
    status: BookingStatus
    channel: Channel
    fee: str
    created_at: dt.datetime
    pay_by: dt.datetime
    paid_at: dt.datetime | None
    session_starts_at: dt.datetime
    review: str | None = None
    """``pending`` while held for review (it cannot be paid until approved; ``pay_by`` is
    then the review's deadline), ``approved``, ``rejected`` or ``lapsed``; null otherwise."""

    @classmethod
    def of(cls, v: BookingView) -> BookingOut:
        b = v.booking
        return cls(id=b.id or 0, session_id=b.session_id, slot_number=v.slot_number,
                   patient=PatientOut.of(v.patient), status=b.status, channel=b.channel,
                   fee=yuan(b.fee_cents), created_at=b.created_at, pay_by=b.pay_by,
                   paid_at=b.paid_at, session_starts_at=v.session.starts_at,
                   review=b.review)


class BookingScreen(BaseModel):
    session: SessionOut
    patients: list[PatientOut]
    action_token: str
    token_header: str


class PaymentScreen(BaseModel):
    booking: BookingOut
    action_token: str | None
    """For ``POST /bookings/{id}/pay``; null unless the booking awaits payment."""
    cancel_token: str | None
    """For ``POST /bookings/{id}/cancel``; null once it can no longer be cancelled online."""
    token_header: str


class AppealOut(BaseModel):
    ref: str
    entry: str
    status: str
    """pending (not delivered yet), delivered, refused (by the issuer's server), upheld or
    withdrawn (the issuer's decision)."""
    created_at: dt.datetime

    @classmethod
    def of(cls, a: Appeal) -> AppealOut:
        return cls(ref=a.ref, entry=f"{a.issuer}/{a.entry_no}", status=a.status,
                   created_at=a.created_at)


class SharedEntryOut(BaseModel):
    """Another hospital's entry that affects one of the account's people: what the issuer
    published and what this hospital does about it (no evidence)."""

    entry: str
    issuer: str
    kind: str
    role: str | None
    subject: str
    patient_id: int | None
    starts_at: dt.datetime
    expires_at: dt.datetime
    action: str
    appeals: list[AppealOut]

    @classmethod
    def of(cls, a: Affecting) -> SharedEntryOut:
        m = a.match
        return cls(entry=m.ref, issuer=m.issuer, kind=m.kind.value,
                   role=m.role.value if m.role else None, subject=m.subject_type.value,
                   patient_id=a.patient_id, starts_at=m.starts_at, expires_at=m.expires_at,
                   action=m.action.value, appeals=[AppealOut.of(x) for x in a.appeals])


class AppealIn(BaseModel):
    entry: Annotated[str, Field(max_length=80, pattern=r"^[a-z0-9][a-z0-9-]{1,31}/[0-9]{1,18}$")]
    message: Annotated[str, Field(min_length=1, max_length=2000)]


class ReviewOut(BaseModel):
    """Another hospital's entry held here for review, and the staff's decision."""

    entry: str
    status: str
    """pending, cleared (no longer applies here) or refused (refused here from then on)."""
    point: str
    patient_id: int | None
    account_id: int | None
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    note: str | None

    @classmethod
    def of(cls, r: Review) -> ReviewOut:
        return cls(entry=r.ref, status=r.status, point=r.point, patient_id=r.patient_id,
                   account_id=r.account_id, created_at=r.created_at, decided_at=r.decided_at,
                   decided_by=r.decided_by, note=r.note)


class ReviewDecisionIn(BaseModel):
    clear: bool
    """True: let the person through here from now on; false: refuse them here."""
    note: Annotated[str, Field(min_length=1, max_length=500)]
