"""Rewrite the locks from what is installed in the running interpreter (`make lock`).

- requirements/runtime.lock: the package's runtime dependencies (pyproject's
  `dependencies`, no extras) at the installed versions, each with the sha256 of the
  file pip installs on this platform (Linux x86_64, CPython 3.11: the image's), so the
  image installs with --require-hashes.
- requirements/build.lock: setuptools and wheel (the image's wheel build), hashed too.
- requirements/dev.lock: everything else installed (the dev kit's and dev tools'), pinned.

The hashes come from `pip install --dry-run --report` (pip asks the index for the files
it would install and reports their hashes; nothing is installed). Run it with the venv's
Python after changing a dependency: `make lock`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from importlib.metadata import Distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HERE = Path(__file__).resolve().parent
PROJECT = "booking-activity-sync"
BUILD = ("setuptools", "wheel")
SKIP = {"pip", PROJECT}


def installed() -> dict[str, Distribution]:
    return {canonicalize_name(d.metadata["Name"]): d for d in distributions()}


def runtime_closure(found: dict[str, Distribution]) -> set[str]:
    """pyproject's `dependencies` and theirs (with the extras asked for), no extras of ours."""
    project = tomllib.loads((HERE.parent / "pyproject.toml").read_text())["project"]
    todo = [Requirement(line) for line in project["dependencies"]]
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        for extra in {"", *req.extras}:
            if (name, extra) in seen or name not in found:
                continue
            seen.add((name, extra))
            names.add(name)
            for line in found[name].requires or []:
                dep = Requirement(line)
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    todo.append(dep)
    return names


def pin(dist: Distribution) -> str:
    return f"{dist.metadata['Name']}=={dist.version}"


def hashed(pins: list[str]) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        wanted = Path(tmp) / "pins.txt"
        wanted.write_text("\n".join(pins) + "\n")
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--no-deps",
                "--no-warn-script-location",
                "--ignore-installed",
                "--report",
                str(report),
                "-r",
                str(wanted),
            ],
            check=True,
        )
        items = json.loads(report.read_text())["install"]
    by_name = {canonicalize_name(i["metadata"]["name"]): i for i in items}
    out = []
    for line in pins:
        item = by_name[canonicalize_name(line.split("==")[0])]
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        out.append(f"{line} \\\n    --hash=sha256:{digest}")
    return out


def main() -> None:
    found = installed()
    runtime = sorted(runtime_closure(found))
    header = "# Written by `make lock` (requirements/lock.py) from the venv; do not edit.\n"
    (HERE / "runtime.lock").write_text(
        header
        + "# Runtime dependencies, hashed for the image (Linux x86_64, CPython 3.11).\n"
        + "\n".join(hashed([pin(found[n]) for n in runtime]))
        + "\n"
    )
    (HERE / "build.lock").write_text(
        header
        + "# The image's wheel build.\n"
        + "\n".join(hashed([pin(found[n]) for n in BUILD]))
        + "\n"
    )
    rest = sorted(set(found) - set(runtime) - set(BUILD) - SKIP)
    (HERE / "dev.lock").write_text(
        header
        + "# The dev kit and the dev tools (on top of runtime.lock and build.lock).\n"
        + "\n".join(pin(found[n]) for n in rest)
        + "\n"
    )


if __name__ == "__main__":
    main()
