"""Which bookings to re-send to the sink because Salesforce stays behind them. Pure.

Every projection normally reaches the sink once. A few paths can still lose one: a
worker killed between writing the `bookings` changelog and sending the projection, or
Faust acknowledging a record the sink's batch had not yet taken when a worker stops.
The reconcile timer compares, per booking, the version the fold has reached with the
version the sink has handled (`synced`), and re-sends a projection that stayed behind
for two sweeps in a row: in-flight work catches up within one sweep and is left alone.
Each (booking, version) is re-sent at most once, so an outage does not flood the topic.
"""

from __future__ import annotations

from collections.abc import Iterable


def handled_version(synced_value: int) -> int:
    """`synced` holds the version written, or minus the version Salesforce rejected."""
    return abs(synced_value)


class SyncGaps:
    def __init__(self) -> None:
        self._behind: dict[bytes, int] = {}
        self._resent: dict[bytes, int] = {}

    def sweep(self, rows: Iterable[tuple[bytes, int, int]]) -> list[bytes]:
        """rows: (booking key, projected version, synced value); returns keys to re-send."""
        behind: dict[bytes, int] = {}
        resend: list[bytes] = []
        for key, version, synced_value in rows:
            if handled_version(synced_value) >= version:
                continue
            behind[key] = version
            if self._behind.get(key) == version and self._resent.get(key) != version:
                resend.append(key)
                self._resent[key] = version
        self._behind = behind
        # Forget re-sends that have since been handled.
        self._resent = {k: v for k, v in self._resent.items() if k in behind}
        return resend
