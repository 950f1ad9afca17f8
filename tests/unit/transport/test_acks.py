"""Which acknowledgements may move a committed offset (streams/transport/acks.py)."""

from __future__ import annotations

import pytest

from streams.transport.acks import ack_counts


@pytest.mark.parametrize(
    ("message_generation", "current_generation", "flow_active", "counts"),
    [
        (3, 3, True, True),  # the normal case
        (None, 3, True, True),  # not from a fetch: Faust's own rules
        (2, 3, True, False),  # fetched before the last rebalance
        (3, 3, False, False),  # during a rebalance: skipped or unfinished records
        (None, 3, False, False),
        (2, 3, False, False),
    ],
)
def test_ack_counts(
    message_generation: int | None, current_generation: int, flow_active: bool, counts: bool
) -> None:
    assert (
        ack_counts(
            message_generation=message_generation,
            current_generation=current_generation,
            flow_active=flow_active,
        )
        is counts
    )
