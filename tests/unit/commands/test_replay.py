"""Parsing replay's --since (streams/commands/replay.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.commands.base import UserError
from streams.commands.replay import parse_since

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_parse_since_takes_iso_times_and_ages() -> None:
    assert parse_since("2026-11-24T09:00:00Z") == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_since("2026-11-24T10:00:00+01:00") == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_since("2026-11-24T09:00:00") == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_since("90m", now=NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2h", now=NOW) == NOW - timedelta(hours=2)
    assert parse_since("1.5d", now=NOW) == NOW - timedelta(days=1.5)
    with pytest.raises(UserError, match="--since 'yesterday'"):
        parse_since("yesterday")
