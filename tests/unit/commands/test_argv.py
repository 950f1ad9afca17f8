"""The command line before Faust parses it (streams/commands/argv.py)."""

from __future__ import annotations

import pytest

from streams.commands.argv import command_of, option_value, rewrite


def test_app_version_is_renamed_before_faust_takes_it_for_the_app() -> None:
    assert rewrite(["backfill", "--app-version", "2"]) == ["backfill", "--rebuild-version", "2"]
    assert rewrite(["backfill", "--app-version=3"]) == ["backfill", "--rebuild-version=3"]
    # Faust's own -A/--app is left alone.
    assert rewrite(["--app", "x.y", "worker"]) == ["--app", "x.y", "worker"]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["worker", "-l", "info"], "worker"),
        (["-l", "info", "worker"], "worker"),
        (["--json", "status", "b-1"], "status"),
        (["--loglevel", "debug", "backfill", "--app-version", "2"], "backfill"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_command_is_found_past_faust_global_options(
    argv: list[str], command: str | None
) -> None:
    assert command_of(argv) == command


def test_option_value_in_both_forms() -> None:
    assert option_value(["worker", "-b", "0.0.0.0"], "--web-bind", "-b") == "0.0.0.0"
    assert option_value(["worker", "--web-bind=::1"], "--web-bind", "-b") == "::1"
    assert option_value(["worker"], "--web-bind", "-b") is None
