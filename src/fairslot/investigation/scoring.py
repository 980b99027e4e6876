"""Scores, rings and roles: the signals combined into one 0-1 score per entity, the rings
found in the link graph, and each member's part in its ring.

An account's score is the noisy-OR of its findings, ``1 - prod(1 - strength)``, taking each
reason code once at its strongest. Strengths are set so that one weak clue stays well under
the flag line (``flag_at``, 0.5) and only clues a household does not produce, or several
moderate ones together, cross it. Weak findings (below ``WEAK``) count once together: only
the strongest of them enters, since a busy honest family collects several by chance.

Rings are Leiden communities of the link graph holding at least two flagged accounts, split
where their strongly tied groups are joined only weakly (``graph.split_weak_ties``). An
account with evidence of its own that the rules did not flag joins its community's ring
when it is tied to two or more of the ring's flagged accounts with total link weight of at
least 1.0 (say, a payer or device used only by them), ``SPREAD_TIE`` of it beyond the one
member it is most tied to; tied to one member only, it may be that member's family or
customer, so it does not.
It also joins when it sits in the same dense block as two of the ring's flagged accounts and
shares an identifier with them (a crowd's quieter member).

Other entities (patients, payers, phones, devices, IPs) are scored by the share of their
bookings made by flagged accounts, combined with their own findings at half weight: a
payer that pays for strangers is suspicious, one that pays for a ring is caught.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import polars as pl

from fairslot.investigation.anomaly import account_features, anomaly_findings
from fairslot.investigation.calibration import THRESHOLD, calibrate
from fairslot.investigation.density import DenseBlock, dense_blocks
from fairslot.investigation.graph import (
    STRONG_TIE,
    account_identifiers,
    account_links,
    communities,
)
from fairslot.investigation.lockstep import LockstepGroup, lockstep_groups, lockstep_pairs
from fairslot.investigation.records import Records
from fairslot.investigation.rules import (
    FINDING_SCHEMA,
    RACE_SECONDS,
    Thresholds,
    fronts_for_software,
    institutional_accounts,
    ordinary_addresses,
    repeated_launder_ties,
    run_rules,
    staff_release_caught,
    without_platform_timing,
)

__all__ = ["ASSOCIATION", "OWN_EVIDENCE", "Investigation", "account_scores", "hub_resale",
           "investigate", "noisy_or"]

ENTITY_TYPES = ("account", "patient", "payer", "phone", "device", "ip")
_ROLE = {"ip": "ring_ip", "device": "ring_device", "phone": "ring_phone"}


@dataclasses.dataclass(slots=True)
class Investigation:
    """Everything a run found; ``scores`` holds every entity seen, flagged or not."""

    scores: pl.DataFrame
    """entity_type, entity_id, score, flagged, ring_id, role, reasons"""
    rings: pl.DataFrame
    findings: pl.DataFrame
    identifiers: pl.DataFrame
    links: pl.DataFrame
    blocks: list[DenseBlock]
    lockstep: list[LockstepGroup]
    launder_pairs: int
    thresholds: Thresholds
    flag_at: float
    min_score: float | None = None
    """When set (``--min-score``), ``suspects`` lists every entity scoring at least this,
    flagged or not: a review list below the flag line."""

    @property
    def suspects(self) -> pl.DataFrame:
        """Flagged entities (or all at ``min_score`` or above), highest score first, in the
        contract's columns."""
        chosen = pl.col("flagged") if self.min_score is None else (
            pl.col("flagged") | (pl.col("score") >= self.min_score))
        return (
            self.scores.filter(chosen)
            .sort(["score", "entity_type", "entity_id"], descending=[True, False, False])
            .select("entity_type", "entity_id", pl.col("score").round(4), "ring_id", "role",
                    "reasons")
        )


WEAK = 0.3
"""Findings below this strength are things an honest household does now and then (one
mistyped ID number, one lucky fast booking, one identity with a busy week, one payment from
a busy payer, an unusual but innocent profile)."""


def noisy_or(findings: pl.DataFrame) -> pl.DataFrame:
    """Per entity, ``1 - prod(1 - s)`` over its reason codes, each at its strongest.

    Weak findings (below ``WEAK``) enter together as one: only the strongest of them counts.
    Each is a chance event whose odds grow with how much an account books, so a busy
    honest family collects several of them in a year; adding them up as independent
    evidence would accuse it for being busy. They still rank and are still listed."""
    strongest = findings.group_by("entity_type", "entity_id", "code").agg(
        pl.col("strength").max(), pl.col("detail").first())
    weak = pl.col("strength") < WEAK
    # Strongest first; a weak finding counts only if no weak finding came before it.
    strongest = strongest.sort(["strength", "code"], descending=[True, False]).with_columns(
        pl.when(weak & (weak.cast(pl.Int32).cum_sum().over("entity_type", "entity_id") > 1))
        .then(0.0).otherwise(pl.col("strength")).alias("counted"))
    return strongest.group_by("entity_type", "entity_id").agg(
        (1.0 - (1.0 - pl.col("counted").clip(0.0, 0.999)).log().sum().exp()).alias("score"),
        pl.concat_str(pl.col("code"), pl.col("detail"), separator=": ")
        .sort_by(pl.col("strength"), descending=True).str.join("; ").alias("reasons"),
    )


ASSOCIATION = frozenset({"ring_link", "paid_by_hub", "dense_block"})
"""Findings that say whom an account is tied to, not what it did: being paid by a fan-out
payer, being tied to a ring's members, booking at the same release moments as a dense
block of others (a fast typist on a carrier's network is beside a crowd, not part of it).
They rank and group an account that has evidence of its own, and never make a suspect by
themselves."""
OWN_EVIDENCE = 0.25
"""The noisy-OR of an account's own findings (everything but ``ASSOCIATION``) it needs
before association counts at all: a clue of its own at least as strong as booking for
more patients than a household, or for two invalid identities."""
BESIDE = frozenset({"dense_block"})
"""Association by time alone: booking at the same release moments as a dense block of
others. On a carrier's network a genuine fast typist is beside a crowd at every release it
races, and races for a parent, a child and itself, which is one weak clue of its own
(``release_strangers``). So this association counts only above ``BESIDE_EVIDENCE``; ties
through identifiers and money (``ring_link``, ``paid_by_hub``) count from
``OWN_EVIDENCE``."""
BESIDE_EVIDENCE = 0.35
"""Own evidence an account needs before ``BESIDE`` counts: more than one weak clue."""
CONDUCT = frozenset({"grab_device"})
"""Findings about an identifier's own conduct (a device booking at release moments for many
accounts), not about who else used it: they count in full even when no flagged account
used it. A customer whose login a broker used is not flagged; the broker's device is."""
INSTITUTION_EXEMPT = frozenset({
    "many_patients", "invalid_id_number", "nonsense_name", "identity_spread", "launder_pair",
    "repeated_no_show", "paid_by_hub", "hub_resale", "anomaly", "release_strangers"})
"""Account findings that describe an institution's ordinary business (hundreds of
patients, the typos of a busy desk, walk-ins who change their mind), dropped for accounts
recognised as institutional; their patients and payers are still judged on their own."""


def account_scores(findings: pl.DataFrame, *, calibrated: bool = True) -> pl.DataFrame:
    """Per account: ``own`` (noisy-OR of its own findings) and ``score`` (with association
    too, but only when ``own`` reaches ``OWN_EVIDENCE``; calibrated to a probability unless
    ``calibrated`` is false), and the reasons."""
    accounts = findings.filter(pl.col("entity_type") == "account")
    own = noisy_or(accounts.filter(~pl.col("code").is_in(sorted(ASSOCIATION)))).select(
        "entity_id", pl.col("score").alias("own"))
    tied = noisy_or(accounts.filter(~pl.col("code").is_in(sorted(BESIDE)))).select(
        "entity_id", pl.col("score").alias("tied"))
    full = noisy_or(accounts)
    return (full.join(own, on="entity_id", how="left").join(tied, on="entity_id", how="left")
            .with_columns(pl.col("own").fill_null(0.0), pl.col("tied").fill_null(0.0))
            .with_columns(
                pl.when(pl.col("own") >= BESIDE_EVIDENCE).then(pl.col("score"))
                .when(pl.col("own") >= OWN_EVIDENCE).then(pl.col("tied"))
                .otherwise(pl.col("own")).alias("score"))
            .drop("tied")
            .with_columns(calibrate(pl.col("score")) if calibrated else pl.col("score")))


HUB_RESALE = 0.35
"""Strength of ``hub_resale``: booking for strangers with a shared wallet's money. Alone it
stays under the flag line; with the hub payments it describes (``paid_by_hub``), it
crosses it."""


def hub_resale(findings: pl.DataFrame) -> pl.DataFrame:
    """Accounts that booked ahead for more patients than a household (``many_patients``)
    and had three or more of those bookings paid by a fan-out payer that also pays for
    other accounts (``paid_by_hub`` at 0.4 or more): they book strangers' slots for a
    wallet that pays for strangers, which is a reseller's trade. Both halves are the
    account's own bookings (whom it booked for, who paid for them); neither alone is
    enough, since a carer books for neighbours and a family's payer pays for relatives
    on several accounts. Run after institutional findings were dropped."""
    accounts = findings.filter(pl.col("entity_type") == "account")
    many = accounts.filter(pl.col("code") == "many_patients").select(
        "entity_id", pl.col("detail").alias("patients"))
    paid = accounts.filter((pl.col("code") == "paid_by_hub") & (pl.col("strength") >= 0.4)
                           ).select("entity_id", pl.col("detail").alias("paid"))
    both = many.join(paid, on="entity_id").unique("entity_id").sort("entity_id")
    return _findings_frame(both.select(
        pl.lit("account").alias("entity_type"), "entity_id",
        pl.lit("hub_resale").alias("code"), pl.lit(HUB_RESALE).alias("strength"),
        pl.format("{}, and {}: strangers booked with a shared wallet's money",
                  pl.col("patients"), pl.col("paid")).alias("detail")))


def _group_findings(accounts: list[list[str]], code: str, strength: float,
                    detail: list[str]) -> pl.DataFrame:
    rows = [("account", account, code, strength, text)
            for members, text in zip(accounts, detail, strict=True) for account in members]
    return pl.DataFrame(rows, schema=FINDING_SCHEMA, orient="row")


def investigate(
    records: Records, thresholds: Thresholds | None = None, *, flag_at: float = THRESHOLD,
    seed: int = 0, calibrated: bool = True,
) -> Investigation:
    """Run every detector on the records and assemble scores, rings and roles. Account
    scores are calibrated probabilities (``calibration``) unless ``calibrated`` is false
    (the raw noisy-OR, which the calibration is fitted on)."""
    t = thresholds or Thresholds()
    if records.access_minutes is not None and t.clicks_per_minute < records.access_min_clicks:
        raise ValueError(f"the access rows were counted only for minutes with at least "
                         f"{records.access_min_clicks} requests, below the click threshold "
                         f"{t.clicks_per_minute}")
    # Draw and waitlist bookings are written by the platform at the release instant, and
    # staff book for whoever is at the counter: no timing rule reads a race into them.
    bookings, payments = without_platform_timing(records.bookings), records.payments
    findings, pairs = run_rules(bookings, payments, records.access, t,
                                access_minutes=records.access_minutes)
    # Touts: their own phone or payer behind other accounts' software bookings.
    fronting, fronted = fronts_for_software(bookings, payments, findings, t)
    findings = pl.concat([findings, fronting])
    # A desk's release-time holds caught by one wallet's accounts: findings, and ties
    # between the desk and its catchers for the link graph.
    caught, insider_ties = staff_release_caught(bookings, payments, t)
    findings = pl.concat([findings, caught])
    institutions = institutional_accounts(bookings, t, pairs)
    institution_ids = institutions.get_column("account_id").to_list()

    ls_pairs = lockstep_pairs(bookings)
    groups = lockstep_groups(ls_pairs)
    blocks = dense_blocks(bookings)
    findings = pl.concat([
        findings,
        _group_findings([g.accounts for g in groups], "lockstep", 0.5,
                        [f"booked the same sessions within seconds of {len(g.accounts) - 1} "
                         f"other account(s), on up to {g.sessions} releases "
                         f"(similarity up to {g.similarity:.2f})" for g in groups]),
        _group_findings([b.accounts for b in blocks], "dense_block", 0.4,
                        [f"in a dense block of {len(b.accounts)} accounts x {b.columns} "
                         f"release moments, density {b.density:.2f} "
                         f"({b.density / b.background:.1f}x the whole graph's)"
                         for b in blocks]),
        anomaly_findings(account_features(bookings, payments, t.fast_seconds)),
    ])
    if institution_ids:
        findings = pl.concat([
            findings.filter(~((pl.col("entity_type") == "account")
                              & pl.col("entity_id").is_in(institution_ids)
                              & pl.col("code").is_in(sorted(INSTITUTION_EXEMPT)))),
            _findings_frame(institutions.select(
                pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
                pl.lit("institutional").alias("code"), pl.lit(0.0).alias("strength"),
                pl.format("an institutional channel ({}); its {} patients are judged one by "
                          "one", pl.col("why"), pl.col("patients")).alias("detail"))),
        ])
        if not pairs.is_empty():
            pairs = pairs.filter(~pl.col("holder_account").is_in(institution_ids)
                                 & ~pl.col("rebook_account").is_in(institution_ids))

    findings = pl.concat([findings, hub_resale(findings)])
    identifiers = account_identifiers(bookings, payments)
    # The link graph and the ring joins read identifiers without the addresses that tie
    # nobody (crowd exits, carrier pools); the entities' own scores still see them all.
    ordinary = ordinary_addresses(bookings)
    tying = identifiers.filter(~((pl.col("entity_type") == "ip")
                                 & pl.col("entity_id").is_in(sorted(ordinary))))
    extra = []
    if not pairs.is_empty():
        # A pair whose sides share an account, device or IP is deliberate. An unlinked one
        # is a freed slot caught by whoever refreshes fastest: where two rings race for the
        # same experts, one's bots catch the other's cancellations release after release,
        # so unlinked pairs are evidence against the holder, never a tie between the two.
        extra.append(pairs.filter(pl.col("linked")).select(
            pl.col("holder_account").alias("a"), pl.col("rebook_account").alias("b"),
            pl.lit(1.0).alias("weight"), pl.lit("launder").alias("via")))
    if not insider_ties.is_empty():
        extra.append(insider_ties)
    software_ties = fronted.filter(pl.col("booker").is_not_null())
    if not software_ties.is_empty():
        # A front and the software it fronts for are one trade: a tie as strong as a linked
        # laundering pair.
        extra.append(software_ties.select(
            pl.col("account_id").alias("a"), pl.col("booker").alias("b"),
            pl.lit(1.0).alias("weight"), pl.lit("fronts").alias("via")).unique())
    repeated = repeated_launder_ties(pairs)
    if not repeated.is_empty():
        extra.append(repeated)
    if not ls_pairs.is_empty():
        extra.append(ls_pairs.select("a", "b", pl.col("similarity").alias("weight"),
                                     pl.lit("lockstep").alias("via")))
    scored = account_scores(findings, calibrated=calibrated)
    flagged = set(scored.filter(pl.col("score") >= flag_at).get_column("entity_id").to_list())
    # Accounts with evidence of their own: only these may join a ring.
    evidenced = set(scored.filter(pl.col("own") >= OWN_EVIDENCE).get_column("entity_id")
                    .to_list())
    # A front for a grabbing device counts among the device's regular users: the broker's
    # own accounts, not the customers' logins it booked into.
    device_fronts = fronted.filter(pl.col("device_id").is_not_null()).select(
        "account_id", pl.lit("device").alias("entity_type"),
        pl.col("device_id").alias("entity_id")).unique()
    grab = _grab_device_pairs(findings, pl.concat([
        tying, device_fronts.with_columns(
            pl.lit(GRAB_REGULAR, dtype=tying.schema["bookings"]).alias("bookings"))
        .select(tying.columns)]) if not device_fronts.is_empty() else tying,
        evidenced)
    if not grab.is_empty():
        extra.append(grab)
    hubs = _wide_hub_pairs(findings, tying, evidenced)
    if not hubs.is_empty():
        extra.append(hubs)
    held_patients = set(findings.filter(
        (pl.col("entity_type") == "patient") & pl.col("code").is_in(sorted(HELD_CODES))
        & (pl.col("strength") > 0)).get_column("entity_id").to_list())
    links = account_links(tying, pl.concat(extra) if extra else None,
                          held_patients=held_patients)

    # Rings: communities around the flagged accounts, among accounts with evidence.
    near = links.filter(
        (pl.col("a").is_in(flagged) | pl.col("b").is_in(flagged)) & (pl.col("weight") >= 0.25))
    candidates = sorted(flagged | ((set(near.get_column("a").to_list())
                                    | set(near.get_column("b").to_list())) & evidenced))
    community = communities(links, candidates, seed=seed, core=flagged)
    by_community: dict[int, list[str]] = {}
    for account, number in community.items():
        by_community.setdefault(number, []).append(account)
    ring_of: dict[str, int] = {}
    joined: list[tuple[str, str, str, float, str]] = []
    for number, members in by_community.items():
        core = [m for m in members if m in flagged]
        if len(core) < 2:
            continue
        for member in core:
            ring_of[member] = number
        core_set = set(core)
        ties = (
            links.filter(
                (pl.col("a").is_in(members) & pl.col("b").is_in(core_set))
                | (pl.col("b").is_in(members) & pl.col("a").is_in(core_set)))
            .with_columns(pl.when(pl.col("a").is_in(core_set)).then(pl.col("b"))
                          .otherwise(pl.col("a")).alias("outsider"))
            .filter(~pl.col("outsider").is_in(core_set)
                    & pl.col("outsider").is_in(sorted(evidenced)))
            .group_by("outsider").agg(pl.col("weight").sum(), pl.len().alias("members"),
                                      pl.col("weight").max().alias("strongest"))
            # Tied to the ring, not to one member: a member's relative, or a buyer who
            # paid for a member's booking, is tied to that member alone.
            .filter((pl.col("weight") >= 1.0) & (pl.col("members") >= 2)
                    & (pl.col("weight") - pl.col("strongest") >= SPREAD_TIE))
            .drop("strongest")
        )
        if not ties.is_empty():
            # One shared identifier can be a coincidence (two people mistyping an ID number
            # the same way); joining a ring takes at least two.
            core_ids = tying.filter(pl.col("account_id").is_in(core_set)).select(
                "entity_type", "entity_id").unique()
            shared = _one_person_once(
                tying.filter(pl.col("account_id").is_in(ties.get_column("outsider")
                                                              .to_list()))
                .join(core_ids, on=["entity_type", "entity_id"]),
                bookings, payments, core_set,
            ).group_by("account_id").agg(pl.len().alias("shared")).filter(
                pl.col("shared") >= 2)
            ties = ties.filter(pl.col("outsider").is_in(shared.get_column("account_id")
                                                        .to_list()))
        for outsider, weight, count in ties.iter_rows():
            ring_of[outsider] = number
            joined.append(("account", outsider, "ring_link", 0.55,
                           f"tied to {count} flagged ring members (link weight {weight:.2f})"))
        # A crowd grabbing by hand: accounts in the same dense block (the same release
        # moments, release after release) as two or more of the ring's flagged members,
        # that also share an identifier with them (a payer, a device, a home IP: anything
        # that the link graph counts, i.e. not a NAT shared by crowds). Two independent
        # ties, one of behaviour and one of identity, as above.
        for block in blocks:
            inside = set(block.accounts)
            if len(inside & core_set) < 2:
                continue
            outsiders = [a for a in inside - core_set if a not in ring_of and a in evidenced]
            if not outsiders:
                continue
            tied = (
                links.filter(pl.col("via").str.contains("patient|payer|phone|device|ip")
                             & ((pl.col("a").is_in(outsiders) & pl.col("b").is_in(core_set))
                                | (pl.col("b").is_in(outsiders) & pl.col("a").is_in(core_set))))
                .with_columns(pl.when(pl.col("a").is_in(core_set)).then(pl.col("b"))
                              .otherwise(pl.col("a")).alias("outsider"))
                .group_by("outsider").agg(pl.len().alias("members"))
            )
            for outsider, count in tied.sort("outsider").iter_rows():
                ring_of[outsider] = number
                joined.append((
                    "account", outsider, "ring_link", 0.55,
                    f"in a dense block with {len(inside & core_set)} flagged ring members and "
                    f"sharing an identifier with {count} of them"))
    # One operation's hands (wallets or grabbing devices that take the same release
    # moments, release after release) make one ring of the rings their accounts form.
    for accounts in release_operations(findings, bookings, payments, flagged, t):
        merge_rings(ring_of, flagged, accounts)
    # One wallet paying for most of two rings' members is one operation's till.
    for accounts in wallet_operations(findings, bookings, payments, flagged):
        merge_rings(ring_of, flagged, accounts)
    desk_rings = desk_operations(findings, insider_ties, ring_of, flagged,
                                 bookings=bookings, payments=payments)
    # A crowd grabbing by hand for one tout: flagged racers left out of every ring, who
    # race the same few doctors' releases from the same place.
    fresh = max(ring_of.values(), default=0) + 1
    for accounts in crowd_operations(findings, bookings, ring_of, flagged, t, pairs=pairs,
                                     links=links):
        # A ring whose flagged members are all the crowd's goes with it whole.
        theirs = {ring_of[a] for a in accounts if a in ring_of}
        theirs = {n for n in theirs
                  if all(a in accounts for a, m in ring_of.items() if m == n and a in flagged)}
        for account, number in list(ring_of.items()):
            if number in theirs:
                ring_of[account] = fresh
        for account in accounts:
            ring_of[account] = fresh
        fresh += 1
    if joined:
        findings = pl.concat([findings, pl.DataFrame(joined, schema=FINDING_SCHEMA,
                                                     orient="row")])
        scored = account_scores(findings, calibrated=calibrated)
        flagged = set(scored.filter(pl.col("score") >= flag_at)
                      .get_column("entity_id").to_list())

    # Number rings by strength: ring-01 is the strongest.
    score_of = dict(scored.select("entity_id", "score").iter_rows())
    ring_members: dict[int, list[str]] = {}
    for account, number in ring_of.items():
        if account in flagged:
            ring_members.setdefault(number, []).append(account)
    ordered = sorted(
        (n for n, m in ring_members.items() if len(m) >= 2 or n in desk_rings),
        key=lambda n: (-sum(score_of[a] for a in ring_members[n]) / len(ring_members[n]),
                       min(ring_members[n])))
    ring_name = {n: f"ring-{i + 1:02d}" for i, n in enumerate(ordered)}
    account_ring = pl.DataFrame(
        [(a, ring_name[n]) for n in ordered for a in ring_members[n]],
        schema={"account_id": pl.String, "ring_id": pl.String}, orient="row")

    scores = _all_scores(bookings, payments, identifiers, findings, scored.drop("own"),
                         account_ring, pairs, flagged, flag_at)
    rings = _ring_table(scores, bookings, account_ring, ordered, ring_name, ring_members,
                        score_of)
    return Investigation(scores, rings, findings, identifiers, links, blocks, groups,
                         pairs.height, t, flag_at)


def _one_person_once(shared: pl.DataFrame, bookings: pl.DataFrame, payments: pl.DataFrame,
                     core: set[str]) -> pl.DataFrame:
    """The identifiers (account_id, entity_type, entity_id) outsiders share with a ring's
    core, a person counted once: a phone or payer that the core's bookings carry only for
    patients the outsider shares with it is one of those people's own contact or wallet,
    given with them when the ring booked them. A customer's own account (or the carer who
    books that customer) shares the customer, their phone and perhaps their wallet with
    the brokers who sold them slots: one person, not three ties."""
    patients = shared.filter(pl.col("entity_type") == "patient").select(
        "account_id", pl.col("entity_id").alias("patient"))
    if patients.is_empty():
        return shared
    core_bookings = bookings.filter(pl.col("account_id").is_in(sorted(core))).select(
        "booking_id", "patient", "patient_phone")
    carried = pl.concat([
        core_bookings.select("patient", pl.lit("phone").alias("entity_type"),
                             pl.col("patient_phone").alias("entity_id")),
        core_bookings.join(payments.select("booking_id", "payer_account"), on="booking_id")
        .select("patient", pl.lit("payer").alias("entity_type"),
                pl.col("payer_account").alias("entity_id")),
    ]).drop_nulls().unique()
    # For each outsider and shared phone or payer: does the core carry it for anybody the
    # outsider does not share with it?
    details = shared.filter(pl.col("entity_type").is_in(["phone", "payer"]))
    others = (
        details.join(carried, on=["entity_type", "entity_id"])
        .join(patients, on=["account_id", "patient"], how="anti")
        .select("account_id", "entity_type", "entity_id").unique()
    )
    folded = details.join(others, on=["account_id", "entity_type", "entity_id"], how="anti")
    return shared.join(folded.select("account_id", "entity_type", "entity_id"),
                       on=["account_id", "entity_type", "entity_id"], how="anti")


HELD_CODES = frozenset({"invalid_id_number", "nonsense_name", "identity_spread"})
"""Patient findings that make an identity one a ring holds slots under (not a buyer)."""


SPREAD_TIE = 0.25
"""Link weight an account needs to a ring's members other than its most tied one to join
the ring (``ring_link``)."""
GRAB_REGULAR = 3
"""Bookings on a grabbing device that make an account one of its regular users."""
GRAB_SHARED = 2
"""Accounts two grabbing devices both booked into that make them one broker's."""


def _grab_device_pairs(findings: pl.DataFrame, identifiers: pl.DataFrame,
                       evidenced: set[str]) -> pl.DataFrame:
    """Links through a broker's grabbing devices (``grab_device``, their own conduct)
    between the accounts with evidence of their own that used them regularly
    (``GRAB_REGULAR`` bookings or more): one unit of evidence split among them. Devices
    that booked into ``GRAB_SHARED`` or more of the same accounts are one broker's hands
    (its customers' logins, used from each) and count as one. The customers' accounts,
    booked into a time or two, cannot be ring members and do not dilute the tie between
    the ring's own accounts (in the ordinary link, a device shared by 50 accounts ties
    each pair with 0.02)."""
    devices = sorted(set(findings.filter(
        (pl.col("entity_type") == "device") & (pl.col("code") == "grab_device")
        & (pl.col("strength") > 0)).get_column("entity_id").to_list()))
    used = identifiers.filter((pl.col("entity_type") == "device")
                              & pl.col("entity_id").is_in(devices))
    accounts_of: dict[str, set[str]] = {}
    for device, account in used.select("entity_id", "account_id").iter_rows():
        accounts_of.setdefault(device, set()).add(account)
    broker = _tied_groups(devices, lambda one, other: len(
        accounts_of.get(one, set()) & accounts_of.get(other, set())) >= GRAB_SHARED)
    users = used.filter(pl.col("account_id").is_in(sorted(evidenced))
                        & (pl.col("bookings") >= GRAB_REGULAR)).select(
        pl.col("entity_id").replace_strict(broker).alias("broker"),
        "account_id").unique()
    return _shared_pairs(users, "broker", "grab_device")


def _shared_pairs(users: pl.DataFrame, key: str, via: str) -> pl.DataFrame:
    """Links between the accounts that share one ``key`` (two or more of them): one unit
    of evidence split among them, each pair ``1 / (k - 1)``."""
    users = users.with_columns(pl.len().over(key).alias("k")).filter(pl.col("k") >= 2)
    return (
        users.join(users.select(key, pl.col("account_id").alias("b")), on=key)
        .filter(pl.col("account_id") < pl.col("b"))
        .select(pl.col("account_id").alias("a"), "b",
                (1.0 / (pl.col("k") - 1)).cast(pl.Float64).alias("weight"),
                pl.lit(via).alias("via"))
    )


MAX_SHARING = 50
"""Identifiers shared by more accounts than this are left out of the link graph
(``graph.account_links``)."""


def _wide_hub_pairs(findings: pl.DataFrame, identifiers: pl.DataFrame,
                    evidenced: set[str]) -> pl.DataFrame:
    """Links through a fan-out payer (``payer_fanout``) that paid for more accounts than
    the link graph's crowd cutoff (``MAX_SHARING``): one unit of evidence split among the
    accounts with evidence of their own it paid for. A crowd's exit address shared by
    hundreds ties nobody, but a wallet is one person's money: a draw farm's hubs paying
    for sixty accounts' wins are as much a tie as a hub paying for thirty, which the
    ordinary link keeps."""
    hubs = sorted(set(findings.filter(
        (pl.col("entity_type") == "payer") & (pl.col("code") == "payer_fanout")
        & (pl.col("strength") > 0)).get_column("entity_id").to_list()))
    paid = identifiers.filter((pl.col("entity_type") == "payer")
                              & pl.col("entity_id").is_in(hubs))
    wide = paid.group_by("entity_id").agg(pl.col("account_id").n_unique().alias("d")).filter(
        pl.col("d") > MAX_SHARING).get_column("entity_id")
    users = paid.filter(pl.col("entity_id").is_in(wide.to_list())
                        & pl.col("account_id").is_in(sorted(evidenced))).select(
        "entity_id", "account_id").unique()
    return _shared_pairs(users, "entity_id", "payer")


T = TypeVar("T")


def _tied_groups(items: Sequence[T], tied: Callable[[T, T], bool]) -> dict[T, T]:
    """Each item's group, named by one of its items: two items are in one group when
    ``tied`` holds between them, directly or through others (every pair is asked once)."""
    parent = {item: item for item in items}

    def root(item: T) -> T:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for i, one in enumerate(items):
        for other in items[i + 1:]:
            if tied(one, other):
                parent[root(other)] = root(one)
    return {item: root(item) for item in items}


def _findings_frame(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in FINDING_SCHEMA.items())


def _all_scores(
    bookings: pl.DataFrame, payments: pl.DataFrame, identifiers: pl.DataFrame,
    findings: pl.DataFrame, scored_accounts: pl.DataFrame, account_ring: pl.DataFrame,
    pairs: pl.DataFrame, flagged: set[str], flag_at: float,
) -> pl.DataFrame:
    accounts_all = bookings.select(pl.col("account_id").alias("entity_id")).unique()
    accounts = (
        accounts_all.join(scored_accounts.drop("entity_type"), on="entity_id", how="left")
        .join(account_ring.rename({"account_id": "entity_id"}), on="entity_id", how="left")
        .with_columns(pl.lit("account").alias("entity_type"), pl.col("score").fill_null(0.0),
                      pl.col("reasons").fill_null(""))
    )
    holders = set(pairs.get_column("holder_account").to_list()) if not pairs.is_empty() \
        else set()
    held_codes = {"invalid_id_number", "nonsense_name", "identity_spread"}
    holder_by_identity = set(
        findings.filter((pl.col("entity_type") == "account")
                        & ((pl.col("code").is_in(held_codes) & (pl.col("strength") >= 0.6))
                           | (pl.col("code") == "unused_holds")))
        .get_column("entity_id").to_list())
    def strong(*codes: str, at: float = 0.5) -> set[str]:
        return set(findings.filter((pl.col("entity_type") == "account")
                                   & pl.col("code").is_in(list(codes))
                                   & (pl.col("strength") >= at)).get_column("entity_id")
                   .to_list())

    # Roles, each from the member's own evidence (the first that applies):
    # developer: software books for it (machine-fast bookings, machine click rates);
    # holder: holds slots (cancelled sides of laundering, invalid or spread identities,
    # release grabs let go unpaid);
    # broker: buyer-facing, puts buyers into freed slots;
    # reseller: books for many strangers in the release race, or is paid by a shared hub;
    # booker: any other member.
    developers = strong("fast_after_release", "click_rate", at=0.6)
    brokers = (set(pairs.get_column("rebook_account").to_list()) - holders
               if not pairs.is_empty() else set())
    resellers = strong("many_patients") | strong("paid_by_hub", at=0.4)
    accounts = accounts.with_columns(
        (pl.col("score") >= flag_at).alias("flagged"),
        pl.when(pl.col("entity_id").is_in(sorted(developers))).then(pl.lit("developer"))
        .when(pl.col("entity_id").is_in(sorted(holders | holder_by_identity)))
        .then(pl.lit("holder"))
        .when(pl.col("entity_id").is_in(sorted(brokers))).then(pl.lit("broker"))
        .when(pl.col("entity_id").is_in(sorted(resellers))).then(pl.lit("reseller"))
        .otherwise(pl.lit("booker")).alias("role"),
    )

    # Every other entity: its own findings, and whether it is the ring's own. A phone, payer,
    # device or IP used once by a flagged account may be a buyer's, or a stranger's proxy
    # address: it counts as the ring's only when its uses are (nearly) all the flagged
    # accounts' and repeated (two flagged accounts, or three uses). Its own findings count
    # in full when a flagged account used it, at half weight otherwise.
    usage = identifiers.join(account_ring, on="account_id", how="left").with_columns(
        pl.col("account_id").is_in(sorted(flagged)).alias("by_flagged"))
    per_entity = usage.group_by("entity_type", "entity_id").agg(
        pl.col("bookings").sum().alias("uses"),
        pl.col("bookings").filter(pl.col("by_flagged")).sum().alias("flagged_uses"),
        pl.col("ring_id").filter(pl.col("by_flagged")).drop_nulls().mode().sort().first()
        .alias("ring_id"),
        pl.col("account_id").filter(pl.col("by_flagged")).n_unique().alias("flagged_accounts"),
    )
    own = noisy_or(findings.filter(pl.col("entity_type") != "account"))
    repeated = pl.min_horizontal(
        pl.lit(1.0),
        pl.when(pl.col("flagged_accounts") >= 2).then(1.0)
        .otherwise(((pl.col("flagged_uses") - 1) / 2.0).clip(0.0, 1.0)))
    share = pl.col("flagged_uses") / pl.col("uses")
    exclusive = pl.when(share >= 0.9).then(share).otherwise(0.0)
    # A device grabbing at release moments for many accounts is one pair of hands booking
    # for others: that is its own conduct and counts in full, whoever's accounts it used.
    conduct = noisy_or(findings.filter(pl.col("code").is_in(sorted(CONDUCT)))).select(
        "entity_type", "entity_id", pl.col("score").alias("conduct"))
    others = (
        per_entity.join(own, on=["entity_type", "entity_id"], how="left")
        .join(conduct, on=["entity_type", "entity_id"], how="left")
        .with_columns(pl.col("score").fill_null(0.0).alias("own"),
                      pl.col("conduct").fill_null(0.0))
        .with_columns(
            (1.0 - (1.0 - 0.9 * exclusive * repeated)
             * (1.0 - pl.when(pl.col("flagged_uses") > 0).then(pl.col("own"))
                .otherwise(pl.max_horizontal(0.5 * pl.col("own"), pl.col("conduct")))))
            .alias("score"),
            pl.concat_str(
                pl.when(pl.col("flagged_uses") > 0).then(pl.format(
                    "linked: {} of {} uses by {} flagged account(s)", pl.col("flagged_uses"),
                    pl.col("uses"), pl.col("flagged_accounts"))),
                pl.col("reasons"), separator="; ", ignore_nulls=True).fill_null("")
            .alias("reasons"),
        )
    )
    buyers = set(pairs.filter(pl.col("holder_account").is_in(flagged)).get_column("buyer")
                 .to_list()) if not pairs.is_empty() else set()
    held = set(findings.filter((pl.col("entity_type") == "patient")
                               & pl.col("code").is_in(held_codes)).get_column("entity_id")
               .to_list())
    hubs = set(findings.filter(pl.col("code") == "payer_fanout").get_column("entity_id")
               .to_list())
    others = others.with_columns(
        (pl.col("score") >= flag_at).alias("flagged"),
        pl.when(pl.col("entity_type") == "patient").then(
            pl.when(pl.col("entity_id").is_in(held)).then(pl.lit("held_identity"))
            .when(pl.col("entity_id").is_in(buyers)).then(pl.lit("buyer"))
            .otherwise(pl.lit("booked_identity")))
        .when(pl.col("entity_type") == "payer").then(
            pl.when(pl.col("entity_id").is_in(hubs) | (pl.col("flagged_accounts") >= 2))
            .then(pl.lit("payment_hub")).otherwise(pl.lit("payer")))
        .otherwise(pl.col("entity_type").replace_strict(_ROLE, default="member"))
        .alias("role"),
    )
    columns = ["entity_type", "entity_id", "score", "flagged", "ring_id", "role", "reasons"]
    result = pl.concat([accounts.select(columns), others.select(columns)])
    return result.with_columns(
        pl.when(pl.col("flagged")).then(pl.col("ring_id")).otherwise(None).alias("ring_id"),
        pl.col("score").clip(0.0, 1.0))


def _ring_table(
    scores: pl.DataFrame, bookings: pl.DataFrame, account_ring: pl.DataFrame,
    ordered: list[int], ring_name: dict[int, str], ring_members: dict[int, list[str]],
    score_of: dict[str, float],
) -> pl.DataFrame:
    rows = []
    flagged = scores.filter(pl.col("flagged") & pl.col("ring_id").is_not_null())
    counts = bookings.join(account_ring, on="account_id").group_by("ring_id").agg(
        pl.len().alias("bookings"))
    booking_count = dict(counts.iter_rows())
    for number in ordered:
        name = ring_name[number]
        members = flagged.filter(pl.col("ring_id") == name)

        def of(kind: str, role: str | None = None, frame: pl.DataFrame = members) -> list[str]:
            chosen = frame.filter(pl.col("entity_type") == kind)
            if role is not None:
                chosen = chosen.filter(pl.col("role") == role)
            return sorted(chosen.get_column("entity_id").to_list())

        member_scores = sorted((score_of[a] for a in ring_members[number]), reverse=True)
        # The ring's score: its members' mean, pulled down for a pair (two accounts can be
        # a couple) and up to the mean for larger groups.
        size_factor = 1.0 - math.exp(-len(member_scores) / 2.0)
        score = sum(member_scores) / len(member_scores) * (0.5 + 0.5 * size_factor)
        rows.append({
            "ring_id": name, "score": round(score, 4),
            **{f"{kind}s": len(of(kind)) for kind in ENTITY_TYPES},
            "bookings": booking_count.get(name, 0),
            "hubs": ";".join(of("payer", "payment_hub")),
            "holders": ";".join(of("account", "holder")),
            "roles": ";".join(f"{role}:{n}" for role, n in sorted(
                members.filter(pl.col("entity_type") == "account").group_by("role").len()
                .iter_rows())),
            "buyers": len(of("patient", "buyer")),
            "accounts_list": ";".join(of("account")),
        })
    schema = {"ring_id": pl.String, "score": pl.Float64,
              **{f"{kind}s": pl.Int64 for kind in ENTITY_TYPES}, "bookings": pl.Int64,
              "hubs": pl.String, "holders": pl.String, "roles": pl.String,
              "buyers": pl.Int64,
              "accounts_list": pl.String}
    return pl.DataFrame(rows, schema=schema)


OPERATION_RELEASES = 8
"""Release moments two wallets or two grabbing devices must both take (with flagged
accounts' bookings within ``fast_seconds``) before their timing makes them one operation's
hands."""
OPERATION_LIFT = 3.0
"""...and how many times more often than chance they must take the same moments (common
moments over ``|A| |B| / N``, N the release moments any flagged account took instantly).
Rings racing for the same experts share moments too: on the third generator's tuning years
two different rings' wallets reach 2.7 on eight or more common moments (5.2 on five), one
ring's wallets 3 to 5."""
OPERATION_ACCOUNTS = 2
"""Flagged accounts whose release-instant bookings two wallets both paid for that make them
one operation's (as ``GRAB_SHARED`` does for devices): never two rings' on the tuning
years."""
OPERATION_CODES = {"payer": "payer_fanout", "device": "grab_device"}
"""The identifiers that can be an operation's hands, each by its own conduct: a wallet that
pays for more patients than a household, a device that grabs for many accounts."""


def release_operations(findings: pl.DataFrame, bookings: pl.DataFrame,
                       payments: pl.DataFrame, flagged: set[str],
                       t: Thresholds) -> list[set[str]]:
    """Operations: wallets (``payer_fanout``) or grabbing devices (``grab_device``), each
    with evidence of its own, tied by their flagged accounts' release-time bookings (within
    ``fast_seconds`` of release for a wallet, ``grab_seconds`` for a device). Two of one
    kind are one operation's when those bookings fall on the same release moments,
    ``OPERATION_RELEASES`` or more of them and ``OPERATION_LIFT`` times chance; two wallets
    also when they both paid for ``OPERATION_ACCOUNTS`` or more of the same flagged
    accounts. Returns, per operation of two or more such identifiers, the flagged accounts
    whose release-time bookings they carried. IPs are never hands (a carrier's pool ties
    nobody), and accounts are only grouped here, never flagged: each one is already."""
    hands = {kind: set(findings.filter(
        (pl.col("entity_type") == kind) & (pl.col("code") == code) & (pl.col("strength") > 0))
        .get_column("entity_id").to_list()) for kind, code in OPERATION_CODES.items()}
    if not any(len(h) >= 2 for h in hands.values()) or not flagged:
        return []
    after = (pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
    timed = bookings.filter(pl.col("released_at").is_not_null()
                            & pl.col("account_id").is_in(sorted(flagged))).with_columns(
        after.alias("after")).filter(pl.col("after") >= 0)
    # Each kind of hand at its own rule's speed: a wallet's accounts' instant bookings
    # (``fast_seconds``, as ``instant_hub_paid``), a device's grabs (``grab_seconds``).
    fast = timed.filter(pl.col("after") < t.fast_seconds)
    grabs = timed.filter(pl.col("after") <= t.grab_seconds)
    used = pl.concat([
        fast.join(payments.select("booking_id", "payer_account"), on="booking_id").select(
            pl.lit("payer").alias("kind"), pl.col("payer_account").alias("entity"),
            "account_id", "released_at"),
        grabs.select(pl.lit("device").alias("kind"), pl.col("device_id").alias("entity"),
                     "account_id", "released_at"),
    ]).drop_nulls()
    total = {"payer": max(fast.get_column("released_at").n_unique(), 1),
             "device": max(grabs.get_column("released_at").n_unique(), 1)}
    moments: dict[tuple[str, str], set[object]] = {}
    accounts: dict[tuple[str, str], set[str]] = {}
    for kind, entity, account, released in used.iter_rows():
        if entity not in hands[kind]:
            continue
        moments.setdefault((kind, entity), set()).add(released)
        accounts.setdefault((kind, entity), set()).add(account)
    keys = sorted(k for k in moments if len(accounts[k]) >= 2)

    def one_operation(one: tuple[str, str], other: tuple[str, str]) -> bool:
        if one[0] != other[0]:
            return False
        common = len(moments[one] & moments[other])
        chance = len(moments[one]) * len(moments[other]) / total[one[0]]
        timing = common >= OPERATION_RELEASES and common >= OPERATION_LIFT * chance
        return timing or (one[0] == "payer" and len(
            accounts[one] & accounts[other]) >= OPERATION_ACCOUNTS)

    group = _tied_groups(keys, one_operation)
    operations: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for k in keys:
        operations.setdefault(group[k], []).append(k)
    return [set().union(*(accounts[k] for k in members))
            for members in operations.values() if len(members) >= 2]


def wallet_operations(findings: pl.DataFrame, bookings: pl.DataFrame,
                      payments: pl.DataFrame, flagged: set[str]) -> list[set[str]]:
    """Per wallet flagged on its own conduct (``payer_fanout``), the flagged accounts it
    paid for: one till's accounts, whatever their timing (a farm's hub pays for every
    account it runs, whichever devices and addresses they came from). ``merge_rings`` only
    merges rings that are mostly one wallet's, so a wallet that paid for a member or two of
    a ring leaves it alone."""
    wallets = sorted(set(findings.filter(
        (pl.col("entity_type") == "payer") & (pl.col("code") == "payer_fanout")
        & (pl.col("strength") > 0)).get_column("entity_id").to_list()))
    if not wallets or not flagged:
        return []
    paid = (payments.filter(pl.col("payer_account").is_in(wallets))
            .select("booking_id", "payer_account")
            .join(bookings.filter(pl.col("account_id").is_in(sorted(flagged)))
                  .select("booking_id", "account_id"), on="booking_id")
            .select("payer_account", "account_id").unique()
            .sort("payer_account", "account_id"))
    accounts: dict[str, set[str]] = {}
    for wallet, account in paid.iter_rows():
        accounts.setdefault(wallet, set()).add(account)
    return [accounts[w] for w in sorted(accounts) if len(accounts[w]) >= 2]


CROWD_TARGETS = 0.5
"""Cosine similarity of two racers' release-race bookings over doctors that makes them race
the same targets (``crowd_operations``)."""
CROWD_SIZE = 3
"""Racers a crowd needs before place and targets make it one (``crowd_operations``)."""


def crowd_operations(findings: pl.DataFrame, bookings: pl.DataFrame, ring_of: dict[str, int],
                     flagged: set[str], t: Thresholds, *, pairs: pl.DataFrame | None = None,
                     links: pl.DataFrame | None = None) -> list[set[str]]:
    """A family crowd grabbing by hand for one tout: each member has its own phone, wallet,
    device and home address, races releases for strangers (``release_strangers``, its own
    evidence) or holds a slot it raced by hand and hands it to a buyer (``launder_pair``
    on a hold booked ``fast_seconds`` to ``RACE_SECONDS`` after its release), and is flagged
    for it, but no identifier the link graph counts ties two of them, and they meet at only
    a few of each other's release moments. What they share is the tout's order book and the
    hall: the same few doctors' releases, raced from the same address (the hospital's
    Wi-Fi, a home's router, which tie nobody by themselves). Two flagged racers are one
    crowd's when they booked from one IP (any, ordinary ones too) and their raced bookings
    fall on the same doctors (cosine ``CROWD_TARGETS`` or more over the doctors); groups of
    ``CROWD_SIZE`` or more are returned. A racer already in a ring counts only when its
    links to that ring's other flagged members weigh less than a strong tie
    (``STRONG_TIE`` in all, given ``links``: one shared customer, a carrier's address), or
    when every flagged member of its ring is in the crowd and that ring's internal link
    weight is under a strong tie per member (the caller merges such rings; a pair passing
    holds to each other on shared phones is a team of its own). A crowd's members are
    grouped here, never flagged: each one is already, on its own conduct."""
    after = (pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
    by_hand = bookings.filter(pl.col("released_at").is_not_null()).with_columns(
        after.alias("after")).filter((pl.col("after") >= t.fast_seconds)
                                     & (pl.col("after") <= RACE_SECONDS))
    codes = findings.filter((pl.col("entity_type") == "account") & (pl.col("strength") > 0))
    strangers = set(codes.filter(pl.col("code") == "release_strangers")
                    .get_column("entity_id").to_list())
    holders: set[str] = set()
    if pairs is not None and not pairs.is_empty():
        launder = set(codes.filter(pl.col("code") == "launder_pair")
                      .get_column("entity_id").to_list())
        raced_holds = pairs.join(by_hand.select(pl.col("booking_id").alias("held_booking")),
                                 on="held_booking")
        holders = set(raced_holds.get_column("holder_account").to_list()) & launder
    racers = sorted((strangers | holders) & flagged)
    if len(racers) < CROWD_SIZE:
        return []
    mine = bookings.filter(pl.col("account_id").is_in(racers))
    raced = by_hand.filter(pl.col("account_id").is_in(racers))
    targets: dict[str, dict[str, int]] = {}
    for account, doctor, n in raced.group_by("account_id", "doctor_id").len().iter_rows():
        targets.setdefault(account, {})[doctor] = n
    places: dict[str, set[str]] = {}
    for account, ip in mine.select("account_id", "ip").drop_nulls().unique().iter_rows():
        places.setdefault(account, set()).add(ip)

    def cosine(one: dict[str, int], other: dict[str, int]) -> float:
        dot = sum(n * other.get(d, 0) for d, n in one.items())
        norm = math.sqrt(sum(n * n for n in one.values()) * sum(n * n for n in other.values()))
        return dot / norm if norm else 0.0

    def one_crowd(one: str, other: str) -> bool:
        return bool(places.get(one, set()) & places.get(other, set())) and cosine(
            targets.get(one, {}), targets.get(other, {})) >= CROWD_TARGETS

    group = _tied_groups(racers, one_crowd)
    crowds: dict[str, set[str]] = {}
    for account in racers:
        crowds.setdefault(group[account], set()).add(account)
    members: dict[int, set[str]] = {}
    for account, number in ring_of.items():
        if account in flagged:
            members.setdefault(number, set()).add(account)
    # What holds a racer in its ring: its link weight to the ring's other flagged members,
    # all together (a farm's member is tied weakly to many).
    tie: dict[str, float] = {}
    inside: dict[int, float] = {}
    if links is not None:
        for a, b, weight in links.select("a", "b", "weight").iter_rows():
            if a in flagged and b in flagged and a in ring_of and ring_of.get(b) == ring_of[a]:
                tie[a] = tie.get(a, 0.0) + weight
                tie[b] = tie.get(b, 0.0) + weight
                inside[ring_of[a]] = inside.get(ring_of[a], 0.0) + weight
    held = {a for a, weight in tie.items() if weight >= STRONG_TIE}
    result = []
    for _, crowd in sorted(crowds.items()):
        # A ring of racers goes with the crowd whole when its members are tied by less
        # than a strong tie apiece; a team bound by its own holds and phones stays apart.
        free = {a for a in crowd
                if a not in ring_of or (links is not None and a not in held)
                or (members[ring_of[a]] <= crowd and links is not None
                    and inside.get(ring_of[a], 0.0) < STRONG_TIE * len(members[ring_of[a]]))}
        if len(free) >= CROWD_SIZE:
            result.append(free)
    return result


DESK_WALLET = 0.8
"""Strength of ``staff_release_wallet`` (a wallet paying for twice a household's worth of
one staff channel's release-time bookings) that makes a desk a ring of its own."""


DESK_HANDS = 3
"""Bookings of its own paid by a desk's selling wallet that put a flagged account left in
no ring into the desk's ring (``desk_operations``)."""


def desk_operations(findings: pl.DataFrame, insider_ties: pl.DataFrame,
                    ring_of: dict[str, int], flagged: set[str], *,
                    bookings: pl.DataFrame | None = None,
                    payments: pl.DataFrame | None = None) -> set[int]:
    """A staff channel booking releases for one wallet's buyers is an insider's trade, and
    the police need it as one: the desk login with the wallets that paid for it (they are
    the ring's by ``linked``) and the accounts that caught its freed holds (``insider``
    ties), nobody else. A desk serves hundreds of walk-ins, so a shared patient, phone or
    wallet with some other flagged account (a helper whose elders walked in, a broker's
    customer) ties it to no ring; it is taken out of such a ring into one of its own,
    which may hold the desk alone: its own evidence is a wallet's, not one account's.
    Given the bookings and payments, a flagged account in no ring, or in the ring the desk
    was taken out of, with ``DESK_HANDS`` or more of its own bookings paid by the wallet
    the desk sells to (a payer with ``staff_release_wallet`` that paid the desk's bookings)
    goes with the desk: the wallet's other hands, a broker reselling beside the desk,
    flagged on its own conduct (the tie only groups it).
    Changes ``ring_of`` in place; returns the desks' ring numbers."""
    desks = sorted(set(findings.filter(
        (pl.col("entity_type") == "account") & (pl.col("code") == "staff_release_wallet")
        & (pl.col("strength") >= DESK_WALLET)).get_column("entity_id").to_list()) & flagged)
    numbers: set[int] = set()
    if not desks:
        return numbers
    catchers: dict[str, set[str]] = {}
    for a, b in insider_ties.select("a", "b").iter_rows():
        catchers.setdefault(a, set()).add(b)
    fresh = max(ring_of.values(), default=0) + 1
    former: dict[str, int | None] = {}
    for desk in desks:
        own = {c for c in catchers.get(desk, set()) if c in flagged}
        number = ring_of.get(desk)
        former[desk] = number
        if number is not None and own and all(
                ring_of.get(c) == number for c in own):
            numbers.add(number)  # already the desk and its catchers' ring
            continue
        for member in sorted(own | {desk}):
            ring_of[member] = fresh
        numbers.add(fresh)
        fresh += 1
    if bookings is None or payments is None:
        return numbers
    wallets = findings.filter((pl.col("entity_type") == "payer")
                              & (pl.col("code") == "staff_release_wallet")).select(
        pl.col("entity_id").alias("payer_account")).unique()
    if wallets.is_empty():
        return numbers
    paid = (payments.select("booking_id", "payer_account").unique("booking_id")
            .join(wallets, on="payer_account")
            .join(bookings.select("booking_id", "account_id"), on="booking_id"))
    desk_wallets = paid.filter(pl.col("account_id").is_in(desks)).select(
        "account_id", "payer_account").unique()
    hands = (paid.filter(pl.col("account_id").is_in(sorted(flagged - set(desks))))
             .group_by("account_id", "payer_account").agg(pl.len().alias("n"))
             .filter(pl.col("n") >= DESK_HANDS))
    for desk, wallet in desk_wallets.sort("account_id", "payer_account").iter_rows():
        for hand in sorted(hands.filter(pl.col("payer_account") == wallet)
                           .get_column("account_id").to_list()):
            # In no ring, or in the one the desk was taken out of: the wallet's hands go
            # with the desk. A hand in some other ring stays there.
            if ring_of.get(hand) is None or (former[desk] is not None
                                             and ring_of.get(hand) == former[desk]):
                ring_of[hand] = ring_of[desk]
    return numbers


def merge_rings(ring_of: dict[str, int], flagged: set[str], accounts: set[str]) -> None:
    """Merge, in place, the rings that are mostly one operation's ``accounts``: those with
    two or more of them among their flagged members, making at least half of those. A ring
    that merely has one member the operation also served is left alone, and nobody joins a
    ring here who was not in one (every member has evidence of its own already)."""
    members: dict[int, list[str]] = {}
    for account, number in ring_of.items():
        if account in flagged:
            members.setdefault(number, []).append(account)
    theirs = sorted(n for n, m in members.items()
                    if sum(1 for a in m if a in accounts) >= 2
                    and 2 * sum(1 for a in m if a in accounts) >= len(m))
    if len(theirs) < 2:
        return
    keep = theirs[0]
    for account, number in list(ring_of.items()):
        if number in theirs:
            ring_of[account] = keep
