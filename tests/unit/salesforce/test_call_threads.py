"""The threads Salesforce calls run in (streams/salesforce/call_threads.py): one pool of
the configured size for every org, so many orgs' calls are in flight at once."""

from __future__ import annotations

import asyncio
import threading

from streams.salesforce import call_threads


async def test_calls_run_at_once_up_to_the_configured_threads() -> None:
    call_threads.configure(12)
    try:
        running = 0
        most = 0
        lock = threading.Lock()
        gate = threading.Barrier(12, timeout=5)

        def call() -> str:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            gate.wait()  # all 12 must be running together, or this times out
            with lock:
                running -= 1
            return threading.current_thread().name

        names = await asyncio.gather(*(call_threads.run(call) for _ in range(12)))
        assert most == 12
        assert all(name.startswith("salesforce") for name in names)
        assert call_threads.size() == 12
    finally:
        call_threads.configure(call_threads.DEFAULT_THREADS)
