"""The commit guard (streams/transport/acks.py `drained`): a commit waits until Faust's
producer buffer is empty, and is skipped when it cannot be. A scripted buffer stands
for Faust's: its flush, like Faust's, may return with messages still queued."""

from __future__ import annotations

import pytest

from streams.transport.acks import drained


class Buffer:
    """Sends `per_flush` queued messages per flush; `stops_after` flushes, then stops."""

    def __init__(self, size: int, per_flush: int, stops_after: int | None = None) -> None:
        self.size = size
        self.per_flush = per_flush
        self.stops_after = stops_after
        self.state = "running"
        self.flushes = 0

    async def flush(self) -> None:
        self.flushes += 1
        self.size = max(0, self.size - self.per_flush)
        if self.stops_after is not None and self.flushes >= self.stops_after:
            self.state = "stopping"


class Clock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize(
    ("buffer", "patience_s", "ok", "flushes"),
    [
        pytest.param(Buffer(0, 1), 30.0, True, 0, id="empty: commit at once"),
        # Faust's own flush gave up after the first lull; the guard flushes until empty.
        pytest.param(Buffer(5, 2), 30.0, True, 3, id="drains over several flushes"),
        pytest.param(Buffer(5, 1, stops_after=2), 30.0, False, 2, id="producer stopping"),
        pytest.param(Buffer(5, 0), 3.0, False, 2, id="still queued after the patience"),
    ],
)
async def test_a_commit_waits_for_the_queued_writes_or_is_skipped(
    buffer: Buffer, patience_s: float, ok: bool, flushes: int
) -> None:
    assert await drained(buffer, patience_s, clock=Clock(step=1.0)) is ok
    assert buffer.flushes == flushes


async def test_a_producer_not_running_is_never_flushed() -> None:
    buffer = Buffer(3, 3)
    buffer.state = "stopping"
    assert await drained(buffer) is False
    assert buffer.flushes == 0
