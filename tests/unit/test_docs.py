"""The docs tell the truth about the command line and /health/ (issue 21, item 7): every
command of ours is in README's and docs/architecture.md's lists, and README's /health/
fields are the ones the worker answers with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def our_commands() -> set[str]:
    from faust.cli.faust import cli

    import streams.cli  # noqa: F401  # registers our commands with Faust's command line

    return {
        name
        for name, command in cli.commands.items()
        if getattr(command.callback, "__module__", None) == "streams.cli"
    }


def test_our_commands_are_known() -> None:
    assert {"produce", "status", "replay", "backfill", "dlq", "check-salesforce"} <= our_commands()


def architecture_commands() -> set[str]:
    text = (REPO / "docs" / "architecture.md").read_text()
    bullet = re.search(r"- \*\*commands\*\*.*?\n(?=- \*\*|\n)", text, re.DOTALL)
    assert bullet, "docs/architecture.md lost its commands layer"
    return set(re.findall(r"`([a-z-]+)`", bullet.group(0)))


def readme_commands() -> set[str]:
    text = (REPO / "README.md").read_text()
    table = text[text.index("| command | does |") :]
    table = table[: table.index("\n\n")]
    return {m.group(1) for m in re.finditer(r"^\| `([a-z-]+)", table, re.MULTILINE)}


@pytest.mark.parametrize(
    ("doc", "named"),
    [("docs/architecture.md", architecture_commands), ("README.md", readme_commands)],
)
def test_the_docs_list_every_command_of_ours(doc: str, named: object) -> None:
    assert callable(named)
    missing = our_commands() - set(named())
    assert not missing, f"{doc} does not list {sorted(missing)}"


def readme_health_fields() -> list[str]:
    text = (REPO / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `GET /health/`"))
    listed = re.search(r"`\{(.*?)\}`", row)
    assert listed, row
    names = re.sub(r':\s*"[^"]*"', "", listed.group(1))  # `"status": "ok"`: a field, a value
    return re.findall(r'"(\w+)"', names)


def test_readme_names_the_fields_health_answers_with() -> None:
    from streams.worker.watch.org_status import OrgStatus
    from streams.worker.watch.web import health_body

    body, healthy = health_body("ok", "ok", OrgStatus(), 0.01)
    assert healthy
    assert sorted(set(readme_health_fields())) == sorted(body)
