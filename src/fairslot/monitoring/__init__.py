"""Live monitoring and early warning.

Events from the platform (requests, guard decisions, registrations, identity links, draw
entries, bookings, payments, cancellations, check-ins, waitlist offers) flow through one
stream into named scenarios over sliding windows; what crosses a threshold becomes an alert
with its evidence, and an alert can bring decisions (a stricter guard, proof of work, a hold
for review, a block) with a lifetime, which the guard enforces. See docs/monitoring.md.

The modules, in the order an event meets them: ``events`` (the model), ``stream``
(publishers and consumers), ``engine`` with ``scenarios`` and ``windows`` (detection),
``alerts`` and ``store``/``sql_store`` (alerts), ``decisions`` (responses), ``notify``
(webhook and mail), ``runner`` (the loop), ``assemble`` (from settings), ``replay``
(labelled records through the same path, for evaluation).
"""

from fairslot.monitoring.alerts import Alert, AlertChange
from fairslot.monitoring.decisions import Decision, DecisionSink, MemoryDecisionBook
from fairslot.monitoring.events import Channel, MonitorEvent, make_event
from fairslot.monitoring.runner import EmbeddedMonitor, Monitor, MonitorLoop
from fairslot.monitoring.scenarios import Entity
from fairslot.monitoring.stream import EventPublisher, InProcessStream

__all__ = [
    "Alert",
    "AlertChange",
    "Channel",
    "Decision",
    "DecisionSink",
    "EmbeddedMonitor",
    "Entity",
    "EventPublisher",
    "InProcessStream",
    "MemoryDecisionBook",
    "Monitor",
    "MonitorEvent",
    "MonitorLoop",
    "make_event",
]
