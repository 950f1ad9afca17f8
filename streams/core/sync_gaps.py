"""Why projections are re-sent, and the `synced` value rule. Pure.

Every projection normally reaches the sink once. A few paths can still lose one: a
worker killed between writing the `bookings` changelog and sending the projection, or
Faust acknowledging a record the sink's batch had not yet taken when a worker stops.
The reconcile timer compares, per booking the fold changed, the version the fold has
reached with the version the sink has handled (`synced`), and re-sends a projection that
stayed behind for two sweep intervals: in-flight work catches up meanwhile and is left
alone. Each (booking, version) is re-sent at most once, so an outage does not flood the
topic. The decision per booking is `streams.core.due_index.reconcile_action`.
"""

from __future__ import annotations

# The `synced` table's value for a booking: the projection version the sink has handled,
# as is when Salesforce wrote it, negated when Salesforce rejected it (the record went to
# activity-projections.dlq). No row reads as 0: nothing handled yet. Versions start at 1,
# so the sign is never ambiguous. These three functions are the only readers and writers
# of that rule.


def encode_synced(version: int, *, rejected: bool = False) -> int:
    """The `synced` value for `version`: written, or (negative) rejected."""
    if version < 1:
        raise ValueError(f"projection versions start at 1, not {version}")
    return -version if rejected else version


def handled_version(synced: int) -> int:
    """The version the sink is done with, written or rejected (0: none yet)."""
    return abs(synced)


def is_rejected(synced: int) -> bool:
    """Whether Salesforce rejected the handled version (rather than wrote it)."""
    return synced < 0
