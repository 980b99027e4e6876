"""Load shedding: a worker that is drowning refuses the least important groups first."""

from __future__ import annotations

__all__ = ["LoadShedder"]


class LoadShedder:
    """Counts this worker's in-flight requests. Per worker, on purpose: overload is a
    property of the process that is drowning, and counting locally costs nothing."""

    def __init__(self, thresholds: tuple[int, int, int]) -> None:
        self.thresholds = thresholds
        self.in_flight = 0
        self.shed_count = 0

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1

    def should_shed(self, tier: int) -> bool:
        return self.in_flight > self.thresholds[tier]

    @property
    def loaded(self) -> bool:
        """Past the first threshold: browsing is being shed, challenges get harder."""
        return self.in_flight > self.thresholds[0]
