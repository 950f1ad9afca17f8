"""The pure core stays free of Faust, Kafka and HTTP (DESIGN §1)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("faust", "mode", "aiokafka", "kafka", "aiohttp", "requests", "simple_salesforce")


def test_pure_core_imports_no_io_library() -> None:
    probe = (
        "import sys, schemas, streams.fold, streams.projection, streams.generate\n"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
