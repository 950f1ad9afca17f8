"""bench/scale_bench.py: whether the next stage fits the budget is predicted from the
last stage's fill rate plus its fixed part (the probe, the live phase, the restarts)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.scale_bench import StepClock, predict_stage_s

STAGE_200K = {"stage_s": 200, "fill_s": 120.0, "fill_bookings": 140_000}


@pytest.mark.parametrize(
    ("last", "held", "target", "expected"),
    [
        ({}, 0, 10_000, 0.0),  # the first stage: nothing to go by, it runs
        # No fill yet (the first stage is all probe): 90 s again, plus the fill of
        # 30,000 at the probe's 8 s per 10,000 bookings.
        (
            {
                "stage_s": 90,
                "fill_s": 0.0,
                "fill_bookings": 0,
                "probe_s": 8.0,
                "probe_bookings": 10_000,
            },
            10_000,
            50_000,
            90 + 8 / 10_000 * 30_000,
        ),
        # 80 s fixed + 120 s / 140,000 bookings for the 790,000 the next fill adds.
        (STAGE_200K, 200_000, 1_000_000, 80 + 120 / 140_000 * 790_000),
    ],
)
def test_a_stage_is_predicted_from_the_last_ones_fill_rate(
    last: dict[str, Any], held: int, target: int, expected: float
) -> None:
    assert predict_stage_s(last, held, target, probe=10_000) == pytest.approx(expected)


def test_a_step_clock_adds_up_each_steps_time() -> None:
    clock = StepClock()
    for _ in range(2):
        with clock.step("read"):
            pass
    with pytest.raises(RuntimeError), clock.step("compare"):
        raise RuntimeError("a failed step still counts")
    assert set(clock.spent) == {"read", "compare"}
    assert all(seconds >= 0 for seconds in clock.spent.values())
