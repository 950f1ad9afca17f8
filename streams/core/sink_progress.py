"""How far this worker's sink has read activity-projections, against where the fold
put each booking's newest projection. Pure bookkeeping, in memory, per process.

The reconcile timer (streams/worker/reconcile.py) re-sends a projection Salesforce stays
behind. Without this it could not tell "lost" from "not read yet": during a backfill
the sink trails the fold by minutes, and every sweep would re-send thousands of
projections that were on their way. With it, a projection the sink has not read past
is in flight and left alone; one it has read past and still not synced was lost (or
rejected, which `synced` records) and is re-sent.

Entries are dropped once the sink has read past them, so the map holds only what is in
flight. A worker that just started has no entries: its sweep falls back to the
two-sweeps rule of streams/core/sync_gaps.py.
"""

from __future__ import annotations

from typing import NamedTuple


class SentProjection(NamedTuple):
    version: int
    partition: int
    offset: int


class SinkProgress:
    def __init__(self) -> None:
        self._sent: dict[bytes, SentProjection] = {}
        self._read: dict[int, int] = {}

    def sent(self, key: bytes, version: int, partition: int, offset: int) -> None:
        """The fold's projection of `key` at `version` is at (partition, offset)."""
        self._sent[key] = SentProjection(version, partition, offset)

    def read(self, partition: int, offset: int) -> None:
        """The sink has handled the record at (partition, offset) and those before it."""
        if offset > self._read.get(partition, -1):
            self._read[partition] = offset

    def in_flight(self, key: bytes, version: int) -> bool:
        """Version `version` of `key` was sent by this process and the sink has not
        read that far yet."""
        sent = self._sent.get(key)
        return (
            sent is not None
            and sent.version == version
            and self._read.get(sent.partition, -1) < sent.offset
        )

    def forget_read(self) -> None:
        """Drop the projections the sink has read past."""
        self._sent = {
            key: sent
            for key, sent in self._sent.items()
            if self._read.get(sent.partition, -1) < sent.offset
        }

    def __len__(self) -> int:
        return len(self._sent)
