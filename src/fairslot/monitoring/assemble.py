"""Putting a monitor together from settings: its scenarios, where its windows live (Redis,
shared by every monitor, or this process's memory), its store, responses and notifiers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import redis
from sqlalchemy.engine import Engine as DbEngine

from fairslot.clock import Clock
from fairslot.config import Settings
from fairslot.monitoring.decisions import DecisionSink, responses_from_settings
from fairslot.monitoring.engine import Engine
from fairslot.monitoring.notify import Notifications, Notifier, SmtpNotifier, WebhookNotifier
from fairslot.monitoring.runner import Monitor
from fairslot.monitoring.scenarios import Blacklist, build_scenarios
from fairslot.monitoring.sql_store import SqlMonitorStore
from fairslot.monitoring.store import MonitorStore
from fairslot.monitoring.windows import MemoryWindows, RedisWindows, WindowStore

__all__ = ["make_monitor", "notifiers_from_settings"]


def notifiers_from_settings(settings: Settings) -> list[Notifier]:
    notifiers: list[Notifier] = []
    if settings.monitor_webhook_url:
        secret = settings.monitor_webhook_secret
        notifiers.append(WebhookNotifier(
            settings.monitor_webhook_url,
            secret.get_secret_value().encode() if secret else None))
    if settings.monitor_smtp_host:
        password = settings.monitor_smtp_password
        notifiers.append(SmtpNotifier(
            settings.monitor_smtp_host, settings.monitor_smtp_port,
            sender=settings.monitor_smtp_from, recipients=settings.monitor_smtp_to,
            starttls=settings.monitor_smtp_starttls, username=settings.monitor_smtp_username,
            password=password.get_secret_value() if password else None))
    return notifiers


def make_monitor(settings: Settings, *, clock: Clock, sink: DecisionSink,
                 db: DbEngine | None = None, store: MonitorStore | None = None,
                 redis_client: redis.Redis[Any] | None = None,
                 blacklist: Blacklist | None = None, notify: bool = True) -> Monitor:
    """A monitor whose windows are in Redis when ``redis_client`` is given (production:
    every monitor of the group shares them) and in memory otherwise (embedded mode). Alerts
    go to ``store``, or to the database ``db``. Bad settings raise ValueError or
    InvalidInput naming the setting."""
    scenarios = build_scenarios(settings, blacklist)
    windows: WindowStore
    if redis_client is not None:
        windows = RedisWindows(redis_client, settings.monitor_redis_prefix,
                               Engine.windows_of(scenarios))
    else:
        windows = MemoryWindows()
    if store is None:
        if db is None:
            raise ValueError("a monitor needs a store or a database")
        store = SqlMonitorStore(db)
    notifications = None
    if notify:
        notifiers = notifiers_from_settings(settings)
        if notifiers:
            notifications = Notifications(
                notifiers, min_severity=settings.monitor_notify_min_severity,
                console_url=settings.monitor_console_url)
    return Monitor(
        Engine(scenarios, windows), store, clock=clock, sink=sink,
        responses=responses_from_settings(settings.monitor_responses),
        respond_min_severity=settings.monitor_respond_min_severity,
        notifications=notifications, update_seconds=settings.monitor_alert_update_seconds,
        false_positive_quiet=dt.timedelta(hours=settings.monitor_false_positive_quiet_hours))
