"""The run's outputs: ``suspects.csv``, ``rings.csv`` and a self-contained ``report.html``.

The report is one file with no external references (no scripts, fonts or images to fetch)
so that it opens offline and can travel as evidence. Every piece of text from the records
goes through Jinja2's autoescaping; ring graphs are inline SVG built in the template, so they
are escaped the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import igraph as ig
import jinja2
import polars as pl

from fairslot.clock import ZONE_NAMES
from fairslot.csvsafe import neutralise, private_file
from fairslot.domain.identity import mask_id_number, mask_phone
from fairslot.investigation.evaluate import Quality
from fairslot.investigation.graph import ring_subgraph
from fairslot.investigation.reasons import translate_reasons
from fairslot.investigation.records import Records
from fairslot.investigation.scoring import Investigation

__all__ = ["LANGUAGES", "RunInfo", "render_report", "translator", "write_outputs"]

_COLOURS = {"account": "#c0392b", "patient": "#2471a3", "payer": "#d68910",
            "phone": "#7d3c98", "device": "#117864", "ip": "#566573"}


def masked(value: object, kind: str) -> str:
    """An entity as the report shows it: ID numbers, phones and payer accounts masked as on
    every page (docs/pages.md), whoever reads the report; a pseudonym (``h:``, the
    platform's default export) as it is. suspects.csv and rings.csv keep what the records
    hold, for the follow-up."""
    text = str(value)
    if kind not in ("patient", "phone", "payer") or text.startswith("h:"):
        return text
    return mask_phone(text) if kind == "phone" else mask_id_number(text)


@dataclasses.dataclass(frozen=True, slots=True)
class RunInfo:
    """How the run was made, for the report's last section."""

    folder: str
    started: dt.datetime
    seconds: float
    zone: str
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Drawing:
    width: int
    height: int
    nodes: list[dict[str, str | float | int]]
    edges: list[tuple[float, float, float, float]]


def _draw(members: list[str], investigation: Investigation, seed: int = 0) -> _Drawing:
    nodes, edges = ring_subgraph(members, investigation.identifiers)
    width, height = 560, 360
    if len(nodes) == 1:
        coords = [(0.5, 0.5)]
    else:
        graph = ig.Graph(n=len(nodes), edges=edges)
        layout = graph.layout_fruchterman_reingold(
            seed=[[math.cos(i), math.sin(i)] for i in range(len(nodes))], niter=300)
        xs, ys = zip(*layout.coords, strict=True)
        span_x = (max(xs) - min(xs)) or 1.0
        span_y = (max(ys) - min(ys)) or 1.0
        coords = [((x - min(xs)) / span_x, (y - min(ys)) / span_y) for x, y in layout.coords]
    points = [(30 + x * (width - 60), 25 + y * (height - 50)) for x, y in coords]
    drawn: list[dict[str, str | float | int]] = [
        {"x": round(px, 1), "y": round(py, 1), "kind": kind, "label": entity[:18],
         "entity": entity, "colour": _COLOURS.get(kind, "#000"),
         "r": 7 if kind == "account" else 5}
        for (kind, entity), (px, py) in zip(nodes, points, strict=True)
    ]
    lines = [(round(points[a][0], 1), round(points[a][1], 1), round(points[b][0], 1),
              round(points[b][1], 1)) for a, b in edges]
    return _Drawing(width, height, drawn, lines)


_TEMPLATE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ t("fairslot investigation report") }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1em;color:#222;max-width:1200px}
p,h1,h2,h3{overflow-wrap:anywhere} td,th{overflow-wrap:break-word} .role{white-space:nowrap}
table{border-collapse:collapse;margin:.5em 0 1.5em;display:block;overflow-x:auto;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3} .num{text-align:right} .reasons{font-size:12px;min-width:16em}
svg{border:1px solid #ddd;background:#fcfcfc;max-width:100%;height:auto}
.legend span{margin-right:1em}
h2{border-bottom:2px solid #444;padding-bottom:3px;margin-top:2em}
</style></head><body>
<h1>{{ t("fairslot investigation report") }}</h1>
<p>{{ t("Records from {folder}, read {when} ({zone}); the run took {seconds} s.",
       folder=run.folder, when=run.started.strftime("%Y-%m-%d %H:%M"), zone=t(zone_label),
       seconds="%.1f"|format(run.seconds)) }}</p>

<h2>{{ t("Summary") }}</h2>
<table><tr><th>{{ t("entity type") }}</th><th>{{ t("seen") }}</th><th>{{ t("flagged") }}</th></tr>
{% for kind, seen, flagged in summary %}
<tr><td>{{ kinds(kind) }}</td><td class="num">{{ seen }}</td><td class="num">{{ flagged }}</td></tr>
{% endfor %}</table>
<p>{{ t("{rings} suspected ring(s); {pairs} cancel-then-rebook pair(s); {lockstep} lockstep "
       "group(s); {blocks} dense block(s). Scores run from 0 to 1; an entity is flagged at "
       "{flag_at} or above.", rings=rings|length, pairs=launder_pairs, lockstep=lockstep,
       blocks=blocks, flag_at=flag_at) }}</p>

{% if quality %}
<h2>{{ t("Quality against the labels") }}</h2>
<table><tr><th>{{ t("entity type") }}</th><th>{{ t("ring members") }}</th>
<th>{{ t("flagged") }}</th><th>{{ t("precision") }}</th><th>{{ t("recall") }}</th><th>F1</th>
<th>{{ t("average precision") }}</th></tr>
{% for q in quality.by_type %}
<tr><td>{{ kinds(q.entity_type) }}</td><td class="num">{{ q.positives }}</td>
<td class="num">{{ q.flagged }}</td><td class="num">{{ "%.3f"|format(q.precision) }}</td>
<td class="num">{{ "%.3f"|format(q.recall) }}</td><td class="num">{{ "%.3f"|format(q.f1) }}</td>
<td class="num">{{ "%.3f"|format(q.average_precision) }}</td></tr>
{% endfor %}</table>
<p>{{ t("Ring recovery: {found} of {rings} true rings of 3+ accounts matched with Jaccard "
       "at least 0.5 ({share}). Hard-case genuine accounts flagged: {hard_flagged} of {hard} "
       "({rate}%).", found=quality.rings_recovered, rings=quality.true_rings,
       share="%.3f"|format(quality.ring_recovery), hard_flagged=quality.hard_cases_flagged,
       hard=quality.hard_cases, rate="%.2f"|format(100 * quality.hard_case_rate)) }}</p>
<h3>{{ t("Accounts: precision and recall against the threshold") }}</h3>
<p>{{ t("Account scores are calibrated probabilities; the flag line is {flag_at}. A lower "
       "line (--min-score) finds more ring members and names more innocents.",
       flag_at=flag_at) }}</p>
<table><tr><th>{{ t("threshold") }}</th><th>{{ t("accounts at or above") }}</th>
<th>{{ t("precision") }}</th><th>{{ t("recall") }}</th></tr>
{% for c in quality.curve %}
<tr><td class="num">{{ "%.2f"|format(c.threshold) }}</td><td class="num">{{ c.flagged }}</td>
<td class="num">{{ "%.3f"|format(c.precision) }}</td>
<td class="num">{{ "%.3f"|format(c.recall) }}</td></tr>
{% endfor %}</table>
{% endif %}

<h2>{{ t("Rings") }}</h2>
{% if not rings %}<p>{{ t("No ring found.") }}</p>{% endif %}
{% for ring in rings %}
<h3>{{ ring.ring_id }} &mdash; {{ t("score") }} {{ "%.3f"|format(ring.score) }}</h3>
<p>{{ t("{accounts} account(s), {patients} patient(s), {payers} payer(s), {phones} phone(s), "
       "{devices} device(s), {ips} IP(s); {bookings} booking(s) by its accounts; {buyers} "
       "buyer(s) whose slots were laundered.", accounts=ring.accounts, patients=ring.patients,
       payers=ring.payers, phones=ring.phones, devices=ring.devices, ips=ring.ips,
       bookings=ring.bookings, buyers=ring.buyers) }}</p>
<p>{{ t("Payment hubs") }}: {{ ring.hubs|masked_all("payer") or t("none told") }}<br>
{{ t("Holder accounts") }}: {{ ring.holders|replace(";", "; ") or t("none told") }}<br>
{{ t("Account roles") }}: {{ role_counts(ring.roles) or t("none told") }}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ ring.drawing.width }}"
 height="{{ ring.drawing.height }}" viewBox="0 0 {{ ring.drawing.width }} {{ ring.drawing.height }}"
 role="img" aria-label="{{ t('link graph of {ring}', ring=ring.ring_id) }}">
{% for x1, y1, x2, y2 in ring.drawing.edges %}<line x1="{{ x1 }}" y1="{{ y1 }}" x2="{{ x2 }}"
 y2="{{ y2 }}" stroke="#999" stroke-width="1"/>{% endfor %}
{% for n in ring.drawing.nodes %}<g><title>{{ kinds(n.kind) }}: {{ n.entity|masked(n.kind) }}
</title><circle
 cx="{{ n.x }}" cy="{{ n.y }}" r="{{ n.r }}" fill="{{ n.colour }}"/>{% if n.kind == "account" %}
<text x="{{ n.x + 8 }}" y="{{ n.y - 6 }}" font-size="9">{{ n.label }}</text>{% endif %}</g>
{% endfor %}</svg>
<p class="legend">{% for kind, colour in colours %}<span style="color:{{ colour }}">&#9679;
{{ kinds(kind) }}</span>{% endfor %}
{{ t("(identifiers shared by two or more of the ring's accounts)") }}</p>
<table><tr><th>{{ t("member") }}</th><th>{{ t("role") }}</th><th>{{ t("score") }}</th>
<th>{{ t("evidence") }}</th></tr>
{% for m in ring.members %}
<tr><td>{{ kinds(m.entity_type) }}: {{ m.entity_id|masked(m.entity_type) }}</td>
<td class="role">{{ roles(m.role) }}</td>
<td class="num">{{ "%.3f"|format(m.score) }}</td><td class="reasons">{{ m.reasons }}</td></tr>
{% endfor %}</table>
{% endfor %}

<h2>{{ t("Suspects") }}</h2>
<p>{{ t("{total} flagged entities.", total=suspect_total) }}{% if suspect_total > suspects|length %}
{{ t("The {shown} highest are listed here, all of them in suspects.csv.",
     shown=suspects|length) }}{% endif %}</p>
<table><tr><th>{{ t("type") }}</th><th>{{ t("entity") }}</th><th>{{ t("score") }}</th>
<th>{{ t("ring") }}</th><th>{{ t("role") }}</th><th>{{ t("evidence") }}</th></tr>
{% for s in suspects %}
<tr><td>{{ kinds(s.entity_type) }}</td><td>{{ s.entity_id|masked(s.entity_type) }}</td>
<td class="num">{{ "%.3f"|format(s.score) }}</td><td>{{ s.ring_id or "" }}</td>
<td class="role">{{ roles(s.role) }}</td><td class="reasons">{{ s.reasons }}</td></tr>
{% endfor %}</table>

<h2>{{ t("How this run was made") }}</h2>
<table><tr><th>{{ t("table") }}</th><th>{{ t("file") }}</th><th>{{ t("rows read") }}</th>
<th>{{ t("rows used") }}</th><th>{{ t("outside --since/--until") }}</th></tr>
{% for tb in tables %}
<tr><td>{{ tb.table }}</td><td>{{ tb.file }}</td><td class="num">{{ tb.read }}</td>
<td class="num">{{ tb.kept }}</td><td class="num">{{ tb.outside }}</td></tr>
{% endfor %}</table>
<p>{{ t("Window: {since} to {until}.", since=run.since or t("start of records"),
       until=run.until or t("end of records")) }}</p>
<h3>{{ t("Rows skipped or kept with a caveat") }}</h3>
{% if not skipped %}<p>{{ t("None: every row was usable.") }}</p>{% else %}
<table><tr><th>{{ t("table") }}</th><th>{{ t("reason") }}</th><th>{{ t("rows") }}</th>
<th>{{ t("outcome") }}</th></tr>
{% for s in skipped %}<tr><td>{{ s.table }}</td><td>{{ s.reason }}</td>
<td class="num">{{ s.rows }}</td><td>{{ t("kept") if s.kept else t("skipped") }}</td></tr>
{% endfor %}</table>{% endif %}
<h3>{{ t("Thresholds") }}</h3>
<table>{% for name, value in thresholds %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>
{% endfor %}</table>
</body></html>
"""

LANGUAGES = ("zh-CN", "en")
"""The report's languages; Chinese is the default, as on the pages."""

_ZH = {
    "fairslot investigation report": "fairslot 调查报告",
    "Records from {folder}, read {when} ({zone}); the run took {seconds} s.":
        "记录来自 {folder}，读取于 {when}（{zone}）；本次运行用时 {seconds} 秒。",
    "Summary": "概要",
    "Beijing time": "北京时间",
    "Hong Kong time": "香港时间",
    "Macau time": "澳门时间",
    "Taipei time": "台北时间",
    "entity type": "实体类型",
    "seen": "出现",
    "flagged": "标记",
    "{rings} suspected ring(s); {pairs} cancel-then-rebook pair(s); {lockstep} lockstep "
    "group(s); {blocks} dense block(s). Scores run from 0 to 1; an entity is flagged at "
    "{flag_at} or above.":
        "疑似团伙 {rings} 个；退号后立即重挂（占坑洗号）{pairs} 对；同步抢号组 {lockstep} 个；"
        "密集块 {blocks} 个。评分在 0 到 1 之间，达到 {flag_at} 即标记。",
    "Quality against the labels": "与标注对照的质量",
    "ring members": "团伙成员",
    "precision": "精确率",
    "recall": "召回率",
    "average precision": "平均精确率",
    "Ring recovery: {found} of {rings} true rings of 3+ accounts matched with Jaccard "
    "at least 0.5 ({share}). Hard-case genuine accounts flagged: {hard_flagged} of {hard} "
    "({rate}%).":
        "团伙找回：{rings} 个含 3 个以上账户的真实团伙中有 {found} 个以 Jaccard 不低于 0.5 "
        "匹配（{share}）。被标记的疑难正常账户：{hard} 个中有 {hard_flagged} 个（{rate}%）。",
    "Accounts: precision and recall against the threshold": "账户：精确率、召回率与阈值",
    "Account scores are calibrated probabilities; the flag line is {flag_at}. A lower "
    "line (--min-score) finds more ring members and names more innocents.":
        "账户评分是校准后的概率；标记线为 {flag_at}。更低的线（--min-score）能找到更多团伙成员，"
        "也会点出更多无辜者。",
    "threshold": "阈值",
    "accounts at or above": "达到阈值的账户",
    "Rings": "团伙",
    "No ring found.": "未发现团伙。",
    "score": "评分",
    "{accounts} account(s), {patients} patient(s), {payers} payer(s), {phones} phone(s), "
    "{devices} device(s), {ips} IP(s); {bookings} booking(s) by its accounts; {buyers} "
    "buyer(s) whose slots were laundered.":
        "账户 {accounts} 个，就诊人 {patients} 个，付款账户 {payers} 个，手机号 {phones} 个，"
        "设备 {devices} 台，IP {ips} 个；其账户挂号 {bookings} 次；号源被洗给的买家 {buyers} 人。",
    "Payment hubs": "付款枢纽",
    "Holder accounts": "占号账户",
    "Account roles": "账户角色",
    "none told": "无",
    "link graph of {ring}": "{ring} 的关联图",
    "(identifiers shared by two or more of the ring's accounts)":
        "（团伙中两个及以上账户共用的标识）",
    "member": "成员",
    "role": "角色",
    "evidence": "证据",
    "Suspects": "嫌疑实体",
    "{total} flagged entities.": "共标记 {total} 个实体。",
    "The {shown} highest are listed here, all of them in suspects.csv.":
        "此处列出评分最高的 {shown} 个，全部见 suspects.csv。",
    "type": "类型",
    "entity": "实体",
    "ring": "团伙",
    "How this run was made": "本次运行的方式",
    "table": "表",
    "file": "文件",
    "rows read": "读取行数",
    "rows used": "使用行数",
    "outside --since/--until": "在 --since/--until 之外",
    "Window: {since} to {until}.": "时间范围：{since} 至 {until}。",
    "start of records": "记录开始",
    "end of records": "记录结束",
    "Rows skipped or kept with a caveat": "跳过或附带说明保留的行",
    "None: every row was usable.": "无：每一行都可用。",
    "reason": "原因",
    "rows": "行数",
    "outcome": "处理",
    "kept": "保留",
    "skipped": "跳过",
    "Thresholds": "阈值设置",
}

# Entity types and roles (as in suspects.csv) in the Chinese report; the English report and
# the CSV files keep the codes.
_KINDS_ZH = {"account": "账户", "patient": "就诊人", "payer": "付款账户", "phone": "手机号",
             "device": "设备", "ip": "IP", "buyer": "买家"}
_ROLES_ZH = {
    "developer": "脚本抢号者", "holder": "占号者", "broker": "转号中介", "reseller": "倒号者",
    "booker": "挂号者", "held_identity": "被用于占号的身份", "buyer": "买号者",
    "booked_identity": "被挂号的身份", "payment_hub": "付款枢纽", "payer": "付款账户",
    "ring_ip": "团伙 IP", "ring_device": "团伙设备", "ring_phone": "团伙手机号",
    "member": "成员",
}


def _words(table: dict[str, str], lang: str) -> Callable[[str | None], str]:
    def word(code: str | None) -> str:
        if not code:
            return ""
        return table.get(code, code) if lang == "zh-CN" else code

    return word


def _role_counts(lang: str) -> Callable[[str | None], str]:
    """``developer:7;holder:3`` as the report shows it: ``脚本抢号者 7；占号者 3`` in Chinese,
    ``developer 7; holder 3`` in English."""
    role = _words(_ROLES_ZH, lang)

    def counts(roles: str | None) -> str:
        parts = [part.partition(":") for part in (roles or "").split(";") if part]
        shown = [f"{role(name)} {n}" if sep else role(name) for name, sep, n in parts]
        return ("；" if lang == "zh-CN" else "; ").join(shown)

    return counts


def translator(lang: str) -> Callable[..., str]:
    """The report's texts in ``lang`` (one of ``LANGUAGES``): ``t(english, **values)``."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r} (one of {', '.join(LANGUAGES)})")
    table = _ZH if lang == "zh-CN" else {}

    def t(text: str, **values: object) -> str:
        return table.get(text, text).format(**values)

    return t


def _in_language(rows: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Rows with their ``reasons`` explained in ``lang`` (codes unchanged)."""
    return [{**row, "reasons": translate_reasons(row["reasons"] or "", lang)} for row in rows]


def render_report(
    investigation: Investigation, records: Records, run: RunInfo,
    quality: Quality | None = None, *, max_suspects: int = 1000, lang: str = "zh-CN",
) -> str:
    """The report as HTML text, in ``lang`` (``LANGUAGES``; Chinese by default)."""
    t = translator(lang)
    zone_label = ZONE_NAMES.get(run.zone, run.zone)
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["masked"] = masked
    environment.filters["masked_all"] = lambda joined, kind: "; ".join(
        masked(one, kind) for one in (joined or "").split(";") if one)
    template = environment.from_string(_TEMPLATE)
    scores = investigation.scores
    summary = [
        (kind, scores.filter(pl.col("entity_type") == kind).height,
         scores.filter((pl.col("entity_type") == kind) & pl.col("flagged")).height)
        for kind in ("account", "patient", "payer", "phone", "device", "ip")
    ]
    suspects = investigation.suspects
    rings = []
    for ring in investigation.rings.iter_rows(named=True):
        members = suspects.filter(pl.col("ring_id") == ring["ring_id"])
        accounts = members.filter(pl.col("entity_type") == "account").get_column(
            "entity_id").to_list()
        shown = pl.concat([
            members.filter(pl.col("entity_type") == "account"),
            members.filter(pl.col("entity_type") == "payer"),
            members.filter(~pl.col("entity_type").is_in(["account", "payer"])).head(30),
        ])
        rings.append({**ring, "drawing": _draw(accounts, investigation),
                      "members": _in_language(shown.to_dicts(), lang)})
    tables = [
        {"table": name, "file": records.inputs.get(name, "(none)"),
         "read": records.rows_read.get(name, 0), "kept": records.rows_kept.get(name, 0),
         "outside": records.rows_outside_window.get(name, 0)}
        for name in ("bookings", "payments", "access")
    ]
    thresholds = [(field.name, getattr(investigation.thresholds, field.name))
                  for field in dataclasses.fields(investigation.thresholds)]
    thresholds.append(("payer_patients", investigation.thresholds.payer_patients))
    thresholds.append(("flag_at", investigation.flag_at))
    return template.render(
        t=t, zone_label=zone_label, kinds=_words(_KINDS_ZH, lang), roles=_words(_ROLES_ZH, lang),
        role_counts=_role_counts(lang), lang=lang, run=run, summary=summary, rings=rings,
        launder_pairs=investigation.launder_pairs,
        lockstep=len(investigation.lockstep), blocks=len(investigation.blocks),
        flag_at=investigation.flag_at, quality=quality, colours=list(_COLOURS.items()),
        suspects=_in_language(suspects.head(max_suspects).to_dicts(), lang),
        suspect_total=suspects.height,
        tables=tables, skipped=records.skipped, thresholds=thresholds,
    )


def write_outputs(
    out: Path, investigation: Investigation, records: Records, run: RunInfo,
    quality: Quality | None = None, *, lang: str = "zh-CN",
) -> dict[str, Path]:
    """Write suspects.csv, rings.csv and report.html into ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("suspects.csv", "rings.csv", "report.html")}
    # With --pii clear these hold identity numbers: readable by the owner only. Cells that
    # a spreadsheet would run as formulas are written as text (fairslot.csvsafe).
    for path in paths.values():
        private_file(path)
    neutralise(investigation.suspects.select(
        "entity_type", "entity_id", "score", "ring_id", "reasons", "role"
    )).write_csv(paths["suspects.csv"])
    neutralise(investigation.rings.rename({"accounts_list": "members"})).write_csv(
        paths["rings.csv"])
    paths["report.html"].write_text(render_report(investigation, records, run, quality,
                                                  lang=lang),
                                    encoding="utf-8")
    return paths
