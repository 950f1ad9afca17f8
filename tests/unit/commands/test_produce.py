"""Reading and validating produce input lines (streams/commands/produce.py)."""

from __future__ import annotations

import io

import orjson
import pytest

from schemas import EventRejected
from streams.commands.produce import read_lines, rejection_text, validate
from tests.factories import raw, scheduled


def test_read_lines_numbers_lines_and_skips_blank_ones() -> None:
    stream = io.BytesIO(b'{"a": 1}\n\n  \n{"b": 2}\r\n')
    assert list(read_lines(stream)) == [(1, b'{"a": 1}'), (4, b'{"b": 2}')]


def test_validate_keys_by_subject_and_rejects_with_the_field() -> None:
    good = raw(scheduled(booking_id="b-7"))
    assert validate(good) == (b"b-7", good)
    with pytest.raises(EventRejected) as rejected:
        validate(orjson.dumps({**scheduled(), "sequence": "3"}))
    assert rejection_text(rejected.value).startswith("schema at sequence: ")
    with pytest.raises(EventRejected) as broken:
        validate(b"{nope")
    assert rejection_text(broken.value).startswith("not-json")
