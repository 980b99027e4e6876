"""Real-name identity rules: resident ID numbers, names and mobile phones, and how each is
masked for roles that need no more than a glimpse."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import unicodedata

import phonenumbers
from stdnum import exceptions as stdnum_errors
from stdnum import numdb
from stdnum.cn import ric

from fairslot.domain.errors import InvalidInput

__all__ = [
    "Identity",
    "known_region",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "normalize_id_number",
    "normalize_name",
    "normalize_phone",
]

# Chinese names (including the middle dot of many minority names, U+00B7 and U+30FB) or
# Latin-script names of foreign residents; no digits, no punctuation beyond the separators.
_NAME = re.compile(r"^[\u3400-\u9fff\u00b7\u30fb]{2,20}$|^[A-Za-z][A-Za-z .'\-]{1,59}$")


def _latest_today() -> dt.date:
    """The date where the day is furthest on (UTC+14). The host's date (UTC on a server)
    is still yesterday in Beijing until 08:00, which refused a baby's number on the day
    they were born."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=14)).date()


def normalize_id_number(raw: str) -> str:
    """Return the 18-character resident ID number, or raise ``InvalidInput``.

    python-stdnum checks the format, the check digit and the birth date. For the region we
    ask only that the six-digit code is a known county code: stdnum's own check also wants
    the code to have existed in the birth year, which refuses elderly people whose numbers
    were issued in the 1980s under codes created after their birth (a 1950-born resident
    of Nanjing's Xuanwu district holds 320102..., a code from 1983)."""
    candidate = ric.compact(raw.strip().upper())
    if len(candidate) != 18 or not candidate[:17].isdigit():
        raise InvalidInput(
            "an ID number has 18 characters: 17 digits and a check digit (0-9 or X)",
            code="invalid_id_number",
        )
    if candidate[-1] != ric.calc_check_digit(candidate):
        raise InvalidInput("the ID number's check digit is wrong", code="invalid_id_number")
    try:
        born = birth_date(candidate)
    except stdnum_errors.ValidationError as exc:
        raise InvalidInput("the ID number has an impossible birth date",
                           code="invalid_id_number") from exc
    if born > _latest_today() or born.year < 1880:
        raise InvalidInput("the ID number has an impossible birth date", code="invalid_id_number")
    if not known_region(candidate[:6]):
        raise InvalidInput("the ID number's region code is unknown", code="invalid_id_number")
    return candidate


@functools.lru_cache(maxsize=8192)
def known_region(code: str) -> bool:
    """Whether a six-digit administrative division code is (or was) a county. (Cached: the
    look-up walks a code table, and a hospital sees a few thousand codes at most.)"""
    parts = numdb.get("cn/loc").info(code)
    return any("county" in props for _, props in parts)


def is_valid_id_number(raw: str) -> bool:
    """``normalize_id_number`` as a yes/no, for screening records in bulk."""
    try:
        normalize_id_number(raw)
    except InvalidInput:
        return False
    return True


def birth_date(id_number: str) -> dt.date:
    result: dt.date = ric.get_birth_date(id_number)
    return result


def normalize_name(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if not _NAME.match(name):
        raise InvalidInput(
            "a name is 2-20 Chinese characters (· allowed) or a Latin-script name",
            code="invalid_name",
        )
    return name


def normalize_phone(raw: str) -> str:
    """Return a mainland China mobile number in E.164 form, or raise ``InvalidInput``."""
    try:
        number = phonenumbers.parse(raw.strip(), "CN")
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("not a phone number", code="invalid_phone") from exc
    if not phonenumbers.is_valid_number(number) or number.country_code != 86:
        raise InvalidInput("not a valid mainland China phone number", code="invalid_phone")
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidInput("a mobile phone number is needed", code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_id_number(id_number: str) -> str:
    """``110105**********1234``-style: region prefix and last four kept."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """``138****5678`` from an E.164 or national number."""
    national = phone[3:] if phone.startswith("+86") else phone
    if len(national) < 7:
        return "*" * len(national)
    return national[:3] + "*" * (len(national) - 7) + national[-4:]


def mask_name(name: str) -> str:
    """``张*``: the family name and one star per remaining character."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """A patient's real-name identity, validated on construction."""

    id_number: str
    name: str

    @classmethod
    def parse(cls, id_number: str, name: str) -> Identity:
        return cls(normalize_id_number(id_number), normalize_name(name))

    @property
    def birth_date(self) -> dt.date:
        return birth_date(self.id_number)
