"""Merkle trees as defined by RFC 6962 and RFC 9162 (Certificate Transparency): the hash of a
list of leaves, inclusion proofs (this leaf is at that place in the list whose root is R)
and consistency proofs (the list whose root is R2 begins with the list whose root is R1).

fairslot uses it twice: the frozen entry list of a round is one tree, so a patient can be
shown that their entry is in the list the draw used; the log of rounds is another, so that
everyone can check that a newer checkpoint extends the older one instead of rewriting it.

Hashing, as in RFC 9162 section 2.1.1 with SHA-256:

- a leaf: ``SHA-256(0x00 ‖ data)``; an interior node: ``SHA-256(0x01 ‖ left ‖ right)``;
- the root of no leaves is ``SHA-256("")``; of one leaf, that leaf's hash; of ``n > 1``
  leaves, ``node(root(first k), root(rest))`` with ``k`` the largest power of two below
  ``n``.

Pairing neighbours level by level and carrying an unpaired last node up unchanged builds the
same tree, which is how ``Tree`` computes it: one SHA-256 per node, called over whole levels
(the per-call cost of SHA-256 is what a million leaves spend their time on). The proof
checks follow the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Tree",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "prefixed_leaf_hashes",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_sha256 = hashlib.sha256
_digest = type(_sha256(b"")).digest
_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 ‖ data)."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(_NODE + left + right).digest()


def leaf_hashes(data: Iterable[bytes]) -> list[bytes]:
    """The leaf hash of every item, in order (one C-level pass; no per-item Python code)."""
    return list(map(_digest, map(_sha256, map(_LEAF.__add__, data))))


def prefixed_leaf_hashes(data: Iterable[bytes]) -> list[bytes]:
    """Like ``leaf_hashes`` for items that already begin with the 0x00 leaf prefix."""
    return list(map(_digest, map(_sha256, data)))


def _level_up(level: list[bytes]) -> list[bytes]:
    pairs = len(level) // 2
    joined = map(b"".join, zip([_NODE] * pairs, level[0:2 * pairs:2], level[1:2 * pairs:2],
                               strict=True))
    up = list(map(_digest, map(_sha256, joined)))
    if len(level) % 2:
        up.append(level[-1])  # an unpaired last node moves up unchanged
    return up


class Tree:
    """A Merkle tree over leaf hashes, keeping every level so that proofs are cheap.

    ``levels[0]`` are the leaf hashes; ``levels[h][i]`` is the hash of the (full or
    right-edge) subtree of leaves ``i * 2**h`` to ``(i + 1) * 2**h - 1``."""

    __slots__ = ("levels",)

    def __init__(self, hashes: Sequence[bytes]) -> None:
        levels = [list(hashes)]
        while len(levels[-1]) > 1:
            levels.append(_level_up(levels[-1]))
        self.levels = levels

    @classmethod
    def of_leaves(cls, data: Iterable[bytes]) -> Tree:
        """The tree of these leaf data (each hashed as a leaf)."""
        return cls(leaf_hashes(data))

    @property
    def size(self) -> int:
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        """The tree head: SHA-256("") for an empty tree."""
        top = self.levels[-1]
        return top[0] if top else EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (RFC 9162 section 2.1.3.1), leaf side first."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size} leaves")
        proof: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof

    def subtree_root(self, start: int, end: int) -> bytes:
        """The root of the leaves ``start`` to ``end - 1`` taken as a tree of their own."""
        size = end - start
        if size <= 0:
            return EMPTY_ROOT
        height = size.bit_length() - 1
        if size == 1 << height and start % size == 0:
            return self.levels[height][start >> height]
        split = 1 << ((size - 1).bit_length() - 1)
        return node_hash(self.subtree_root(start, start + split),
                         self.subtree_root(start + split, end))

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """The proof that the first ``old_size`` leaves are a prefix of this tree (RFC 9162
        section 2.1.4.1). Empty when ``old_size`` is 0 or the whole tree."""
        if not 0 <= old_size <= self.size:
            raise IndexError(f"a tree of {self.size} leaves has no prefix of {old_size}")
        if old_size in (0, self.size):
            return []
        return self._subproof(old_size, 0, self.size, True)

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [self.subtree_root(start, end)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*self._subproof(m, start, start + k, whole),
                    self.subtree_root(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False),
                self.subtree_root(start, start + k)]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root that an inclusion proof leads to from a leaf hash (RFC 9162 section
    2.1.3.2), or ``None`` when the proof cannot belong to a tree of ``size`` leaves."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree ``root`` of
    ``size`` leaves."""
    return root_from_inclusion(index, size, leaf, proof) == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows that the tree ``old_root`` of ``old_size`` leaves is a prefix
    of the tree ``new_root`` of ``new_size`` leaves (RFC 9162 section 2.1.4.2)."""
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof  # the empty tree is a prefix of every tree
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


# --- a log that grows one leaf at a time ---------------------------------------------------
# A tree of n leaves is made of perfect subtrees, one for each bit set in n, largest first;
# their roots (the *frontier*) are all a log needs to append a leaf and know its new root, so
# signing a checkpoint after each record costs O(log n) hashes instead of the whole tree.

def frontier_push(frontier: Sequence[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The frontier of a tree of ``size + 1`` leaves, from that of ``size`` leaves and the
    new leaf's hash."""
    out = list(frontier)
    node, n = leaf, size
    while n & 1:
        node = node_hash(out.pop(), node)
        n >>= 1
    out.append(node)
    return out


def frontier_of(hashes: Iterable[bytes]) -> list[bytes]:
    """The frontier of a tree over these leaf hashes."""
    frontier: list[bytes] = []
    for size, leaf in enumerate(hashes):
        frontier = frontier_push(frontier, size, leaf)
    return frontier


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of the tree whose frontier this is: each subtree is the left
    child of a node whose right child is the tree of the smaller ones."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root
