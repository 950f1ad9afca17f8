"""glibc's allocator in a long-running worker: give freed memory back, fewer arenas.

A fold batch during a backlog (up to 25,000 events) allocates a few hundred MB at its
peak and frees it; glibc keeps most of what was freed (`free_kept_mb` of
`GET /debug/memory/`: 87 MB of a 170 MB heap at 50k bookings, docs/performance.md
"Scale"), and every thread that allocates (RocksDB's, Faust's consumer thread) may get
an arena of its own. Two settings bound it:

- `ACTIVITY_SYNC_MALLOC_TRIM_INTERVAL` (s, default 30; 0: off): `malloc_trim(0)` that
  often, which returns free pages of every arena to the system;
- `ACTIVITY_SYNC_MALLOC_ARENA_MAX` (default 2; 0: glibc's 8 per core): the arenas
  threads share, set with `mallopt(M_ARENA_MAX)` when the worker starts.

Elsewhere than glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


def _libc() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.malloc_trim, libc.mallopt  # noqa: B018  # glibc only
    except (OSError, AttributeError, TypeError):
        return None
    return libc


LIBC = _libc()


def limit_arenas(arena_max: int) -> bool:
    """At most `arena_max` glibc arenas for the threads to come (0: leave glibc's)."""
    if arena_max <= 0 or LIBC is None:
        return False
    return bool(LIBC.mallopt(M_ARENA_MAX, arena_max))


def trim() -> bool:
    """Return the free pages of glibc's heap to the system; True when some went."""
    if LIBC is None:
        return False
    return bool(LIBC.malloc_trim(0))
