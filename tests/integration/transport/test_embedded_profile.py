"""Smoke test of the `embedded` broker profile (the dev kit's and `make demo`'s broker;
every other pipeline test runs on Apache Kafka): a worker on the embedded broker folds,
writes Salesforce and recovers its tables across a restart, through the profile's own
consumer transport (streams/transport/tansu.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.broker import EmbeddedBroker
from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from tests.fixtures import Workers
from tests.integration.worker.test_pipeline import fold_spread_bookings_across_a_restart

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerNamespace]:
    """An embedded broker of the test's own, in place of the suite's Apache Kafka."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as running:
        yield BrokerNamespace.of(running)


async def test_a_worker_on_the_embedded_profile_folds_writes_and_recovers(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    await fold_spread_bookings_across_a_restart(broker, workers, salesforce_emulator)
    assert {w.env["ACTIVITY_SYNC_BROKER_PROFILE"] for w in workers.started} == {"embedded"}
