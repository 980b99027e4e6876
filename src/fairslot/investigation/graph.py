"""The link graph: accounts joined by the identifiers they share (patients, payers, phones,
devices, IPs) and by laundering and lockstep pairs, and its Leiden communities.

An identifier shared by ``d`` accounts gives each pair of them ``type_weight / (d - 1)``
(the resource-allocation index): one unit of evidence split among its other holders. A
family's payer shared by three accounts links each pair with 0.5; a campus NAT IP shared by
three hundred links each pair with 0.003 and glues no strangers together. Identifiers shared
by more than ``max_sharing`` accounts are left out altogether: at that rarity their weight is
negligible and their pairs would only cost memory.
"""

from __future__ import annotations

import math

import igraph as ig
import leidenalg
import polars as pl

__all__ = [
    "IDENTIFIER_WEIGHTS",
    "account_identifiers",
    "account_links",
    "communities",
    "merge_shattered",
    "ring_subgraph",
]

IDENTIFIER_WEIGHTS: dict[str, float] = {
    "patient": 1.0,
    "payer": 1.0,
    "device": 1.0,
    "phone": 0.8,
    # IPs are the weakest link: carriers reassign them and rings rent proxies.
    "ip": 0.5,
}


def account_identifiers(bookings: pl.DataFrame, payments: pl.DataFrame) -> pl.DataFrame:
    """Distinct (account_id, entity_type, entity_id, bookings) for every identifier an
    account used; payers come through the payments of the account's bookings.

    Each kind is counted on its own and only the counts are stacked: stacking the five
    projections first held one row per booking and kind (50,000,000 rows for a province's
    bookings) at once, with a hash table over all of them."""
    def counted(frame: pl.DataFrame, kind: str, column: str) -> pl.DataFrame:
        return (
            frame.lazy().select("account_id", pl.col(column).alias("entity_id")).drop_nulls()
            .group_by("account_id", "entity_id").agg(pl.len().alias("bookings"))
            .select("account_id", pl.lit(kind).alias("entity_type"), "entity_id", "bookings")
            .collect()
        )

    parts = [counted(bookings, kind, column)
             for kind, column in (("patient", "patient"), ("phone", "patient_phone"),
                                  ("device", "device_id"), ("ip", "ip"))]
    paid = payments.select("booking_id", "payer_account").join(
        bookings.select("booking_id", "account_id"), on="booking_id")
    parts.append(counted(paid, "payer", "payer_account"))
    del paid
    return pl.concat(parts)


BUYER_WEIGHT = 0.25
"""Weight of a shared patient that is nobody's held identity (see ``account_links``)."""


def account_links(
    identifiers: pl.DataFrame,
    extra_pairs: pl.DataFrame | None = None,
    *,
    max_sharing: int = 50,
    held_patients: set[str] | None = None,
) -> pl.DataFrame:
    """Weighted account-account links (a < b, weight, via) from shared identifiers plus
    ``extra_pairs`` (columns a, b, weight, via) such as laundering and lockstep pairs.

    When ``held_patients`` is given, a shared patient outside it (no invalid number,
    nonsense name or spread of its own: a real person who came to the visits) links at
    ``BUYER_WEIGHT`` instead of the patient weight. Such a patient is a family's relative
    or a scalper's customer; a customer who bought from two rings, or from a ring and a
    tout, says nothing about the rings being one. Identities a ring holds slots under
    are its own and link in full."""
    degree = identifiers.group_by("entity_type", "entity_id").agg(
        pl.col("account_id").n_unique().alias("d"))
    shared = identifiers.join(
        degree.filter((pl.col("d") >= 2) & (pl.col("d") <= max_sharing)),
        on=["entity_type", "entity_id"],
    ).select("account_id", "entity_type", "entity_id", "d")
    weights = pl.DataFrame({"entity_type": list(IDENTIFIER_WEIGHTS),
                            "type_weight": list(IDENTIFIER_WEIGHTS.values())})
    pairs = (
        shared.join(shared.select("entity_type", "entity_id",
                                  pl.col("account_id").alias("other")),
                    on=["entity_type", "entity_id"])
        .filter(pl.col("account_id") < pl.col("other"))
        .join(weights, on="entity_type")
    )
    if held_patients is not None:
        pairs = pairs.with_columns(
            pl.when((pl.col("entity_type") == "patient")
                    & ~pl.col("entity_id").is_in(sorted(held_patients)))
            .then(pl.lit(BUYER_WEIGHT)).otherwise(pl.col("type_weight")).alias("type_weight"),
            pl.when((pl.col("entity_type") == "patient")
                    & ~pl.col("entity_id").is_in(sorted(held_patients)))
            .then(pl.lit("buyer")).otherwise(pl.col("entity_type")).alias("entity_type"))
    pairs = (
        pairs.select(pl.col("account_id").alias("a"), pl.col("other").alias("b"),
                (pl.col("type_weight") / (pl.col("d") - 1)).alias("weight"),
                pl.col("entity_type").alias("via"))
    )
    if extra_pairs is not None and not extra_pairs.is_empty():
        ordered = extra_pairs.select(
            pl.min_horizontal("a", "b").alias("a"), pl.max_horizontal("a", "b").alias("b"),
            pl.col("weight").cast(pl.Float64), pl.col("via").cast(pl.String),
        ).filter(pl.col("a") != pl.col("b"))
        pairs = pl.concat([pairs, ordered])
    # Sorted, and summed in a fixed order: Leiden's result depends on the order of the
    # edges it is given, and group_by keeps none, so the same records gave different
    # rings from one run to the next.
    return pairs.sort("a", "b", "via", "weight").group_by("a", "b", maintain_order=True).agg(
        pl.col("weight").sum(), pl.col("via").unique().sort().str.join(",")
    ).sort("a", "b")


RESOLUTION = 2.0
"""Leiden's resolution for ring communities (see ``communities``)."""
SMALL_COMPONENT = 12
"""A connected group of at most this many accounts is one community whatever Leiden says."""


def communities(links: pl.DataFrame, accounts: list[str], *, seed: int = 0,
                core: set[str] | None = None) -> dict[str, int]:
    """Leiden communities (modularity at ``RESOLUTION``, weighted) over the given accounts;
    returns account -> community number. Accounts with no link each get their own
    community; a connected group of at most ``SMALL_COMPONENT`` accounts is kept whole, and
    communities tied to each other as strongly as within are merged back
    (``merge_shattered``)."""
    index = {account: i for i, account in enumerate(accounts)}
    inside = links.filter(pl.col("a").is_in(accounts) & pl.col("b").is_in(accounts)).sort(
        "a", "b")
    edges = [(index[a], index[b]) for a, b in inside.select("a", "b").iter_rows()]
    graph = ig.Graph(n=len(accounts), edges=edges)
    if not edges:
        return {account: i for i, account in enumerate(accounts)}
    # Modularity at resolution 2 (the RB configuration model): at resolution 1, rings that
    # share a few customers' or a broker's identifiers merged into one community of a
    # hundred accounts on the third generator's larger years; at 2 they split, while
    # fairslot's and the second generator's rings stay whole (measured: 8/8 and 9/9).
    partition = leidenalg.find_partition(
        graph, leidenalg.RBConfigurationVertexPartition,
        weights=inside.get_column("weight").to_list(), seed=seed, n_iterations=-1,
        resolution_parameter=RESOLUTION,
    )
    membership: list[int] = list(partition.membership)
    # Above resolution 1 the model would split even an isolated pair; a small connected
    # group linked to nothing else is kept whole (it is one group or none).
    offset = max(membership) + 1
    for number, component in enumerate(graph.connected_components()):
        if len(component) <= SMALL_COMPONENT:
            for i in component:
                membership[i] = offset + number
    membership = merge_shattered(inside, index, membership)
    result = {account: membership[i] for account, i in index.items()}
    if core is not None:
        result = split_weak_ties(inside, result, core)
    return result


def merge_shattered(inside: pl.DataFrame, index: dict[str, int],
                    membership: list[int]) -> list[int]:
    """Leiden's communities merged back, most tied first, while the weight between two of
    them is at least ``MERGE_SHARE`` of the weaker one's own internal weight (a community
    with none goes with the one it is most tied to). Above resolution 1 modularity splits
    any group holding more than ``1 / RESOLUTION`` of the graph's weight, however evenly
    its members are tied: a bot farm of seventy accounts sharing three devices, a few
    proxies and its wallets came out as pairs and single accounts beside the rest, and
    most of it in no ring. Two rings sharing a few buyers are tied far below half of
    either's own weight and stay apart."""
    return merge_tied(inside, index, membership)


def merge_tied(links: pl.DataFrame, index: dict[str, int], groups: list[int]) -> list[int]:
    """``groups`` (one number per account of ``index``) merged, most tied first, while the
    link weight between two groups is at least ``MERGE_SHARE`` of the weaker one's own
    internal weight (a group with none goes with the one it is most tied to)."""
    own: dict[int, float] = {}
    between: dict[tuple[int, int], float] = {}
    for a, b, weight in links.select("a", "b", "weight").iter_rows():
        ga, gb = groups[index[a]], groups[index[b]]
        if ga == gb:
            own[ga] = own.get(ga, 0.0) + weight
        else:
            key = (min(ga, gb), max(ga, gb))
            between[key] = between.get(key, 0.0) + weight
    renamed: dict[int, int] = {}
    while True:
        best: tuple[float, float, tuple[int, int]] | None = None
        for key, weight in between.items():
            weaker = min(own.get(key[0], 0.0), own.get(key[1], 0.0))
            ratio = weight / weaker if weaker > 0 else math.inf
            if ratio >= MERGE_SHARE and (best is None or (ratio, weight) > best[:2]):
                best = (ratio, weight, key)
        if best is None:
            break
        keep, gone = best[2]
        own[keep] = own.get(keep, 0.0) + own.pop(gone, 0.0) + between.pop(best[2])
        for key in [k for k in between if gone in k]:
            other = key[0] if key[1] == gone else key[1]
            weight = between.pop(key)
            merged = (min(keep, other), max(keep, other))
            between[merged] = between.get(merged, 0.0) + weight
        renamed[gone] = keep

    def final(number: int) -> int:
        while number in renamed:
            number = renamed[number]
        return number
    return [final(number) for number in groups]


STRONG_TIE = 1.0
"""Link weight of a strong tie: at least one identifier's worth shared by the pair only
(a payer, a device, a held identity), or several shared with a few others."""
MERGE_SHARE = 0.5
"""Two strongly tied groups of one community stay one ring when the weight between them
is at least this share of the weaker group's own internal weight."""


def split_weak_ties(links: pl.DataFrame, community: dict[str, int],
                    core: set[str]) -> dict[str, int]:
    """Split a community whose flagged groups are joined by weak ties only.

    Within each community, the groups connected by strong ties (``STRONG_TIE`` or more)
    are merged again, most tied first, while the weight between two of them is at least
    ``MERGE_SHARE`` of the weaker one's internal weight (a lone account, with none, goes
    with the group it is most tied to). What remains apart, with two or more ``core``
    (flagged) accounts per group, are separate rings: a handful of buyers both served, or
    a stranger's address, joins two tight groups; modularity merges them in a large graph
    (its resolution limit), but they are no ring's own. A sprawling farm whose members are
    each weakly tied to many others merges back whole."""
    by_number: dict[int, list[str]] = {}
    for account, number in community.items():
        by_number.setdefault(number, []).append(account)
    result = dict(community)
    fresh = max(community.values(), default=0) + 1
    for members in by_number.values():
        if sum(1 for m in members if m in core) < 4:
            continue
        inside = links.filter(pl.col("a").is_in(members) & pl.col("b").is_in(members))
        index = {account: i for i, account in enumerate(members)}
        strong = inside.filter(pl.col("weight") >= STRONG_TIE)
        graph = ig.Graph(n=len(members), edges=[
            (index[a], index[b]) for a, b in strong.select("a", "b").iter_rows()])
        group = [0] * len(members)
        for n, component in enumerate(graph.connected_components()):
            for i in component:
                group[i] = n
        group = merge_tied(inside, index, group)
        parts: dict[int, list[str]] = {}
        for account, i in index.items():
            parts.setdefault(group[i], []).append(account)
        if sum(1 for p in parts.values() if sum(1 for m in p if m in core) >= 2) < 2:
            continue
        for part in parts.values():
            for account in part:
                result[account] = fresh
            fresh += 1
    return result


def ring_subgraph(
    members: list[str], identifiers: pl.DataFrame, *, max_identifiers: int = 40,
) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    """The bipartite picture of one ring for the report: its accounts and the identifiers
    that at least two of them share (the most shared first, at most ``max_identifiers``).
    Returns (nodes as (entity_type, entity_id), edges as index pairs)."""
    mine = identifiers.filter(pl.col("account_id").is_in(members))
    shared = (
        mine.group_by("entity_type", "entity_id").agg(pl.col("account_id").n_unique().alias("n"))
        .filter(pl.col("n") >= 2).sort(["n", "entity_type", "entity_id"],
                                       descending=[True, False, False])
        .head(max_identifiers)
    )
    nodes: list[tuple[str, str]] = [("account", account) for account in sorted(members)]
    position = {node: i for i, node in enumerate(nodes)}
    for kind, entity in shared.select("entity_type", "entity_id").iter_rows():
        position[(kind, entity)] = len(nodes)
        nodes.append((kind, entity))
    edges = [
        (position[("account", account)], position[(kind, entity)])
        for account, kind, entity in mine.select("account_id", "entity_type", "entity_id")
        .iter_rows()
        if (kind, entity) in position and ("account", account) in position
    ]
    return nodes, sorted(set(edges))
