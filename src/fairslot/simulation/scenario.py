"""Scenario files: the hospital, its hot doctors, the demand, and the attackers' mix and
budgets, read from TOML. ``--set key=value`` overrides land here too: defence switches
(``draw=off`` ...), scenario fields by dotted path (``t1.bots=4``) and platform settings
(any ``fairslot.config.Settings`` field)."""

from __future__ import annotations

import dataclasses
import pathlib
import tomllib
from importlib import resources
from typing import Any

from fairslot.domain.errors import InvalidInput

__all__ = [
    "DEFENCES",
    "POLICY_DEFENCES",
    "Doctor",
    "Scenario",
    "apply_overrides",
    "load_scenario",
    "parse_overrides",
]

DEFENCES = ("draw", "waitlist", "windows", "quotas", "credit", "guard", "realname",
            "identity", "desk")
"""Defences ``--set NAME=off|on`` switches one at a time (ablation)."""

POLICY_DEFENCES: dict[str, dict[str, bool]] = {
    # Today's behaviour (issue 4's baseline): slots open at the release time, first come
    # first served, with real-name booking as the reports describe it, and none of
    # fairslot's own defences (request guard, quotas, credit, waitlist).
    # Phone codes, consent and claims (``identity``) and the desk's limits (``desk``) are
    # issue 18's: today's platforms verify no phone and let the desk book anything.
    "fcfs": {"draw": False, "waitlist": False, "windows": False, "quotas": False,
             "credit": False, "guard": False, "realname": True, "identity": False,
             "desk": False},
    "fairslot": dict.fromkeys(DEFENCES, True),
}
"""Each policy's defences when no ``--set`` names them."""


@dataclasses.dataclass(frozen=True)
class Doctor:
    department: str
    name: str
    sessions: int
    capacity: int
    fee_cents: int
    popularity: float
    """Relative share of the genuine demand that wants this doctor."""


@dataclasses.dataclass
class Scenario:
    """A parsed scenario. ``raw`` is the TOML as a nested dict (after overrides), the
    typed fields are read from it by ``_build``; agents read their knobs from ``raw``."""

    name: str
    raw: dict[str, Any]
    doctors: list[Doctor]
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    defences: dict[str, bool | None] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(DEFENCES, None))
    """``--set`` switches; ``None``: the policy's own setting (``POLICY_DEFENCES``)."""

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise InvalidInput(f"scenario section [{name}] must be a table",
                               code="invalid_scenario")
        return value

    def knob(self, section: str, key: str, default: Any) -> Any:
        value = self.section(section).get(key, default)
        if isinstance(default, bool) or not isinstance(default, int | float):
            return value
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInput(f"scenario value {section}.{key} must be a number",
                               code="invalid_scenario")
        return type(default)(value) if isinstance(default, float) else value

    def defences_for(self, policy: str) -> dict[str, bool]:
        """The defences a run of ``policy`` uses: the policy's own, then the switches."""
        base = dict(POLICY_DEFENCES[policy])
        base.update({k: v for k, v in self.defences.items() if v is not None})
        return base

    @property
    def hot_slots(self) -> int:
        return sum(d.sessions * d.capacity for d in self.doctors)


def _build(name: str, raw: dict[str, Any]) -> Scenario:
    doctors: list[Doctor] = []
    for item in raw.get("doctor", []):
        try:
            doctors.append(Doctor(
                department=str(item["department"]), name=str(item["name"]),
                sessions=int(item.get("sessions", 1)), capacity=int(item["capacity"]),
                fee_cents=int(item.get("fee_cents", 5000)),
                popularity=float(item.get("popularity", 1.0))))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"scenario {name}: a [[doctor]] needs department, name and "
                               f"capacity ({exc})", code="invalid_scenario") from exc
    if not doctors:
        raise InvalidInput(f"scenario {name} has no [[doctor]]", code="invalid_scenario")
    if any(d.sessions < 1 or d.sessions > 4 or d.capacity < 1 for d in doctors):
        raise InvalidInput("a doctor has 1-4 sessions of at least one slot",
                           code="invalid_scenario")
    return Scenario(name=name, raw=raw, doctors=doctors,
                    settings=dict(raw.get("settings", {})))


def load_scenario(spec: str) -> Scenario:
    """``seeds`` or ``tiny`` (packaged), or a path to a TOML file."""
    if spec in ("seeds", "tiny"):
        text = resources.files("fairslot.simulation").joinpath(
            f"scenarios/{spec}.toml").read_text(encoding="utf-8")
        name = spec
    else:
        path = pathlib.Path(spec)
        if not path.is_file():
            raise InvalidInput(f"no such scenario: {spec} (use seeds, tiny or a .toml file)",
                               code="unknown_scenario")
        text = path.read_text(encoding="utf-8")
        name = path.stem
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"scenario {name} is not valid TOML: {exc}",
                           code="invalid_scenario") from exc
    return _build(name, raw)


def _value(text: str) -> Any:
    """A --set value: TOML scalar syntax (numbers, true/false, quoted strings, lists), or a
    bare word taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--set wants key=value, got {item!r}", code="invalid_set")
        out.append((key.strip(), _value(text.strip())))
    return out


def apply_overrides(scenario: Scenario, overrides: list[tuple[str, Any]]) -> Scenario:
    """Return a copy of ``scenario`` with the overrides applied. Unknown keys are errors, so
    a typo never silently runs the unchanged scenario."""
    from fairslot.config import Settings  # settings fields are validated against the model

    raw = _deep_copy(scenario.raw)
    settings = dict(scenario.settings)
    defences = dict(scenario.defences)
    for key, value in overrides:
        if key in DEFENCES:
            if value not in ("on", "off", True, False):
                raise InvalidInput(f"--set {key}= takes on or off", code="invalid_set")
            defences[key] = value in ("on", True)
        elif "." in key:
            section, _, field = key.partition(".")
            table = raw.get(section)
            if not isinstance(table, dict) or field not in table:
                raise InvalidInput(f"--set {key}: no such scenario field", code="invalid_set")
            table[field] = value
        elif key in Settings.model_fields:
            settings[key] = value
        else:
            raise InvalidInput(f"--set {key}: not a defence ({', '.join(DEFENCES)}), a "
                               "scenario field (section.key) or a setting", code="invalid_set")
    raw["settings"] = settings
    built = _build(scenario.name, raw)
    built.defences = defences
    return built


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
