"""The package layout of docs/architecture.md: one-way imports between concerns, and a
map that names every module of the tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What each layer may import (besides itself); see docs/architecture.md, "Layers".
CORE = {"schemas", "streams.core"}
ALLOWED: dict[str, set[str]] = {
    "schemas": {"schemas"},
    "streams.core": CORE,
    "streams.salesforce": {"streams.salesforce"},
    "streams.runtime": {"streams.runtime"},
    "streams.transport": {"streams.transport", "streams.runtime"},
    "streams.worker": CORE
    | {"streams.worker", "streams.salesforce", "streams.transport", "streams.runtime"},
    "streams.commands": CORE
    | {
        "streams.commands",
        "streams.worker",
        "streams.salesforce",
        "streams.transport",
        "streams.runtime",
    },
    "streams.cli": CORE
    | {
        "streams.commands",
        "streams.worker",
        "streams.salesforce",
        "streams.transport",
        "streams.runtime",
    },
    "streams.__main__": {"streams.cli"},
    "streams": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (REPO / package).rglob("*.py"))


def layer_of(module: str) -> str:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return module.split(".")[0]  # devkit, or a library


def project_imports(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {n for n in names if n.split(".")[0] in ("streams", "schemas", "devkit")}
    return found


def forbidden_imports(module: str, source: str) -> set[str]:
    allowed = ALLOWED[layer_of(module)]
    imported = {layer_of(name) for name in project_imports(source)}
    # `from streams import x` names the package itself: judge it by x.
    return {name for name in imported if name not in allowed and name != "streams"}


@pytest.mark.parametrize("path", modules("streams", "schemas"), ids=module_name)
def test_imports_go_one_way(path: Path) -> None:
    assert forbidden_imports(module_name(path), path.read_text()) == set()


@pytest.mark.parametrize(
    ("module", "source", "wrong"),
    [
        ("streams.core.fold", "from streams.worker import metrics", {"streams.worker"}),
        ("streams.worker.sink", "import devkit.broker", {"devkit"}),
        (
            "streams.transport.drain",
            "from streams.commands.base import UserError",
            {"streams.commands"},
        ),
        ("streams.salesforce.client", "from streams import worker", {"streams.worker"}),
    ],
)
def test_an_import_against_the_direction_is_found(
    module: str, source: str, wrong: set[str]
) -> None:
    assert forbidden_imports(module, source) == wrong


# Only streams/transport/ knows which kind of broker it talks to (docs/architecture.md,
# "The broker seam"): a broker kind's name anywhere else in streams/ (code, comments,
# strings) is a workaround or an assumption leaking out of it.
TRANSPORT = REPO / "streams" / "transport"
BROKER_KIND_NAMES = re.compile(r"tansu", re.IGNORECASE)


def broker_kind_mentions(source: str) -> list[int]:
    """The lines (1-based) of `source` that name a broker kind."""
    return [n for n, line in enumerate(source.splitlines(), 1) if BROKER_KIND_NAMES.search(line)]


def outside_transport() -> list[Path]:
    return [path for path in modules("streams") if TRANSPORT not in path.parents]


@pytest.mark.parametrize("path", outside_transport(), ids=module_name)
def test_only_the_transport_names_a_broker_kind(path: Path) -> None:
    where = path.relative_to(REPO)
    found = [f"{where}:{line}" for line in broker_kind_mentions(path.read_text())]
    assert found == [], f"a broker kind named outside streams/transport/: {', '.join(found)}"


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("from streams.transport import tansu\n", [1]),
        ("x = 1\n# Tansu answers ListOffsets short\n", [2]),
        ('SCHEME = "TANSU://"\n', [1]),
        ("class TansuConsumer:\n    pass\n", [1]),
        ('"""On tansu:\n\nwait less."""\nfetch_wait = tansu_wait\n', [1, 4]),
        ("# the broker's end offsets: BrokerConnection.end_offsets\n", []),
    ],
)
def test_a_broker_kind_name_is_found(source: str, lines: list[int]) -> None:
    assert broker_kind_mentions(source) == lines


def test_the_scan_leaves_out_the_transport_only() -> None:
    scanned = outside_transport()
    assert REPO / "streams" / "worker" / "app.py" in scanned
    assert not [path for path in scanned if TRANSPORT in path.parents]
    # The transport does name it: the exclusion, not the scanner, keeps it green.
    assert broker_kind_mentions((TRANSPORT / "connection.py").read_text())


def mapped_modules() -> set[str]:
    """Module paths the map in docs/architecture.md names (`streams/core/fold.py`...)."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## The map", 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    package = ""
    for line in section.splitlines():
        header = re.match(r"^([a-z_/]+/)(\s|$)", line)
        if header:
            package = header.group(1)
        else:
            found |= {package + name for name in re.findall(r"\b([a-z_]+\.py)\b", line)}
    return found


def test_the_architecture_map_names_every_module() -> None:
    tree = {
        str(p.relative_to(REPO))
        for p in modules("streams", "devkit", "schemas")
        if p.name not in ("__init__.py", "__main__.py")
    }
    mapped = mapped_modules()
    assert tree - mapped == set(), "modules missing from docs/architecture.md"
    assert mapped - tree == set(), "docs/architecture.md names modules that do not exist"
