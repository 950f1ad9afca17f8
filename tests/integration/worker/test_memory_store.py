"""Smoke test of the memory:// table store (an option; every other test runs rocksdb://).

A memory worker rebuilds its tables from the changelogs at each start, so the restart
in the middle of the scenario exercises that path.
"""

from __future__ import annotations

import pytest

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from tests.fixtures import Workers
from tests.integration.worker.test_pipeline import fold_spread_bookings_across_a_restart

pytestmark = pytest.mark.integration


async def test_the_memory_store_folds_and_recovers_like_rocksdb(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    await fold_spread_bookings_across_a_restart(
        broker, workers, salesforce_emulator, store="memory://"
    )
