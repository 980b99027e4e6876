"""The public randomness a round mixes into its draw: a drand beacon, and its check.

drand chains (the League of Entropy's, or a local one) publish, every ``period`` seconds from
``genesis_time``, round ``r``'s BLS12-381 signature on a message fixed by the round number.
Nobody can compute it before the threshold of the chain's nodes sign, and anyone can check
it offline against the chain's public key. A round names, when its window opens, the chain
and the round number whose beacon it will use: the first round at or after its close (plus
a stated delay), so the entry list is frozen before anyone can know the beacon.

Two of drand's schemes are supported, both checked offline:

- ``bls-unchained-g1-rfc9380`` (League of Entropy "quicknet", 3 s): signatures on G1
  (48 bytes), public key on G2 (96 bytes); message ``SHA-256(round as 8 bytes big-endian)``;
  hash-to-curve per RFC 9380 with DST ``BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_``.
- ``pedersen-bls-chained`` (League of Entropy "default", 30 s): signatures on G2 (96 bytes),
  public key on G1 (48 bytes); message ``SHA-256(previous signature ‖ round as 8 bytes)``;
  DST ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_``.

The randomness of a beacon is ``SHA-256(signature)``, as drand defines it.

Checking uses ``drand_verify`` (Rust, about 3 ms a beacon) where it is installed and
``py_ecc`` (pure Python, 0.3-0.7 s) otherwise; a unit test holds them to the same answers.
``LocalChain`` signs rounds exactly as a quicknet node does, with a key the project makes,
so that the demo and the tests run offline; it proves nothing to a patient, since whoever
holds its key knows every beacon in advance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOE_DEFAULT",
    "LOE_QUICKNET",
    "SCHEME_CHAINED",
    "SCHEME_G1",
    "Beacon",
    "Chain",
    "LocalChain",
    "verify_beacon",
]

SCHEME_G1 = "bls-unchained-g1-rfc9380"
SCHEME_CHAINED = "pedersen-bls-chained"
_DST_G1 = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
# Sizes of the compressed points: the signature and the public key of each scheme.
_SIZES = {SCHEME_G1: (48, 96), SCHEME_CHAINED: (96, 48)}


@dataclass(frozen=True, slots=True)
class Chain:
    """A drand chain's public parameters: what a verifier must know to check its beacons."""

    scheme: str
    public_key: bytes
    genesis_time: int
    period: int
    genesis_seed: bytes
    beacon_id: str

    def __post_init__(self) -> None:
        if self.scheme not in _SIZES:
            raise ValueError(f"unsupported drand scheme {self.scheme!r}")
        if len(self.public_key) != _SIZES[self.scheme][1]:
            raise ValueError(f"a {self.scheme} public key is {_SIZES[self.scheme][1]} bytes")
        if self.period < 1:
            raise ValueError("a chain's period is at least one second")

    @property
    def hash(self) -> bytes:
        """The chain hash by which drand names a chain: SHA-256 of the period (4 bytes),
        the genesis time (8 bytes, both big-endian), the public key, the genesis seed and,
        unless it is "default", the beacon id. (The scheme is not hashed: this is what the
        League of Entropy's published chain hashes are made of.)"""
        h = hashlib.sha256(struct.pack(">Iq", self.period, self.genesis_time))
        h.update(self.public_key)
        h.update(self.genesis_seed)
        if self.beacon_id not in ("", "default"):
            h.update(self.beacon_id.encode("ascii"))
        return h.digest()

    def round_time(self, round_: int) -> int:
        """When round ``round_`` is published (POSIX seconds); round 1 at genesis."""
        return self.genesis_time + (round_ - 1) * self.period

    def first_round_at_or_after(self, when: int) -> int:
        """The first round published at or after the POSIX second ``when``."""
        if when <= self.genesis_time:
            return 1
        return -(-(when - self.genesis_time) // self.period) + 1

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.hash.hex(), "scheme": self.scheme,
                "public_key": self.public_key.hex(), "genesis_time": self.genesis_time,
                "period": self.period, "genesis_seed": self.genesis_seed.hex(),
                "beacon_id": self.beacon_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chain:
        """Read a chain as ``to_json`` writes it (types already checked by the schema);
        raises ``ValueError`` when the stated hash is not the hash of the rest."""
        chain = cls(scheme=data["scheme"], public_key=bytes.fromhex(data["public_key"]),
                    genesis_time=data["genesis_time"], period=data["period"],
                    genesis_seed=bytes.fromhex(data["genesis_seed"]),
                    beacon_id=data["beacon_id"])
        if chain.hash.hex() != data["hash"]:
            raise ValueError(f"the chain's parameters hash to {chain.hash.hex()}, not to the "
                             f"stated {data['hash']}")
        return chain


#: The League of Entropy's "quicknet": the production default (see docs/draw.md).
LOE_QUICKNET = Chain(
    scheme=SCHEME_G1,
    public_key=bytes.fromhex(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5"
        "776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c7"
        "6a4bc09e76eae8991ef5ece45a"),
    genesis_time=1692803367,
    period=3,
    genesis_seed=bytes.fromhex(
        "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e"),
    beacon_id="quicknet",
)

#: The League of Entropy's original "default" chain (chained, 30 s).
LOE_DEFAULT = Chain(
    scheme=SCHEME_CHAINED,
    public_key=bytes.fromhex(
        "868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a569937c529eeda66c729378"
        "4a9402801af31"),
    genesis_time=1595431050,
    period=30,
    genesis_seed=bytes.fromhex(
        "176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a"),
    beacon_id="default",
)


@dataclass(frozen=True, slots=True)
class Beacon:
    """One round's output of a chain. ``previous_signature`` only for chained schemes."""

    round: int
    signature: bytes
    previous_signature: bytes | None = None

    @property
    def randomness(self) -> bytes:
        """drand's randomness of the round: SHA-256 of the signature."""
        return hashlib.sha256(self.signature).digest()

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, "signature": self.signature.hex(),
                "previous_signature": (None if self.previous_signature is None
                                       else self.previous_signature.hex())}


def message(chain: Chain, beacon: Beacon) -> bytes:
    """The 32-byte message the chain signs for this beacon's round."""
    number = struct.pack(">Q", beacon.round)
    if chain.scheme == SCHEME_CHAINED:
        return hashlib.sha256((beacon.previous_signature or b"") + number).digest()
    return hashlib.sha256(number).digest()


def _fast_verifier() -> Any:
    try:
        return importlib.import_module("drand_verify")
    except ImportError:  # no wheel for this Python: fall back on py_ecc
        return None


_drand_verify = _fast_verifier()


def verify_beacon(chain: Chain, beacon: Beacon, *, use_fast: bool = True) -> bool:
    """Whether ``beacon`` is the chain's signature for its round (checked offline).

    ``use_fast=False`` forces the pure-Python check (tests compare the two)."""
    sig_size, _ = _SIZES[chain.scheme]
    if len(beacon.signature) != sig_size or beacon.round < 1:
        return False
    chained = chain.scheme == SCHEME_CHAINED
    if chained != (beacon.previous_signature is not None):
        return False
    if use_fast and _drand_verify is not None:
        try:
            if chained:
                assert beacon.previous_signature is not None
                _drand_verify.verify_pedersen_bls_chained(
                    beacon.round, beacon.previous_signature.hex(), beacon.signature.hex(),
                    chain.public_key.hex())
            else:
                _drand_verify.verify_bls_unchained_g1_rfc9380(
                    beacon.round, beacon.signature.hex(), chain.public_key.hex())
        except (ValueError, OverflowError):
            return False
        return True
    return _verify_py_ecc(chain, beacon)


def _py_ecc() -> Any:
    """py_ecc's modules, typed loosely: its own annotations use private aliases."""
    import types

    return types.SimpleNamespace(
        bls=importlib.import_module("py_ecc.bls"),
        curve=importlib.import_module("py_ecc.optimized_bls12_381"),
        h2c=importlib.import_module("py_ecc.bls.hash_to_curve"),
        points=importlib.import_module("py_ecc.bls.point_compression"))


def _verify_py_ecc(chain: Chain, beacon: Beacon) -> bool:
    ecc = _py_ecc()
    c = ecc.curve
    msg = message(chain, beacon)
    if chain.scheme == SCHEME_CHAINED:
        try:
            return bool(ecc.bls.G2Basic.Verify(chain.public_key, msg, beacon.signature))
        except Exception:  # py_ecc raises assorted errors for points off the curve
            return False
    try:
        signature = ecc.points.decompress_G1(int.from_bytes(beacon.signature, "big"))
        key = ecc.points.decompress_G2((int.from_bytes(chain.public_key[:48], "big"),
                                        int.from_bytes(chain.public_key[48:], "big")))
    except ValueError:
        return False
    # Points off the prime-order subgroup would let a forger pass the pairing check.
    if c.is_inf(signature) or not c.is_inf(c.multiply(signature, c.curve_order)):
        return False
    hashed = ecc.h2c.hash_to_G1(msg, _DST_G1, hashlib.sha256)
    product = (c.pairing(c.G2, signature, final_exponentiate=False)
               * c.pairing(c.neg(key), hashed, final_exponentiate=False))
    return bool(c.final_exponentiate(product) == c.FQ12.one())


class LocalChain:
    """A one-node drand chain of scheme ``bls-unchained-g1-rfc9380`` for the demo and tests.

    It signs round ``r`` exactly as a quicknet node would (so ``drand_verify`` accepts it),
    with a secret key made from ``secret`` (32 bytes the operator keeps, never committed).
    Whoever holds the secret can compute every future beacon: production uses the League of
    Entropy's chain instead."""

    def __init__(self, secret: bytes, *, genesis_time: int, period: int = 3,
                 beacon_id: str = "fairslot-local") -> None:
        ecc = _py_ecc()
        c = ecc.curve
        if len(secret) != 32:
            raise ValueError("a local chain's secret is 32 bytes")
        scalar = int.from_bytes(hashlib.sha256(b"fairslot local chain key\0" + secret).digest(),
                                "big") % c.curve_order
        self._scalar = scalar or 1
        z1, z2 = ecc.points.compress_G2(c.multiply(c.G2, self._scalar))
        public_key = z1.to_bytes(48, "big") + z2.to_bytes(48, "big")
        self.chain = Chain(scheme=SCHEME_G1, public_key=public_key, genesis_time=genesis_time,
                           period=period,
                           genesis_seed=hashlib.sha256(b"fairslot local chain\0" + public_key)
                           .digest(),
                           beacon_id=beacon_id)

    def sign(self, round_: int) -> Beacon:
        """The beacon of round ``round_`` (whether or not its time has come: the caller
        decides when to release it)."""
        ecc = _py_ecc()
        if round_ < 1:
            raise ValueError("drand rounds start at 1")
        partial = Beacon(round=round_, signature=b"")
        point = ecc.curve.multiply(
            ecc.h2c.hash_to_G1(message(self.chain, partial), _DST_G1, hashlib.sha256),
            self._scalar)
        return Beacon(round=round_,
                      signature=int(ecc.points.compress_G1(point)).to_bytes(48, "big"))


def utc_seconds(when: dt.datetime) -> int:
    """A timezone-aware moment as whole POSIX seconds, rounded up (a round 'at or after'
    a moment with a fraction of a second must not come before it)."""
    if when.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    stamp = when.timestamp()
    whole = int(stamp)
    return whole if whole == stamp else whole + 1
