"""`activity-sync backfill`: follow a rebuild of every booking from the start of the topic.

A rebuild (the fold's rules changed, or the tables are suspect) is a new app version:
workers started with `ACTIVITY_SYNC_APP_VERSION=N` form a new consumer group
(`<app_id>-vN`) with new, empty tables (changelog topics `<app_id>-vN-*`), read
booking-events from the beginning and write every booking's Event again in full
200-record batches. The projections topic can stay shared: its records carry the
app version that made them and the new sink skips the old version's
(streams/core/projection_record.py).

This command does not start workers; it watches the new group: how far it has read
booking-events (committed offsets against the end offsets taken when the command
started), the lag on the projections topic, and the Salesforce API calls and records
written that the new version's workers (`--worker URL`, repeatable) report on /metrics
since they started. It exits 0 once the group has caught up with both topics: with
booking-events up to those end offsets, and with the projections topic up to its end
offsets taken when that happened. Both targets are fixed, so live traffic (the old
version still writing projections, new events arriving) cannot keep it from ending.

Version 1 is followed too: a new deployment's first load from an empty Salesforce is
version 1's group (the bare app id) reading the topic from the start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from streams.commands.base import UserError
from streams.commands.kafka_io import DEFAULT_TIMEOUT_S, admin, consumer, offsets, partitions_of
from streams.commands.status import auth_headers
from streams.commands.versions import group_id as group_id
from streams.runtime.consumers import refresh_metadata
from streams.transport.connection import BrokerConnection

CALLS_METRIC = "activity_sync_salesforce_calls"
RECORDS_METRIC = "activity_sync_salesforce_records"


@dataclass(frozen=True)
class SalesforceUsage:
    calls: float
    records_written: float
    silent: tuple[str, ...] = ()  # workers whose /metrics did not answer (still starting?)

    def text(self) -> str:
        text = f"Salesforce API calls {self.calls:.0f}, records written {self.records_written:.0f}"
        if self.silent:
            text += f" (no metrics from {', '.join(self.silent)})"
        return text


def parse_usage(metrics_text: str) -> SalesforceUsage:
    """API calls and records written, from a worker's Prometheus text."""
    calls = written = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == CALLS_METRIC + "_total":
                calls += sample.value
            elif sample.name == RECORDS_METRIC + "_total" and sample.labels.get("outcome") in (
                "created",
                "updated",
            ):
                written += sample.value
    return SalesforceUsage(calls, written)


async def salesforce_usage(
    worker_urls: Iterable[str], timeout_s: float = 5.0, *, token: SecretStr | None = None
) -> SalesforceUsage:
    """Summed over the workers that answer; the others are named in `silent`. /metrics/
    is open, the token is sent anyway (a proxy in front may ask for it)."""
    calls = written = 0.0
    silent = []
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth_headers(token)) as session:
        for url in worker_urls:
            try:
                async with session.get(f"{url.rstrip('/')}/metrics/") as response:
                    response.raise_for_status()
                    usage = parse_usage(await response.text())
            except (aiohttp.ClientError, TimeoutError, ValueError):
                silent.append(url)
                continue
            calls += usage.calls
            written += usage.records_written
    return SalesforceUsage(calls, written, tuple(silent))


@dataclass(frozen=True)
class Progress:
    done: int  # booking-events records the group has committed, up to the target
    total: int  # records to read: from the start of each partition to the target
    caught_up: bool  # booking-events at the target, the projections topic at its target
    projections_lag: int  # behind the projections topic's end now
    events_done: bool = False  # booking-events at the target

    def percent(self) -> float:
        return 100.0 if self.total == 0 else 100.0 * self.done / self.total


def measure(
    committed: dict[Any, int],
    begin: dict[Any, int],
    target: dict[Any, int],
    projections_end: dict[Any, int],
    projections_target: dict[Any, int] | None = None,
) -> Progress:
    """Pure: progress of a group from its committed offsets (missing: nothing read).

    The projections topic is caught up at `projections_target` (its end offsets when
    booking-events reached the target), or without one at no lag at all."""
    done = total = 0
    events_done = True
    for tp, end in target.items():
        start = begin.get(tp, 0)
        position = max(committed.get(tp, start), start)
        total += end - start
        done += min(position, end) - start
        events_done = events_done and position >= end
    lag = sum(max(0, end - committed.get(tp, 0)) for tp, end in projections_end.items())
    goal = projections_end if projections_target is None else projections_target
    projections_done = all(committed.get(tp, 0) >= end for tp, end in goal.items())
    return Progress(done, total, events_done and projections_done, lag, events_done)


async def committed_offsets(admin_client: Any, group: str, partitions: list[Any]) -> dict[Any, int]:
    """The offsets `group` committed on `partitions` (missing: none committed yet).

    The partitions are named in the OffsetFetch request, not left out to mean "all of
    the group's": only the watched ones are wanted, and the named form works on every
    broker kind."""
    found = await admin_client.list_consumer_group_offsets(group, partitions=partitions)
    return {tp: meta.offset for tp, meta in found.items() if meta is not None and meta.offset >= 0}


async def watch(
    broker: BrokerConnection,
    *,
    group: str,
    events_topic: str,
    projections_topic: str,
    worker_urls: list[str],
    worker_token: SecretStr | None = None,
    interval_s: float = 2.0,
    timeout_s: float | None = None,
    out: IO[str],
    connect_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> int:
    started = time.monotonic()
    async with (
        consumer(broker, connect_timeout_s) as client,
        admin(broker, connect_timeout_s) as admin_client,
    ):
        events_partitions = await partitions_of(client, events_topic, connect_timeout_s)
        begin, target = await offsets(broker, client, events_partitions)
        total = sum(target[tp] - begin[tp] for tp in events_partitions)
        print(
            f"backfill: group {group} rebuilding from {total} records of {events_topic} "
            f"(end offsets taken now); projections via {projections_topic}",
            file=out,
            flush=True,
        )
        projections_partitions: list[Any] = []
        # The projections topic's end offsets once booking-events is done: the new fold's
        # projections of the backlog are all before them. Its end now would move on with
        # live traffic (and the old version's projections) faster than the group commits.
        projections_target: dict[Any, int] | None = None
        while True:
            if not projections_partitions:
                # Created by the new version's workers when they start.
                found = client.partitions_for_topic(projections_topic)
                if found:
                    projections_partitions = await partitions_of(client, projections_topic)
            committed = await committed_offsets(
                admin_client, group, [*events_partitions, *projections_partitions]
            )
            projections_end: dict[Any, int] = {}
            if projections_partitions:
                _, projections_end = await offsets(broker, client, projections_partitions)
            else:
                await refresh_metadata(client)
            progress = measure(committed, begin, target, projections_end, projections_target)
            if progress.events_done and projections_target is None and projections_partitions:
                projections_target = projections_end
                progress = measure(committed, begin, target, projections_end, projections_target)
            elapsed = time.monotonic() - started
            line = (
                f"[{elapsed:6.1f}s] {events_topic} {progress.done}/{progress.total} "
                f"({progress.percent():5.1f}%), {projections_topic} lag {progress.projections_lag}"
            )
            usage = await salesforce_usage(worker_urls, token=worker_token) if worker_urls else None
            if usage is not None:
                line += ", " + usage.text()
            print(line, file=out, flush=True)
            # A group with nothing committed has not started: never "caught up" then.
            if progress.caught_up and (committed or total == 0):
                break
            if timeout_s is not None and elapsed > timeout_s:
                raise UserError(
                    f"not caught up after {timeout_s:.0f}s ({progress.percent():.1f}% of "
                    f"{events_topic}); are workers with this app version running?"
                )
            await asyncio.sleep(interval_s)
    rate = progress.total / elapsed if elapsed > 0 else 0.0
    summary = f"backfill: caught up: {progress.total} records in {elapsed:.1f}s ({rate:.0f}/s)"
    if usage is not None:
        summary += f"; {usage.text()}"
    print(summary, file=out, flush=True)
    return 0
