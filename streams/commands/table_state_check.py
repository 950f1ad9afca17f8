"""The worker's start-up check of its tables' state against the broker's changelogs.

A worker keeps its tables in RocksDB under `ACTIVITY_SYNC_DATA_DIR`, each table
partition's store with the offset of the last changelog record it applied
(streams/worker/process/table_state.py). Pointed at a broker whose log does not have that state
(a broker restarted without its log, a changelog deleted and recreated, a new cluster),
Faust's recovery would stop with a ConsistencyError traceback when the store is ahead of
the changelog, or, worse, read a different history on top of the old state when the new
log happens to be longer. Before Faust starts, `check_table_state` compares:

- the cluster id the state was built on (recorded beside the stores) with the broker's;
- each store's applied offset with its changelog partition's end offset.

A mismatch under a profile whose broker keeps its log (`kafka`, production) is one line,
exit code 2, naming the data dir, the partition, both offsets and the fix,
`activity-sync reset-state`; nothing is dropped. Under a profile whose broker forgets
its log on a restart (the dev kit's embedded one), the state is expected to be stale:
the worker says so in one line, removes it and starts with empty tables.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from streams.commands.base import UsageError, UserError, one_line
from streams.commands.kafka_io import admin, consumer
from streams.worker.process import table_state
from streams.worker.settings import Settings

# A metadata request refused by a node that is down, asked again (of another node).
METADATA_RETRY_S = 0.2
FIX = "activity-sync reset-state"

T = TypeVar("T")


async def _asked_again(call: Callable[[], Awaitable[T]], deadline: float, what: str) -> T:
    """`call()`, asked again while a node refuses it (a broker restarting), up to
    `deadline`; then one line."""
    while True:
        try:
            return await call()
        except KafkaError as exc:
            if time.monotonic() + METADATA_RETRY_S >= deadline:
                raise UserError(f"no Kafka node answered the {what}: {one_line(exc)}") from None
            await asyncio.sleep(METADATA_RETRY_S)


def _shown(settings: Settings) -> str:
    path = settings.store.data_dir
    return f"ACTIVITY_SYNC_DATA_DIR={path}" + (
        "" if path.is_absolute() else f" ({path.absolute()})"
    )


def _read_stored(directory: Path, changelogs: Mapping[str, str]) -> list[table_state.StoredOffset]:
    try:
        return table_state.stored_offsets(directory, changelogs)
    # rocksdict raises plain exceptions of its own (a store it cannot open: corrupt,
    # written by another RocksDB): one line naming the directory.
    except Exception as exc:
        raise UserError(f"cannot read the table stores in {directory}: {one_line(exc)}") from None


async def _broker_view(
    settings: Settings, stored: list[table_state.StoredOffset], deadline: float
) -> tuple[str | None, dict[tuple[str, int], int]]:
    """The broker's cluster id, and the end offset of each stored changelog partition
    the broker has (a missing one is left out: its log ends at 0)."""
    broker = settings.broker.connection()
    timeout_s = max(1.0, min(10.0, deadline - time.monotonic()))
    async with admin(broker, timeout_s) as client:
        cluster: dict[str, Any] = await _asked_again(
            client.describe_cluster, deadline, "cluster metadata"
        )
        topics: list[Any] = await _asked_again(client.describe_topics, deadline, "topic metadata")
    cluster_id = cluster.get("cluster_id")
    partitions = {str(t["topic"]): len(t["partitions"]) for t in topics if not t.get("error_code")}
    present = [
        TopicPartition(s.changelog, s.partition)
        for s in stored
        if s.partition < partitions.get(s.changelog, 0)
    ]
    ends: dict[tuple[str, int], int] = {}
    if present:
        async with consumer(broker, timeout_s) as client:
            try:
                found = await broker.end_offsets(client, present)
            except KafkaError as exc:
                raise UserError(
                    f"the broker did not answer the changelogs' end offsets: {one_line(exc)}"
                ) from None
        ends = {(tp.topic, tp.partition): end for tp, end in found.items()}
    return (str(cluster_id) if cluster_id else None), ends


def stale_state_problem(
    recorded_cluster: str | None,
    cluster_id: str | None,
    ahead: list[table_state.Ahead],
) -> str | None:
    """Why the stored state does not belong to this broker's log, or None."""
    why = []
    if recorded_cluster and cluster_id and recorded_cluster != cluster_id:
        why.append(f"built on Kafka cluster {recorded_cluster!r}, but the broker is {cluster_id!r}")
    if ahead:
        more = f" and {len(ahead) - 1} more partition(s)" if len(ahead) > 1 else ""
        why.append(f"ahead of the broker's changelog ({ahead[0]}{more})")
    return f"holds table state {' and '.join(why)}" if why else None


async def check_table_state(
    settings: Settings,
    changelogs: Mapping[str, str],
    deadline: float,
    say: IO[str],
) -> None:
    """Refuse (or, for a broker that forgets its log, drop) table state that the
    broker's changelogs do not have; then record the broker's cluster id beside it.
    `changelogs`: table name -> its changelog topic."""
    if not settings.store.url.startswith("rocksdb:"):
        return  # an in-memory store starts empty every time
    directory = table_state.tables_dir(settings.store.data_dir, settings.app.version)
    stored = _read_stored(directory, changelogs)
    cluster_id, ends = await _broker_view(settings, stored, deadline)
    recorded = table_state.recorded_cluster(directory)
    problem = stale_state_problem(recorded, cluster_id, table_state.ahead_of_log(stored, ends))
    if problem is not None:
        profile = settings.broker.connection().profile
        if profile.keeps_log:
            raise UsageError(
                f"{_shown(settings)} {problem}: the broker lost or replaced the log this "
                f"state was built from (a new cluster, a changelog recreated); to start this "
                f"worker with its tables rebuilt from the broker's changelogs, stop it and "
                f"run: {FIX} (moves {directory} aside)"
            )
        table_state.discard(directory, keep=False)
        print(
            f"activity-sync worker: {_shown(settings)} {problem}; the {profile.name} "
            f"broker forgets its log when it restarts, so this worker starts with empty "
            f"tables (removed {directory})",
            file=say,
            flush=True,
        )
    if cluster_id and (problem is not None or recorded != cluster_id):
        table_state.record_cluster(directory, cluster_id)
