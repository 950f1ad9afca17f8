"""`activity-sync demo` end to end, as a user runs it: a subprocess from the repo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devkit.demo import demo_bookings
from streams.commands.console import parse_table

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def test_demo_prints_the_salesforce_events_with_the_expected_statuses(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devkit", "demo", "--dir", str(tmp_path / "demo")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    rows = parse_table(result.stdout)
    shown = {row["Booking"]: row for row in rows}
    expected = {b.booking_id: b.expected_status for b in demo_bookings() if b.expected_status}
    assert {booking: row["Status"] for booking, row in shown.items()} == expected
    # Bookings that must not have an Event are not in the table.
    assert "demo-1007" not in shown
    assert "demo-1008" not in shown
    assert shown["demo-1002"]["Reason"] == "Sick (customer)"
    assert shown["demo-1003"]["Reason"] == "Travel delay (booking owner)"
    assert shown["demo-1001"]["Owner"] == "Grace Hopper"  # the reassignment moved the Event
    assert "Dead-lettered to booking-events.dlq: 1 " in result.stdout
    # Clean shutdown: nothing left running, no traceback.
    assert "Traceback" not in result.stderr
    assert "done; logs in" in result.stdout
