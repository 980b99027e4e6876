"""Alert summaries in the page's language.

A monitoring scenario stores an English ``summary`` with each alert, for the API, the CLI and
notifications, and the figures it fired on (``figures``). The console words the summary
anew from the scenario's name, the alert's entity and those figures, through one gettext
text per scenario; an unknown scenario, or figures without what its text needs (an alert
stored by an older version), keep the stored English summary. The API's JSON is untouched."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup

from fairslot.monitoring.alerts import Alert
from fairslot.monitoring.scenarios import Entity
from fairslot.web import i18n
from fairslot.web.i18n import N_, Language

__all__ = ["ENTITY_WORDS", "SUMMARIES", "summary"]

# An entity as a summary names it: its type in words, its id as it is.
ENTITY_WORDS = {"account": N_("account %(id)s"), "patient": N_("patient %(id)s"),
                "payer": N_("payer %(id)s"), "phone": N_("phone %(id)s"),
                "device": N_("device %(id)s"), "ip": N_("IP address %(id)s"),
                "ip_prefix": N_("network %(id)s"), "session": N_("session %(id)s"),
                "route_group": N_("route group %(id)s"), "platform": N_("the platform"),
                "guard_key": N_("guard key %(id)s")}
# Durations: a window's length in its largest whole unit, as ``span`` words it in English.
SPANS = ((86_400, N_("%(n)s days")), (3600, N_("%(n)s h")), (60, N_("%(n)s min")),
         (1, N_("%(n)s s")))
# What was wrong with an identity (``bad_identities``' last reason).
IDENTITY_REASONS = {"invalid_id_number": N_("an invalid ID number"),
                    "invalid_name": N_("an implausible name"),
                    "rejected": N_("a failed real-name check")}
# Why the guard refused (``guard_refusals``' last reason; docs/guard.md lists the codes).
GUARD_REASONS = {"rate_limited": N_("too many requests"),
                 "login_backoff": N_("too many failed log-ins"),
                 "booking_in_progress": N_("a booking still running"),
                 "challenge_required": N_("proof of work needed"),
                 "challenge_invalid": N_("a wrong proof of work"),
                 "challenge_expired": N_("an expired proof of work"),
                 "challenge_mismatch": N_("a proof of work for another request"),
                 "challenge_replayed": N_("a proof of work used twice"),
                 "token_missing": N_("no action token"),
                 "token_invalid": N_("an invalid action token"),
                 "token_replayed": N_("an action token used twice"),
                 "token_too_early": N_("an action token used too soon"),
                 "token_expired": N_("an expired action token"),
                 "blocked": N_("blocked by a decision"), "busy": N_("server busy"),
                 "overloaded": N_("server overloaded")}

SUMMARIES: dict[str, str] = {
    "rate_ip_prefix": N_("%(requests)s requests in one minute from %(entity)s "
                         "(threshold %(threshold)s)"),
    "rate_account": N_("%(requests)s requests in one minute from %(entity)s "
                       "(threshold %(threshold)s)"),
    "rate_device": N_("%(requests)s requests in one minute from %(entity)s "
                      "(threshold %(threshold)s)"),
    "guard_refusals": N_("%(entity)s refused by the guard %(refusals)s times in %(span)s "
                         "(last: %(reason)s)"),
    "fanout_ip": N_("%(entity)s acted for %(patients)s different patients in %(span)s "
                    "(threshold %(threshold)s)"),
    "fanout_device": N_("%(entity)s acted for %(patients)s different patients in %(span)s "
                        "(threshold %(threshold)s)"),
    "fanout_account": N_("%(entity)s acted for %(patients)s different patients in %(span)s "
                         "(threshold %(threshold)s)"),
    "fanout_phone": N_("%(entity)s acted for %(patients)s different patients in %(span)s "
                       "(threshold %(threshold)s)"),
    "payer_fanout": N_("%(entity)s paid for %(patients)s different patients in %(span)s "
                       "(threshold %(threshold)s)"),
    "fast_action": N_("%(entity)s: %(times)s times in %(span)s, the last %(last)s s "
                      "after its screen opened"),
    "release_snipe": N_("%(entity)s: %(times)s times in %(span)s, the last %(last)s s "
                        "after release"),
    "early_tokens": N_("%(entity)s: %(times)s times in %(span)s, the last %(last)s s "
                       "before release"),
    "waitlist_fast_accept": N_("%(entity)s: %(times)s times in %(span)s, the last "
                               "%(last)s s after the offer"),
    "bad_identities": N_("%(entity)s tried %(identities)s bad identities in %(span)s "
                         "(last: %(reason)s)"),
    "bad_identity_burst": N_("%(accounts)s accounts tried bad identities in %(span)s, "
                             "against %(expected)s expected from the last day"),
    "launder": N_("Session %(session)s: %(entity)s cancelled, and %(gap)s s later the "
                  "slot was booked for another patient"),
    "identity_spread": N_("%(entity)s booked in %(departments)s departments within "
                          "%(span)s (threshold %(threshold)s)"),
    "lockstep": N_("%(entity)s acted at the same moment after release as %(partners)s "
                   "other account(s), on up to %(shared_releases)s releases "
                   "(similarity %(similarity)s)"),
    "ip_rotation": N_("%(entity)s came from %(prefixes)s networks in %(span)s "
                      "(threshold %(threshold)s)"),
    "surge_registrations": N_("%(registrations)s new accounts in %(span)s, against "
                              "%(expected)s expected from the last day's active hours"),
    "surge_links": N_("%(links)s new identity links in %(span)s, against %(expected)s "
                      "expected from the last day's active hours"),
    "blacklisted": N_("Blacklisted %(entity)s active: %(kind)s (listed for: %(listed_for)s)"),
}
# Fan-outs by IP or device that also counted the accounts behind the patients.
FROM_ACCOUNTS = N_("%(summary)s, from %(accounts)s account(s)")


def _number(value: Any, digits: int) -> str:
    return f"{float(value):.{digits}f}"


def _span(gettext: Callable[[str], str], seconds: Any) -> str:
    """As the English ``span`` of the scenarios: 45 s, 10 min, 6 h, 30 days."""
    seconds = float(seconds)
    unit, text = (1, SPANS[3][1]) if seconds < 120 else (60, SPANS[2][1]) \
        if seconds < 7200 else (3600, SPANS[1][1]) if seconds < 2 * 86_400 else SPANS[0]
    return gettext(text) % {"n": f"{seconds / unit:.0f}"}


def _values(gettext: Callable[[str], str], alert: Alert) -> dict[str, Any]:
    """The figures as the texts use them: durations and fractions worded, reasons named."""
    figures: Mapping[str, Any] = alert.figures
    values: dict[str, Any] = dict(figures)
    values["entity"] = _entity(gettext, alert.entity)
    if "window_s" in figures:
        values["span"] = _span(gettext, figures["window_s"])
    if "last_s" in figures:
        values["last"] = _number(figures["last_s"], 1 if alert.scenario in (
            "early_tokens", "waitlist_fast_accept") else 2)
    if "gap_s" in figures:
        values["gap"] = _number(figures["gap_s"], 1)
    if "expected" in figures:
        values["expected"] = _number(figures["expected"], 1)
    if "similarity" in figures:
        values["similarity"] = _number(figures["similarity"], 2)
    if alert.scenario == "bad_identities":
        reason = str(figures.get("last_reason") or "rejected")
        values["reason"] = gettext(IDENTITY_REASONS[reason]) \
            if reason in IDENTITY_REASONS else reason
    if alert.scenario == "guard_refusals":
        reason = str(figures.get("reason", ""))
        values["reason"] = gettext(GUARD_REASONS[reason]) if reason in GUARD_REASONS \
            else reason
    return values


def _entity(gettext: Callable[[str], str], entity: Entity) -> str:
    text = ENTITY_WORDS.get(entity.type)
    return gettext(text) % {"id": entity.id} if text else f"{entity.type} {entity.id}"


def summary(lang: Language, alert: Alert) -> Markup:
    """The alert's summary in ``lang``: the scenario's text filled from the alert's figures
    (values escaped), or the stored English summary marked as English."""
    stored = Markup('<span lang="en">%s</span>') % alert.summary
    text = SUMMARIES.get(alert.scenario)
    if text is None:
        return stored
    gettext = i18n.translations(lang.code).gettext
    try:
        values = _values(gettext, alert)
        worded = Markup(gettext(text)) % values  # noqa: S704 - our catalogue, escaped values
        if "accounts" in alert.figures and alert.scenario in ("fanout_ip", "fanout_device"):
            worded = Markup(gettext(FROM_ACCOUNTS)) % {  # noqa: S704
                "summary": worded, "accounts": alert.figures["accounts"]}
    except (KeyError, TypeError, ValueError):
        return stored
    return worded
