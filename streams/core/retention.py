"""Retention: when a booking's state may shrink to a marker, and the marker. Pure.

A booking that is terminal (Completed, Canceled, No-show), whose Salesforce Event is up
to date, and whose end lies more than the retention period
(`ACTIVITY_SYNC_STATE_RETENTION_DAYS`, 400 days by default) in the past keeps nothing but
a marker of a few dozen bytes: its version, phase and end. The `bookings` changelog is
compacted, so the history it replaced goes from the broker too.

The marker is not a `BookingState` (`BookingState.from_bytes` refuses it): a later
event for the booking cannot be folded onto an empty history by mistake and written
over a correct Event. The ingest agent sends it to booking-events.dlq with the reason
`booking-expired` instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import orjson

from streams.core.fold import BookingState, from_epoch_us, to_epoch_us

TERMINAL_PHASES: frozenset[str] = frozenset({"Completed", "Canceled", "No-show"})
EXPIRED_CODE = "booking-expired"

_MARKER = b"expired:"


class ExpiredBooking(NamedTuple):
    version: int
    phase: str
    end: datetime


def expires_at(state: BookingState, retention: timedelta) -> datetime | None:
    """When the booking's state may be dropped (None: not terminal, or no end time)."""
    view = state.view
    if view.phase not in TERMINAL_PHASES or view.end is None:
        return None
    return view.end + retention


def may_expire(state: BookingState, now: datetime, retention: timedelta, *, synced: bool) -> bool:
    """Terminal, `synced` (Salesforce has its last version, or it has no Event) and
    past end + retention."""
    at = expires_at(state, retention)
    return synced and at is not None and at <= now


def marker(state: BookingState) -> bytes:
    """What replaces the state of an expired booking: `expired:[version,phase,end_s]`."""
    view = state.view
    if view.phase not in TERMINAL_PHASES or view.end is None:
        raise ValueError(f"booking {state.booking_id!r} is not terminal: it cannot expire")
    end_s = to_epoch_us(view.end) // 1_000_000
    return _MARKER + orjson.dumps([state.version, view.phase, end_s])


def is_marker(raw: bytes) -> bool:
    return raw.startswith(_MARKER)


def read_marker(raw: bytes) -> ExpiredBooking:
    if not is_marker(raw):
        raise ValueError("not an expired-booking marker")
    version, phase, end_s = orjson.loads(raw[len(_MARKER) :])
    return ExpiredBooking(version, phase, from_epoch_us(end_s * 1_000_000))
