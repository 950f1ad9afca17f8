"""The pure core stays free of Faust, Kafka and HTTP (docs/architecture.md, "Layers").

Every module of `streams/core` and `schemas`, plus the event generator that producers
and tests share, is imported in a fresh interpreter; none may pull in an I/O library.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import schemas
import streams.core

FORBIDDEN = ("faust", "mode", "aiokafka", "kafka", "aiohttp", "requests", "simple_salesforce")


def pure_modules() -> list[str]:
    found = ["streams.commands.generate"]
    for package in (streams.core, schemas):
        found.append(package.__name__)
        found += [
            f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
        ]
    return sorted(found)


def io_libraries_imported_by(module: str) -> list[str]:
    probe = (
        f"import json, sys, {module}\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return list(json.loads(result.stdout))


def test_the_core_has_modules_to_check() -> None:
    assert {"streams.core.fold", "streams.core.projection", "schemas.events"} <= set(pure_modules())


@pytest.mark.parametrize("module", pure_modules())
def test_a_pure_module_imports_no_io_library(module: str) -> None:
    assert io_libraries_imported_by(module) == []
