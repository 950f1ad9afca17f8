"""A rebuild from app version 1 to 2 under live traffic, as docs/operations.md gives it.

Version 1 folds and writes Events while events keep arriving; version 2 starts beside
it and `backfill --app-version 2` follows it until it exits 0; version 1 stops; `replay
--since` re-writes the bookings both versions touched; `delete-version 1 --yes` deletes
exactly version 1's topics while version 2 keeps folding the traffic; `clean-versions`
deletes version 1's local tables. Salesforce must end as the fold of everything sent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devkit.broker_namespace import APP_TOPICS, BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from streams.commands.generate import generate_events
from streams.commands.versions import group_id, group_members, version_topics
from tests.fixtures import (
    Record,
    Workers,
    assert_one_line_error,
    event_records,
    produce,
    run_cli,
    wait_for_salesforce,
    wait_until,
)

pytestmark = pytest.mark.integration

EVENTS = "booking-events"
# The app's tables (streams/worker/app.py; tests/unit/commands/test_versions.py checks
# this list against the app).
TABLES = ("bookings", "synced", "due")
LIVE_RATE = 25.0  # events per second while the rebuild runs


class LiveTraffic:
    """Producers' events at a steady rate, from a thread of its own, until stopped."""

    def __init__(self, broker: BrokerNamespace, pool: list[dict[str, Any]]) -> None:
        self.broker = broker
        self.pool = pool
        self.sent: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-traffic", daemon=True)

    def _records(self) -> Iterator[Record]:
        for event in self.pool:
            if self._stop.is_set():
                return
            self.sent.append(event)
            yield event_records([event])[0]
        raise AssertionError("the live traffic ran out of events: give it a larger pool")

    def _run(self) -> None:
        try:
            asyncio.run(produce(self.broker, EVENTS, self._records(), rate=LIVE_RATE))
        except BaseException as exc:  # reported by stop(), in the test's thread
            self._failed = exc

    def start(self) -> LiveTraffic:
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        """Stop, wait for the last records to be flushed, and return every event sent."""
        self._stop.set()
        self._thread.join(60)
        if self._failed is not None:
            raise AssertionError(f"live traffic failed: {self._failed!r}") from self._failed
        return list(self.sent)


async def broker_topics(broker: BrokerNamespace) -> set[str]:
    """The topics of this test's namespace on the broker."""
    client = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await client.start()
    try:
        names = await client.list_topics()
    finally:
        await client.close()
    return {name for name in names if name.startswith(broker.prefix) and not name.startswith("__")}


async def until_empty(broker: BrokerNamespace, group: str, wait_s: float) -> None:
    """Wait until `group` has no members (a stopped worker leaves it as it shuts down)."""
    client = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await client.start()
    try:
        deadline = time.monotonic() + wait_s
        while await group_members(client, group):
            assert time.monotonic() < deadline, f"{group} still has members after {wait_s}s"
            await asyncio.sleep(0.5)
    finally:
        await client.close()


def projections_skipped_as_other_version(samples: list[Any]) -> float:
    return sum(
        float(sample.value)
        for sample in samples
        if sample.name == "activity_sync_projections_skipped_total"
        and sample.labels.get("why") == "other-app-version"
    )


async def test_a_rebuild_from_version_1_to_2_under_live_traffic(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    history = list(generate_events(150, seed=61))
    cut = len(history) * 2 // 3
    before = history[:cut]
    # Live traffic: the rest of those bookings' events, then new bookings.
    pool = history[cut:] + list(generate_events(1500, seed=62, id_prefix="live-"))
    shared = {broker.topic(name) for name in APP_TOPICS.values()}
    v1_topics = set(version_topics(broker.app_id, 1, TABLES))
    v2_topics = set(version_topics(broker.app_id, 2, TABLES))

    v1 = workers.start("v1")
    await produce(broker, EVENTS, event_records(before))
    wait_for_salesforce(salesforce_emulator, expected_events(before))

    traffic = LiveTraffic(broker, pool).start()
    try:
        # 1. Version 2 starts beside version 1, which goes on serving the live traffic.
        rebuild_began = datetime.now(UTC)
        v2 = workers.start("v2", app_version="2")

        # 2. Followed until it has caught up, while events keep arriving.
        followed = run_cli(
            "backfill",
            "--app-version",
            "2",
            "--worker",
            v2.web_url,
            "--interval",
            "0.5",
            "--timeout",
            "120",
            env=v2.env,
            timeout=180,
        )
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert f"group {group_id(broker.app_id, 2)} rebuilding" in followed.stdout
        assert "backfill: caught up" in followed.stdout
        assert traffic.sent, "no live traffic during the rebuild"

        # Every topic the two versions made is one of theirs or a shared one.
        assert await broker_topics(broker) == shared | v1_topics | v2_topics
        # Version 1's topics cannot go while its workers run.
        refused = run_cli("delete-version", "1", "--yes", env=v2.env)
        assert_one_line_error(refused, "still running", group_id(broker.app_id, 1))
        assert await broker_topics(broker) == shared | v1_topics | v2_topics

        # 3. Version 1 stops; the bookings both versions wrote during the overlap are
        # written again by version 2 (equal fold versions: the later write stands).
        v1.stop()
        replayed = run_cli(
            "replay",
            "--since",
            rebuild_began.strftime("%Y-%m-%dT%H:%M:%SZ"),
            env=v2.env,
            timeout=120,
        )
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "replayed" in replayed.stdout

        # 4. Clean up version 1: its topics (listed first), then its local tables.
        await until_empty(broker, group_id(broker.app_id, 1), 60)
        listed = run_cli("delete-version", "1", env=v2.env)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        named = {line.strip() for line in listed.stdout.splitlines() if line.startswith("  ")}
        assert named == v1_topics
        assert "dry run: nothing deleted" in listed.stdout
        assert await broker_topics(broker) == shared | v1_topics | v2_topics

        sent_before_cleanup = len(traffic.sent)
        deleted = run_cli("delete-version", "1", "--yes", env=v2.env)
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert "deleted 4 topics of app version 1" in deleted.stdout
        assert await broker_topics(broker) == shared | v2_topics

        v1_tables = v1.env["ACTIVITY_SYNC_DATA_DIR"]
        assert (workers.root / "v1" / "v1").is_dir(), v1_tables
        cleaned = run_cli("clean-versions", env={**v2.env, "ACTIVITY_SYNC_DATA_DIR": v1_tables})
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert not (workers.root / "v1" / "v1").exists()

        # Version 2 goes on folding the traffic after the cleanup.
        wait_until(
            lambda: len(traffic.sent) >= sent_before_cleanup + 2 * LIVE_RATE,
            60,
            "live traffic after the cleanup",
        )
    finally:
        sent = traffic.stop()

    assert v2.process is not None
    assert v2.process.poll() is None, "version 2 stopped"
    wait_for_salesforce(salesforce_emulator, expected_events(before + sent), timeout=90)
    # Version 2's sink read version 1's projections on the shared topic and skipped them.
    assert projections_skipped_as_other_version(v2.metrics()) > 0
