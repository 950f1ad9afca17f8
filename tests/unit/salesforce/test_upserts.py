"""Upserts' per-record lock retries (streams/salesforce/upserts.py) on a scripted
session, no I/O: what each record's outcome is when the retries end."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

from streams.salesforce import SalesforceUnavailable
from streams.salesforce.session import SalesforceSession
from streams.salesforce.upserts import EventUpserts

EXT = "Booking_Id__c"
LOCKED = {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "x"}]}
CREATED = {"success": True, "created": True, "id": "00U1"}


def gave_up() -> SalesforceUnavailable:
    """The session giving up at the deadline (its request cut short by it)."""
    return SalesforceUnavailable("upsert: giving up at the deadline: ReadTimeout")


class ScriptedSession:
    """What `EventUpserts` calls of a `SalesforceSession`, answered from a script: per
    whole call, a Collections answer for the records sent, or an exception."""

    def __init__(self, answers: Sequence[object], backoffs_left: int = 10) -> None:
        self.settings = SimpleNamespace(sobject="Event", external_id_field=EXT, batch_size=200)
        self.answers = list(answers)
        self.backoffs_left = backoffs_left
        self.calls = 0

    async def with_retries(self, call: object, deadline: float | None, what: str) -> Any:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep_or_give_up(self, attempt: int, deadline: float | None) -> bool:
        self.backoffs_left -= 1
        return self.backoffs_left >= 0


@pytest.mark.parametrize(
    ("answers", "backoffs", "status", "calls"),
    [
        pytest.param([[LOCKED], [CREATED]], 10, "created", 2, id="a lock, then written"),
        pytest.param([[LOCKED]], 0, "retryable", 1, id="locked, no time to back off"),
        pytest.param(
            [[LOCKED], gave_up()], 10, "retryable", 2, id="locked, the retry cut by the deadline"
        ),
        pytest.param(
            [[LOCKED], [LOCKED], gave_up()], 10, "retryable", 3, id="locked twice, then cut"
        ),
    ],
)
async def test_locked_records_end_retryable_or_written(
    answers: list[object], backoffs: int, status: str, calls: int
) -> None:
    session = ScriptedSession(answers, backoffs)
    upserts = EventUpserts(cast(SalesforceSession, session))
    outcomes = await upserts.upsert([{EXT: "b-1"}], deadline=10.0)
    assert [o.status for o in outcomes] == [status]
    if status == "retryable":
        assert outcomes[0].errors[0].status_code == "UNABLE_TO_LOCK_ROW"
    assert session.calls == calls


async def test_a_first_call_that_finds_no_answer_raises() -> None:
    session = ScriptedSession([gave_up()])
    upserts = EventUpserts(cast(SalesforceSession, session))
    with pytest.raises(SalesforceUnavailable) as caught:
        await upserts.upsert([{EXT: "b-1"}], deadline=10.0)
    assert caught.value.outcomes == []
