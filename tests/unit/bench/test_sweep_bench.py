"""`make bench-sweep` checks that the due slice finds what the full sweep finds; here on
a small workload (measure() stops when they disagree), so a due index that misses or
invents due bookings fails a test. The timings themselves are the bench's, not asserted."""

from __future__ import annotations

import pytest

from bench import sweep_bench


@pytest.mark.parametrize("due_percent", [1.0, 10.0])
def test_the_due_slice_finds_the_bookings_the_full_sweep_finds(due_percent: float) -> None:
    result = sweep_bench.measure(2_000, seed=5, due_percent=due_percent, repeat=1)
    assert result["completion_due"] == int(2_000 * due_percent / 100)
    assert result["reconcile_entries_read"] == result["completion_due"]
