"""Format fairslot-round/2: freeze before randomness, a chain beacon nobody here chooses,
signed statements and receipts, and the log of rounds. Each attack of issue 14 is played
here and shown to fail."""

from __future__ import annotations

import copy
import datetime as dt
import random
from typing import Any

import pytest

from fairslot.domain.draw import allocation
from fairslot.domain.draw.beacon import LOE_DEFAULT, LOE_QUICKNET, Beacon, LocalChain, verify_beacon
from fairslot.domain.draw.examples import EXAMPLE_KEY, Example, build_round, example_chain
from fairslot.domain.draw.frozen import FrozenEntry, FrozenList
from fairslot.domain.draw.log import RoundLog, audit, frozen_record
from fairslot.domain.draw.receipts import make_receipt
from fairslot.domain.draw.signing import DrawKey, digest
from fairslot.domain.draw.statements import (
    draw_statement,
    freeze_statement,
    frozen_entry,
    opening_statement,
    round_document,
)
from fairslot.domain.draw.verify import DEFAULT_TRUST, Report, verify_document
from fairslot.domain.errors import Conflict

TRUST = DEFAULT_TRUST.with_keys([example_chain().chain.public_key.hex()])
CLOSE = dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)


def entries_of(n: int, sessions: int = 6, seed: int = 1) -> list[FrozenEntry]:
    rng = random.Random(seed)
    ids = [f"s{k}" for k in range(sessions)]
    made = []
    for k in range(n):
        choices = rng.sample(ids, rng.randint(1, 3))
        roll = rng.random()
        if roll < 0.05:
            made.append(frozen_entry(f"p{k:04d}", rng.randint(1, 3), choices, withdrawn=True))
        elif roll < 0.1:
            made.append(frozen_entry(f"p{k:04d}", 1, choices, excluded="credit_suspended"))
        else:
            made.append(frozen_entry(f"p{k:04d}", rng.randint(1, 3), choices))
    return made


def capacities(sessions: int = 6) -> dict[str, int]:
    return {f"s{k}": 2 + k % 3 for k in range(sessions)}


@pytest.fixture(scope="module")
def example() -> Example:
    return build_round(entries_of(300), capacities(), closes_at=CLOSE)


def check(doc: dict[str, Any], **kw: Any) -> Report:
    return verify_document(doc, trust=TRUST, **kw)


def test_an_honest_round_with_exclusions_and_withdrawals_verifies(example: Example) -> None:
    report = check(example.document)
    assert report.ok, report.reasons
    excluded = [e for e in example.frozen.leaves if " excluded " in e]
    assert excluded and all(e.endswith(" credit_suspended") for e in excluded)
    drawn = example.frozen.drawn_refs
    winners = [w.split()[0] for w in example.results["winners"]]
    assert sorted(winners + example.results["waitlist"]) == sorted(drawn)


def test_a_chain_the_verifier_was_not_told_to_trust_is_refused(example: Example) -> None:
    report = verify_document(example.document)
    assert report.status == "fail"
    assert "not one this verifier trusts" in report.reasons[0]


def test_a_late_suspension_does_not_change_the_frozen_list(example: Example) -> None:
    """Issue 14, attack 1: after the beacon is known, an insider suspends an entrant ahead
    of a friend. Leaving them out of the published list breaks the signed root; re-signing
    a new freeze is dated after the beacon; backdating it contradicts the checkpoint
    published at the close."""
    doc = copy.deepcopy(example.document)
    victim = next(i for i, leaf in enumerate(doc["entries"]) if " in " in leaf)
    doc["entries"][victim] = doc["entries"][victim].replace(" in ", " excluded ")[:-1] + "late"
    assert "do not match the signed frozen root" in check(doc).reasons[0]

    changed = [FrozenEntry(*e) for e in map(_parse, example.frozen.leaves)]
    changed[victim] = changed[victim]._replace(status="excluded", reason="credit_suspended")
    beacon_time = dt.datetime.fromtimestamp(
        example.chain.chain.round_time(example.opening["beacon_round"]), dt.UTC)
    for frozen_at, expected in ((beacon_time + dt.timedelta(seconds=1), "could already be known"),
                                (CLOSE + dt.timedelta(seconds=10), None)):
        frozen, freeze = freeze_statement(EXAMPLE_KEY, example.opening, changed, frozen_at)
        results, result = draw_statement(EXAMPLE_KEY, example.opening, freeze, frozen,
                                            example.beacon, example.seed,
                                            beacon_time + dt.timedelta(seconds=30))
        forged = round_document(hospital_key=EXAMPLE_KEY.public_hex, opening=example.opening,
                                frozen=frozen, freeze=freeze, beacon=example.beacon,
                                results=results, result=result)
        report = check(forged)
        if expected:
            assert any(expected in r for r in report.reasons)
            continue
        # Backdated: the document alone verifies, but the checkpoint published at the close
        # holds the honest root, and the rewritten log does not extend it.
        assert report.ok
        published = example.log.checkpoint(EXAMPLE_KEY, CLOSE + dt.timedelta(seconds=11))
        rewritten = RoundLog(copy.deepcopy(example.log.records))
        rewritten.records[1] = frozen_record("r1", digest(example.opening), freeze["root"],
                                             freeze["size"])
        later = rewritten.checkpoint(EXAMPLE_KEY, CLOSE + dt.timedelta(hours=1))
        verdict = audit(published, rewritten.document(later))
        assert not verdict.ok
        assert any("different histories" in r for r in verdict.reasons)


def _parse(leaf: str) -> tuple[Any, ...]:
    from fairslot.domain.draw.frozen import parse_leaf

    return tuple(parse_leaf(leaf))


def test_the_beacon_round_is_fixed_at_the_opening_after_the_close() -> None:
    """Issue 14, attack 2: the key cannot be known while entries come in. The opening names
    the first chain round at or after the close (plus the delay), and the local chain, like
    drand, has not produced it before then."""
    chain = example_chain().chain
    opening = opening_statement(EXAMPLE_KEY, round_id="r", opens_at=CLOSE - dt.timedelta(days=1),
                                closes_at=CLOSE, seed=bytes(32), capacities={"s1": 1},
                                chain=chain, beacon_delay=30)
    stated = opening["beacon_round"]
    assert chain.round_time(stated) >= CLOSE.timestamp() + 30 > chain.round_time(stated - 1)


def test_an_opening_naming_an_earlier_beacon_round_fails(example: Example) -> None:
    doc = copy.deepcopy(example.document)
    doc["opening"]["beacon_round"] -= 1
    doc["opening"] = EXAMPLE_KEY.sign(doc["opening"])
    reasons = check(doc).reasons
    assert any("first round of the chain at or after the close" in r for r in reasons)


def test_a_beacon_other_than_the_chains_signature_for_the_stated_round_is_refused(
        example: Example) -> None:
    """Issue 14, attack 3: the operator cannot pick among renderings of the randomness."""
    other_round = example_chain().sign(example.beacon.round + 1)
    with pytest.raises(Conflict, match="not 9"):
        draw_statement(EXAMPLE_KEY, example.opening, example.freeze, example.frozen,
                       other_round, example.seed, CLOSE + dt.timedelta(hours=1))
    forged = Beacon(example.beacon.round, other_round.signature)
    with pytest.raises(Conflict, match="not the chain's signature"):
        draw_statement(EXAMPLE_KEY, example.opening, example.freeze, example.frozen, forged,
                       example.seed, CLOSE + dt.timedelta(hours=1))
    doc = copy.deepcopy(example.document)
    doc["beacon"]["signature"] = other_round.signature.hex()
    assert "is not the chain's signature" in check(doc).reasons[0]
    impostor = LocalChain(bytes(32), genesis_time=example.chain.chain.genesis_time)
    assert not verify_beacon(example.chain.chain, impostor.sign(example.beacon.round))


def test_a_reissued_commitment_contradicts_the_signed_opening_and_the_receipts(
        example: Example) -> None:
    """Issue 14, attack 4: a new seed after the fact needs a new opening; every entrant's
    receipt names the digest of the old one."""
    receipt = make_receipt(EXAMPLE_KEY, round_id="r1", opening=digest(example.opening),
                           ref=example.frozen.drawn_refs[0], seq=1, kind="entry",
                           choices=example.frozen.drawn_choices[0], at=CLOSE)
    reissued = build_round([FrozenEntry(*_parse(leaf)) for leaf in example.frozen.leaves],
                           capacities(), closes_at=CLOSE, seed=bytes([9]) * 32)
    assert check(reissued.document).ok  # alone it looks fine...
    report = check(reissued.document, receipt=receipt)
    assert any("re-issued after this entry" in r for r in report.reasons)  # ...not to them
    doc = copy.deepcopy(example.document)
    doc["opening"]["commitment"] = reissued.opening["commitment"]
    assert any("opening statement's signature" in r for r in check(doc).reasons)


def test_a_dropped_entry_is_proven_by_its_receipt() -> None:
    """Issue 14, attack 5: the hospital leaves an entry out of the list entirely and signs
    the rest; the entrant's signed receipt shows it was accepted."""
    entries = entries_of(40)
    dropped = entries.pop(7)
    ex = build_round(entries, capacities(), closes_at=CLOSE)
    receipt = make_receipt(EXAMPLE_KEY, round_id="r1", opening=digest(ex.opening),
                           ref=dropped.ref, seq=dropped.seq, kind="entry",
                           choices=dropped.choices, at=CLOSE - dt.timedelta(hours=3))
    report = check(ex.document, receipt=receipt)
    assert report.status == "fail"
    assert "missing from the frozen list" in report.reasons[0]
    assert "dropped" in report.reasons[0]


def test_a_receipt_matching_the_list_reports_the_entrys_outcome(example: Example) -> None:
    leaf = next(x for x in example.frozen.leaves if " in " in x)
    ref, seq, _, choices = leaf.split(" ")[:4]
    receipt = make_receipt(EXAMPLE_KEY, round_id="r1", opening=digest(example.opening),
                           ref=ref, seq=int(seq), kind="entry" if seq == "1" else "change",
                           choices=choices.split(","), at=CLOSE - dt.timedelta(hours=2))
    report = check(example.document, receipt=receipt,
                   proof=example.frozen.proof("r1", ref).to_json())
    assert report.ok, report.reasons
    assert any("in the frozen list as the receipt says" in n for n in report.notes)
    assert any("the proof shows" in n for n in report.notes)
    assert any(n.startswith(f"entry {ref!r} won") or "waitlist, place" in n
               for n in report.notes)


@pytest.mark.parametrize("change", ["older_seq", "other_choices", "altered", "other_key"])
def test_a_receipt_that_does_not_match_is_named(example: Example, change: str) -> None:
    leaf = next(x for x in example.frozen.leaves if x.split(" ")[2] == "in"
                and x.split(" ")[1] == "1")
    ref, _, _, choices = leaf.split(" ")[:4]
    signer = DrawKey(bytes(32)) if change == "other_key" else EXAMPLE_KEY
    receipt = make_receipt(signer, round_id="r1", opening=digest(example.opening), ref=ref,
                           seq=2 if change == "older_seq" else 1,
                           kind="change" if change == "older_seq" else "entry",
                           choices=["s0"] if change == "other_choices" else choices.split(","),
                           at=CLOSE - dt.timedelta(hours=2))
    if change == "other_choices" and choices == "s0":
        receipt = make_receipt(signer, round_id="r1", opening=digest(example.opening),
                               ref=ref, seq=1, kind="entry", choices=["s1"],
                               at=CLOSE - dt.timedelta(hours=2))
    if change == "altered":
        receipt["choices"] = ["s5"] if choices != "s5" else ["s4"]
    expected = {"older_seq": "a later write was dropped", "other_choices": "says it chose",
                "altered": "signature is not the hospital's", "other_key": "another key"}
    report = check(example.document, receipt=receipt)
    assert report.status == "fail"
    assert expected[change] in report.reasons[0]


def test_a_tampered_result_names_the_first_difference(example: Example) -> None:
    doc = copy.deepcopy(example.document)
    winners = doc["results"]["winners"]
    winners[0], winners[1] = winners[1], winners[0]
    reasons = check(doc).reasons
    assert "do not hash to the digest" in reasons[0]
    assert any(r.startswith("winner #1 is") for r in reasons)


def test_a_tampered_seed_names_the_commitment(example: Example) -> None:
    doc = copy.deepcopy(example.document)
    doc["result"]["seed"] = "11" * 32
    doc["result"] = EXAMPLE_KEY.sign(doc["result"])
    assert any("seed does not match the commitment" in r for r in check(doc).reasons)


def test_stages_before_the_draw_are_pending(example: Example) -> None:
    doc = copy.deepcopy(example.document)
    doc["results"] = doc["result"] = None
    assert check(doc).status == "pending"
    doc["beacon"] = None
    report = check(doc)
    assert report.status == "pending" and "waiting for beacon round" in report.summary
    doc["entries"] = doc["freeze"] = None
    assert check(doc).status == "pending"
    doc["results"] = example.results
    assert check(doc).status == "malformed"


def test_the_draw_order_follows_the_stream_keys_by_hand(example: Example) -> None:
    import hashlib

    k = hashlib.sha256(example.seed + example.frozen.root + example.beacon.randomness).digest()
    assert allocation.frozen_round_key(example.seed, example.frozen.root,
                                       example.beacon.randomness) == k
    stream = hashlib.shake_256(k).digest(32 * len(example.frozen.drawn_refs))
    keyed = sorted(range(len(example.frozen.drawn_refs)),
                   key=lambda i: (stream[32 * i:32 * i + 32], i))
    refs = example.frozen.drawn_refs
    placed = [w.split()[0] for w in example.results["winners"]] + example.results["waitlist"]
    order = [refs[i] for i in keyed]
    assert sorted(placed, key=order.index) == order


def test_real_league_of_entropy_beacons_verify_with_both_libraries() -> None:
    quicknet = Beacon(657413, bytes.fromhex(
        "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e9"
        "1a6b85b89cd97b"))
    default = Beacon(3311596, bytes.fromhex(
        "a696b9409ababce45749c3a4ec369074453dd4a79967734e1390d969c8ad8d98897d217b9121e92c8d"
        "debbddda8d92f900e3bd6bf9deb166863b1a19390d743f82774001487594c5c09e581db7365f02b70a"
        "2c8cc41ce32446ef08e4890c4754"), bytes.fromhex(
        "8ed588f2a7716fb1349e2d9803da5db0005e98a83783c353d4a08f183236a9ad91d70ddb01266f4b7c"
        "576983db464b430e65680b9e0098552758afd6c1e6afcb77e3f62fe1b93d42d1cb63abbb2205512fe1"
        "2fbf74ea9c5ac3b8f5c1e283a1d8"))
    for chain, beacon in ((LOE_QUICKNET, quicknet), (LOE_DEFAULT, default)):
        assert verify_beacon(chain, beacon)
        assert verify_beacon(chain, beacon, use_fast=False)
        wrong = Beacon(beacon.round + 1, beacon.signature, beacon.previous_signature)
        assert not verify_beacon(chain, wrong)
        assert not verify_beacon(chain, wrong, use_fast=False)
    assert quicknet.randomness.hex().startswith("fc1873a1")
    # The chain hashes the League of Entropy publishes for these two chains.
    assert LOE_QUICKNET.hash.hex() == (
        "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971")
    assert LOE_DEFAULT.hash.hex() == (
        "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce")


def test_the_local_chain_signs_as_quicknet_does_for_both_verifiers() -> None:
    chain = example_chain()
    beacon = chain.sign(4242)
    assert verify_beacon(chain.chain, beacon)
    assert verify_beacon(chain.chain, beacon, use_fast=False)
    assert not verify_beacon(LOE_QUICKNET, beacon)


def test_the_frozen_list_refuses_unsorted_or_inconsistent_lines() -> None:
    caps = {"s1": 1, "s2": 1}
    good = ["a 1 in s1 -", "b 2 withdrawn s2 -", "c 1 excluded s1 credit_suspended"]
    assert FrozenList.from_leaves(good, caps).drawn_refs == ["a"]
    from fairslot.domain.draw.entries import MalformedRound

    for bad, message in ((["b 1 in s1 -", "a 1 in s1 -"], "ascending ref order"),
                         (["a 1 in s1 -", "a 2 in s1 -"], "ascending ref order"),
                         (["a 1 excluded s1 -"], "states a reason"),
                         (["a 1 in s1 why"], "states a reason"),
                         (["a 1 in s1"], "is not '<ref>"),
                         (["a 1 in s1 - x"], "is not '<ref>"),
                         (["a 1 in s1", "b 1 in s1 - x"], "is not '<ref>"),
                         (["a 1 in s1 - x", "b 1 in s1"], "is not '<ref>"),
                         (["a 01 in s1 -"], "is not '<ref>"),
                         (["a 1 in s9 -"], "not in the round"),
                         (["a 1 in s1,s1 -"], "same session twice"),
                         (["a 1 in s1,s2,s1,s2 -"], "4 choices"),
                         (["a 1 maybe s1 -"], "is not '<ref>"),
                         (["a\ud800 1 in s1 -"], "is not '<ref>"),
                         ([7], "is not '<ref>")):
        with pytest.raises(MalformedRound, match=message):
            FrozenList.from_leaves(bad, caps)


def test_a_split_view_is_caught_by_the_audit(example: Example) -> None:
    """Issue 14, 'different people can be shown different documents': two checkpoints of
    the same history size with different roots, or a new one that does not extend an old
    one, fail the audit; an honest extension passes with a consistency proof."""
    log = RoundLog(copy.deepcopy(example.log.records))
    old = log.checkpoint(EXAMPLE_KEY, CLOSE)
    other = build_round(entries_of(30, seed=5), capacities(), round_id="r2", closes_at=CLOSE)
    for record in other.log.records:
        log.append(record)
    new = log.checkpoint(EXAMPLE_KEY, CLOSE + dt.timedelta(days=1))
    assert audit(old, log.consistency(old["size"], new)).ok
    assert audit(old, log.document(new)).ok
    fork = RoundLog(copy.deepcopy(other.log.records) + copy.deepcopy(other.log.records))
    forked = fork.checkpoint(EXAMPLE_KEY, CLOSE + dt.timedelta(days=1))
    verdict = audit(old, fork.consistency(old["size"], forked))
    assert not verdict.ok and "does not extend" in verdict.reasons[0]
    same_size = RoundLog(copy.deepcopy(other.log.records)).checkpoint(EXAMPLE_KEY, CLOSE)
    assert "different histories" in audit(old, same_size).reasons[0]
    assert "smaller" in audit(new, old).reasons[0]
    assert "no way to check" in audit(old, new).reasons[0]
    stranger = DrawKey(bytes(range(1, 33)))
    alien = log.consistency(old["size"], log.checkpoint(stranger, CLOSE + dt.timedelta(days=1)))
    assert "different keys" in audit(old, alien).reasons[0]


@pytest.mark.parametrize("kind", ["no entries", "all excluded", "more slots than entries"])
def test_edge_rounds_verify(kind: str) -> None:
    entries = {"no entries": [],
               "all excluded": [frozen_entry(f"x{n}", 1, ["s0"], excluded="credit_suspended")
                                for n in range(5)],
               "more slots than entries": entries_of(3)}[kind]
    ex = build_round(entries, capacities(), closes_at=CLOSE)
    report = check(ex.document)
    assert report.ok, report.reasons
    drawn = len(ex.frozen.drawn_refs)
    assert len(ex.results["winners"]) == drawn and ex.results["waitlist"] == []


def test_a_chain_trusted_by_hash_pins_its_parameters(example: Example) -> None:
    by_hash = DEFAULT_TRUST.with_keys([example.chain.chain.hash.hex()])
    assert verify_document(example.document, trust=by_hash).ok
    doc = copy.deepcopy(example.document)
    doc["opening"]["chain"]["period"] = 30
    doc["opening"] = EXAMPLE_KEY.sign(doc["opening"])
    reasons = verify_document(doc, trust=by_hash).reasons
    assert "hash to" in reasons[-1]  # the stated hash no longer matches the parameters
    # Restating the hash makes it another chain, which this verifier was not told to trust.
    from fairslot.domain.draw.beacon import Chain

    chain = doc["opening"]["chain"]
    chain["hash"] = Chain(chain["scheme"], bytes.fromhex(chain["public_key"]),
                          chain["genesis_time"], 30, bytes.fromhex(chain["genesis_seed"]),
                          chain["beacon_id"]).hash.hex()
    doc["opening"] = EXAMPLE_KEY.sign(doc["opening"])
    assert any("not one this verifier trusts" in r
               for r in verify_document(doc, trust=by_hash).reasons)


@pytest.mark.parametrize("results", [
    {"winners": [], "waitlist": []},
    {"winners": ["a s1 1", "b s2 2"], "waitlist": ["c"]},
    {"winners": ['a"b s1 1'], "waitlist": []},
    {"winners": ["a\\b s1 1"], "waitlist": ["x\ny"]},
    {"winners": ["é s1 1"], "waitlist": ["\x7f", "\x1f"]},
    {"winners": [""], "waitlist": ["", ""]},
    {"winners": ["a"], "waitlist": ["b"], "extra": []},
    {"winners": [1], "waitlist": []},
])
def test_the_results_digest_is_the_sha256_of_the_canonical_json(results: Any) -> None:
    import hashlib

    from fairslot.domain.draw.signing import canonical_json
    from fairslot.domain.draw.statements import results_digest

    assert results_digest(results) == hashlib.sha256(canonical_json(results)).hexdigest()
