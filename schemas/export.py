"""Write the JSON Schema files under schemas/json/ from the models: `python -m schemas.export`.

`schemas/json/booking-event.schema.json` is the whole union (what a consumer of the
topic validates against); `<type>.schema.json` is one file per event type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.events import (
    BOOKING_EVENT_ADAPTER,
    BookingCanceled,
    BookingCompleted,
    BookingNoShow,
    BookingReassigned,
    BookingRequested,
    BookingRescheduled,
    BookingScheduled,
)

JSON_DIR = Path(__file__).parent / "json"

_PER_TYPE = (
    BookingScheduled,
    BookingRequested,
    BookingRescheduled,
    BookingReassigned,
    BookingCanceled,
    BookingCompleted,
    BookingNoShow,
)


def _with_header(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://booking-activity-sync/schemas/{name}",
        **schema,
    }


def schema_files() -> dict[str, str]:
    """File name -> file text, exactly as `export` writes them (the drift test uses it)."""
    schemas = {
        "booking-event.schema.json": BOOKING_EVENT_ADAPTER.json_schema(),
    }
    for model in _PER_TYPE:
        event_type = model.model_fields["type"].default
        schemas[f"{event_type}.schema.json"] = model.model_json_schema()
    return {
        name: json.dumps(_with_header(schema, name), indent=2, sort_keys=True) + "\n"
        for name, schema in schemas.items()
    }


def export(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    for path in export():
        sys.stdout.write(f"wrote {path}\n")


if __name__ == "__main__":
    main()
