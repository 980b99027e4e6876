"""Merkle trees (RFC 6962 / 9162): roots, inclusion and consistency proofs agree with the
RFC's recursive definitions, computed naively here, and the checks refuse tampered proofs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairslot.domain.merkle import (
    EMPTY_ROOT,
    Tree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# --- RFC 6962 section 2.1, written as the RFC states it ----------------------------------


def mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], b), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return subproof(m, leaves, True)


leaf_lists = st.lists(st.binary(max_size=12), max_size=70)
relaxed = settings(deadline=None, max_examples=150)


def test_the_hashes_carry_the_rfc_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert Tree.of_leaves([]).root == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_a_known_root_from_the_rfc_6962_test_vectors() -> None:
    # The eight-leaf tree used by Certificate Transparency implementations' tests.
    leaves = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                         "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
    assert Tree.of_leaves(leaves).root.hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
    assert Tree.of_leaves(leaves[:1]).root.hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


@relaxed
@given(leaf_lists)
def test_the_root_is_the_rfc_root(leaves: list[bytes]) -> None:
    assert Tree.of_leaves(leaves).root == mth(leaves)


@relaxed
@given(leaf_lists.filter(bool), st.data())
def test_inclusion_proofs_are_the_rfc_paths_and_verify(leaves: list[bytes],
                                                       data: st.DataObject) -> None:
    tree = Tree.of_leaves(leaves)
    m = data.draw(st.integers(0, len(leaves) - 1))
    audit = tree.inclusion_proof(m)
    assert audit == path(m, leaves)
    assert verify_inclusion(m, len(leaves), leaf_hash(leaves[m]), audit, tree.root)


@relaxed
@given(leaf_lists.filter(bool), st.data())
def test_a_tampered_inclusion_proof_is_refused(leaves: list[bytes], data: st.DataObject) -> None:
    tree = Tree.of_leaves(leaves)
    n = len(leaves)
    m = data.draw(st.integers(0, n - 1))
    audit = tree.inclusion_proof(m)
    good = leaf_hash(leaves[m])
    assert not verify_inclusion(m, n, leaf_hash(leaves[m] + b"x"), audit, tree.root)
    if audit:
        k = data.draw(st.integers(0, len(audit) - 1))
        bent = [*audit[:k], bytes(32) if audit[k] != bytes(32) else b"\1" * 32, *audit[k + 1:]]
        assert not verify_inclusion(m, n, good, bent, tree.root)
        assert not verify_inclusion(m, n, good, audit[:-1], tree.root)
    assert not verify_inclusion(m, n, good, [*audit, bytes(32)], tree.root)
    assert not verify_inclusion(n, n, good, audit, tree.root)
    other = data.draw(st.integers(0, n - 1))
    if other != m and leaves[other] != leaves[m]:
        assert not verify_inclusion(other, n, good, audit, tree.root)


@relaxed
@given(leaf_lists.filter(bool), st.data())
def test_consistency_proofs_are_the_rfc_proofs_and_verify(leaves: list[bytes],
                                                          data: st.DataObject) -> None:
    n = len(leaves)
    m = data.draw(st.integers(1, n))
    tree = Tree.of_leaves(leaves)
    old_root = mth(leaves[:m])
    made = tree.consistency_proof(m)
    assert made == (proof(m, leaves) if m < n else [])
    assert verify_consistency(m, n, old_root, tree.root, made)


@relaxed
@given(leaf_lists.filter(lambda x: len(x) > 1), st.data())
def test_a_rewritten_history_fails_the_consistency_check(leaves: list[bytes],
                                                          data: st.DataObject) -> None:
    n = len(leaves)
    m = data.draw(st.integers(1, n - 1))
    tree = Tree.of_leaves(leaves)
    made = tree.consistency_proof(m)
    # The old tree as another view of history would have it: one leaf changed.
    changed = data.draw(st.integers(0, m - 1))
    forked = [*leaves[:changed], leaves[changed] + b"!", *leaves[changed + 1:m]]
    assert not verify_consistency(m, n, mth(forked), tree.root, made)
    assert not verify_consistency(m, n, mth(leaves[:m]), mth(forked + leaves[m:]), made)
    assert not verify_consistency(m, n, mth(leaves[:m]), tree.root, made[:-1])
    assert not verify_consistency(m, n, mth(leaves[:m]), tree.root, [])
    assert not verify_consistency(n, m, tree.root, mth(leaves[:m]), made)


def test_an_empty_tree_is_a_prefix_of_every_tree() -> None:
    tree = Tree.of_leaves([b"a", b"b", b"c"])
    assert verify_consistency(0, 3, EMPTY_ROOT, tree.root, [])
    assert verify_consistency(3, 3, tree.root, tree.root, [])
    assert not verify_consistency(3, 3, tree.root, EMPTY_ROOT, [])


def test_proofs_refuse_positions_outside_the_tree() -> None:
    tree = Tree.of_leaves([b"a", b"b"])
    with pytest.raises(IndexError):
        tree.inclusion_proof(2)
    with pytest.raises(IndexError):
        tree.consistency_proof(3)


@pytest.mark.slow
def test_a_million_leaves_give_the_root_of_the_recursive_definition_on_a_sample() -> None:
    # Not a timing test (bench/draw.py measures speed); it checks that the level-by-level
    # construction holds at the size the draw runs at, through the proofs of a few leaves.
    leaves = [n.to_bytes(4, "big") for n in range(1_000_003)]
    tree = Tree.of_leaves(leaves)
    for m in (0, 1, 524_287, 524_288, 1_000_002):
        assert verify_inclusion(m, tree.size, leaf_hash(leaves[m]), tree.inclusion_proof(m),
                                tree.root)
    assert verify_consistency(999_999, tree.size, tree.subtree_root(0, 999_999), tree.root,
                              tree.consistency_proof(999_999))
