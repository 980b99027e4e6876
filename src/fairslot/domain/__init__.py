"""Pure rules of fairslot: identity, schedules, booking states, the draw, quotas and credit.

Nothing in this package does I/O or imports the web, the database or Redis."""
