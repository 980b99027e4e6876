"""Camouflage-resistant dense blocks: greedy peeling in the manner of Fraudar (Hooi et al.,
KDD 2016), written for fairslot.

The bipartite graph is accounts x (session, time bucket after release). A ring's accounts
hit the same sessions in the same seconds release after release, which makes a block far
denser than anybody else's bookings, even when the ring adds ordinary bookings to look
normal (camouflage only adds edges outside the block, which peeling ignores). Each column's
edges weigh ``1 / log(degree + 5)`` so that a popular moment, where hundreds of genuine
patients book the same hot doctor, counts for little.

Peeling repeatedly removes the node (row or column) whose remaining edges weigh least and
keeps the subset where total weight / number of nodes was highest. After a block is found its
rows are removed and the search repeats.
"""

from __future__ import annotations

import dataclasses
import heapq
import math

import igraph as ig
import numpy as np
import polars as pl

__all__ = ["DenseBlock", "dense_blocks", "peel"]


@dataclasses.dataclass(frozen=True, slots=True)
class DenseBlock:
    """Row (account) and column labels of a block, its density, and the whole graph's."""

    accounts: list[str]
    columns: int
    density: float
    background: float


def peel(
    rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_rows: int, n_cols: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Greedy peeling of a weighted bipartite graph given as edge arrays.

    Returns (row indices, column indices, density) of the densest subset seen, where density
    is the total edge weight inside divided by the number of nodes."""
    n = n_rows + n_cols
    other = np.concatenate([cols + n_rows, rows])
    mine = np.concatenate([rows, cols + n_rows])
    both_weights = np.concatenate([weights, weights])
    order = np.argsort(mine, kind="stable")
    neighbours, edge_weight = other[order], both_weights[order]
    starts = np.searchsorted(mine[order], np.arange(n + 1))
    priority = np.bincount(mine, weights=both_weights, minlength=n).astype(np.float64)
    alive = np.ones(n, dtype=bool)
    total = float(weights.sum())
    size = n
    best_density, best_step = total / max(size, 1), 0
    heap = [(float(priority[i]), i) for i in range(n)]
    heapq.heapify(heap)
    removed: list[int] = []
    while heap and size > 0:
        value, node = heapq.heappop(heap)
        if not alive[node] or value != priority[node]:
            continue  # a stale entry; the node's current priority is elsewhere in the heap
        alive[node] = False
        removed.append(node)
        size -= 1
        total -= value
        for position in range(starts[node], starts[node + 1]):
            neighbour = int(neighbours[position])
            if alive[neighbour]:
                priority[neighbour] -= edge_weight[position]
                heapq.heappush(heap, (float(priority[neighbour]), neighbour))
        if size and total / size > best_density:
            best_density, best_step = total / size, len(removed)
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(removed[:best_step], dtype=np.int64)] = False
    chosen = np.flatnonzero(keep)
    return chosen[chosen < n_rows], chosen[chosen >= n_rows] - n_rows, best_density


def _parts(
    rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_rows: int,
) -> list[tuple[list[int], list[int], float]]:
    """Connected parts of a block: (row indices, column indices, density) each."""
    row_ids, row_index = np.unique(rows, return_inverse=True)
    col_ids, col_index = np.unique(cols, return_inverse=True)
    graph = ig.Graph(n=len(row_ids) + len(col_ids),
                     edges=list(zip(row_index.tolist(), (col_index + len(row_ids)).tolist(),
                                    strict=True)))
    labels = np.asarray(graph.connected_components().membership)
    count = int(labels.max()) + 1 if len(labels) else 0
    parts = []
    for label in range(count):
        part_rows = row_ids[labels[: len(row_ids)] == label]
        part_cols = col_ids[labels[len(row_ids):] == label]
        mask = np.isin(rows, part_rows)
        nodes = len(part_rows) + len(part_cols)
        parts.append((part_rows.tolist(), part_cols.tolist(),
                      float(weights[mask].sum()) / max(nodes, 1)))
    return parts


def dense_blocks(
    bookings: pl.DataFrame,
    *,
    bucket_seconds: float = 10.0,
    window_seconds: float = 600.0,
    max_blocks: int = 8,
    min_accounts: int = 3,
    min_ratio: float = 2.0,
) -> list[DenseBlock]:
    """Dense account x (session, bucket) blocks among bookings made within
    ``window_seconds`` of release. A block counts when it has ``min_accounts`` accounts and
    its density is at least ``min_ratio`` times the whole graph's."""
    events = (
        bookings.filter(pl.col("released_at").is_not_null())
        .with_columns(((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds()
                       / 1000.0).alias("after"))
        .filter((pl.col("after") >= 0) & (pl.col("after") < window_seconds))
        .select("account_id",
                pl.concat_str(pl.col("doctor_id"), pl.col("session_start").cast(pl.String),
                              (pl.col("after") / bucket_seconds).floor().cast(pl.String),
                              separator="|").alias("column"))
        .unique()
    )
    # An account with one release-time booking cannot be part of a block of repeated grabs;
    # leaving such accounts out spares the peeling most of a big hospital's patients.
    events = events.filter(pl.len().over("account_id") >= 2)
    if events.is_empty():
        return []
    accounts = events.get_column("account_id").unique().sort()
    columns = events.get_column("column").unique().sort()
    events = events.join(accounts.to_frame().with_row_index("r"), on="account_id").join(
        columns.to_frame().with_row_index("c"), on="column")
    degree = events.group_by("c").agg(pl.len().alias("deg"))
    # In one order (unique and joins keep none): the peeling's ties and the weights' sums
    # then come out the same on every run, whatever order the records were read in.
    events = events.join(degree, on="c").with_columns(
        (1.0 / (pl.col("deg").cast(pl.Float64) + 5.0).log()).alias("w")).sort("r", "c")
    rows = events.get_column("r").to_numpy().astype(np.int64)
    cols = events.get_column("c").to_numpy().astype(np.int64)
    weights = events.get_column("w").to_numpy().astype(np.float64)
    n_rows, n_cols = len(accounts), len(columns)
    background = float(weights.sum()) / (n_rows + n_cols)
    names = accounts.to_list()
    blocks: list[DenseBlock] = []
    active = np.ones(len(rows), dtype=bool)
    for _ in range(max_blocks):
        if not active.any():
            break
        r, c, density = peel(rows[active], cols[active], weights[active], n_rows, n_cols)
        if len(r) < min_accounts or density < min_ratio * background or math.isnan(density):
            break
        # Peeling keeps the union of equally dense groups; each connected part of the block
        # is reported on its own, since unrelated rings share no release moments.
        inside = active & np.isin(rows, r) & np.isin(cols, c)
        for part_rows, part_cols, part_density in _parts(rows[inside], cols[inside],
                                                         weights[inside], n_rows):
            if len(part_rows) >= min_accounts and part_density >= min_ratio * background:
                blocks.append(DenseBlock([names[i] for i in part_rows], len(part_cols),
                                         part_density, background))
        active &= ~np.isin(rows, r)
    return blocks
