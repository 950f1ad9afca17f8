"""Parsing replay's --since (streams/commands/replay.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.commands.base import UsageError
from streams.commands.replay import parse_since

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-24T09:00:00Z", datetime(2026, 11, 24, 9, tzinfo=UTC)),
        ("2026-11-24T10:00:00+01:00", datetime(2026, 11, 24, 9, tzinfo=UTC)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2h", NOW - timedelta(hours=2)),
        ("1.5d", NOW - timedelta(days=1.5)),
    ],
)
def test_parse_since_takes_iso_times_with_a_timezone_and_ages(text: str, moment: datetime) -> None:
    assert parse_since(text, now=NOW) == moment


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("yesterday", "not a time"),
        # Whose 09:00? Events without a timezone are refused too (the contract).
        ("2026-11-24T09:00:00", "no timezone"),
        ("2026-11-24", "no timezone"),
    ],
)
def test_parse_since_refuses_what_is_no_moment_as_a_usage_error(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=f"--since '{text}': {why}") as refused:
        parse_since(text, now=NOW)
    assert refused.value.exit_code == 2
