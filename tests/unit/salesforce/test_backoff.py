"""The one backoff of the Salesforce path (streams/salesforce/session.py): the client's
retries and the sink's waits between held batches both use it, configured by
`retry_base_s` and `retry_cap_s`."""

from __future__ import annotations

import random

import pytest

from streams.salesforce import SalesforceClient, SalesforceSettings


def client(base: float, cap: float, seed: int = 7) -> SalesforceClient:
    settings = SalesforceSettings(retry_base_s=base, retry_cap_s=cap)
    return SalesforceClient(settings, rng=random.Random(seed))


@pytest.mark.parametrize(("base", "cap"), [(0.3, 60.0), (0.01, 0.2), (1.0, 2.0)])
def test_delays_stay_under_the_doubling_ceiling_and_the_cap(base: float, cap: float) -> None:
    sf = client(base, cap)
    for attempt in range(12):
        ceiling = min(cap, base * 2**attempt)
        delays = [sf.backoff(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        # Full jitter: spread over the whole range, not pinned near either end.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


def test_the_settings_decide_the_delays() -> None:
    short, default = client(0.01, 0.2), client(0.3, 60.0)
    assert max(short.backoff(10) for _ in range(100)) <= 0.2
    assert max(default.backoff(10) for _ in range(100)) > 30


def test_the_same_seed_gives_the_same_delays() -> None:
    first, second = client(0.3, 60.0, seed=3), client(0.3, 60.0, seed=3)
    assert [first.backoff(n) for n in range(8)] == [second.backoff(n) for n in range(8)]
