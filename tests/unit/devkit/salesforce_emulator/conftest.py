"""The emulator's Event has our custom fields only once the DX project is deployed (as
the server does at start): unit tests of the schema see the same org."""

from __future__ import annotations

import pytest

from devkit.salesforce_emulator import metadata


@pytest.fixture(autouse=True)
def deployed_metadata() -> None:
    metadata.deploy(metadata.load())
