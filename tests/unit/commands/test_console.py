"""Plain-text tables of the operator commands (streams/commands/console.py)."""

from __future__ import annotations

from streams.commands.console import format_table, parse_table


def test_format_table_round_trips_through_parse_table() -> None:
    rows = [["demo-1", "Canceled", "Sick (customer)"], ["demo-2", "No-show", "-"]]
    text = "before\n" + format_table(("Booking", "Status", "Reason"), rows) + "\nafter | x"
    assert parse_table(text) == [
        {"Booking": "demo-1", "Status": "Canceled", "Reason": "Sick (customer)"},
        {"Booking": "demo-2", "Status": "No-show", "Reason": "-"},
    ]
    assert parse_table("no table here") == []
