"""The worker command runs with the collector thresholds of streams/worker/process/gc_tuning.py."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams import cli
from streams.worker.process.gc_tuning import THRESHOLDS


@pytest.fixture
def restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_thresholds")
def test_the_command_line_entry_point_tunes_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    seen: list[tuple[int, int, int]] = []
    monkeypatch.setattr(cli.app, "main", lambda: seen.append(gc.get_threshold()))

    cli.main()

    assert seen == [THRESHOLDS]
