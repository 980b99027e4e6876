"""A member's feed: the list of changes it made to its entries, numbered 1, 2, 3..., each
change chained to the one before by SHA-256, and a head (member, version, chain hash,
latest version, time) signed with the member's Ed25519 key.

Signing the head of a hash chain, rather than each change, makes a 10,000-change increment
cost one signature check and 10,000 hashes, and lets anyone (a hub, another member) relay
the feed without being able to alter it. A subscriber that holds version N and its chain hash
refuses a head older than N (rollback) and any page whose chain from its own hash does not
end at the signed hash (a fork: the issuer, or whoever relays it, rewrote history).

Pure: no I/O; times are passed in."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fairslot.consortium.model import Entry, EntryKind, RingRole, SubjectType
from fairslot.consortium.signing import MemberKey, verify
from fairslot.domain.errors import Conflict, InvalidInput

__all__ = [
    "PAGE",
    "FeedError",
    "ForkRefused",
    "Head",
    "Page",
    "RollbackRefused",
    "canonical",
    "chain",
    "change_body",
    "genesis",
    "page_end",
    "parse_change",
    "verify_page",
]

PAGE = 5000
"""Pages end at multiples of this (or at the latest version), so that a relay holds a head
signed by the issuer for every page end a subscriber may ask for."""


class FeedError(InvalidInput):
    code = "consortium_bad_feed"


class RollbackRefused(Conflict):
    code = "consortium_rollback"


class ForkRefused(Conflict):
    code = "consortium_fork"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def genesis(member: str) -> str:
    return hashlib.sha256(b"fairslot-consortium-feed/v1\x00" + member.encode()).hexdigest()


def chain(previous: str, body: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + body.encode()).hexdigest()


def page_end(since: int, latest: int, page: int = PAGE) -> int:
    return min(latest, (since // page + 1) * page)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def change_body(version: int, entry: Entry) -> str:
    """The exact text of one change, as hashed, signed over and relayed."""
    body: dict[str, Any] = {"member": entry.issuer, "version": version,
                            "entry": entry.entry_no, "entry_version": entry.version}
    if entry.withdrawn:
        body["status"] = "withdrawn"
    else:
        body.update(status="active", kind=entry.kind.value,
                    role=entry.role.value if entry.role else None, severity=entry.severity,
                    starts_at=_iso(entry.starts_at), expires_at=_iso(entry.expires_at),
                    subject=entry.subject_type.value, pseudonym=entry.pseudonym,
                    epoch=entry.epoch)
    return canonical(body).decode()


def _when(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("naive time")
    return parsed.astimezone(dt.UTC)


def parse_change(member: str, version: int, body: str) -> Entry:
    """The entry state a change carries; ``FeedError`` when it is not a valid change of
    ``member`` at ``version``. A withdrawal carries no pseudonym: only the entry's number."""
    try:
        data = json.loads(body)
        if (not isinstance(data, dict) or data.get("member") != member
                or data.get("version") != version):
            raise ValueError(f"change {version} does not say it is {member}'s change {version}")
        entry_no, entry_version = int(data["entry"]), int(data["entry_version"])
        if data.get("status") == "withdrawn":
            return Entry(member, entry_no, entry_version, EntryKind.RING_MEMBER, None, 0,
                         dt.datetime.min.replace(tzinfo=dt.UTC),
                         dt.datetime.min.replace(tzinfo=dt.UTC), SubjectType.IDENTITY, "",
                         0, withdrawn=True)
        if data.get("status") != "active":
            raise ValueError("status is neither active nor withdrawn")
        pseudonym = str(data["pseudonym"])
        if len(pseudonym) != 32 or any(c not in "0123456789abcdef" for c in pseudonym):
            raise ValueError("a pseudonym is 32 lower-case hex characters")
        severity = int(data["severity"])
        if not 1 <= severity <= 3:
            raise ValueError("severity is 1, 2 or 3")
        entry = Entry(member, entry_no, entry_version, EntryKind(data["kind"]),
                      RingRole(data["role"]) if data.get("role") else None, severity,
                      _when(data["starts_at"]), _when(data["expires_at"]),
                      SubjectType(data["subject"]), pseudonym, int(data["epoch"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise FeedError(f"{member}'s change {version} is malformed: {exc}") from None
    if entry.expires_at <= entry.starts_at or entry.entry_no < 1 or entry.version < 1:
        raise FeedError(f"{member}'s change {version} is malformed: bad numbers or times")
    return entry


@dataclass(frozen=True, slots=True)
class Head:
    member: str
    version: int
    chain: str
    latest: int
    issued_at: dt.datetime

    def message(self) -> bytes:
        return b"fairslot-consortium-head/v1\n" + canonical(self.as_json())

    def as_json(self) -> dict[str, Any]:
        return {"member": self.member, "version": self.version, "chain": self.chain,
                "latest": self.latest, "issued_at": _iso(self.issued_at)}

    def sign(self, key: MemberKey) -> str:
        return key.sign(self.message())

    @staticmethod
    def from_json(data: Any) -> Head:
        try:
            return Head(str(data["member"]), int(data["version"]), str(data["chain"]),
                        int(data["latest"]), _when(data["issued_at"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise FeedError(f"the feed's head is malformed: {exc}") from None


@dataclass(frozen=True, slots=True)
class Page:
    """What a feed endpoint answers: changes ``since+1 .. head.version`` and the signed
    head."""

    head: Head
    signature: str
    changes: Sequence[tuple[int, str]]

    def as_json(self) -> dict[str, Any]:
        return {"head": self.head.as_json(), "signature": self.signature,
                "changes": [{"version": v, "body": b} for v, b in self.changes]}

    @staticmethod
    def from_json(data: Any) -> Page:
        try:
            changes = [(int(c["version"]), str(c["body"])) for c in data["changes"]]
            return Page(Head.from_json(data["head"]), str(data["signature"]), changes)
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"the feed page is malformed: {exc}") from None


@dataclass(frozen=True, slots=True)
class Verified:
    head: Head
    signature: str
    changes: list[tuple[int, str, str, Entry]]
    """(version, body, chain hash after it, entry state)."""


def verify_page(member: str, public: Ed25519PublicKey, known_version: int, known_chain: str,
                page: Page) -> Verified:
    """Check a page against the member's pinned key and what this subscriber already holds.

    Changes at or below ``known_version`` are skipped (applying a page twice changes
    nothing); the first new change must follow ``known_version`` directly."""
    head = page.head
    if head.member != member:
        raise FeedError(f"the feed of {member} carries a head of {head.member}")
    if not verify(public, head.message(), page.signature):
        raise FeedError(f"the head of {member}'s feed is not signed by its pinned key")
    if head.version > head.latest:
        raise FeedError(f"{member}'s head is past its own latest version")
    if head.version < known_version:
        raise RollbackRefused(f"{member}'s feed is at version {head.version}, older than "
                              f"version {known_version} already applied: rollback refused")
    if head.version == known_version:
        if head.chain != known_chain:
            raise ForkRefused(f"{member}'s version {known_version} differs from the one "
                              "already applied: fork refused")
        return Verified(head, page.signature, [])
    fresh = sorted((v, b) for v, b in page.changes if v > known_version)
    expected = list(range(known_version + 1, head.version + 1))
    if [v for v, _ in fresh] != expected:
        raise FeedError(f"{member}'s page does not hold exactly versions "
                        f"{known_version + 1}..{head.version}")
    out: list[tuple[int, str, str, Entry]] = []
    running = known_chain
    for version, body in fresh:
        running = chain(running, body)
        out.append((version, body, running, parse_change(member, version, body)))
    if running != head.chain:
        raise ForkRefused(f"{member}'s changes {known_version + 1}..{head.version} do not "
                          "continue the history already applied: fork refused")
    return Verified(head, page.signature, out)
