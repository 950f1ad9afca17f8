"""Dead-letter records: the original key and bytes, with headers that say what went wrong.

Header names follow Kafka Connect's `__connect.errors.*` convention in spirit, under a
prefix of our own, so an operator can read them with any Kafka tool.

A dead letter is identified by where its record came from (`origin`: topic, partition,
offset), not by its own position: every consumer group that reads the source topic
(another app id, a rebuild under a new app version) dead-letters the same bad record
again, and those copies are one dead letter (streams/commands/dlq.py counts, shows and
redrives each origin once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from schemas.events import RejectCode
from streams.core.fold import Outcome
from streams.core.retention import EXPIRED_CODE
from streams.worker.watch import metrics

if TYPE_CHECKING:
    import faust
    from faust.types import EventT

HEADER_PREFIX = "activity-sync.error."

# The codes of booking-events.dlq: the event contract's rejections (schemas.parse_event),
# the fold's (a conflicting duplicate, a full history), an expired booking's, and a
# failure of the fold itself (a bug: its events are set aside, the stream goes on).
INTERNAL_ERROR = "internal-error"
BAD_INPUT_CODES: tuple[str, ...] = get_args(RejectCode)
FOLD_CODES: tuple[str, ...] = tuple(
    code for code in get_args(Outcome) if code not in ("accepted", "duplicate")
)
EVENT_CODES: tuple[str, ...] = (*BAD_INPUT_CODES, *FOLD_CODES, EXPIRED_CODE, INTERNAL_ERROR)
# activity-projections.dlq holds Salesforce's error codes (FIELD_CUSTOM_VALIDATION_EXCEPTION,
# ...) and this one: a projection record the sink could not decode.
UNDECODABLE = "undecodable"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a record was set aside, and where it came from."""

    code: str
    message: str
    topic: str
    partition: int
    offset: int

    @property
    def origin(self) -> str:
        """Where the record came from, `topic:partition:offset`: the dead letter's identity."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (HEADER_PREFIX + "code", self.code.encode()),
            # Messages can be long (pydantic errors); cut so a header stays small.
            (HEADER_PREFIX + "message", self.message[:2000].encode()),
            (HEADER_PREFIX + "topic", self.topic.encode()),
            (HEADER_PREFIX + "partition", str(self.partition).encode()),
            (HEADER_PREFIX + "offset", str(self.offset).encode()),
        ]


def read_headers(headers: object) -> dict[str, str]:
    """The error headers of a dead-lettered record, without the prefix."""
    pairs: list[tuple[str, bytes]]
    if isinstance(headers, dict):
        pairs = list(headers.items())
    elif headers is None:
        pairs = []
    else:
        pairs = list(headers)  # type: ignore[call-overload]
    return {
        name[len(HEADER_PREFIX) :]: value.decode("utf-8", "replace")
        for name, value in pairs
        if name.startswith(HEADER_PREFIX)
    }


def origin_of(error: dict[str, str]) -> str | None:
    """The `origin` of a dead letter from its `read_headers`, or None without them."""
    try:
        return f"{error['topic']}:{int(error['partition'])}:{int(error['offset'])}"
    except (KeyError, ValueError):
        return None


async def send_to_dead_letter(
    dlq: faust.TopicT,
    event: EventT[bytes],
    code: str,
    message: str,
    value: bytes | None = None,
) -> None:
    """Set `event` aside on `dlq` with its key, its bytes (or `value`) and the reason;
    log and count it. Used by every agent: bad input never crashes or vanishes."""
    msg = event.message
    letter = DeadLetter(code, message, msg.topic, msg.partition, msg.offset)
    log.warning(
        "dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, code, message
    )
    metrics.EVENTS_DEAD_LETTERED.labels(dlq.get_topic_name(), code).inc()
    await dlq.send(
        key=msg.key, value=msg.value if value is None else value, headers=letter.headers()
    )
