"""Parsing replay's --since and --org, and choosing bookings by org
(streams/commands/replay.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.commands.base import UsageError
from streams.commands.replay import Selection, org_name, parse_org, parse_since
from tests.factories import fold_dicts, reassigned, scheduled

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


# --org (issue 23) ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["acme", "default", "eu-2"])
def test_parse_org_takes_registry_names_and_default(text: str) -> None:
    assert parse_org(text) == text


@pytest.mark.parametrize("text", ["Acme", "", "acme\n", "-acme", "a" * 41])
def test_parse_org_refuses_what_is_no_org_name_as_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="not an org name") as refused:
        parse_org(text)
    assert refused.value.exit_code == 2


def test_replay_by_org_chooses_bookings_by_the_org_their_event_lives_in() -> None:
    acme_page = {**scheduled()["data"]["page"], "salesforce_org": "acme"}
    in_acme = fold_dicts([scheduled(page=acme_page)]).view.salesforce_org
    moved_out = fold_dicts([scheduled(page=acme_page), reassigned(2)]).view.salesforce_org
    in_default = fold_dicts([scheduled()]).view.salesforce_org
    assert (in_acme, moved_out, in_default) == ("acme", None, None)
    acme, default, every = Selection(org="acme"), Selection(org="default"), Selection()
    assert [acme.in_org(o) for o in (in_acme, moved_out, in_default)] == [True, False, False]
    assert [default.in_org(o) for o in (in_acme, moved_out, in_default)] == [False, True, True]
    assert all(every.in_org(o) for o in (in_acme, moved_out, in_default))
    assert org_name(None) == "default"
