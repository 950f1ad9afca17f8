from __future__ import annotations

from streams.worker.pipeline.dead_letter import HEADER_PREFIX, DeadLetter, read_headers


def test_headers_round_trip() -> None:
    letter = DeadLetter("schema", "data.start: field required", "booking-events", 3, 42)
    assert read_headers(letter.headers()) == {
        "code": "schema",
        "message": "data.start: field required",
        "topic": "booking-events",
        "partition": "3",
        "offset": "42",
    }


def test_long_messages_are_cut_and_foreign_headers_ignored() -> None:
    headers = [*DeadLetter("x", "m" * 5000, "t", 0, 0).headers(), ("trace-id", b"abc")]
    read = read_headers(headers)
    assert len(read["message"]) == 2000
    assert "trace-id" not in read
    assert all(name.startswith(HEADER_PREFIX) for name, _ in headers[:-1])
