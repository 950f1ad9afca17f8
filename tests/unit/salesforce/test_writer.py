"""The sink's writer (streams/salesforce/writer.py) on a scripted client, no I/O: the
related lookup, healing rounds whose fallbacks come back with the outcomes, and
backpressure with `retry_after`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import cast

import pytest

from streams.core.projection import FieldMapping, Projection, complete_related, withdrawal
from streams.salesforce import (
    RecordError,
    RelatedRecord,
    RequestLimitExceeded,
    SalesforceClient,
    SalesforceRequestError,
    SalesforceUnavailable,
    UpsertOutcome,
)
from streams.salesforce.healing import Fallback
from streams.salesforce.writer import Backpressure, CallKind, EventWriter

EXT = "Booking_Id__c"
INACTIVE = RecordError("INACTIVE_OWNER_OR_USER", "operation performed with inactive user")

Upsert = Callable[[list[dict[str, object]]], list[UpsertOutcome]] | Exception


def written(records: list[dict[str, object]]) -> list[UpsertOutcome]:
    return [UpsertOutcome(str(r[EXT]), "updated", "00U") for r in records]


def refusing(*bookings: str) -> Upsert:
    def upsert(records: list[dict[str, object]]) -> list[UpsertOutcome]:
        return [
            UpsertOutcome(str(r[EXT]), "rejected", None, [INACTIVE])
            if r[EXT] in bookings
            else UpsertOutcome(str(r[EXT]), "updated", "00U")
            for r in records
        ]

    return upsert


class FakeClient:
    """What the writer calls of a `SalesforceClient`, answered from a script."""

    def __init__(self, *upserts: Upsert) -> None:
        self.settings = SimpleNamespace(external_id_field=EXT)
        self.upserts = list(upserts)
        self.sent: list[list[dict[str, object]]] = []
        self.withdrawn: list[list[dict[str, object]]] = []
        self.api_calls = 0
        self.remaining_api_calls: int | None = 4_000

    async def resolve_related(
        self, emails: Iterable[str], *, names: Mapping[str, str], deadline: float
    ) -> dict[str, RelatedRecord]:
        self.api_calls += 1
        return {e: RelatedRecord("Contact", "003C", e) for e in emails}

    async def upsert_events(
        self, records: Sequence[Mapping[str, object]], *, deadline: float
    ) -> list[UpsertOutcome]:
        self.api_calls += 1
        self.sent.append([dict(r) for r in records])
        step = self.upserts.pop(0)
        if isinstance(step, Exception):
            raise step
        return step([dict(r) for r in records])

    async def withdraw_events(
        self, records: Sequence[Mapping[str, object]], *, deadline: float
    ) -> list[UpsertOutcome]:
        self.api_calls += 2  # a query and a delete
        self.withdrawn.append([dict(r) for r in records])
        return [UpsertOutcome(str(r[EXT]), "deleted") for r in records]

    async def heal(
        self,
        refusals: Sequence[tuple[Mapping[str, object], Sequence[RecordError], str | None]],
        *,
        deadline: float,
    ) -> dict[str, tuple[dict[str, object], list[Fallback]]]:
        healed: dict[str, tuple[dict[str, object], list[Fallback]]] = {}
        for record, _errors, _email in refusals:
            new = "005F" if record.get("OwnerId") != "005F" else "005I"
            kind = "owner-fallback" if new == "005F" else "owner-integration-user"
            fallback = Fallback("OwnerId", kind, record.get("OwnerId"), new, "INACTIVE")
            healed[str(record[EXT])] = ({**record, "OwnerId": new}, [fallback])
        return healed

    def backoff(self, attempt: int) -> float:
        return 10.0 * attempt


class Meter:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.fallbacks: list[str] = []

    def api_calls(self, kind: CallKind, count: int) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + count

    def api_remaining(self, count: int) -> None:
        pass

    def fallback(self, kind: str) -> None:
        self.fallbacks.append(kind)


def projection(booking: str, email: str | None = None) -> Projection:
    return Projection(
        booking_id=booking,
        version=1,
        external_id_field=EXT,
        fields={EXT: booking, "OwnerId": "005A"},
        lookup_email=email,
        customer_name=None,
        related_type=None,
        customer_email=email,
    )


def writer(client: FakeClient, meter: Meter | None = None) -> EventWriter[Projection]:
    return EventWriter(
        cast(SalesforceClient, client),
        complete_related,
        attempt_deadline=10.0,
        limit_pause=60.0,
        meter=meter,
    )


async def test_the_related_record_fills_whoid_before_the_upsert() -> None:
    client = FakeClient(written)
    meter = Meter()
    outcomes = await writer(client, meter).write([projection("a", "ann@example.com")])
    assert [o.status for o in outcomes] == ["updated"]
    assert client.sent[0][0]["WhoId"] == "003C"
    assert meter.calls == {"lookup": 1, "upsert": 1}


async def test_healed_records_come_back_with_the_fallbacks_they_took() -> None:
    # Round 1 heals b's owner, which Salesforce refuses too; round 2 heals it again.
    client = FakeClient(refusing("b"), refusing("b"), written)
    meter = Meter()
    outcomes = await writer(client, meter).write([projection("a"), projection("b")])
    assert [(o.external_id, o.status) for o in outcomes] == [("a", "updated"), ("b", "updated")]
    assert outcomes[0].fallbacks == ()
    # A later round's fallback for a field replaces the earlier one.
    assert [(f.kind, f.new) for f in outcomes[1].fallbacks] == [("owner-integration-user", "005I")]
    assert meter.fallbacks == ["owner-integration-user"]
    assert [r[EXT] for r in client.sent[2]] == ["b"]


async def test_a_record_that_does_not_heal_stays_rejected_without_fallbacks() -> None:
    client = FakeClient(refusing("a"), refusing("a"), refusing("a"))
    outcomes = await writer(client).write([projection("a")])
    assert [(o.status, o.fallbacks) for o in outcomes] == [("rejected", ())]


async def test_the_api_limit_is_backpressure_for_the_limit_pause() -> None:
    finished = [UpsertOutcome("a", "created", "00U")]
    client = FakeClient(RequestLimitExceeded("REQUEST_LIMIT_EXCEEDED", outcomes=finished))
    with pytest.raises(Backpressure) as caught:
        await writer(client).write([projection("a"), projection("b")])
    assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert caught.value.retry_after == 60.0
    assert [o.external_id for o in caught.value.outcomes] == ["a"]


async def test_an_outage_backs_off_longer_each_failed_attempt_until_one_succeeds() -> None:
    down = SalesforceUnavailable("503 until the deadline")
    client = FakeClient(down, down, written, down)
    sink_writer = writer(client)
    waits: list[float] = []
    for _ in range(2):
        with pytest.raises(Backpressure) as caught:
            await sink_writer.write([projection("a")])
        assert caught.value.code == "UNAVAILABLE"
        waits.append(caught.value.retry_after)
    assert waits == [10.0, 20.0]
    await sink_writer.write([projection("a")])
    with pytest.raises(Backpressure) as caught:
        await sink_writer.write([projection("a")])
    assert caught.value.retry_after == 10.0, "a success ends the run of failures"


async def test_an_unexpected_error_is_backpressure_with_its_cause() -> None:
    error = SalesforceRequestError("404 on the sObject")
    with pytest.raises(Backpressure) as caught:
        await writer(FakeClient(error)).write([projection("a")])
    assert caught.value.code == "UNEXPECTED"
    assert caught.value.cause is error
    assert caught.value.retry_after == 10.0


def withdrawing(booking: str) -> Projection:
    return withdrawal(projection(booking), "org-b", FieldMapping())


async def test_withdrawals_are_deleted_and_every_outcome_keeps_its_item_order() -> None:
    client = FakeClient(written)
    meter = Meter()
    outcomes = await writer(client, meter).write(
        [projection("a", "ann@example.com"), withdrawing("w"), projection("b")]
    )
    assert [(o.external_id, o.status) for o in outcomes] == [
        ("a", "updated"),
        ("w", "deleted"),
        ("b", "updated"),
    ]
    assert client.withdrawn == [[{EXT: "w", "Projection_Version__c": 1}]]
    assert [r[EXT] for r in client.sent[0]] == ["a", "b"]  # never upserted
    assert meter.calls == {"withdraw": 2, "lookup": 1, "upsert": 1}


async def test_withdrawals_alone_make_no_upsert_or_lookup() -> None:
    client = FakeClient()
    meter = Meter()
    outcomes = await writer(client, meter).write([withdrawing("w"), withdrawing("v")])
    assert [(o.external_id, o.status) for o in outcomes] == [("w", "deleted"), ("v", "deleted")]
    assert (client.sent, meter.calls) == ([], {"withdraw": 2})


async def test_a_pause_after_the_withdrawals_reports_them_done() -> None:
    client = FakeClient(RequestLimitExceeded("REQUEST_LIMIT_EXCEEDED"))
    with pytest.raises(Backpressure) as caught:
        await writer(client).write([projection("a"), withdrawing("w")])
    assert [(o.external_id, o.status) for o in caught.value.outcomes] == [("w", "deleted")]
