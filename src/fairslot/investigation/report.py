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
from pathlib import Path

import igraph as ig
import jinja2
import polars as pl

from fairslot.csvsafe import neutralise, private_file
from fairslot.investigation.evaluate import Quality
from fairslot.investigation.graph import ring_subgraph
from fairslot.investigation.records import Records
from fairslot.investigation.scoring import Investigation

__all__ = ["RunInfo", "render_report", "write_outputs"]

_COLOURS = {"account": "#c0392b", "patient": "#2471a3", "payer": "#d68910",
            "phone": "#7d3c98", "device": "#117864", "ip": "#566573"}


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
         "title": f"{kind}: {entity}", "colour": _COLOURS.get(kind, "#000"),
         "r": 7 if kind == "account" else 5}
        for (kind, entity), (px, py) in zip(nodes, points, strict=True)
    ]
    lines = [(round(points[a][0], 1), round(points[a][1], 1), round(points[b][0], 1),
              round(points[b][1], 1)) for a, b in edges]
    return _Drawing(width, height, drawn, lines)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>fairslot investigation report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3} .num{text-align:right} .reasons{font-size:12px}
svg{border:1px solid #ddd;background:#fcfcfc} .legend span{margin-right:1em}
h2{border-bottom:2px solid #444;padding-bottom:3px;margin-top:2em}
</style></head><body>
<h1>fairslot investigation report</h1>
<p>Records from <code>{{ run.folder }}</code>, read {{ run.started.strftime("%Y-%m-%d %H:%M") }}
({{ run.zone }}); the run took {{ "%.1f"|format(run.seconds) }} s.</p>

<h2>Summary</h2>
<table><tr><th>entity type</th><th>seen</th><th>flagged</th></tr>
{% for kind, seen, flagged in summary %}
<tr><td>{{ kind }}</td><td class="num">{{ seen }}</td><td class="num">{{ flagged }}</td></tr>
{% endfor %}</table>
<p>{{ rings|length }} suspected ring(s); {{ launder_pairs }} cancel-then-rebook pair(s);
{{ lockstep }} lockstep group(s); {{ blocks }} dense block(s). Scores run from 0 to 1; an
entity is flagged at {{ flag_at }} or above.</p>

{% if quality %}
<h2>Quality against the labels</h2>
<table><tr><th>entity type</th><th>ring members</th><th>flagged</th><th>precision</th>
<th>recall</th><th>F1</th><th>average precision</th></tr>
{% for q in quality.by_type %}
<tr><td>{{ q.entity_type }}</td><td class="num">{{ q.positives }}</td>
<td class="num">{{ q.flagged }}</td><td class="num">{{ "%.3f"|format(q.precision) }}</td>
<td class="num">{{ "%.3f"|format(q.recall) }}</td><td class="num">{{ "%.3f"|format(q.f1) }}</td>
<td class="num">{{ "%.3f"|format(q.average_precision) }}</td></tr>
{% endfor %}</table>
<p>Ring recovery: {{ quality.rings_recovered }} of {{ quality.true_rings }} true rings of 3+
accounts matched with Jaccard &ge; 0.5 ({{ "%.3f"|format(quality.ring_recovery) }}).
Hard-case genuine accounts flagged: {{ quality.hard_cases_flagged }} of
{{ quality.hard_cases }} ({{ "%.2f"|format(100 * quality.hard_case_rate) }}%).</p>
<h3>Accounts: precision and recall against the threshold</h3>
<p>Account scores are calibrated probabilities; the flag line is {{ flag_at }}. A lower
line (<code>--min-score</code>) finds more ring members and names more innocents.</p>
<table><tr><th>threshold</th><th>accounts at or above</th><th>precision</th><th>recall</th></tr>
{% for c in quality.curve %}
<tr><td class="num">{{ "%.2f"|format(c.threshold) }}</td><td class="num">{{ c.flagged }}</td>
<td class="num">{{ "%.3f"|format(c.precision) }}</td>
<td class="num">{{ "%.3f"|format(c.recall) }}</td></tr>
{% endfor %}</table>
{% endif %}

<h2>Rings</h2>
{% if not rings %}<p>No ring found.</p>{% endif %}
{% for ring in rings %}
<h3>{{ ring.ring_id }} &mdash; score {{ "%.3f"|format(ring.score) }}</h3>
<p>{{ ring.accounts }} account(s), {{ ring.patients }} patient(s), {{ ring.payers }} payer(s),
{{ ring.phones }} phone(s), {{ ring.devices }} device(s), {{ ring.ips }} IP(s);
{{ ring.bookings }} booking(s) by its accounts; {{ ring.buyers }} buyer(s) whose slots were
laundered.</p>
<p>Payment hubs: {{ ring.hubs or "none told" }}<br>Holder accounts:
{{ ring.holders or "none told" }}<br>Account roles: {{ ring.roles or "none told" }}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ ring.drawing.width }}"
 height="{{ ring.drawing.height }}" role="img"
 aria-label="link graph of {{ ring.ring_id }}">
{% for x1, y1, x2, y2 in ring.drawing.edges %}<line x1="{{ x1 }}" y1="{{ y1 }}" x2="{{ x2 }}"
 y2="{{ y2 }}" stroke="#999" stroke-width="1"/>{% endfor %}
{% for n in ring.drawing.nodes %}<g><title>{{ n.title }}</title><circle cx="{{ n.x }}"
 cy="{{ n.y }}" r="{{ n.r }}" fill="{{ n.colour }}"/>{% if n.kind == "account" %}<text
 x="{{ n.x + 8 }}" y="{{ n.y - 6 }}" font-size="9">{{ n.label }}</text>{% endif %}</g>
{% endfor %}</svg>
<p class="legend">{% for kind, colour in colours %}<span style="color:{{ colour }}">&#9679;
{{ kind }}</span>{% endfor %}(identifiers shared by two or more of the ring's accounts)</p>
<table><tr><th>member</th><th>role</th><th>score</th><th>evidence</th></tr>
{% for m in ring.members %}
<tr><td>{{ m.entity_type }}: {{ m.entity_id }}</td><td>{{ m.role }}</td>
<td class="num">{{ "%.3f"|format(m.score) }}</td><td class="reasons">{{ m.reasons }}</td></tr>
{% endfor %}</table>
{% endfor %}

<h2>Suspects</h2>
<p>{{ suspect_total }} flagged entities{% if suspect_total > suspects|length %}; the
{{ suspects|length }} highest are listed here, all of them in suspects.csv{% endif %}.</p>
<table><tr><th>type</th><th>entity</th><th>score</th><th>ring</th><th>role</th>
<th>evidence</th></tr>
{% for s in suspects %}
<tr><td>{{ s.entity_type }}</td><td>{{ s.entity_id }}</td>
<td class="num">{{ "%.3f"|format(s.score) }}</td><td>{{ s.ring_id or "" }}</td>
<td>{{ s.role }}</td><td class="reasons">{{ s.reasons }}</td></tr>
{% endfor %}</table>

<h2>How this run was made</h2>
<table><tr><th>table</th><th>file</th><th>rows read</th><th>rows used</th>
<th>outside --since/--until</th></tr>
{% for t in tables %}
<tr><td>{{ t.table }}</td><td>{{ t.file }}</td><td class="num">{{ t.read }}</td>
<td class="num">{{ t.kept }}</td><td class="num">{{ t.outside }}</td></tr>
{% endfor %}</table>
<p>Window: {{ run.since or "start of records" }} to {{ run.until or "end of records" }}.</p>
<h3>Rows skipped or kept with a caveat</h3>
{% if not skipped %}<p>None: every row was usable.</p>{% else %}
<table><tr><th>table</th><th>reason</th><th>rows</th><th>outcome</th></tr>
{% for s in skipped %}<tr><td>{{ s.table }}</td><td>{{ s.reason }}</td>
<td class="num">{{ s.rows }}</td><td>{{ "kept" if s.kept else "skipped" }}</td></tr>
{% endfor %}</table>{% endif %}
<h3>Thresholds</h3>
<table>{% for name, value in thresholds %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>
{% endfor %}</table>
</body></html>
"""


def render_report(
    investigation: Investigation, records: Records, run: RunInfo,
    quality: Quality | None = None, *, max_suspects: int = 1000,
) -> str:
    """The report as HTML text."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
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
                      "members": shown.to_dicts()})
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
        run=run, summary=summary, rings=rings, launder_pairs=investigation.launder_pairs,
        lockstep=len(investigation.lockstep), blocks=len(investigation.blocks),
        flag_at=investigation.flag_at, quality=quality, colours=list(_COLOURS.items()),
        suspects=suspects.head(max_suspects).to_dicts(), suspect_total=suspects.height,
        tables=tables, skipped=records.skipped, thresholds=thresholds,
    )


def write_outputs(
    out: Path, investigation: Investigation, records: Records, run: RunInfo,
    quality: Quality | None = None,
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
    paths["report.html"].write_text(render_report(investigation, records, run, quality),
                                    encoding="utf-8")
    return paths
