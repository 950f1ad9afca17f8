"""Rewrite the locks from what is installed in the running interpreter (`make lock`).

- requirements/runtime.lock: the package's runtime dependencies (pyproject's
  `dependencies`, no extras) at the installed versions, each with the sha256 of the
  file pip installs in the image on each platform it is built for (CPython 3.11 on
  Linux x86_64 and aarch64, glibc 2.36: python:3.11-slim), so the image installs with
  --require-hashes on either. Above each pin a comment names the file each platform
  gets (`# x86_64: FILE; aarch64: FILE`); tests/unit/test_locks.py checks it.
- requirements/build.lock: setuptools and wheel (the image's wheel build), hashed too.
- requirements/dev.lock: everything else installed (the dev kit's and dev tools'), pinned.

The hashes come from `pip install --dry-run --report --platform ...` once per platform
(pip asks the index for the files it would install there and reports their hashes;
nothing is installed). A wheel is preferred; a package with no wheel for a platform gets
its sdist (faust-streaming on aarch64: built in the image without its optional C
speedups, as the image has no compiler). Run it with the venv's Python after changing a
dependency: `make lock`.
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
PYTHON_VERSION = "3.11"
# The image's glibc (Debian 12, python:3.11-slim): pip there takes any manylinux wheel
# up to 2.36. pip's --platform does not widen a manylinux_2_X tag to the older ones
# itself, so every tag it may install is listed.
GLIBC_MINOR = 36
PLATFORMS = ("x86_64", "aarch64")


def platform_tags(arch: str) -> list[str]:
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 16, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return [*tags, f"linux_{arch}"]


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


def report(pins: list[str], arch: str) -> dict[str, tuple[str, str]]:
    """What pip would install for `pins` on Linux `arch`: name -> (file name, sha256)."""
    platforms = [arg for tag in platform_tags(arch) for arg in ("--platform", tag)]
    with tempfile.TemporaryDirectory() as tmp:
        wanted = Path(tmp) / "pins.txt"
        wanted.write_text("\n".join(pins) + "\n")
        out = Path(tmp) / "report.json"
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
                "--prefer-binary",
                *platforms,
                "--python-version",
                PYTHON_VERSION,
                "--implementation",
                "cp",
                "--target",
                str(Path(tmp) / "target"),
                "--report",
                str(out),
                "-r",
                str(wanted),
            ],
            check=True,
        )
        items = json.loads(out.read_text())["install"]
    found: dict[str, tuple[str, str]] = {}
    for item in items:
        info = item["download_info"]
        file_name = info["url"].rsplit("/", 1)[-1].split("#", 1)[0]
        digest = info["archive_info"]["hashes"]["sha256"]
        found[canonicalize_name(item["metadata"]["name"])] = (file_name, digest)
    return found


def hashed(pins: list[str]) -> list[str]:
    """Each pin with a comment naming every platform's file, then their hashes."""
    by_arch = {arch: report(pins, arch) for arch in PLATFORMS}
    out = []
    for line in pins:
        name = canonicalize_name(line.split("==")[0])
        files = {arch: by_arch[arch][name] for arch in PLATFORMS}
        comment = "; ".join(f"{arch}: {files[arch][0]}" for arch in PLATFORMS)
        digests = list(dict.fromkeys(digest for _, digest in files.values()))
        hashes = " \\\n".join(f"    --hash=sha256:{digest}" for digest in digests)
        out.append(f"# {comment}\n{line} \\\n{hashes}")
    return out


def main() -> None:
    found = installed()
    runtime = sorted(runtime_closure(found))
    header = "# Written by `make lock` (requirements/lock.py) from the venv; do not edit.\n"
    (HERE / "runtime.lock").write_text(
        header
        + "# Runtime dependencies, hashed for the image: CPython 3.11 on Linux x86_64 and\n"
        + "# aarch64 (glibc 2.36); above each pin, the file each platform installs.\n"
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
