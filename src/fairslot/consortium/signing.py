"""Ed25519 for the consortium: a member's key pair, the text form of a public key that other
members pin, and signed HTTP requests (a member fetching a feed or forwarding an appeal
proves who it is with the same key that signs its feed). Pure: time is passed in."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fairslot.domain.errors import InvalidInput, Unauthenticated

__all__ = [
    "MAX_SKEW",
    "MEMBER_HEADER",
    "MemberKey",
    "parse_public_key",
    "public_key_text",
    "sign_request",
    "verify",
    "verify_request",
]

MEMBER_HEADER = "Fairslot-Member"
DATE_HEADER = "Fairslot-Date"
SIGNATURE_HEADER = "Fairslot-Signature"
MAX_SKEW = dt.timedelta(minutes=5)
_PREFIX = "ed25519:"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_text(key: Ed25519PublicKey) -> str:
    return _PREFIX + _b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_public_key(text: str) -> Ed25519PublicKey:
    text = text.strip()
    try:
        if not text.startswith(_PREFIX):
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(_unb64(text[len(_PREFIX):]))
    except (ValueError, binascii.Error):
        raise InvalidInput("a member's public key reads 'ed25519:' and 43 characters of "
                           "base64 (as `fairslot consortium keys` prints it)",
                           code="consortium_bad_public_key") from None


@dataclass(frozen=True)
class MemberKey:
    """This hospital's signing key, with its member code."""

    member: str
    private: Ed25519PrivateKey

    @staticmethod
    def generate(member: str) -> MemberKey:
        return MemberKey(member, Ed25519PrivateKey.generate())

    @staticmethod
    def from_secret(member: str, secret: str) -> MemberKey:
        return MemberKey(member, Ed25519PrivateKey.from_private_bytes(_unb64(secret)))

    def secret(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return _b64(self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @property
    def public_text(self) -> str:
        return public_key_text(self.private.public_key())

    def sign(self, message: bytes) -> str:
        return _b64(self.private.sign(message))


def verify(public: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public.verify(_unb64(signature), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def _request_message(method: str, target: str, date: str, body: bytes) -> bytes:
    return "\n".join(("fairslot-consortium-request/v1", method.upper(), target, date,
                      hashlib.sha256(body).hexdigest())).encode()


def sign_request(key: MemberKey, method: str, target: str, body: bytes,
                 now: dt.datetime) -> dict[str, str]:
    """Headers that prove ``key.member`` sent this request (``target`` is path and query)."""
    date = now.astimezone(dt.UTC).isoformat(timespec="seconds")
    return {MEMBER_HEADER: key.member, DATE_HEADER: date,
            SIGNATURE_HEADER: key.sign(_request_message(method, target, date, body))}


def verify_request(headers: Mapping[str, str], method: str, target: str, body: bytes,
                   now: dt.datetime,
                   pinned: Callable[[str], Ed25519PublicKey | None]) -> str:
    """The member that signed this request, or ``Unauthenticated``. ``pinned`` gives the
    public key this hospital pinned for a member code, or None for a stranger."""
    member = headers.get(MEMBER_HEADER, "")
    date = headers.get(DATE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (member and date and signature):
        raise Unauthenticated("consortium requests are signed by a member: send "
                              f"{MEMBER_HEADER}, {DATE_HEADER} and {SIGNATURE_HEADER}",
                              code="consortium_unsigned")
    try:
        sent = dt.datetime.fromisoformat(date)
    except ValueError:
        sent = None
    if sent is None or sent.tzinfo is None or abs(now - sent) > MAX_SKEW:
        raise Unauthenticated(f"{DATE_HEADER} must be within 5 minutes of this server's "
                              "clock", code="consortium_bad_date")
    public = pinned(member)
    if public is None or not verify(public, _request_message(method, target, date, body),
                                    signature):
        raise Unauthenticated("the request is not signed by a member this hospital knows",
                              code="consortium_bad_signature")
    return member
