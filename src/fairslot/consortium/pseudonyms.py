"""Consortium pseudonyms: HMAC-SHA-256 under the epoch's consortium key, over the identifier
normalised the same way at every member, cut to 128 bits.

Only holders of the epoch key (the members) can compute a pseudonym; nobody can reverse one
without it. With the key, an ID number or phone *can* be found by trying candidates (the
spaces are small), so the key never leaves the members' servers and feeds are served only to
members (docs/consortium.md, "Threat model")."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers

from fairslot.consortium.model import SubjectType
from fairslot.domain.errors import InvalidInput

__all__ = ["EpochKey", "all_pseudonyms", "normalise", "pseudonym", "pseudonym_bytes"]

_DOMAIN = b"fairslot-consortium/v1\x00"
PSEUDONYM_BYTES = 16


@dataclass(frozen=True, slots=True)
class EpochKey:
    epoch: int
    key: bytes

    def __post_init__(self) -> None:
        if self.epoch < 1 or len(self.key) != 32:
            raise InvalidInput("an epoch key is a positive epoch number and 32 bytes",
                               code="consortium_bad_epoch_key")

    @staticmethod
    def new(epoch: int) -> EpochKey:
        return EpochKey(epoch, secrets.token_bytes(32))

    def text(self) -> str:
        """The key as members exchange it: URL-safe base64 of its 32 bytes."""
        return base64.urlsafe_b64encode(self.key).decode().rstrip("=")

    @staticmethod
    def parse(epoch: int, text: str) -> EpochKey:
        try:
            raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise InvalidInput("the epoch key is not 32 bytes of URL-safe base64",
                               code="consortium_bad_epoch_key")
        return EpochKey(epoch, raw)


def _phone(value: str) -> str:
    # A mainland mobile number as people type it is by far the common case: skip the
    # parser (tens of microseconds) for it, since a look-up must stay well under 0.1 ms.
    if len(value) == 11 and value.isdigit() and value[0] == "1":
        return "+86" + value
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return "".join(c for c in value if c.isdigit())
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(kind: SubjectType, value: str) -> str:
    """The form every member hashes, so that '138 0013 8000' at one hospital and
    '+8613800138000' at another give one pseudonym. Part of the protocol: changing it
    needs a new epoch at every member at once."""
    text = value.strip()
    if kind is SubjectType.IDENTITY:
        text = "".join(text.split()).upper()
    elif kind is SubjectType.PHONE:
        text = _phone(text)
    elif kind is SubjectType.PAYER:
        method, sep, account = text.partition(":")
        # As fairslot stores a payer: providers' account names are case-insensitive.
        text = f"{method.strip().lower()}:{account.strip().lower()}" if sep else text
    if not text:
        raise InvalidInput(f"an empty {kind.value} cannot be listed",
                           code="consortium_empty_identifier")
    return text


def pseudonym_bytes(key: EpochKey, kind: SubjectType, value: str) -> bytes:
    message = _DOMAIN + kind.value.encode() + b"\x00" + normalise(kind, value).encode()
    return hmac.digest(key.key, message, "sha256")[:PSEUDONYM_BYTES]


def pseudonym(key: EpochKey, kind: SubjectType, value: str) -> str:
    """The pseudonym as it appears in feeds: 32 hex characters."""
    return pseudonym_bytes(key, kind, value).hex()


def all_pseudonyms(keys: Iterable[EpochKey], kind: SubjectType, value: str) -> list[bytes]:
    return [pseudonym_bytes(k, kind, value) for k in keys]
