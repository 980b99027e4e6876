"""The scenarios a monitor runs, built from settings. ``FAIRSLOT_MONITOR_DISABLED_SCENARIOS``
switches some off; an unknown name stops the monitor at start-up rather than silently
watching less than the operator thinks."""

from __future__ import annotations

from fairslot.config import Settings
from fairslot.monitoring.events import KINDS
from fairslot.monitoring.scenarios.base import Platform, Scenario
from fairslot.monitoring.scenarios.fanout import Fanout
from fairslot.monitoring.scenarios.identity import (
    BadIdentities,
    BadIdentityBurst,
    Blacklist,
    Blacklisted,
)
from fairslot.monitoring.scenarios.rings import IdentitySpread, Launder, Lockstep
from fairslot.monitoring.scenarios.timing import (
    EarlyTokens,
    FastAction,
    ReleaseSnipe,
    WaitlistFastAccept,
)
from fairslot.monitoring.scenarios.traffic import GuardRefusals, IpRotation, RequestRates, Surge

__all__ = ["SCENARIO_NAMES", "build_scenarios", "platform_of"]

SCENARIO_NAMES = (
    "rate_ip_prefix", "rate_account", "rate_device", "guard_refusals",
    "fanout_ip", "fanout_device", "fanout_account", "fanout_phone", "payer_fanout",
    "fast_action", "release_snipe", "early_tokens", "waitlist_fast_accept",
    "launder", "identity_spread", "lockstep", "bad_identities", "bad_identity_burst",
    "ip_rotation",
    "surge_registrations", "surge_links", "blacklisted",
)


def platform_of(settings: Settings) -> Platform:
    return Platform(settings.monitor_platform_channels, settings.monitor_platform_networks)


def build_scenarios(settings: Settings, blacklist: Blacklist | None = None,
                    ) -> list[Scenario]:
    """Every enabled scenario with the thresholds of ``settings``. Without a blacklist the
    ``blacklisted`` scenario is left out (there is nothing to match)."""
    unknown = set(settings.monitor_disabled_scenarios) - set(SCENARIO_NAMES)
    if unknown:
        raise ValueError(f"FAIRSLOT_MONITOR_DISABLED_SCENARIOS names unknown scenario(s): "
                         f"{', '.join(sorted(unknown))}; known: {', '.join(SCENARIO_NAMES)}")
    s = settings
    own = platform_of(s)
    off = set(s.monitor_disabled_scenarios)
    rates = {kind: limit for kind, limit in (
        ("ip_prefix", s.monitor_rate_prefix_per_minute),
        ("account", s.monitor_rate_account_per_minute),
        ("device", s.monitor_rate_device_per_minute)) if f"rate_{kind}" not in off}
    # With every rate turned off there is no rate scenario to build (an empty one would
    # name itself "rate", which is no scenario).
    scenarios: list[Scenario] = [RequestRates(rates, own)] if rates else []
    scenarios += [
        GuardRefusals(s.monitor_guard_refusals, s.monitor_guard_refusal_seconds),
        IpRotation(s.monitor_rotation_prefixes, s.monitor_rotation_seconds, own,
                   slow_prefixes=s.monitor_rotation_slow_prefixes,
                   slow_seconds=s.monitor_rotation_slow_seconds),
        Fanout("ip", s.monitor_fanout_ip_patients, s.monitor_fanout_ip_seconds, own,
               per_account=s.monitor_fanout_patients_per_account),
        Fanout("device", s.monitor_fanout_device_patients, s.monitor_fanout_device_seconds,
               own, per_account=s.monitor_fanout_patients_per_account),
        Fanout("account", s.monitor_fanout_account_patients,
               s.monitor_fanout_account_seconds, own),
        Fanout("phone", s.monitor_fanout_phone_patients, s.monitor_fanout_phone_seconds, own),
        Fanout("payer", s.monitor_payer_patients, s.monitor_payer_seconds, own),
        FastAction(s.monitor_person_action_seconds, s.monitor_fast_actions,
                   s.monitor_fast_action_seconds, own),
        ReleaseSnipe(s.monitor_snipe_seconds, s.monitor_snipes, s.monitor_snipe_window_seconds,
                     own),
        EarlyTokens(s.monitor_early_token_seconds, s.monitor_early_tokens,
                    s.monitor_early_token_window_seconds, own),
        WaitlistFastAccept(s.monitor_waitlist_read_seconds, s.monitor_waitlist_fast_accepts,
                           s.monitor_waitlist_window_seconds, own),
        Launder(s.monitor_launder_seconds, own),
        IdentitySpread(s.monitor_spread_departments, s.monitor_spread_seconds, own,
                       fast_departments=s.monitor_spread_fast_departments,
                       fast_bookings=s.monitor_spread_fast_bookings,
                       fast_seconds=s.monitor_snipe_seconds),
        Lockstep(s.monitor_lockstep_bucket_seconds, s.monitor_lockstep_release_seconds,
                 s.monitor_lockstep_sessions, s.monitor_lockstep_similarity,
                 s.monitor_lockstep_max_bucket, s.monitor_lockstep_window_seconds, own,
                 group=s.monitor_lockstep_group,
                 group_sessions=s.monitor_lockstep_group_sessions),
        BadIdentities(s.monitor_bad_identities, s.monitor_bad_identity_seconds, own),
        BadIdentityBurst(s.monitor_bad_identity_burst, s.monitor_bad_identity_burst_seconds,
                         s.monitor_bad_identity_burst_factor, own),
        Surge("account.registered", s.monitor_surge_seconds, s.monitor_surge_min,
              s.monitor_surge_factor, own),
        Surge("patient.linked", s.monitor_surge_seconds, s.monitor_surge_min,
              s.monitor_surge_factor, own),
    ]
    if blacklist is not None:
        scenarios.append(Blacklisted(blacklist, frozenset(KINDS) - {"guard.allow"}))
    built = {name for sc in scenarios for name in sc.scenario_names()}
    assert built | off | {"blacklisted"} == set(SCENARIO_NAMES), built ^ set(SCENARIO_NAMES)
    return [sc for sc in scenarios
            if sc.name not in off and (not sc.names or any(n not in off for n in sc.names))]
