"""The package layout of docs/architecture.md: one-way imports between concerns, and a
map that names every module of the tree."""

from __future__ import annotations

import ast
import importlib
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What each layer may import (besides itself); see docs/architecture.md, "Layers".
CORE = {"schemas", "streams.core"}
WORKER = {
    "streams.worker",
    "streams.worker.settings",
    "streams.worker.process",
    "streams.worker.pipeline",
    "streams.worker.watch",
}
OUTER = {"streams.salesforce", "streams.transport", "streams.runtime"}
ALLOWED: dict[str, set[str]] = {
    "schemas": {"schemas"},
    "streams.core": CORE,
    "streams.salesforce": {"streams.salesforce"},
    "streams.runtime": {"streams.runtime"},
    "streams.transport": {"streams.transport", "streams.runtime"},
    "streams.worker.settings": CORE
    | {"streams.worker.settings", "streams.salesforce", "streams.transport"},
    # Process set-up runs before the app: it never imports it.
    "streams.worker.process": {
        "streams.worker.process",
        "streams.worker.settings",
        "streams.salesforce",
    },
    # The app and its tables (streams/worker/*.py) know neither their agents nor views.
    "streams.worker": CORE
    | {
        "streams.worker",
        "streams.worker.settings",
        "streams.worker.process",
        "streams.salesforce",
        "streams.transport",
        "streams.runtime",
    },
    # What runs: the app, the metrics of watch/, never the process set-up.
    "streams.worker.pipeline": CORE
    | {
        "streams.worker",
        "streams.worker.settings",
        "streams.worker.pipeline",
        "streams.worker.watch",
        "streams.salesforce",
        "streams.transport",
        "streams.runtime",
    },
    # How it is watched: the app and the process's figures, never the agents.
    "streams.worker.watch": CORE
    | {
        "streams.worker",
        "streams.worker.settings",
        "streams.worker.watch",
        "streams.worker.process",
        "streams.salesforce",
        "streams.transport",
        "streams.runtime",
    },
    "streams.commands": CORE | {"streams.commands"} | WORKER | OUTER,
    "streams.cli": CORE | {"streams.commands"} | WORKER | OUTER,
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
        ("streams.core.fold", "from streams.worker.watch import metrics", {"streams.worker.watch"}),
        ("streams.worker.pipeline.sink", "import devkit.broker", {"devkit"}),
        (
            "streams.worker.process.boot",
            "from streams.worker.app import settings",
            {"streams.worker"},
        ),
        (
            "streams.worker.app",
            "from streams.worker.pipeline import ingest",
            {"streams.worker.pipeline"},
        ),
        (
            "streams.worker.watch.web",
            "from streams.worker.pipeline.sink import sink",
            {"streams.worker.pipeline"},
        ),
        (
            "streams.worker.pipeline.sink",
            "from streams.worker.process import allocator",
            {"streams.worker.process"},
        ),
        ("streams.worker.pipeline.sink", "from streams.worker.watch import metrics", set()),
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


# Only streams/runtime/ (the door) and streams/transport/ (the broker adapter, whose
# subclasses override private methods of Faust's driver) touch a private name of Faust,
# mode or aiokafka (docs/architecture.md, "The door to the framework's internals").
# A private name is one those libraries' own sources define or use with a leading
# underscore: an import of one, `obj._name` on anything but self/cls, `super()._name`,
# `getattr(obj, "_name")`, and `self._name` in a subclass of one of their classes that
# the class does not set itself. A project class's own `self._x` is not theirs.
FRAMEWORKS = ("faust", "mode", "aiokafka")
DOOR = (REPO / "streams" / "runtime", TRANSPORT)
# namedtuple's public API: underscored only to stay clear of field names.
NAMEDTUPLE_API = {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__") and name not in NAMEDTUPLE_API


@cache
def framework_private_names() -> frozenset[str]:
    """Every private name the installed Faust, mode and aiokafka define or use."""
    names: set[str] = set()
    for package in FRAMEWORKS:
        init = importlib.import_module(package).__file__
        assert init is not None
        for path in Path(init).parent.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(errors="replace"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    name = node.name
                elif isinstance(node, ast.Attribute):
                    name = node.attr
                elif isinstance(node, ast.Name):
                    name = node.id
                elif isinstance(node, ast.alias):
                    name = node.asname or node.name
                else:
                    continue
                if is_private(name):
                    names.add(name)
    return frozenset(names)


def framework_bindings(tree: ast.Module) -> set[str]:
    """The names a module binds to Faust, mode or aiokafka (`import faust`,
    `from faust.stores import rocksdb as faust_rocksdb`, `from mode import Service`)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound |= {
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if alias.name.split(".")[0] in FRAMEWORKS
            }
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FRAMEWORKS:
            bound |= {alias.asname or alias.name for alias in node.names}
    return bound


def root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def own_names(cls: ast.ClassDef) -> set[str]:
    """What a class defines itself: its methods and attributes, `self._x = ...`."""
    names = {
        node.name
        for node in cls.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    for node in ast.walk(cls):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
            elif isinstance(target, ast.Attribute) and root_name(target) in ("self", "cls"):
                names.add(target.attr)
    return names


def framework_private_uses(source: str) -> list[tuple[int, str]]:
    """(line, name) of each use of a private Faust/mode/aiokafka name in `source`."""
    tree = ast.parse(source)
    private = framework_private_names()
    bound = framework_bindings(tree)
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, inherited: set[str] | None) -> None:
        # `inherited`: inside a subclass of a framework class, the names it does not
        # define itself (reached on self/cls they are the framework's).
        if isinstance(node, ast.ClassDef):
            framework_base = any(root_name(base) in bound for base in node.bases)
            inherited = (private - own_names(node)) if framework_base else None
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FRAMEWORKS:
            parts = (node.module or "").split(".") + [alias.name for alias in node.names]
            found.extend((node.lineno, name) for name in parts if is_private(name))
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, part)
                for alias in node.names
                if alias.name.split(".")[0] in FRAMEWORKS
                for part in alias.name.split(".")
                if is_private(part)
            )
        elif isinstance(node, ast.Attribute) and node.attr in private:
            owner = node.value
            is_super = (
                isinstance(owner, ast.Call)
                and isinstance(owner.func, ast.Name)
                and owner.func.id == "super"
            )
            on_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            if is_super or not on_self or (inherited is not None and node.attr in inherited):
                found.append((node.lineno, node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            found.append((node.lineno, str(node.args[1].value)))
        for child in ast.iter_child_nodes(node):
            visit(child, inherited)

    visit(tree, None)
    return sorted(set(found))


def outside_the_door() -> list[Path]:
    return [path for path in modules("streams") if not any(door in path.parents for door in DOOR)]


@pytest.mark.parametrize("path", outside_the_door(), ids=module_name)
def test_only_the_door_touches_framework_internals(path: Path) -> None:
    where = path.relative_to(REPO)
    found = [f"{where}:{line} {name}" for line, name in framework_private_uses(path.read_text())]
    assert found == [], (
        "a private Faust/mode/aiokafka name outside streams/runtime/ and streams/transport/ "
        f"(give streams/runtime/ a public function for it): {', '.join(found)}"
    )


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from faust.streams import _current_event\n", [(1, "_current_event")]),
        ("from faust.streams import current_event\n", []),
        ("committed = consumer._committed_offset.get(tp)\n", [(1, "_committed_offset")]),
        ("dbs = getattr(store, '_dbs', None)\n", [(1, "_dbs")]),
        ("a = app.assignor._assignment\n", [(1, "_assignment")]),
        ("await client._client.force_metadata_update()\n", [(1, "_client")]),
        ("x = super()._getmany(tps)\n", [(1, "_getmany")]),
        ("fields = state._asdict()\n", []),  # namedtuple's public API
        ("seed = state._seed\n", []),  # not a framework name
        # A project class's own private attributes, even where Faust uses the same name.
        (
            "class Sink:\n    def __init__(self):\n        self._client = None\n"
            "    def go(self):\n        return self._client\n",
            [],
        ),
        # A subclass of a framework class reaching what it inherits.
        (
            "import faust\nclass S(faust.Stream):\n    def go(self):\n"
            "        self._processors.remove(1)\n",
            [(4, "_processors")],
        ),
        (
            "from faust import Stream\nclass S(Stream):\n    def go(self):\n"
            "        self._client = 1\n        return self._client\n",
            [],
        ),
    ],
)
def test_a_framework_private_name_is_found(source: str, found: list[tuple[int, str]]) -> None:
    assert framework_private_uses(source) == found


def test_the_door_is_left_out_and_does_use_the_internals() -> None:
    scanned = outside_the_door()
    assert REPO / "streams" / "worker" / "due_table.py" in scanned
    assert not [path for path in scanned if any(door in path.parents for door in DOOR)]
    # The door does use them: the exclusion, not the scanner, keeps it green.
    tables = (REPO / "streams" / "runtime" / "tables.py").read_text()
    assert "_current_event" in {name for _, name in framework_private_uses(tables)}


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
