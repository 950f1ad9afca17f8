"""The activity-projections record: a projection's bytes and the headers that say how
the sink treats it. Pure: no Kafka client; headers are (name, bytes) pairs.

Written by the fold (streams/worker/pipeline/projections.py, for the ingest agent and the
reconcile timer) and by `activity-sync replay` (streams/commands/replay.py); read by
the sink (streams/worker/pipeline/sink.py). This module is the only place that knows the header
names and how their values are spelled.

Guarantees:
- `decode(encode(...))` gives back the projection and the header values that were set.
- `decode` raises `UndecodableProjection` only for a value that is not a projection; the
  sink sets such a record aside in activity-projections.dlq with `reason`.
- The headers never make a record undecodable: an unknown or unreadable header value
  reads as absent (no app version, not forced, no timestamp, no org), so the record is
  still written to Salesforce rather than lost.

The org (docs/event-contract.md, "The fold"): the value says which Salesforce org the
projection is for (`Projection.salesforce_org`, None for the default org; a value
written before orgs existed has none and reads as the default org), and is what the
sink goes by (`ProjectionRecord.salesforce_org`). `encode` also names a non-default
org in the header `activity-sync.salesforce-org`, so a consumer can route a record
without decoding its value; without the header a record is for the default org, or
was written by a writer that set its headers itself (`encode_headers` without
`salesforce_org`), so only the value settles it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from schemas import ORG_NAME_PATTERN
from streams.core.projection import Projection

# Kafka timestamp (ms) of the newest booking event folded into a projection; the sink
# measures end-to-end latency from it once the Event is in Salesforce.
EVENT_TIMESTAMP = "activity-sync.event-timestamp-ms"
# "1": write even if the `synced` table says Salesforce already has this version
# (set by `activity-sync replay`).
FORCE = "activity-sync.force"
# The app version whose fold made the projection. A rebuild (new app version) starts
# its consumer group at the beginning of activity-projections; the sink skips records
# of other versions, so the old fold's projections are not written again, and their
# version numbers cannot shadow the new fold's.
APP_VERSION = "activity-sync.app-version"
# The Salesforce org of the projection (a registry name), when not the default org.
SALESFORCE_ORG = "activity-sync.salesforce-org"

_ORG_NAME = re.compile(ORG_NAME_PATTERN)

Headers = list[tuple[str, bytes]]
# Headers as Kafka clients hand them over (Faust: a list of pairs or a mapping).
RawHeaders = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


class UndecodableProjection(ValueError):
    """The record's value is not a projection; `reason` says why (the DLQ's message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RecordHeaders:
    """What the headers of a projection record say."""

    # The app version that made the projection, as written; None without the header.
    app_version: str | None = None
    forced: bool = False
    event_timestamp_ms: int | None = None
    # The org the header names; None: no header (the default org, or not said).
    salesforce_org: str | None = None

    def encode(self) -> Headers:
        found: Headers = []
        if self.forced:
            found.append((FORCE, b"1"))
        if self.app_version is not None:
            found.append((APP_VERSION, self.app_version.encode()))
        if self.event_timestamp_ms is not None:
            found.append((EVENT_TIMESTAMP, str(self.event_timestamp_ms).encode()))
        if self.salesforce_org is not None:
            found.append((SALESFORCE_ORG, self.salesforce_org.encode()))
        return found


@dataclass(frozen=True, slots=True)
class ProjectionRecord:
    projection: Projection
    headers: RecordHeaders

    @property
    def salesforce_org(self) -> str | None:
        """The org the projection is for (None: the default org): the value's word,
        whatever the headers say."""
        return self.projection.salesforce_org


def encode_headers(
    *,
    app_version: int,
    forced: bool = False,
    event_timestamp: float | None = None,
    salesforce_org: str | None = None,
) -> Headers:
    """The headers of a projection made by `app_version`; `event_timestamp` (seconds, the
    newest folded event's Kafka timestamp) when known, `forced` for a replay,
    `salesforce_org` when the projection is for an org other than the default."""
    stamp = None if event_timestamp is None else int(event_timestamp * 1000)
    return RecordHeaders(str(app_version), forced, stamp, salesforce_org).encode()


def encode(
    projection: Projection,
    *,
    app_version: int,
    forced: bool = False,
    event_timestamp: float | None = None,
) -> tuple[bytes, Headers]:
    """The record's value and headers (see `encode_headers`; the org is the projection's)."""
    headers = encode_headers(
        app_version=app_version,
        forced=forced,
        event_timestamp=event_timestamp,
        salesforce_org=projection.salesforce_org,
    )
    return projection.to_bytes(), headers


def decode_headers(raw: RawHeaders) -> RecordHeaders:
    """What a record's headers say: `raw` as a Kafka client gives them, a list of
    (name, value) pairs, a mapping, or None."""
    pairs = _pairs(raw)
    version = pairs.get(APP_VERSION)
    return RecordHeaders(
        app_version=None if version is None else version.decode("utf-8", "replace"),
        forced=pairs.get(FORCE) == b"1",
        event_timestamp_ms=_int(pairs.get(EVENT_TIMESTAMP)),
        salesforce_org=_org(pairs.get(SALESFORCE_ORG)),
    )


def decode(value: bytes | None, raw_headers: RawHeaders) -> ProjectionRecord:
    """The projection and its headers; `UndecodableProjection` when the value is not one."""
    try:
        projection = Projection.from_bytes(value or b"")
    except Exception as exc:  # any malformed value: the sink sets it aside, never drops it
        raise UndecodableProjection(repr(exc)) from exc
    return ProjectionRecord(projection, decode_headers(raw_headers))


def _pairs(raw: RawHeaders) -> dict[str, bytes]:
    if raw is None:
        return {}
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    # A header without a value (Kafka allows it) is as good as absent.
    return {str(name): bytes(value) for name, value in pairs if value is not None}


def _org(value: bytes | None) -> str | None:
    if value is None:
        return None
    org = value.decode("utf-8", "replace")
    return org if _ORG_NAME.fullmatch(org) else None


def _int(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
