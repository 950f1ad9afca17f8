"""Every `sf project deploy start` the project tells an admin to run works where it is
run: sf needs `sfdx-project.json` in its working directory (elsewhere it fails with
RequiresProjectError), and `--source-dir` is relative to that directory. Issue 21, item
12: the README said `sf project deploy start --source-dir salesforce/force-app` from the
repository's root, which holds no sfdx-project.json."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from streams.salesforce.org_check import DEPLOY_HINT

ROOT = Path(__file__).resolve().parents[2]
# An optional leading `cd DIR &&`, then the command and its arguments up to the end of
# the inline code, the line, a shell operator or a closing parenthesis.
COMMAND = re.compile(
    r"(?:\bcd\s+(?P<cd>[^\s&;|`()]+)\s*&&\s*)?"
    r"\bsf\s+project\s+deploy\s+start\b(?P<args>[^`\n;&|()#]*)"
)


def _segments(markdown: str) -> list[str]:
    """Fenced code blocks line by line; prose with its line breaks joined (an inline
    code span may wrap)."""
    segments: list[str] = []
    for n, part in enumerate(re.split(r"^\s*```.*$", markdown, flags=re.MULTILINE)):
        if n % 2:
            segments += part.splitlines()
        else:
            segments.append(" ".join(part.split()))
    return segments


def _commands() -> list[tuple[str, str, str]]:
    """(where, working dir given by `cd`, arguments) of each deploy command."""
    sources = {
        path.relative_to(ROOT).as_posix(): _segments(path.read_text())
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    }
    sources["streams/salesforce/org_check.py DEPLOY_HINT"] = [DEPLOY_HINT]
    return [
        (where, match["cd"] or "", match["args"])
        for where, segments in sources.items()
        for segment in segments
        for match in COMMAND.finditer(segment)
    ]


def _source_dirs(args: str) -> list[str]:
    words = shlex.split(args)
    found = []
    for n, word in enumerate(words):
        if word in ("--source-dir", "-d") and n + 1 < len(words):
            found.append(words[n + 1])
        elif word.startswith("--source-dir="):
            found.append(word.split("=", 1)[1])
    return found


def test_the_readme_and_the_hint_name_the_deploy_command() -> None:
    places = {where for where, _, _ in _commands()}
    assert {"README.md", "streams/salesforce/org_check.py DEPLOY_HINT"} <= places
    assert sum(where == "README.md" for where, _, _ in _commands()) >= 2


def test_every_deploy_command_runs_in_a_dx_project_with_its_source_dir() -> None:
    for where, cd, args in _commands():
        directory = ROOT / cd
        shown = f"{where}: {'cd ' + cd + ' && ' if cd else ''}sf project deploy start{args}"
        assert (directory / "sfdx-project.json").is_file(), (
            f"{shown}: runs in {cd or 'the repo root'}, "
            "which holds no sfdx-project.json (sf: RequiresProjectError)"
        )
        for source in _source_dirs(args):
            assert (directory / source).is_dir(), f"{shown}: no {source} in {directory}"


def test_the_checker_reads_cd_and_source_dir() -> None:
    """The parsing itself, on the old text (which must fail) and the new."""
    old = "with `sf project deploy start --source-dir salesforce/force-app`) refuse"
    ((cd, args),) = [(m["cd"], m["args"]) for m in COMMAND.finditer(old)]
    assert cd is None
    assert not (ROOT / "sfdx-project.json").exists()
    new = "(cd salesforce && sf project deploy start --source-dir force-app --target-org prod)"
    ((cd, args),) = [(m["cd"], m["args"]) for m in COMMAND.finditer(new)]
    assert (cd, _source_dirs(args)) == ("salesforce", ["force-app"])
