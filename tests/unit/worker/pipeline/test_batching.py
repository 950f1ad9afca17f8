"""The fold's batch policy: live batches while little is waiting, catch-up batches,
capped at what is waiting, while a backlog larger than a live batch remains."""

from __future__ import annotations

import pytest

from streams.worker.pipeline.batching import BatchPolicy

LIVE = (1000, 0.05)
CATCH_UP_WINDOW = 1.0


def policy(catch_up_size: int = 10_000) -> BatchPolicy:
    live_size, live_window = LIVE
    return BatchPolicy(live_size, live_window, catch_up_size, CATCH_UP_WINDOW)


@pytest.mark.parametrize(
    ("backlogs", "then"),
    [
        ([], LIVE),
        ([0], LIVE),
        ([999], LIVE),
        ([1000], (1000, CATCH_UP_WINDOW)),
        ([1500], (1500, CATCH_UP_WINDOW)),  # closes once it holds what was waiting
        ([90_000], (10_000, CATCH_UP_WINDOW)),
        ([90_000, 80_000, 2_500], (2_500, CATCH_UP_WINDOW)),
        ([90_000, 80_000, 12], LIVE),  # the backlog is gone
        ([90_000, 12, 5_000], (5_000, CATCH_UP_WINDOW)),  # and back
    ],
)
def test_batch_size_and_window_follow_the_backlog(
    backlogs: list[int], then: tuple[int, float]
) -> None:
    chosen = policy()
    for backlog in backlogs:
        chosen.observe(backlog)

    assert (chosen.size, chosen.window) == then


def test_no_catch_up_when_its_batches_would_not_be_larger() -> None:
    chosen = policy(catch_up_size=LIVE[0])
    chosen.observe(50_000)

    assert (chosen.size, chosen.window) == LIVE
