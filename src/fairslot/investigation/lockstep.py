"""Lockstep: accounts that book the same sessions within the same seconds, release after
release (after SynchroTrap, Cao et al., CCS 2014).

Within each session's release, bookings fall into ``window_seconds`` buckets after the
release. Two accounts match on a session when they book it in the same bucket. Their
similarity is the Jaccard index of matched sessions over all the release-time sessions
either booked. Strangers who like the same hot doctor meet once or twice a year; a crew
meets every week. Buckets crowded beyond ``max_bucket`` accounts are skipped, as a NAT IP is
in the link graph: a moment everybody shares says nothing about who is together.
"""

from __future__ import annotations

import dataclasses

import igraph as ig
import polars as pl

__all__ = ["LockstepGroup", "lockstep_groups", "lockstep_pairs"]


@dataclasses.dataclass(frozen=True, slots=True)
class LockstepGroup:
    accounts: list[str]
    sessions: int
    """The most sessions any pair in the group matched on."""
    similarity: float
    """The highest pair similarity in the group."""


def lockstep_pairs(
    bookings: pl.DataFrame,
    *,
    window_seconds: float = 5.0,
    release_seconds: float = 600.0,
    min_sessions: int = 3,
    min_similarity: float = 0.2,
    max_bucket: int = 50,
) -> pl.DataFrame:
    """Account pairs (a, b, sessions, similarity) meeting both thresholds."""
    events = (
        bookings.filter(pl.col("released_at").is_not_null())
        .with_columns(((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds()
                       / 1000.0).alias("after"))
        .filter((pl.col("after") >= 0) & (pl.col("after") < release_seconds))
        .select("account_id", "doctor_id", "session_start",
                (pl.col("after") / window_seconds).floor().cast(pl.Int64).alias("bucket"))
        .unique()
    )
    empty = pl.DataFrame(schema={"a": pl.String, "b": pl.String, "sessions": pl.UInt32,
                                 "similarity": pl.Float64})
    if events.is_empty():
        return empty
    per_account = events.group_by("account_id").agg(
        pl.struct("doctor_id", "session_start").n_unique().alias("n"))
    key = ["doctor_id", "session_start", "bucket"]
    crowded = events.group_by(key).agg(pl.len().alias("k")).filter(
        (pl.col("k") >= 2) & (pl.col("k") <= max_bucket))
    events = events.join(crowded.select(key), on=key)
    pairs = (
        events.join(events.select(*key, pl.col("account_id").alias("other")), on=key)
        .filter(pl.col("account_id") < pl.col("other"))
        .group_by(pl.col("account_id").alias("a"), pl.col("other").alias("b"))
        .agg(pl.struct("doctor_id", "session_start").n_unique().alias("sessions"))
        .filter(pl.col("sessions") >= min_sessions)
    )
    if pairs.is_empty():
        return empty
    pairs = (
        pairs.join(per_account.rename({"account_id": "a", "n": "na"}), on="a")
        .join(per_account.rename({"account_id": "b", "n": "nb"}), on="b")
        .with_columns((pl.col("sessions") / (pl.col("na") + pl.col("nb") - pl.col("sessions")))
                      .alias("similarity"))
        .filter(pl.col("similarity") >= min_similarity)
    )
    return pairs.select("a", "b", pl.col("sessions").cast(pl.UInt32), "similarity")


def lockstep_groups(pairs: pl.DataFrame, *, min_accounts: int = 3) -> list[LockstepGroup]:
    """Connected groups of lockstep pairs with at least ``min_accounts`` accounts."""
    if pairs.is_empty():
        return []
    names = sorted(set(pairs.get_column("a").to_list()) | set(pairs.get_column("b").to_list()))
    index = {name: i for i, name in enumerate(names)}
    graph = ig.Graph(n=len(names), edges=[(index[a], index[b])
                                          for a, b in pairs.select("a", "b").iter_rows()])
    groups: list[LockstepGroup] = []
    for component in graph.connected_components():
        if len(component) < min_accounts:
            continue
        members = [names[i] for i in component]
        inside = pairs.filter(pl.col("a").is_in(members))
        groups.append(LockstepGroup(
            members, int(inside.get_column("sessions").max() or 0),  # type: ignore[arg-type]
            float(inside.get_column("similarity").max() or 0.0)))  # type: ignore[arg-type]
    return groups
