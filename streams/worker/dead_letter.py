"""Dead-letter records: the original key and bytes, with headers that say what went wrong.

Header names follow Kafka Connect's `__connect.errors.*` convention in spirit, under a
prefix of our own, so an operator can read them with any Kafka tool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.worker import metrics

if TYPE_CHECKING:
    import faust
    from faust.types import EventT

HEADER_PREFIX = "activity-sync.error."

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a record was set aside, and where it came from."""

    code: str
    message: str
    topic: str
    partition: int
    offset: int

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
