"""Dead-letter records: the original key and bytes, with headers that say what went wrong.

Header names follow Kafka Connect's `__connect.errors.*` convention in spirit, under a
prefix of our own, so an operator can read them with any Kafka tool.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_PREFIX = "activity-sync.error."


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
