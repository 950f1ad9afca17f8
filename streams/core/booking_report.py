"""One booking as an operator sees it: events, view, projection, sync state. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.core.fold import BookingState, from_epoch_us
from streams.core.projection import FieldMapping, project
from streams.core.synced import decode


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # NamedTuple
        return {name: _jsonable(item) for name, item in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(name): _jsonable(item) for name, item in value.items()}
    return value


def booking_report(state: BookingState, synced: int, mapping: FieldMapping) -> dict[str, Any]:
    """`synced`: the booking's `synced` table value (see `streams.core.synced`)."""
    view = state.view
    projection = project(state, mapping)
    handled = decode(synced)
    view_fields = {name: _jsonable(value) for name, value in view._asdict().items()}
    return {
        "booking_id": state.booking_id,
        "version": state.version,
        "events": [
            {
                "source": stored.source,
                "id": stored.id,
                "type": stored.type,
                "sequence": stored.sequence,
                "time": from_epoch_us(stored.time_us).isoformat(),
            }
            for stored in state.events
        ],
        "view": view_fields,
        "projection": None
        if projection is None
        else {"version": projection.version, "fields": projection.fields},
        "sync": {
            "synced_version": handled.version,
            "rejected": handled.rejected,
            "in_sync": projection is None or handled.version >= projection.version,
            # Fallbacks the sink took to write that version (rejections that heal).
            "fallbacks": list(handled.fallbacks),
            # The version fence refused that version: Salesforce already had a newer one.
            "fenced": handled.fenced,
        },
    }
