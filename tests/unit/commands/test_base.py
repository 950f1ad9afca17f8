"""One-line errors of the operator commands (streams/commands/base.py)."""

from __future__ import annotations

from streams.commands.base import one_line


def test_one_line_flattens_messages() -> None:
    assert one_line(ValueError("a\n  b")) == "a b"
    assert one_line(TimeoutError()) == "TimeoutError"
