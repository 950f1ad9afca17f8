"""The threads simple-salesforce's synchronous calls run in, one pool for every org.

`asyncio.to_thread` would use the loop's default executor: min(32, CPUs + 4) threads (6
on two cores), shared with whatever else uses it. With many orgs each writing at once,
their calls queued for those few threads while Salesforce sat idle. `run` runs a call
in this process's pool of `size()` threads (`configure`, from
`ACTIVITY_SYNC_SINK_MAX_CALLS` in the worker; `DEFAULT_THREADS` elsewhere).

>>> import asyncio
>>> asyncio.run(run(lambda a, b: a + b, 2, 3))
5
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

DEFAULT_THREADS = 32

_pool: ThreadPoolExecutor | None = None
_threads = DEFAULT_THREADS


def configure(threads: int) -> None:
    """Use `threads` threads from the next call on (a running pool finishes its calls)."""
    global _pool, _threads
    if threads != _threads or _pool is None:
        _threads = threads
        old, _pool = _pool, None
        if old is not None:
            old.shutdown(wait=False)


def size() -> int:
    return _threads


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="salesforce")
    return _pool


async def run(call: Callable[..., T], *args: object) -> T:
    """`call(*args)` in the pool, as `asyncio.to_thread` runs it (the context copied)."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(context.run, call, *args))
