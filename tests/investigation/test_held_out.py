"""The issue's quality targets on records the detector was never tuned on: the third
generator (``thirdgen``, written without reading the detector, with look-alikes at the
centre of the genuine population), at seeds never used while changing the detector. The
calibration was fitted on fairslot's own generator only."""

from __future__ import annotations

import polars as pl
import pytest

from fairslot.investigation.evaluate import Quality, evaluate, read_labels
from fairslot.investigation.records import read_records
from fairslot.investigation.scoring import ASSOCIATION, Investigation, investigate
from tests.investigation import thirdgen

pytestmark = pytest.mark.slow

Run = tuple[Investigation, pl.DataFrame, Quality]


# Seeds 11 and 15 at scale 0.2 and seed 21 at scale 0.5 (a larger city, 17 rings): none
# was looked at while changing the detector (seeds 1-10, 12, 13, 14 and 31-34 were; seed
# 12 was held out until the tenth round spent it on tuning, see test_tenth_round.py), only
# measured. Seed 15 was first run on the tenth round's finished code.
# Each year is its own xdist group: its five tests run on one worker, which generates and
# investigates it once (ungrouped, both workers would each build every year).
@pytest.fixture(scope="module", params=[
    pytest.param((11, 0.2), id="seed11", marks=pytest.mark.xdist_group("held-out-11")),
    pytest.param((15, 0.2), id="seed15", marks=pytest.mark.xdist_group("held-out-15")),
    pytest.param((21, 0.5), id="seed21-0.5", marks=pytest.mark.xdist_group("held-out-21"))])
def held_out(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("held-out")
    seed, scale = request.param
    thirdgen.generate(folder, seed=seed, scale=scale)
    result = investigate(read_records(folder))
    labels = read_labels(folder / "labels.csv")
    return result, labels, evaluate(result.scores, labels)


def test_account_precision_and_recall_and_look_alikes_meet_the_targets(
        held_out: Run) -> None:
    _result, _labels, quality = held_out
    accounts = quality.of("account")
    assert accounts is not None
    assert accounts.precision >= 0.95, accounts
    assert accounts.recall >= 0.90, accounts
    assert quality.hard_cases > 300
    assert quality.hard_case_rate < 0.01, (quality.hard_cases_flagged, quality.hard_cases)


def test_rings_are_recovered(held_out: Run) -> None:
    """Seeds 11 and 21 recover 9 of 9 and 17 of 17 (measured 2026-11-28)."""
    _result, _labels, quality = held_out
    assert quality.true_rings >= 9
    assert quality.ring_recovery >= 0.95, (quality.rings_recovered, quality.true_rings)


def test_no_ring_member_is_there_by_association_alone(held_out: Run) -> None:
    """Every account in a ring has a finding of its own, not only association
    (``ring_link``, ``paid_by_hub``, ``dense_block``)."""
    result, _labels, _quality = held_out
    members = result.scores.filter((pl.col("entity_type") == "account")
                                   & pl.col("ring_id").is_not_null())
    own = result.findings.filter(
        (pl.col("entity_type") == "account") & (pl.col("strength") > 0)
        & ~pl.col("code").is_in(sorted(ASSOCIATION))).get_column("entity_id")
    assert set(members.get_column("entity_id").to_list()) <= set(own.to_list())


def test_ring_members_have_roles_from_their_own_evidence(held_out: Run) -> None:
    result, _labels, _quality = held_out
    members = result.scores.filter((pl.col("entity_type") == "account")
                                   & pl.col("ring_id").is_not_null())
    roles = set(members.get_column("role").to_list())
    assert roles <= {"developer", "holder", "broker", "reseller", "booker"}
    assert len(roles) >= 3, roles
    assert all(result.rings.get_column("roles").str.len_chars() > 0)


def test_institutional_accounts_are_not_suspects(held_out: Run) -> None:
    result, labels, _quality = held_out
    kinds = ("call_centre", "kiosk", "window", "referral_desk")
    institutional = labels.filter(pl.col("role").is_in([f"hard_case:{k}" for k in kinds])
                                  & (pl.col("entity_type") == "account"))
    flagged = result.scores.filter((pl.col("entity_type") == "account") & pl.col("flagged"))
    assert institutional.height > 0
    assert institutional.join(flagged, on="entity_id").is_empty()
