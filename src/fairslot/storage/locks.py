"""Named locks held until the end of a transaction, for the rules that read-then-write
(quotas): two requests for one patient, account, phone or payer never both pass a check
that only one of them may pass.

PostgreSQL: transaction-scoped advisory locks (``pg_advisory_xact_lock``) on 64-bit keys
derived from the names, taken in ascending key order so two transactions that want the same
locks never wait for each other in a circle. SQLite: one writer at a time is all SQLite has,
so the transaction becomes the writer (``BEGIN IMMEDIATE``) before it reads what it checks.

Chosen over a constraint-backed counter row (a counter cannot follow quotas that depend on
time, like "active until the visit ends" or "patients served in 30 days") and over
SERIALIZABLE with retries (every booking at a release would retry against every other)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["lock_columns", "lock_key", "lock_keys", "sqlite_begin_immediate"]


def lock_key(kind: str, value: str | int) -> int:
    """A signed 64-bit advisory lock key for one named thing (``patient``, ``42``)."""
    digest = hashlib.blake2b(f"fairslot/{kind}/{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(names: Iterable[tuple[str, str | int]]) -> list[int]:
    return sorted({lock_key(kind, value) for kind, value in names})


def lock_columns(keys: Sequence[int | sa.BindParameter[int]]) -> list[Any]:
    """Select-list expressions that take the advisory locks (PostgreSQL), in key order, so
    a query can lock and read in one round trip. What the query reads must not depend on
    the locks: a statement sees the data as of its own start. A key may be a bound
    parameter, for a statement built once and run with the keys (in ascending order)."""
    return [sa.func.pg_advisory_xact_lock(
        k if isinstance(k, sa.BindParameter) else sa.literal(k, sa.BigInteger)
    ).label(f"lock{i}") for i, k in enumerate(keys)]


def sqlite_begin_immediate(dbapi_connection: Any) -> None:
    """Make the connection's transaction SQLite's one writer now (waits up to the busy
    time-out). A transaction that already wrote holds the write lock already."""
    if not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")
