"""How far this worker's sink has read activity-projections, against where the fold
put each booking's newest projection. Pure bookkeeping, in memory, per process.

The reconcile timer (streams/worker/pipeline/reconcile.py) re-sends a projection Salesforce stays
behind. Without this it could not tell "lost" from "not read yet": during a backfill
the sink trails the fold by minutes, and every sweep would re-send thousands of
projections that were on their way. With it, a projection the sink has not read past
is in flight and left alone; one it has read past and still not synced was lost (or
rejected, which `synced` records) and is re-sent.

Entries are dropped once the sink has read past them, so the map holds only what is in
flight. A worker that just started has no entries: its sweep falls back to the
two-sweeps rule of streams/worker/pipeline/reconcile.py.

Bounded (`max_entries`, ACTIVITY_SYNC_SINK_PROGRESS_MAX_ENTRIES): in a backfill the fold
runs far ahead of the sink, and one entry per booking would grow with the backlog. Past
the cap the oldest entries are dropped and only the highest offset dropped per partition
is kept: a booking of that partition counts as in flight until the sink has read that
far (conservative: reconcile waits, it never re-sends work that is on its way).
"""

from __future__ import annotations

from typing import NamedTuple


class SentProjection(NamedTuple):
    version: int
    partition: int
    offset: int


class SinkProgress:
    def __init__(self, max_entries: int | None = None) -> None:
        self._sent: dict[bytes, SentProjection] = {}
        self._read: dict[int, int] = {}
        self._max_entries = max_entries
        # Per partition: the highest offset of an entry dropped at the cap.
        self._dropped: dict[int, int] = {}

    def sent(self, key: bytes, version: int, partition: int, offset: int) -> None:
        """The fold's projection of `key` at `version` is at (partition, offset)."""
        self._sent.pop(key, None)  # re-inserted last: the dict's order is age
        self._sent[key] = SentProjection(version, partition, offset)
        if self._max_entries is not None and len(self._sent) > self._max_entries:
            oldest = next(iter(self._sent))
            dropped = self._sent.pop(oldest)
            if dropped.offset > self._dropped.get(dropped.partition, -1):
                self._dropped[dropped.partition] = dropped.offset

    def read(self, partition: int, offset: int) -> None:
        """The sink has handled the record at (partition, offset) and those before it."""
        if offset > self._read.get(partition, -1):
            self._read[partition] = offset

    def in_flight(self, key: bytes, version: int, partition: int | None = None) -> bool:
        """Version `version` of `key` was sent by this process and the sink has not
        read that far yet. `partition` (the booking's) answers for an entry dropped at
        the cap: in flight while the sink has not read past what was dropped there."""
        sent = self._sent.get(key)
        if sent is None:
            return partition is not None and self._read.get(partition, -1) < self._dropped.get(
                partition, -1
            )
        return sent.version == version and self._read.get(sent.partition, -1) < sent.offset

    def forget_read(self) -> None:
        """Drop the projections the sink has read past."""
        self._sent = {
            key: sent
            for key, sent in self._sent.items()
            if self._read.get(sent.partition, -1) < sent.offset
        }
        self._dropped = {p: o for p, o in self._dropped.items() if self._read.get(p, -1) < o}

    def __len__(self) -> int:
        return len(self._sent)
