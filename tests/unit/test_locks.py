"""The hashed locks cover every platform the image is built for (issue 21, item 8).

requirements/runtime.lock and build.lock are installed with --require-hashes by the
Dockerfile; a lock holding only the x86_64 wheels' hashes made the image fail to build on
arm64 (Apple Silicon, Graviton): pip found no aarch64 file with a locked hash. Above each
pin, requirements/lock.py writes the file each platform installs; these tests check, with
no network, that both platforms have a file installable there and a hash for each file.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import (
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

REPO = Path(__file__).resolve().parents[2]
HASHED = ("runtime.lock", "build.lock")
ARCHES = ("x86_64", "aarch64")
IMAGE_GLIBC_MINOR = 36  # python:3.11-slim is Debian 12: glibc 2.36


@dataclass
class Entry:
    pin: str
    files: dict[str, str]  # platform -> the file pip installs there
    hashes: list[str]

    @property
    def name(self) -> str:
        return canonicalize_name(self.pin.split("==")[0])

    @property
    def version(self) -> str:
        return canonicalize_version(self.pin.split("==")[1])


def parse(text: str) -> list[Entry]:
    """Pins with their hashes and the `# x86_64: FILE; aarch64: FILE` line above each."""
    entries: list[Entry] = []
    comment = ""
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("#"):
            comment = line[1:].strip()
            continue
        if not line.strip():
            continue
        pin, *options = line.split()
        files = {}
        for part in comment.split(";"):
            arch, _, file_name = part.strip().partition(": ")
            if arch in ARCHES and file_name:
                files[arch] = file_name.strip()
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=")]
        entries.append(Entry(pin, files, hashes))
        comment = ""
    return entries


def image_tags(arch: str) -> set[Tag]:
    """What pip in the image (CPython 3.11, glibc 2.36) installs on Linux `arch`."""
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(IMAGE_GLIBC_MINOR, 16, -1)]
    platforms.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        platforms += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    platforms.append(f"linux_{arch}")
    tags = set(cpython_tags((3, 11), ["cp311"], platforms))
    return tags | set(compatible_tags((3, 11), "cp311", platforms))


def installable(entry: Entry, file_name: str, arch: str) -> bool:
    if file_name.endswith(".whl"):
        name, version, _, tags = parse_wheel_filename(file_name)
        same = (name, canonicalize_version(version)) == (entry.name, entry.version)
        return same and bool(tags & image_tags(arch))
    name, version = parse_sdist_filename(file_name)
    return (name, canonicalize_version(version)) == (entry.name, entry.version)


def check(entries: list[Entry]) -> list[str]:
    problems = []
    for entry in entries:
        for arch in ARCHES:
            file_name = entry.files.get(arch)
            if file_name is None:
                problems.append(f"{entry.pin}: no file named for {arch}")
            elif not installable(entry, file_name, arch):
                problems.append(f"{entry.pin}: {file_name} does not install on {arch}")
        files = set(entry.files.values())
        # One hash per distinct file: a py3-none-any wheel serves both with one hash, a
        # package with platform wheels needs both wheels' hashes.
        if len(set(entry.hashes)) < max(len(files), 1):
            problems.append(f"{entry.pin}: {len(entry.hashes)} hash(es) for files {files}")
        if any(not re.fullmatch(r"[0-9a-f]{64}", digest) for digest in entry.hashes):
            problems.append(f"{entry.pin}: a malformed sha256")
    return problems


@pytest.mark.parametrize("lock", HASHED)
def test_every_pin_has_a_hashed_file_for_x86_64_and_aarch64(lock: str) -> None:
    entries = parse((REPO / "requirements" / lock).read_text())
    assert entries
    assert check(entries) == []


def test_packages_with_platform_wheels_carry_a_hash_per_platform() -> None:
    entries = {e.name: e for e in parse((REPO / "requirements" / "runtime.lock").read_text())}
    for name in ("aiohttp", "pydantic-core", "rocksdict", "cryptography", "orjson"):
        assert len(set(entries[name].hashes)) >= 2, entries[name]


def test_the_check_refuses_a_lock_of_one_platform() -> None:
    one_platform = (
        "# x86_64: aiohttp-3.14.5-cp311-cp311-manylinux_2_17_x86_64.whl\n"
        "aiohttp==3.14.5 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    )
    assert check(parse(one_platform)) == ["aiohttp==3.14.5: no file named for aarch64"]
    wrong_arch = (
        "# x86_64: orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl; "
        "aarch64: orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl\n"
        "orjson==3.13.0 \\\n    --hash=sha256:" + "b" * 64 + "\n"
    )
    assert check(parse(wrong_arch)) == [
        "orjson==3.13.0: orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl "
        "does not install on aarch64"
    ]
    one_hash_two_wheels = (
        "# x86_64: orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl; "
        "aarch64: orjson-3.13.0-cp311-cp311-manylinux_2_17_aarch64.whl\n"
        "orjson==3.13.0 \\\n    --hash=sha256:" + "b" * 64 + "\n"
    )
    assert len(check(parse(one_hash_two_wheels))) == 1


def lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", REPO / "requirements" / "lock.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_lock_writes_both_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    """lock.py asks pip once per platform and writes what the check above reads."""
    lock = lock_module()
    assert tuple(lock.PLATFORMS) == ARCHES
    asked: list[str] = []

    def report(pins: list[str], arch: str) -> dict[str, tuple[str, str]]:
        asked.append(arch)
        digest = ("1" if arch == "x86_64" else "2") * 64
        return {
            "orjson": (f"orjson-3.13.0-cp311-cp311-manylinux_2_17_{arch}.whl", digest),
            "six": ("six-1.17.0-py2.py3-none-any.whl", "3" * 64),
        }

    monkeypatch.setattr(lock, "report", report)
    written = "\n".join(lock.hashed(["orjson==3.13.0", "six==1.17.0"])) + "\n"
    assert sorted(asked) == sorted(ARCHES)
    entries = parse(written)
    assert [e.pin for e in entries] == ["orjson==3.13.0", "six==1.17.0"]
    assert check(entries) == []
    assert [len(e.hashes) for e in entries] == [2, 1]
    # Every platform's tags reach the image's glibc: pip does not widen them itself.
    for arch in ARCHES:
        tags = lock.platform_tags(arch)
        assert f"manylinux_2_{IMAGE_GLIBC_MINOR}_{arch}" in tags
        assert f"manylinux2014_{arch}" in tags
