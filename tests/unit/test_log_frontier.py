"""The log of rounds appends a record and signs its next checkpoint from the frontier kept
with the last one: the root must be the RFC 6962 root of the whole log at every size."""

from __future__ import annotations

import hashlib

from fairslot.domain import merkle


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


def test_the_frontier_gives_the_whole_tree_root_at_every_size() -> None:
    frontier: list[bytes] = []
    data = [f"record {i}".encode() for i in range(70)]
    for size, item in enumerate(data):
        frontier = merkle.frontier_push(frontier, size, merkle.leaf_hash(item))
        assert merkle.frontier_root(frontier) == merkle.Tree.of_leaves(data[:size + 1]).root
        assert len(frontier) == bin(size + 1).count("1")  # one subtree per bit of the size


def test_the_frontier_built_at_once_equals_the_one_grown_leaf_by_leaf() -> None:
    hashes = _leaves(37)
    grown: list[bytes] = []
    for size, leaf in enumerate(hashes):
        grown = merkle.frontier_push(grown, size, leaf)
    assert merkle.frontier_of(hashes) == grown
    assert merkle.frontier_root([]) == merkle.Tree([]).root
