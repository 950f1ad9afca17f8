"""glibc's allocator bounds (streams/worker/process/allocator.py): the settings reach it, and a
trim gives back what a large batch freed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from streams.worker import app as worker_app
from streams.worker.process import allocator
from streams.worker.settings import Settings

pytestmark = pytest.mark.skipif(allocator.LIBC is None, reason="not glibc")

# A batch's worth of 1 kB objects (glibc's, not pymalloc's), freed but for the newest,
# which pins the top of the heap so glibc cannot shrink it by itself.
FRAGMENT = """
import sys
from streams.worker.process import allocator

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

hoard = [bytes(1000) + bytes([i % 256]) for i in range(200_000)]
keep = hoard[-1]
del hoard
before = rss()
if sys.argv[1] == "trim":
    allocator.trim()
print(before, rss())
"""


def rss_before_after(mode: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", FRAGMENT, mode], capture_output=True, text=True, check=True
    )
    before, after = out.stdout.split()
    return int(before), int(after)


def test_a_trim_returns_what_a_batch_freed() -> None:
    before, after = rss_before_after("trim")
    assert before - after >= 100, (before, after)  # ~200 MB freed, given back


def test_without_a_trim_glibc_keeps_it() -> None:
    before, after = rss_before_after("none")
    assert before - after < 50, (before, after)


def test_the_defaults() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.process.malloc_trim_interval == 30
    assert defaults.process.malloc_arena_max == 2


def test_the_arena_cap_reaches_mallopt(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    fake: Any = FakeLibc()
    monkeypatch.setattr(allocator, "LIBC", fake)
    assert allocator.limit_arenas(3)
    assert not allocator.limit_arenas(0)  # 0: glibc's own default, no call
    assert calls == [(allocator.M_ARENA_MAX, 3)]


def test_the_worker_trims_on_its_interval() -> None:
    assert worker_app.settings.process.malloc_trim_interval > 0
    # Faust's timers are app tasks wrapping the function (functools.wraps: __wrapped__).
    names = [getattr(task, "__name__", "") for task in worker_app.app._app_tasks]
    assert "trim_allocator" in names
