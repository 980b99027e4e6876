"""The simulator's front door: what a server's web layer writes to the event log for each
request, written for the simulated agents' requests.

A server logs every request (``access``), every guard decision (``guard.*``, the guard's
event sink) and every booking screen shown (``screen.booking``), and hands each action the
request's context: the client address and device the guard saw, the guard's hold
decisions and the age of the screen's action token. The simulator calls the guard and the
services without HTTP, so this class does the web layer's part: it builds the rows with
the web layer's own builders (``fairslot.monitoring.request_log``), writes them through
``Platform.write_events`` (the event log, then the commit hooks: the monitor's publisher)
and builds the ``RequestContext`` the services put in their events. Nothing is invented
that a server would not write: a request the guard refused is logged with the refusal's
status, and the guard's own events come from the guard.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any, Protocol

from fairslot.bootstrap import Platform
from fairslot.domain.booking import Channel
from fairslot.domain.errors import FairslotError
from fairslot.guard.events import GuardEvent
from fairslot.guard.policy import RouteGroup
from fairslot.guard.requester import GuardPass
from fairslot.monitoring.request_log import access_row, guard_row, screen_row
from fairslot.services.context import RequestContext

__all__ = ["FrontDoor"]

# The API route each kind of simulated request stands for (method, path); the monitor's
# scenarios read who asked and when, the path is for a reader of the log.
_ROUTES: dict[RouteGroup, tuple[str, str]] = {
    RouteGroup.BROWSING: ("GET", "/api/v1/sessions/{id}/booking-screen"),
    RouteGroup.SCREENS: ("GET", "/api/v1/sessions/{id}/booking-screen"),
    RouteGroup.SEARCH: ("GET", "/api/v1/sessions"),
    RouteGroup.LOGIN: ("POST", "/api/v1/auth/login"),
    RouteGroup.REGISTRATION: ("POST", "/api/v1/me/patients"),
    RouteGroup.ENTERING: ("POST", "/api/v1/rounds/{id}/entries"),
    RouteGroup.BOOKING: ("POST", "/api/v1/bookings"),
    RouteGroup.PAYMENT: ("POST", "/api/v1/bookings/{id}/pay"),
}
_USER_AGENT = "fairslot-simulation"


class _Agent(Protocol):
    """What the front door reads of a simulated agent."""

    @property
    def account(self) -> Any: ...

    @property
    def ips(self) -> list[str]: ...

    @property
    def device(self) -> str | None: ...

    @property
    def rotate(self) -> bool: ...


@dataclasses.dataclass(slots=True)
class _Request:
    agent: _Agent
    ip: str
    passed: GuardPass | None = None


class FrontDoor:
    """Logs the simulated requests as the web layer logs real ones. ``batch`` rows are
    written at a time (the access log's batch); ``flush`` writes the rest."""

    def __init__(self, platform: Platform, *, seed: int = 0, batch: int = 500) -> None:
        self.platform = platform
        self._rng = random.Random(f"front door {seed}")
        self.batch = batch
        self._rows: list[dict[str, Any]] = []
        self._current: _Request | None = None
        self._release_of: dict[int, dt.datetime] = {}

    # -- the guard's event sink ---------------------------------------------------------

    def guard_events(self, event: GuardEvent) -> None:
        """The guard's sink, as ``GuardEventLog`` is on a server."""
        self._record(guard_row(event))

    # -- one request --------------------------------------------------------------------

    def address(self, agent: _Agent) -> str:
        """The address a request of ``agent`` comes from: any of a rotating pool's, else
        its own (drawn here, not from the agent's randomness)."""
        ips = agent.ips
        return self._rng.choice(ips) if len(ips) > 1 and agent.rotate else ips[0]

    def begin(self, agent: _Agent, ip: str) -> None:
        """A request of ``agent`` from ``ip`` starts (before the guard)."""
        self._current = _Request(agent, ip)

    def passed(self, passed: GuardPass | None) -> None:
        """The guard let the current request through."""
        if self._current is not None:
            self._current.passed = passed

    def end(self, group: RouteGroup, error: BaseException | None) -> None:
        """The current request is answered: log it with the status a server would send."""
        request, self._current = self._current, None
        if request is None:
            return
        status = 200 if error is None else (
            error.status if isinstance(error, FairslotError) else 500)
        self.access(request.agent, request.ip, group, status)

    def access(self, agent: _Agent, ip: str, group: RouteGroup, status: int) -> None:
        method, path = _ROUTES[group]
        self._record(access_row(self.platform.clock.now(), account_id=agent.account.id,
                                ip=ip, device_id=agent.device, method=method, path=path,
                                status=status, user_agent=_USER_AGENT))

    def context(self, agent: _Agent, channel: Channel = Channel.WEB) -> RequestContext:
        """What the server hands the services for the agent's current request (or, outside
        one, for a request from its first address)."""
        request = self._current if self._current is not None \
            and self._current.agent is agent else None
        passed = request.passed if request is not None else None
        return RequestContext(
            ip=request.ip if request is not None else agent.ips[0], device_id=agent.device,
            channel=channel, held_for_review=passed.held_for_review if passed else (),
            screen_age_s=passed.screen_age_s if passed else None)

    def booking_screen(self, agent: _Agent, session_id: int,
                       patient_id: int | None = None) -> None:
        """A booking screen for ``session_id`` was shown to the current request."""
        ctx = self.context(agent)
        self._record(screen_row(self.platform.clock.now(), account_id=agent.account.id,
                                ip=ctx.ip, device_id=ctx.device_id, session_id=session_id,
                                release_at=self._release(session_id),
                                patient_id=patient_id))

    # -- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            self.platform.write_events(rows)

    def _record(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.batch:
            self.flush()

    def _release(self, session_id: int) -> dt.datetime:
        release = self._release_of.get(session_id)
        if release is None:
            with self.platform.uow() as uow:
                session = uow.schedule.session(session_id)
            release = session.release_at if session is not None else self.platform.clock.now()
            self._release_of[session_id] = release
        return release
