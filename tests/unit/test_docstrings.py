"""Docstrings and comments in streams/ point at what exists: every repository path they
name (`streams/worker/pipeline/sink.py`, `tests/unit/...py`, `docs/operations.md`, `devkit/...`)
and every dotted `streams.` name (`streams.core.fold.fold`) must be in the tree, so a
move or a rename that forgets its readers fails here."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A repository path: a top-level directory of the checkout, then at least one part.
PATH = re.compile(r"(?<![\w./-])((?:streams|tests|docs|devkit|schemas|bench)/[\w./-]*\w)")
DOTTED = re.compile(r"(?<![\w./-])(streams(?:\.\w+)+)")


def prose(source: str) -> list[tuple[int, str]]:
    """The docstrings (module, class, function) and comments of a module, with the line
    each starts on."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                found.append((body[0].lineno, body[0].value.value))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
    return found


def named_paths(text: str) -> set[str]:
    return {match.rstrip(".") for match in PATH.findall(text)}


def named_modules(text: str) -> set[str]:
    return {match.rstrip(".") for match in DOTTED.findall(text)}


@cache
def top_level_names(path: Path) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def resolves(dotted: str, repo: Path = REPO) -> bool:
    """Whether `streams.a.b[.name]` is a module of the tree, or a module and one of its
    top-level names (a class's attribute after it is not checked)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = repo.joinpath(*parts[:cut])
        module = base.with_suffix(".py")
        package = base / "__init__.py"
        rest = parts[cut:]
        if module.is_file() or package.is_file():
            return not rest or rest[0] in top_level_names(module if module.is_file() else package)
    return False


def dangling(path: Path, repo: Path = REPO) -> list[str]:
    found: list[str] = []
    for line, text in prose(path.read_text()):
        for named in sorted(named_paths(text)):
            if not (repo / named).exists():
                found.append(f"{path.relative_to(repo)}:{line}: {named}")
        for dotted in sorted(named_modules(text)):
            if not resolves(dotted, repo):
                found.append(f"{path.relative_to(repo)}:{line}: {dotted}")
    return found


SOURCES = sorted((REPO / "streams").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_docstrings_and_comments_name_what_exists(path: Path) -> None:
    assert dangling(path) == []


def test_a_moved_path_or_a_renamed_name_is_found(tmp_path: Path) -> None:
    (tmp_path / "streams" / "core").mkdir(parents=True)
    (tmp_path / "streams" / "__init__.py").write_text("")
    (tmp_path / "streams" / "core" / "__init__.py").write_text("")
    (tmp_path / "streams" / "core" / "fold.py").write_text("def fold() -> None: ...\n")
    module = tmp_path / "streams" / "core" / "reader.py"
    module.write_text(
        '"""Rules of streams/core/fold.py (`streams.core.fold.fold`), tested in\n'
        'tests/unit/core/test_gone.py; see `streams.core.sync_gaps`."""\n'
        "\n"
        "# the old name: streams.core.fold.folded, streams/core/fold.py.\n"
        "X = 'streams/not/a/docstring.py'\n"
    )
    assert dangling(module, tmp_path) == [
        "streams/core/reader.py:1: tests/unit/core/test_gone.py",
        "streams/core/reader.py:1: streams.core.sync_gaps",
        "streams/core/reader.py:4: streams.core.fold.folded",
    ]


def test_the_scan_reads_every_module_of_streams() -> None:
    assert REPO / "streams" / "worker" / "pipeline" / "sink.py" in SOURCES
    assert len(SOURCES) > 50
