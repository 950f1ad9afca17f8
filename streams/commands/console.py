"""Plain-text output helpers for the operator commands (no terminal library needed)."""

from __future__ import annotations

from collections.abc import Sequence


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 dead letter`, `2 dead letters` (`plural_form` when adding s is wrong)."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ASCII table with `|` between columns; easy to read and to parse in tests."""
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            + " |"
        )

    return "\n".join([rule, line(headers), rule, *(line(row) for row in rows), rule])


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of the first table `format_table` printed into `text`, by header."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("| "):
            lines.append(line)
        elif lines and not line.startswith("+"):
            break  # the table ended
    if not lines:
        return []
    headers = [cell.strip() for cell in lines[0].strip("|").split(" | ")]
    return [
        dict(zip(headers, (cell.strip() for cell in line.strip("|").split(" | ")), strict=True))
        for line in lines[1:]
    ]
