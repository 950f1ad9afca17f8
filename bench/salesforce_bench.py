"""Salesforce client throughput against the local emulator: `python -m bench.salesforce_bench`.

Starts the emulator as its own process (HTTPS, SQLite in a temporary directory), then
upserts N Event records through `SalesforceClient.upsert_events` twice: a first pass
that creates them and a second that updates them. Prints records/s and API calls per
record for each pass. Options: `--records N --per-call K` (records handed to one
`upsert_events` call; the client still sends collections of <= 200).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from devkit.salesforce_emulator.process import devkit_process_args
from streams.salesforce import SalesforceClient, SalesforceSettings


def _records(count: int, status: str) -> list[dict[str, Any]]:
    return [
        {
            "Booking_Id__c": f"bench-{n:06d}",
            "Subject": f"Discovery call #{n}",
            "StartDateTime": "2026-11-24T09:30:00.000Z",
            "EndDateTime": "2026-11-24T10:00:00.000Z",
            "OwnerId": "0055g0000000001AAA",
            "Location": "https://meet.example.com/abc-defg-hij",
            "Description": "Booked via booking page acme/intro.\nHistory: scheduled",
            "Event_Status__c": status,
            "Cancel_Reschedule_Reason__c": None,
        }
        for n in range(count)
    ]


async def _pass(client: SalesforceClient, records: list[dict[str, Any]], per_call: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(records), per_call):
        outcomes = await client.upsert_events(records[start : start + per_call])
        failed = [o for o in outcomes if o.status not in ("created", "updated")]
        if failed:
            raise RuntimeError(f"{len(failed)} records not written: {failed[0]}")
    return time.perf_counter() - started


async def _run(info: dict[str, Any], count: int, per_call: int) -> None:
    settings = SalesforceSettings(
        login_url=info["url"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        ca_file=info["ca_file"],
    )
    async with SalesforceClient(settings) as client:
        await client.connect()
        for label, status in (("create", "Scheduled"), ("update", "Rescheduled")):
            before = client.api_calls
            elapsed = await _pass(client, _records(count, status), per_call)
            calls = client.api_calls - before
            print(
                f"{label}: {count} records in {elapsed:.2f} s = {count / elapsed:,.0f} records/s; "
                f"{calls} API calls = {calls / count:.3f} calls/record"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--per-call", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as data_dir:
        emulator = subprocess.Popen(
            **devkit_process_args("salesforce-emulator", "--data-dir", data_dir),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            info = json.loads(emulator.stdout.readline())
            print(f"emulator at {info['url']} (data in {Path(data_dir) / 'emulator.sqlite3'})")
            asyncio.run(_run(info, args.records, args.per_call))
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
