"""The feed's guarantees without a database: pseudonyms agree across the ways people write
an identifier, a subscriber refuses rollbacks, forks and tampering, and the in-memory index
answers exactly the entries in force."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from fairslot.consortium.feed import (
    FeedError,
    ForkRefused,
    Head,
    Page,
    RollbackRefused,
    chain,
    change_body,
    genesis,
    verify_page,
)
from fairslot.consortium.index import Index
from fairslot.consortium.model import Entry, EntryKind, RingRole, SubjectType
from fairslot.consortium.pseudonyms import EpochKey, pseudonym, pseudonym_bytes
from fairslot.consortium.signing import MemberKey

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
KEY = EpochKey(1, bytes(range(32)))


def entry(no: int, value: str = "110101199003071234", *, version: int = 1,
          withdrawn: bool = False, days: int = 30, member: str = "hosp-a") -> Entry:
    return Entry(member, no, version, EntryKind.RING_MEMBER, RingRole.HOLDER, 3, NOW,
                 NOW + dt.timedelta(days=days), SubjectType.IDENTITY,
                 pseudonym(KEY, SubjectType.IDENTITY, value), 1, withdrawn=withdrawn)


def feed(key: MemberKey, entries: list[Entry]) -> list[tuple[int, str, str]]:
    running, out = genesis(key.member), []
    for version, e in enumerate(entries, 1):
        body = change_body(version, e)
        running = chain(running, body)
        out.append((version, body, running))
    return out


def page(key: MemberKey, changes: list[tuple[int, str, str]], since: int,
         upto: int | None = None) -> Page:
    upto = upto or changes[-1][0]
    head = Head(key.member, upto, changes[upto - 1][2], changes[-1][0], NOW)
    return Page(head, head.sign(key), [(v, b) for v, b, _ in changes if since < v <= upto])


def test_one_identifier_written_differently_gets_one_pseudonym() -> None:
    phone = SubjectType.PHONE
    assert pseudonym(KEY, phone, "13800138000") == pseudonym(KEY, phone, "+86 138 0013 8000")
    assert pseudonym(KEY, phone, "13800138000") == pseudonym(KEY, phone, "0086 13800138000")
    ident = SubjectType.IDENTITY
    assert pseudonym(KEY, ident, "11010119900307123x") == pseudonym(KEY, ident,
                                                                    " 110101199003071 23X")
    assert pseudonym(KEY, SubjectType.PAYER, "Card: 6222 01") == pseudonym(
        KEY, SubjectType.PAYER, "card:6222 01")


def test_pseudonyms_differ_by_epoch_and_by_kind_of_identifier() -> None:
    other = EpochKey(2, bytes(range(1, 33)))
    value = "13800138000"
    assert pseudonym(KEY, SubjectType.PHONE, value) != pseudonym(other, SubjectType.PHONE, value)
    assert pseudonym(KEY, SubjectType.PHONE, value) != pseudonym(KEY, SubjectType.DEVICE, value)


def test_a_page_is_applied_once_and_a_replay_applies_nothing() -> None:
    key = MemberKey.generate("hosp-a")
    changes = feed(key, [entry(1), entry(2, "110101199003072235")])
    first = verify_page("hosp-a", key.private.public_key(), 0, genesis("hosp-a"),
                        page(key, changes, 0))
    assert [v for v, *_ in first.changes] == [1, 2]
    again = verify_page("hosp-a", key.private.public_key(), 2, first.head.chain,
                        page(key, changes, 0))
    assert again.changes == []


def test_an_older_version_is_refused_as_a_rollback() -> None:
    key = MemberKey.generate("hosp-a")
    changes = feed(key, [entry(1), entry(2, "110101199003072235")])
    with pytest.raises(RollbackRefused):
        verify_page("hosp-a", key.private.public_key(), 2, changes[1][2],
                    page(key, changes, 0, upto=1))


def test_a_different_history_at_the_same_version_is_refused_as_a_fork() -> None:
    key = MemberKey.generate("hosp-a")
    held = feed(key, [entry(1), entry(2, "110101199003072235")])
    rewritten = feed(key, [entry(1), entry(2, "110101199003073236")])
    with pytest.raises(ForkRefused):
        verify_page("hosp-a", key.private.public_key(), 2, held[1][2], page(key, rewritten, 0))
    # A longer rewritten history is refused too: it does not continue the one applied.
    longer = feed(key, [entry(1), entry(2, "110101199003073236"), entry(3, "1101011990030743")])
    with pytest.raises(ForkRefused):
        verify_page("hosp-a", key.private.public_key(), 2, held[1][2], page(key, longer, 2))


def test_a_page_altered_in_transit_or_signed_by_another_key_is_refused() -> None:
    key = MemberKey.generate("hosp-a")
    changes = feed(key, [entry(1)])
    good = page(key, changes, 0)
    altered = Page(good.head, good.signature,
                   [(1, good.changes[0][1].replace('"severity":3', '"severity":1'))])
    with pytest.raises(ForkRefused):
        verify_page("hosp-a", key.private.public_key(), 0, genesis("hosp-a"), altered)
    stranger = MemberKey.generate("hosp-a")
    with pytest.raises(FeedError):
        verify_page("hosp-a", stranger.private.public_key(), 0, genesis("hosp-a"), good)
    with pytest.raises(FeedError):
        verify_page("hosp-b", key.private.public_key(), 0, genesis("hosp-b"), good)


def test_the_index_answers_entries_in_force_and_follows_withdrawals() -> None:
    index = Index.build([entry(1), entry(2, "110101199003072235", days=1)])
    hits = index.lookup(pseudonym_bytes(KEY, SubjectType.IDENTITY, "110101199003071234"),
                        int(NOW.timestamp()))
    assert [(h.issuer, h.entry_no, h.role) for h in hits] == [("hosp-a", 1, RingRole.HOLDER)]
    later = int((NOW + dt.timedelta(days=2)).timestamp())
    assert index.lookup(pseudonym_bytes(KEY, SubjectType.IDENTITY, "110101199003072235"),
                        later) == []
    after = index.apply([entry(1, version=2, withdrawn=True)])
    assert after.lookup(pseudonym_bytes(KEY, SubjectType.IDENTITY, "110101199003071234"),
                        int(NOW.timestamp())) == []
    assert len(after) == 1 and len(index) == 2  # the old index is untouched


def test_a_pseudonym_ending_in_zero_bytes_is_still_found() -> None:
    # numpy cuts trailing zero bytes from items of a bytes column; the look-up must not.
    raw = bytes(range(1, 13)) + b"\x00\x00\x00\x00"
    e = dataclasses.replace(entry(1), pseudonym=raw.hex())
    index = Index.build([e, dataclasses.replace(entry(2), pseudonym=(b"\x01" * 16).hex())])
    assert [h.entry_no for h in index.lookup(raw, int(NOW.timestamp()))] == [1]


def test_several_members_listing_one_person_give_one_match_each() -> None:
    index = Index.build([entry(1), entry(7, member="hosp-c"), entry(3, "110101199003072235")])
    hits = index.lookup(pseudonym_bytes(KEY, SubjectType.IDENTITY, "110101199003071234"),
                        int(NOW.timestamp()))
    assert sorted((h.issuer, h.entry_no) for h in hits) == [("hosp-a", 1), ("hosp-c", 7)]


def test_pseudonyms_sharing_their_first_eight_bytes_are_told_apart() -> None:
    first, second = b"\x07" * 8 + b"\x01" * 8, b"\x07" * 8 + b"\x02" * 8
    index = Index.build([dataclasses.replace(entry(1), pseudonym=first.hex()),
                         dataclasses.replace(entry(2), pseudonym=second.hex())])
    assert [h.entry_no for h in index.lookup(second, int(NOW.timestamp()))] == [2]
    assert index.lookup(b"\x07" * 8 + b"\x03" * 8, int(NOW.timestamp())) == []
