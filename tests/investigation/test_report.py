"""The report: self-contained, and every text from the records escaped."""

from __future__ import annotations

import datetime as dt
import re

from fairslot.investigation import report
from fairslot.investigation.records import read_records
from fairslot.investigation.report import RunInfo, render_report, write_outputs
from fairslot.investigation.scoring import Investigation, investigate

from .conftest import VALID_IDS, WriteRecords, booking


def _ring_rows() -> list[dict[str, object]]:
    # Two bot accounts booking nonsense identities within a second of release, laundering.
    rows: list[dict[str, object]] = []
    for i in range(6):
        account = f"<script>alert({i % 2})</script>"
        day = f"2025-03-{i + 1:02d}"
        rows.append(booking(f"b{i}", account_id=account, patient_name="<b>561</b>",
                            patient_id_number=f"1101011980{i:02d}", device_id="<img src=x>",
                            created_at=f"{day}T07:30:00.500+08:00",
                            released_at=f"{day}T07:30:00+08:00",
                            session_start=f"2025-04-{i + 1:02d}T08:00:00+08:00",
                            status="cancelled", cancelled_at=f"{day}T09:00:00+08:00"))
        rows.append(booking(f"r{i}", account_id=f"<script>alert({(i + 1) % 2})</script>",
                            patient_id_number=VALID_IDS[i], device_id="<img src=x>",
                            created_at=f"{day}T09:00:05+08:00",
                            released_at=f"{day}T07:30:00+08:00",
                            session_start=f"2025-04-{i + 1:02d}T08:00:00+08:00"))
    return rows


def test_names_like_script_tags_appear_escaped_in_the_report(
        write_records: WriteRecords) -> None:
    folder = write_records(_ring_rows())
    records = read_records(folder)
    result = investigate(records)
    assert result.rings.height == 1
    run = RunInfo(str(folder), dt.datetime(2025, 5, 1, tzinfo=dt.UTC), 1.0, "Asia/Shanghai")
    paths = write_outputs(folder / "out", result, records, run)
    html = paths["report.html"].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(0)&lt;/script&gt;" in html
    assert "<script" not in html
    assert "<img" not in html and "<b>561" not in html
    assert "<svg" in html


def test_the_report_fetches_nothing_from_outside(write_records: WriteRecords) -> None:
    folder = write_records(_ring_rows())
    records = read_records(folder)
    run = RunInfo(str(folder), dt.datetime(2025, 5, 1, tzinfo=dt.UTC), 1.0, "Asia/Shanghai")
    html = write_outputs(folder / "out", investigate(records), records, run)[
        "report.html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html


def test_suspects_csv_has_the_contract_columns_highest_risk_first(
        write_records: WriteRecords) -> None:
    import polars as pl

    folder = write_records(_ring_rows())
    records = read_records(folder)
    run = RunInfo(str(folder), dt.datetime(2025, 5, 1, tzinfo=dt.UTC), 1.0, "Asia/Shanghai")
    paths = write_outputs(folder / "out", investigate(records), records, run)
    suspects = pl.read_csv(paths["suspects.csv"], infer_schema=False)
    assert suspects.columns[:5] == ["entity_type", "entity_id", "score", "ring_id", "reasons"]
    scores = suspects.get_column("score").cast(pl.Float64).to_list()
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    rings = pl.read_csv(paths["rings.csv"], infer_schema=False)
    assert {"ring_id", "score", "accounts", "bookings", "hubs", "holders", "buyers"} <= set(
        rings.columns)


def _both_reports(write_records: WriteRecords) -> tuple[Investigation, str, str]:
    """A ring's records investigated, and the report in Chinese and in English."""
    folder = write_records(_ring_rows())
    records = read_records(folder)
    result = investigate(records)
    run = RunInfo(str(folder), dt.datetime(2025, 5, 1, tzinfo=dt.UTC), 1.0, "Asia/Shanghai")
    return (result, render_report(result, records, run),
            render_report(result, records, run, lang="en"))


def test_the_report_speaks_chinese_by_default_and_english_on_request(
        write_records: WriteRecords) -> None:
    _result, chinese, english = _both_reports(write_records)
    assert '<html lang="zh-CN">' in chinese and "<h2>团伙</h2>" in chinese
    assert "<h2>Rings</h2>" not in chinese
    assert '<html lang="en">' in english and "<h2>Rings</h2>" in english
    assert 'name="viewport"' in chinese  # readable on a phone


def test_every_text_of_the_report_has_a_chinese_translation() -> None:
    asked = {"".join(re.findall(r'"([^"]*)"', call)) for call in
             re.findall(r'\bt\(((?:\s*"[^"]*")+)', report._TEMPLATE)}
    asked |= set(re.findall(r"\bt\('([^']*)'", report._TEMPLATE))
    assert len(asked) > 40
    t = report.translator("zh-CN")
    untranslated = sorted(text for text in asked
                          if t(text, **dict.fromkeys(re.findall(r"{(\w+)}", text), 1))
                          == text.format(**dict.fromkeys(re.findall(r"{(\w+)}", text), 1)))
    assert untranslated == []


def test_the_chinese_report_explains_each_reason_in_chinese(
        write_records: WriteRecords) -> None:
    _result, chinese, english = _both_reports(write_records)
    assert "cancel-then-rebook pair(s)" in english and "booking(s) within" in english
    assert "cancel-then-rebook pair(s)" not in chinese and "booking(s) within" not in chinese
    assert "launder_pair: 有 " in chinese and "秒内退号后重挂" in chinese
    assert "fast_after_release: " in chinese and "放号后" in chinese


def test_every_explanation_a_rule_writes_has_a_chinese_form() -> None:
    from pathlib import Path

    from fairslot.investigation import reasons, rules, scoring

    written = set()
    for module in (rules, scoring):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        for call in re.findall(r'pl\.format\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)', source):
            written.add("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', call)).replace('\\"', '"'))
    assert len(written) > 15
    known = {english for english, _chinese in reasons.ZH_TEMPLATES}
    # Made of other explanations, or split at "; " in the reasons column.
    composed = {
        "an institutional channel ({}); its {} patients are judged one by one":
            "institutional: an institutional channel (100.0% of its bookings through a "
            "staff channel); its 70 patients are judged one by one",
        "{}, and {}: strangers booked with a shared wallet's money":
            "hub_resale: booked for 7 distinct patients (a household is at most 5), and 8 "
            "of its bookings paid by 3 fan-out payer(s): strangers booked with a shared "
            "wallet's money",
        "linked: {} of {} uses by {} flagged account(s)":
            "linked: 1 of 2 uses by 1 flagged account(s)",
    }
    assert written - known == set(composed)
    examples = [f"many_patients: {english.replace('{}', '7')}" for english in known]
    for example in [*examples, *composed.values()]:
        chinese = reasons.translate_reasons(example, "zh-CN")
        explained = [part.partition(": ")[2] or part for part in chinese.split("；")]
        assert not any(re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", part) for part in explained), (
            chinese)
    assert reasons.translate_reasons(examples[0], "en") == examples[0]


def test_the_chinese_report_names_entity_types_and_roles_in_chinese(
        write_records: WriteRecords) -> None:
    result, chinese, english = _both_reports(write_records)
    roles = set(result.suspects.get_column("role").to_list())
    assert roles  # the ring's members have roles
    cells = set(re.findall(r'<td class="role">([^<]*)</td>', chinese))
    assert cells and not cells & roles  # no role left as its code
    assert cells <= set(report._ROLES_ZH.values())
    assert set(re.findall(r'<td class="role">([^<]*)</td>', english)) <= roles
    assert "<tr><td>账户</td>" in chinese and "<tr><td>account</td>" in english
    assert "<tr><td>account</td>" not in chinese
    # Long lists of identifiers wrap on a phone rather than widening the page.
    assert "p,h1,h2,h3{overflow-wrap:anywhere}" in chinese


def test_every_role_and_entity_type_the_scoring_writes_has_a_chinese_word() -> None:
    from pathlib import Path

    from fairslot.investigation import graph, scoring

    source = Path(scoring.__file__ or "").read_text(encoding="utf-8")
    written = set(re.findall(r'\.then\(pl\.lit\("([a-z_]+)"\)\)', source))
    written |= set(re.findall(r'\.otherwise\(pl\.lit\("([a-z_]+)"\)\)', source))
    written |= set(scoring._ROLE.values()) | {"member"}
    assert {"holder", "broker", "buyer", "payment_hub", "ring_ip"} <= written
    assert written <= set(report._ROLES_ZH)
    kinds = set(scoring.ENTITY_TYPES) | set(
        re.findall(r'then\(pl\.lit\("([a-z_]+)"\)\)\.otherwise\(pl\.col\("entity_type"\)\)',
                   Path(graph.__file__ or "").read_text(encoding="utf-8")))
    assert "buyer" in kinds and kinds <= set(report._KINDS_ZH)


def test_the_report_masks_id_numbers_and_the_csv_keeps_them(
        write_records: WriteRecords) -> None:
    # An export with clear values (--pii clear, or another system's): the report is read
    # in a browser, so it shows them masked as every page does; suspects.csv keeps them for
    # the follow-up.
    folder = write_records(_ring_rows())
    records = read_records(folder)
    result = investigate(records)
    patients = result.suspects.filter(result.suspects["entity_type"] == "patient")[
        "entity_id"].to_list()
    assert patients
    run = RunInfo(str(folder), dt.datetime(2025, 5, 1, tzinfo=dt.UTC), 1.0, "Asia/Shanghai")
    paths = write_outputs(folder / "out", result, records, run)
    html = paths["report.html"].read_text(encoding="utf-8")
    csv = paths["suspects.csv"].read_text(encoding="utf-8")
    for number in patients:
        assert number not in html and number in csv
        assert f"{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}" in html
    assert report.masked("h:0123456789abcdef01234567", "patient") == "h:0123456789abcdef01234567"
    assert report.masked("13812345678", "phone") == "138****5678"
    assert report.masked("acct-42", "account") == "acct-42"
