"""The activity-projections record (streams/core/projection_record.py): what the fold and
`replay` write is what the sink reads, and a bad value is told apart from bad headers."""

from __future__ import annotations

import pytest

from streams.core.projection import Departure, Projection
from streams.core.projection_record import (
    APP_VERSION,
    EVENT_TIMESTAMP,
    FORCE,
    SALESFORCE_ORG,
    RecordHeaders,
    UndecodableProjection,
    decode,
    decode_headers,
    encode,
    encode_headers,
)

PROJECTION = Projection(
    booking_id="b-1",
    version=3,
    external_id_field="Booking_Id__c",
    fields={"Booking_Id__c": "b-1", "Subject": "Visit"},
    lookup_email="ada@example.com",
    customer_name="Ada",
    related_type="Contact",
)


def test_a_folded_projection_round_trips_with_its_version_and_timestamp() -> None:
    value, headers = encode(PROJECTION, app_version=2, event_timestamp=1_700_000_000.123)
    record = decode(value, headers)
    assert record.projection == PROJECTION
    assert record.headers == RecordHeaders(
        app_version="2", forced=False, event_timestamp_ms=1_700_000_000_123
    )


def test_a_replayed_projection_round_trips_forced_without_a_timestamp() -> None:
    value, headers = encode(PROJECTION, app_version=7, forced=True)
    assert decode(value, headers).headers == RecordHeaders(app_version="7", forced=True)


def test_the_header_names_and_spelling_on_the_wire() -> None:
    # Records already in activity-projections carry these; the names are a contract.
    assert encode_headers(app_version=1, forced=True, event_timestamp=2.5) == [
        ("activity-sync.force", b"1"),
        ("activity-sync.app-version", b"1"),
        ("activity-sync.event-timestamp-ms", b"2500"),
    ]
    assert (FORCE, APP_VERSION, EVENT_TIMESTAMP) == (
        "activity-sync.force",
        "activity-sync.app-version",
        "activity-sync.event-timestamp-ms",
    )
    assert encode_headers(app_version=1) == [("activity-sync.app-version", b"1")]


def test_headers_read_as_a_mapping_or_pairs_and_strangers_are_ignored() -> None:
    pairs = [("traceparent", b"00-abc"), (FORCE, b"1"), (APP_VERSION, b"4")]
    expected = RecordHeaders(app_version="4", forced=True)
    assert decode_headers(pairs) == expected
    assert decode_headers(dict(pairs)) == expected
    assert decode_headers(None) == decode_headers([]) == RecordHeaders()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(FORCE, b"yes")], RecordHeaders()),  # only "1" forces
        ([(EVENT_TIMESTAMP, b"soon")], RecordHeaders()),  # no latency rather than no write
        ([(APP_VERSION, b"\xff")], RecordHeaders(app_version="\ufffd")),  # another version
        ([(FORCE, None)], RecordHeaders()),  # a header without a value
    ],
)
def test_unreadable_headers_read_as_absent_never_as_undecodable(
    headers: list[tuple[str, bytes | None]], expected: RecordHeaders
) -> None:
    record = decode(PROJECTION.to_bytes(), headers)  # type: ignore[arg-type]
    assert record.headers == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "JSONDecodeError"),
        (b'{"format": 0, "booking_id": "b"}', "unknown Projection format"),
        (b"", "JSONDecodeError"),
        (None, "JSONDecodeError"),  # a tombstone
    ],
)
def test_a_value_that_is_no_projection_is_undecodable_with_its_reason(
    value: bytes | None, reason: str
) -> None:
    with pytest.raises(UndecodableProjection) as raised:
        decode(value, [(APP_VERSION, b"1")])
    assert reason in raised.value.reason


IN_ORG = Projection(
    booking_id="b-2",
    version=5,
    external_id_field="Booking_Id__c",
    fields={"Booking_Id__c": "b-2", "Subject": "Visit"},
    lookup_email=None,
    customer_name="Ada",
    related_type="Contact",
    salesforce_org="org-b",
    departures=(Departure("org-a", {"Booking_Id__c": "b-2", "Projection_Version__c": 5}),),
    withdrawals=(None, "org-c"),
)


def test_a_projection_for_an_org_names_it_in_the_value_and_a_header() -> None:
    value, headers = encode(IN_ORG, app_version=2)
    assert headers == [(APP_VERSION, b"2"), ("activity-sync.salesforce-org", b"org-b")]
    assert SALESFORCE_ORG == "activity-sync.salesforce-org"
    record = decode(value, headers)
    assert record.projection == IN_ORG
    assert record.salesforce_org == record.headers.salesforce_org == "org-b"


def test_a_default_org_projection_has_no_org_header() -> None:
    value, headers = encode(PROJECTION, app_version=2)
    assert headers == [(APP_VERSION, b"2")]
    assert decode(value, headers).salesforce_org is None


def test_a_record_written_before_orgs_reads_as_the_default_org() -> None:
    # The value and headers a worker wrote before orgs existed.
    value = (
        b'{"format":1,"booking_id":"b-1","version":3,"external_id_field":"Booking_Id__c",'
        b'"fields":{"Booking_Id__c":"b-1","Subject":"Visit"},"lookup_email":"ada@example.com",'
        b'"customer_name":"Ada","related_type":"Contact","customer_email":null}'
    )
    record = decode(value, [(APP_VERSION, b"1")])
    assert record.projection == PROJECTION
    assert (record.salesforce_org, record.headers.salesforce_org) == (None, None)


def test_the_value_says_the_org_whatever_the_headers_say() -> None:
    value, _ = encode(IN_ORG, app_version=2)
    # e.g. a writer that built its headers itself, without the org
    assert decode(value, encode_headers(app_version=2)).salesforce_org == "org-b"
    assert encode_headers(app_version=2, salesforce_org="org-b")[-1] == (SALESFORCE_ORG, b"org-b")


@pytest.mark.parametrize("raw", [b"Org B", b"\xff", b"", b"-a", b"a" * 41])
def test_an_unreadable_org_header_reads_as_absent(raw: bytes) -> None:
    record = decode(PROJECTION.to_bytes(), [(SALESFORCE_ORG, raw)])
    assert record.headers == RecordHeaders()
