"""/health/'s summary of the org check at start: a warning (no Modify All Data) is a
pass, counted so it is not lost in the lines."""

from __future__ import annotations

from streams.worker.watch.org_status import OrgStatus


def test_a_warning_passes_and_is_counted() -> None:
    lines = ["ok   API version 62.0: served", "warn user permission Modify All Data: not granted"]
    status = OrgStatus(checked=True, ok=True, lines=lines)
    assert status.summary() == "ok (2 checks passed at start, 1 with a warning)"
    assert OrgStatus(True, True, lines[:1]).summary() == "ok (1 checks passed at start)"


def test_a_failure_lists_only_the_failing_lines() -> None:
    lines = ["warn user permission Modify All Data: not granted", "FAIL Case: no read"]
    status = OrgStatus(checked=True, ok=False, lines=lines)
    assert status.summary() == "failing: FAIL Case: no read"
