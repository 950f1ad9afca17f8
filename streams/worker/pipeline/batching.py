"""Fold batches that grow while the agent catches up, and shrink again for live traffic.

The fold coalesces per booking within a batch (one table write and one projection per
booking), and Faust's per-write and per-send costs dwarf the fold itself. Live
traffic wants small, quick batches (latency); a backlog (a backfill, a restart, an
outage upstream) wants large ones: in a long-lived topic a booking's events lie
thousands of records apart, so only a batch that wide coalesces them.

`BatchPolicy` chooses both; the fold's stream (`streams.runtime.batches.AdaptiveStream`)
asks it before each batch. The policy is pure: after each batch it is told how many
records wait behind it (from the consumer's last fetch), and a backlog larger than a
live batch means large ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BatchPolicy:
    """Live: up to `live_size` events or `live_window` seconds, whichever comes first.

    Catching up, when at least `live_size` events were waiting after the last batch:
    up to `catch_up_size` events or `catch_up_window` seconds. The size is also capped
    at what was waiting, so the batch that drains a backlog closes as soon as it holds
    it instead of idling out the long window.
    """

    live_size: int
    live_window: float
    catch_up_size: int
    catch_up_window: float
    backlog: int = field(default=0, init=False)

    @property
    def catching_up(self) -> bool:
        return self.backlog >= self.live_size and self.catch_up_size > self.live_size

    @property
    def size(self) -> int:
        if self.catching_up:
            return min(self.backlog, self.catch_up_size)
        return self.live_size

    @property
    def window(self) -> float:
        return self.catch_up_window if self.catching_up else self.live_window

    def observe(self, backlog: int) -> None:
        """After a batch: how many events of its partitions are waiting behind it."""
        self.backlog = backlog
