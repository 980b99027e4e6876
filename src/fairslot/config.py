"""Settings, read once from ``FAIRSLOT_*`` environment variables (see docs/configuration.md)."""

from __future__ import annotations

import collections
import functools
import ipaddress
import math
import zoneinfo
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


Channel = Literal["outbox", "sms", "wechat", "email"]
_OUTBOX_ONLY: tuple[Channel, ...] = ("outbox",)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FAIRSLOT_", extra="ignore")

    # Storage and shared state
    database_url: str = "sqlite:///var/fairslot.db"
    redis_url: str | None = None
    """Redis for shared rate-limit and short-lived guard state; unset means in-process."""
    database_pool_size: int = Field(10, ge=1, le=200)
    """PostgreSQL connections each server process keeps open (each worker has its own
    pool). Size it to the database's cores, not to the load: workers x (pool + overflow)
    connections busy at once is what the database runs (docs/configuration.md)."""
    database_pool_overflow: int = Field(10, ge=0, le=200)
    """Connections a process may open beyond its pool at a busy moment, closed again once
    given back. 0: a request beyond the pool waits for a pooled connection instead."""
    database_pool_timeout: float = Field(30.0, gt=0, le=300)
    """Seconds a request waits for a connection when pool and overflow are all in use,
    before it fails."""

    # The master secret. PII encryption, blind indexes, tokens and cookies use keys derived
    # from it (HKDF with a distinct label each), so one secret is all an operator keeps.
    secret_key: SecretStr | None = None

    # The hospital
    timezone: str = "Asia/Shanghai"

    # Identity rules
    max_patients_per_account: int = Field(5, ge=1)
    max_accounts_per_phone: int = Field(2, ge=1)

    # Identity on evidence (docs/identity.md)
    identity_provider: Literal["registry", "demo"] = "registry"
    """The real-name check: the registry of known residents (tests, simulator), or the
    demo's provider, which takes any well-formed ID number as belonging to the first name
    it is checked with (``fairslot serve --demo`` sets it)."""
    code_minutes: int = Field(10, ge=1, le=60)
    """A one-time code (phone verification, consent to a link or a claim) lives this long."""
    code_attempts: int = Field(5, ge=1, le=20)
    """Wrong entries a one-time code allows before it is spent."""
    codes_per_phone_per_hour: int = Field(5, ge=1)
    """Codes sent to one phone number in an hour (and four times that in a day)."""
    codes_per_account_per_hour: int = Field(5, ge=1)
    """Codes one account may ask for in an hour (and four times that in a day)."""
    consent_codes_per_identity: int = Field(3, ge=1)
    """Consent codes one account may have sent about one identity in a day."""
    consent_codes_per_phone_per_day: int = Field(6, ge=1)
    """Consent codes (asked for by anyone) one phone receives in a day; its own
    verification codes are counted apart (``codes_per_phone_per_hour``)."""
    identity_failures_per_account: int = Field(5, ge=1)
    """Failed real-name checks an account may make in a day before it must wait."""
    identity_failures_per_id_number: int = Field(5, ge=1)
    """Failed real-name checks one account may make against one ID number in a day."""
    identity_failures_per_id_number_all: int = Field(20, ge=1)
    """Failed real-name checks against one ID number from all accounts in a day past which
    an account that failed on it once is refused (one guess per account from then on)."""

    # Messages to people (SMS, WeChat template messages, e-mail; docs/identity.md)
    text_channel: Literal["outbox", "sms"] = "outbox"
    """Where one-time codes go: an SMS gateway, or the development outbox (demo and tests:
    messages are stored and shown at /dev/outbox, nothing leaves the machine)."""
    notification_channels: list[Channel] = Field(default_factory=lambda: list(_OUTBOX_ONLY))
    """Where notifications (draw results, offers, reminders) go, besides the in-app inbox."""
    payment_reminder_minutes: int = Field(5, ge=1)
    """A held booking's account is reminded this long before its payment deadline."""
    visit_reminder_hours: int = Field(24, ge=1)
    """A paid visit's account is reminded this long before the session starts."""
    dev_outbox_page: bool = False
    """Serve the development outbox at /dev/outbox and /api/v1/dev/outbox (demo only: it
    shows every code sent)."""
    sms_gateway_url: str | None = None
    """An HTTP SMS gateway: POST {"to", "sign", "text"} with a bearer key, answers {"id"}."""
    sms_gateway_key: SecretStr | None = None
    sms_sign_name: str = "fairslot"
    wechat_api_url: str = "https://api.weixin.qq.com"
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    wechat_templates: dict[str, str] = Field(default_factory=dict)
    """Message kind -> WeChat template id (a kind without one is not sent by WeChat)."""
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "fairslot@localhost"

    # Booking rules
    payment_deadline_minutes: int = Field(15, ge=1)
    review_hold_hours: float = Field(24.0, gt=0)
    """A booking held for review by a monitoring decision waits this long (at most until an
    hour before its session) for an investigator; unreviewed, it is released at no cost."""
    cancel_cutoff_hours: int = Field(12, ge=0)
    """Patients may cancel online until this many hours before the session starts; after
    that only the registration desk can."""
    credit_late_cancel_hours: int = Field(24, ge=0)
    """A cancellation less than this many hours before the session is a late one and counts
    against the patient's credit (never less than the online cut-off)."""
    credit_lapsed_holds_per_offence: int = Field(2, ge=0)
    """Held slots left unpaid until they expire: every this-many within a year count as one
    offence (0: never)."""
    no_show_grace_minutes: int = Field(30, ge=0)
    """A paid booking not checked in this long after its session ends becomes a no-show."""
    session_minutes: int = Field(240, ge=30)

    investigations_dir: str = "var/investigations"
    """Where investigations started from the pages keep their uploads and reports."""

    # The registration desk (docs/pages.md, "The desk's limits")
    desk_days_ahead: int = Field(1, ge=0, le=7)
    """The desk books on site, and enters walk-ins in draws, only for sessions (draws) from
    today up to this many days ahead: 1 is today and tomorrow."""
    desk_shift_hours: int = Field(8, ge=1, le=24)
    """Length of a desk shift; shifts start at local midnight (8: 00-08, 08-16, 16-24)."""
    desk_actions_per_shift: int = Field(120, ge=1)
    """On-site bookings plus draw entries one desk account may make in a shift."""
    desk_typed_ids_per_shift: int = Field(20, ge=0)
    """Of those, how many may rest on a typed ID number (the card could not be read)."""
    desk_actions_per_minute: int = Field(6, ge=1)
    """On-site bookings plus draw entries one desk account may make in any minute."""
    desk_claim_hours: int = Field(24, ge=1, le=168)
    """A desk's identity claim waits this long for a second member of staff (an operator)
    to approve it, then expires (docs/identity.md, "At the desk: four eyes")."""

    # Accounts
    login_attempts_per_minute: int = Field(10, ge=1)
    """Log-in attempts a minute per account (the guard's ``login`` limit; docs/guard.md)."""
    auth_token_hours: int = Field(12, ge=1)
    password_min_length: int = Field(8, ge=6)
    password_min_strength: int = Field(2, ge=0, le=4)
    """A new password's zxcvbn score (0-4) must reach this: common passwords, patterns and
    the user's own name or phone are refused (NIST SP 800-63B). 0 turns the check off."""
    password_hash_time_cost: int = Field(3, ge=1)
    password_hash_memory_kib: int = Field(65536, ge=32)
    """Argon2id cost (the library's defaults); tests lower them, production keeps them."""
    session_cookie_secure: bool | None = None
    """Mark the pages' session cookie Secure; unset means Secure when the request came over
    HTTPS (behind a TLS proxy, set it to true)."""

    # Network
    trusted_proxies: list[str] = Field(default_factory=list)
    """CIDRs of reverse proxies whose X-Forwarded-For is believed."""

    # Request guard (see docs/guard.md). Limits are "N/period" strings of the `limits`
    # library; `guard_limits` overrides the built-in table per route group and key, e.g.
    # FAIRSLOT_GUARD_LIMITS='{"booking": {"ip": "30/minute"}}'.
    guard_limits: dict[str, dict[str, str]] = Field(default_factory=dict)
    guard_default_level: Literal["normal", "elevated", "under_attack"] = "normal"
    guard_redis_prefix: str = "fairslot:guard:"
    guard_redis_retry_seconds: float = Field(2.0, gt=0)
    """First back-off before Redis is tried again after a failure; doubles up to 60 s."""
    guard_redis_down_refuse: list[str] = Field(
        default_factory=lambda: ["entering", "booking", "payment"])
    """Route groups refused (503 ``guard_unavailable``) while Redis is configured but
    unreachable: they fail closed. Every other group goes on with per-process limits."""
    guard_token_min_age_seconds: float = Field(1.5, ge=0)
    guard_token_ttl_seconds: int = Field(600, ge=10)
    guard_challenge_ttl_seconds: int = Field(120, ge=10)
    guard_pow_base_maxnumber: int = Field(10_000, ge=1_000)
    guard_pow_max_maxnumber: int = Field(400_000, ge=1_000)
    guard_device_cookie_secure: bool | None = None
    """``Secure`` on the device cookie: unset means when the request came over HTTPS (TLS
    here, or a trusted proxy's X-Forwarded-Proto)."""
    guard_device_header: str = "X-Device-Id"
    guard_device_young_seconds: float = Field(900.0, ge=0)
    """A device minted less than this long ago is new, which counts as risk."""
    guard_ledger_path: str = "var/guard-ledger.db"
    """SQLite file remembering spent action tokens and challenges without Redis (and while
    Redis is down); empty keeps them in memory only (lost on restart)."""
    guard_login_free_failures: int = Field(3, ge=0)
    guard_login_backoff_after: int = Field(6, ge=1)
    guard_login_backoff_base_seconds: float = Field(30.0, gt=0)
    guard_login_backoff_max_seconds: float = Field(900.0, gt=0)
    guard_login_failure_memory_seconds: int = Field(86_400, ge=60)
    guard_login_known_device_days: int = Field(90, ge=1)
    """Log-in throttling per account (docs/guard.md): failures before a proof of work,
    failures before back-off, its first wait and ceiling, how long failures are
    remembered, how long a device that signed in stays known."""
    guard_device_accounts_risky: int = Field(3, ge=1)
    """A device that has signed in to more distinct accounts than this counts as risky."""
    guard_shed_browsing_at: int = Field(200, ge=1)
    guard_shed_other_at: int = Field(400, ge=1)
    guard_shed_critical_at: int = Field(800, ge=1)
    """In-flight requests per worker at which browsing, then search/login/registration,
    then booking/entering/payment are refused with 503."""
    guard_exclusive_seconds: float = Field(15.0, gt=0)
    """Longest time one account's in-flight booking holds its slot if never released."""
    guard_allow_event_every: int = Field(100, ge=1)
    """Allow decisions are aggregated: one event stands for this many allows."""
    guard_deny_cache_seconds: float = Field(1.0, ge=0)
    """A worker refuses a key it saw over its limit for this long without asking Redis."""
    guard_browsing_sync_seconds: float = Field(0.1, ge=0, le=5)
    """Browsing limits are counted in each worker and shared through Redis this often, so
    that a page view never waits for Redis; 0 checks them in Redis on every request."""

    # Fair release (see docs/draw.md)
    draw_window_hours: int = Field(24, ge=1, le=24 * 14)
    """A draw session's request window opens this long before its release time."""
    round_counts_cache_seconds: float = Field(2.0, ge=0, le=60)
    """A worker shows an open round's entry counts up to this old (0: always fresh); at a
    release's peak everyone opens the same round, and counting afresh for each costs the
    database work that grows with the square of the crowd. A worker's own entries show
    at once."""
    draw_payment_minutes: int = Field(240, ge=5)
    """A draw winner has this long to pay before the slot moves to the waitlist."""
    waitlist_offer_minutes: int = Field(60, ge=5)
    """A waitlisted patient offered a freed slot has this long to pay for it."""
    request_window_minutes: int = Field(10, ge=1, le=24 * 60)
    """A slot that frees up with nobody waiting for it (a cancellation, an unpaid hold, a
    leftover after a draw) and a hot fcfs doctor's release go through a request window this
    long and a draw among everyone who asked (docs/release.md), never first come first
    served."""
    late_window_minutes: int = Field(60, ge=1, le=24 * 60)
    """A draw session scheduled too late for its own window (its release time less than
    this far away, or past) gets a fresh request window this long."""
    hot_sellout_minutes: int = Field(10, ge=1)
    """An fcfs doctor whose session had every slot taken within this many minutes of its
    release is hot: an event proposes the draw policy, and until an operator decides, the
    doctor's releases open with a request window and a draw."""
    draw_chain: Literal["local", "quicknet", "default"] = "local"
    """The drand chain whose beacon a round names when it opens (docs/draw.md). Production:
    "quicknet", the League of Entropy's chain (public key, genesis 1692803367, period 3 s,
    chain hash 52db9ba7...e971 built in). "local" is a one-node chain whose key the hospital
    holds: the demo and tests run offline with it, but it proves nothing to a patient."""
    draw_chain_relays: list[str] = Field(default_factory=lambda: [
        "https://api.drand.sh", "https://api2.drand.sh", "https://api3.drand.sh",
        "https://drand.cloudflare.com"])
    """drand HTTP relays tried in turn for a League of Entropy beacon (never trusted: every
    beacon is checked against the chain's public key)."""
    draw_beacon_delay_seconds: int = Field(30, ge=0, le=3600)
    """A round's beacon is the chain's first round at or after its close plus this delay,
    which leaves the freeze time to be signed and logged before the beacon exists."""
    draw_signing_key: SecretStr | None = None
    """The hospital's Ed25519 draw key, 64 hex digits. Unset: made once in var/ as
    draw-signing.key (mode 0600). Its public half is in every round document."""
    draw_previous_signing_keys: list[SecretStr] = Field(default_factory=list)
    """Draw keys used before the current one (64 hex digits each), kept after a rotation so
    that a round opened under one is frozen, drawn and receipted under the same key: a
    round's document names the key that signed its opening (docs/draw.md)."""
    draw_local_chain_key: SecretStr | None = None
    """The local chain's secret, 64 hex digits. Unset: made once in var/ as
    draw-local-chain.key."""
    draw_local_chain_genesis: int = Field(1767225600, ge=0)
    """The local chain's round 1 (POSIX seconds); its period is 3 s, like quicknet's."""
    short_windows_enabled: bool = True
    """A freed slot nobody waits for, a draw's leftovers, a late draw session and a hot fcfs
    doctor's release go through a short request window and a draw. Off only for ablation in
    the simulator (then they open first come first served at once)."""
    waitlist_enabled: bool = True
    """Freed draw slots go to the waitlist. Off only for ablation in the simulator."""
    quotas_enabled: bool = True
    credit_enabled: bool = True
    quota_active_bookings: int = Field(4, ge=1)
    quota_departments_per_week: int = Field(3, ge=1)
    quota_patients_per_account: int = Field(5, ge=1)
    quota_patients_per_phone: int = Field(5, ge=1)
    quota_patients_per_payer: int = Field(5, ge=1)
    quota_window_days: int = Field(30, ge=1)
    """The window in which patients served (by an account, phone or payer) are counted."""
    credit_suspension_days: list[int] = Field(default_factory=lambda: [30, 60, 90])
    """Suspension for the 1st, 2nd, 3rd (and later) offence within a rolling year."""

    # The consortium (docs/consortium.md): the list shared with other hospitals. What a
    # match does is each hospital's policy per entry kind (`fairslot consortium policy`).
    consortium_enabled: bool = True
    """Consult the shared list at registration, identity linking, draw entry, booking and
    payment (it costs nothing until this hospital holds an epoch key)."""
    consortium_sync_seconds: float = Field(300.0, ge=0)
    """The feed interval: every this often the server pulls the other members' feeds,
    delivers pending appeals and refreshes its in-memory list (0: only `fairslot
    consortium sync` does, and workers refresh every `consortium_refresh_seconds`)."""
    consortium_refresh_seconds: float = Field(30.0, gt=0)
    """A worker reads what other processes stored (a sync from the CLI) this often."""
    consortium_lowered_quota: int = Field(1, ge=1)
    """Under the `lower_quota` policy each quota count (active bookings, departments a
    week, patients an account, phone or payer serves, accounts a phone backs, patients an
    account manages) is capped at this."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per line (time, level, logger, message), for log tools."""
    scheduler: bool = True
    """Run the in-process scheduler (payment expiry, no-shows, draws) inside ``serve``."""

    # Monitoring and early warning (see docs/monitoring.md). Every scenario's thresholds are
    # here; each counts inside a sliding window of event time. Events from the platform's own
    # channels and networks are left out of the scenarios that would mistake them for a
    # ring (a desk books for many patients from one terminal by design).
    monitor_mode: Literal["auto", "embedded", "stream", "off"] = "auto"
    """What ``fairslot serve`` does with the platform's events: ``embedded`` runs the monitor
    on a thread of the server (in-process queue, windows in memory); ``stream`` publishes
    them to the Redis stream for ``fairslot monitor`` processes; ``auto`` is ``stream`` when
    a Redis is configured and ``embedded`` otherwise; ``off`` publishes nothing."""
    monitor_redis_url: str | None = None
    """A Redis of the monitors' own (stream and windows); unset: FAIRSLOT_REDIS_URL."""
    monitor_stream_key: str = "fairslot:monitor:events"
    monitor_redis_prefix: str = "fairslot:monitor:"
    """Prefix of the monitors' window state in Redis (never shared with another system)."""
    monitor_group: str = "monitors"
    """The Redis consumer group all ``fairslot monitor`` processes of one platform join."""
    monitor_stream_maxlen: int = Field(2_000_000, ge=1_000)
    """Events kept in the stream (approximately): enough to ride out a monitor outage."""
    monitor_batch: int = Field(500, ge=1, le=10_000)
    monitor_block_ms: int = Field(1000, ge=10)
    monitor_claim_idle_seconds: float = Field(30.0, gt=0)
    """A monitor takes over another's unacknowledged events once they are this old."""
    monitor_platform_channels: list[str] = Field(
        default_factory=lambda: ["desk", "kiosk", "call_centre", "draw", "waitlist"])
    monitor_platform_networks: list[str] = Field(default_factory=list)
    """CIDRs of the hospital's own terminals (kiosks, desks, call centre)."""
    monitor_disabled_scenarios: list[str] = Field(default_factory=list)
    monitor_alert_update_seconds: float = Field(10.0, ge=0)
    """An open alert is written again at most this often while its scenario keeps firing."""
    monitor_false_positive_quiet_hours: float = Field(72.0, ge=0)
    """After an alert is marked a false positive, the same scenario and entity stay quiet."""
    monitor_responses: dict[str, list[str]] = Field(default_factory=dict)
    """Per scenario, the decisions taken when its alert opens, overriding the defaults, e.g.
    FAIRSLOT_MONITOR_RESPONSES='{"payer_fanout": ["hold_bookings 24h"], "launder": []}'."""
    monitor_respond_min_severity: Literal["low", "medium", "high", "critical"] = "medium"
    monitor_notify_min_severity: Literal["low", "medium", "high", "critical"] = "high"
    monitor_webhook_url: str | None = None
    monitor_webhook_secret: SecretStr | None = None
    """Signs each webhook body (HMAC-SHA256 in ``X-Fairslot-Signature``)."""
    monitor_smtp_host: str | None = None
    monitor_smtp_port: int = Field(587, ge=1, le=65535)
    monitor_smtp_starttls: bool = True
    monitor_smtp_username: str | None = None
    monitor_smtp_password: SecretStr | None = None
    monitor_smtp_from: str = "fairslot-monitor@localhost"
    monitor_smtp_to: list[str] = Field(default_factory=list)
    monitor_console_url: str = ""
    """Base URL of the operator's console, for links in notifications."""

    # Scenario thresholds
    monitor_rate_prefix_per_minute: int = Field(1500, ge=1)
    monitor_rate_account_per_minute: int = Field(120, ge=1)
    monitor_rate_device_per_minute: int = Field(120, ge=1)
    monitor_fanout_ip_patients: int = Field(8, ge=2)
    monitor_fanout_ip_seconds: int = Field(3600, ge=60)
    monitor_fanout_patients_per_account: float = Field(2.0, ge=1)
    """IP and device fan-out also need this many patients per distinct account behind them
    (a carrier NAT or a clinic terminal carries about one)."""
    monitor_fanout_device_patients: int = Field(7, ge=2)
    monitor_fanout_device_seconds: int = Field(86400, ge=60)
    monitor_fanout_account_patients: int = Field(7, ge=2)
    monitor_fanout_account_seconds: int = Field(90 * 86400, ge=60)
    monitor_fanout_phone_patients: int = Field(7, ge=2)
    monitor_fanout_phone_seconds: int = Field(90 * 86400, ge=60)
    monitor_payer_patients: int = Field(10, ge=2)
    monitor_payer_seconds: int = Field(365 * 86400, ge=60)
    monitor_person_action_seconds: float = Field(2.5, gt=0)
    """No person reads a booking screen and confirms faster than this."""
    monitor_fast_actions: int = Field(2, ge=1)
    monitor_fast_action_seconds: int = Field(30 * 86400, ge=60)
    monitor_snipe_seconds: float = Field(2.0, gt=0)
    """A booking this soon after its slot opened is beyond a person using the app."""
    monitor_snipes: int = Field(2, ge=1)
    monitor_snipe_window_seconds: int = Field(30 * 86400, ge=60)
    monitor_early_token_seconds: float = Field(5.0, ge=0)
    monitor_early_tokens: int = Field(3, ge=1)
    monitor_early_token_window_seconds: int = Field(600, ge=10)
    monitor_launder_seconds: float = Field(30.0, gt=0)
    monitor_spread_departments: int = Field(4, ge=2)
    monitor_spread_seconds: int = Field(14 * 86400, ge=60)
    monitor_spread_fast_departments: int = Field(3, ge=2)
    """Departments within ``monitor_spread_seconds`` that name an identity when, in
    ``monitor_spread_fast_bookings`` of them, a booking for it was taken less than
    ``monitor_snipe_seconds`` after its slot opened (``identity_spread``; at
    ``monitor_spread_departments`` or more it is off)."""
    monitor_spread_fast_bookings: int = Field(2, ge=1)
    monitor_bad_identities: int = Field(3, ge=1)
    monitor_bad_identity_seconds: int = Field(30 * 86400, ge=60)
    monitor_bad_identity_burst: int = Field(20, ge=2)
    """Accounts trying bad identities platform-wide in the burst window (``bad_identity_burst``);
    with no history yet, twice this."""
    monitor_bad_identity_burst_seconds: int = Field(3600, ge=60)
    monitor_bad_identity_burst_factor: float = Field(5.0, gt=1)
    monitor_rotation_prefixes: int = Field(10, ge=3)
    """Distinct IPv4 /24s (IPv6 /48s) one account or device comes from within
    ``monitor_rotation_seconds`` (``ip_rotation``)."""
    monitor_rotation_seconds: int = Field(600, ge=60)
    monitor_rotation_slow_prefixes: int = Field(8, ge=0)
    """Distinct /24s (/48s) one account or device comes from within
    ``monitor_rotation_slow_seconds``: the same scenario over a week, for proxy-pool accounts
    making a few requests per release (0: off)."""
    monitor_rotation_slow_seconds: int = Field(7 * 86400, ge=3600)
    monitor_lockstep_bucket_seconds: float = Field(5.0, gt=0)
    monitor_lockstep_release_seconds: float = Field(600.0, gt=0)
    monitor_lockstep_sessions: int = Field(3, ge=2)
    monitor_lockstep_similarity: float = Field(0.2, gt=0, le=1)
    monitor_lockstep_max_bucket: int = Field(50, ge=2)
    monitor_lockstep_window_seconds: int = Field(90 * 86400, ge=3600)
    monitor_lockstep_group: int = Field(3, ge=0)
    """``lockstep`` judged as a group: an account in the same bucket as this many other
    accounts, each of which it already shared a bucket with on another release, is named
    with them (0: off)."""
    monitor_lockstep_group_sessions: int = Field(2, ge=2)
    """Releases an account must share with each member of such a group."""
    monitor_surge_seconds: int = Field(600, ge=60)
    monitor_surge_min: int = Field(30, ge=2)
    monitor_surge_factor: float = Field(5.0, gt=1)
    """A surge: this many times the last day's average rate, and at least ``surge_min``."""
    monitor_waitlist_read_seconds: float = Field(10.0, gt=0)
    monitor_waitlist_fast_accepts: int = Field(2, ge=1)
    monitor_waitlist_window_seconds: int = Field(30 * 86400, ge=60)
    monitor_guard_refusals: int = Field(60, ge=1)
    monitor_guard_refusal_seconds: int = Field(300, ge=10)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("trusted_proxies", "monitor_platform_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def secret_bytes(self) -> bytes:
        """The master secret; RuntimeError (one line) when it is missing or guessable."""
        if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
            raise RuntimeError(
                "FAIRSLOT_SECRET_KEY is not set or shorter than 32 characters; "
                "generate one with `fairslot secret new`"
            )
        value = self.secret_key.get_secret_value()
        if _entropy_bits(value) < MIN_SECRET_BITS or len(set(value)) < MIN_SECRET_SYMBOLS:
            raise RuntimeError(
                "FAIRSLOT_SECRET_KEY looks guessable (a repeated or patterned value); "
                "generate one with `fairslot secret new`"
            )
        return value.encode()


MIN_SECRET_BITS = 64
MIN_SECRET_SYMBOLS = 8
"""A master secret must use at least this many different characters and carry this much
entropy by its own character frequencies: 32 times 'a', or 'changeme' repeated, is refused;
`fairslot secret new` gives 43 random characters (about 250 bits by this estimate)."""


def _entropy_bits(value: str) -> float:
    """The length times the Shannon entropy of the characters' frequencies: a crude upper
    bound on what the key can hold, enough to catch placeholders and repeats."""
    counts = collections.Counter(value)
    return -sum(n * math.log2(n / len(value)) for n in counts.values())


@functools.cache
def get_settings() -> Settings:
    return Settings()
