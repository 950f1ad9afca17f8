"""`activity-sync`: Faust's command line (worker, agents, tables, ...) plus our commands.

Our commands (`demo`, `broker`, `salesforce-emulator`, `produce`, `replay`, `backfill`,
`status`) use `OperatorCommand`: no Faust Worker around them, one-line errors on
stderr and a meaningful exit code. Their logic lives in modules named by concern;
this module only declares the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
from faust.cli import argument, option

# Importing the agent and view modules registers them with the app.
from streams import completion, ingest, lag, reconcile, sink, web  # noqa: F401
from streams.app import app, settings
from streams.broker import BrokerError, EmbeddedBroker, wait_for_port
from streams.command_base import OperatorCommand, UserError, until_signal
from streams.gc_tuning import tune_gc
from streams.kafka_io import DEFAULT_TIMEOUT_S

# The embedded broker needs its end offsets corrected (streams/tansu_offsets.py).
EMBEDDED = settings.broker_profile == "embedded"


def main() -> None:
    tune_gc()
    app.main()


def _read_secret(path: Path | None) -> str | None:
    return path.read_text().strip() if path is not None else None


# `--timeout` of every command that talks to the broker.
BROKER_TIMEOUT = option(
    "--timeout",
    "timeout_s",
    type=float,
    default=DEFAULT_TIMEOUT_S,
    help="Seconds to wait for the broker.",
)


@app.command(
    option("--host", default="127.0.0.1", help="Address to listen on."),
    option(
        "--port",
        type=int,
        default=9092,
        help="Port to listen on (0: any free port). 9092 matches the default broker URL.",
    ),
    base=OperatorCommand,
)
async def broker(self: OperatorCommand, host: str, port: int) -> int:
    """Run the embedded Kafka-compatible broker (Tansu, data in memory) until Ctrl-C."""
    if port and wait_for_port(host, port, timeout=0.2):
        raise UserError(f"port {host}:{port} is already in use (another broker running?)")
    running = EmbeddedBroker(host=host, port=port)
    try:
        await asyncio.to_thread(running.start)
    except BrokerError as exc:
        raise UserError(str(exc)) from None
    print(f"embedded Kafka broker listening on {running.bootstrap}", flush=True)
    print(f"export ACTIVITY_SYNC_BROKER_URL={running.url}", flush=True)
    try:
        await until_signal()
    finally:
        await asyncio.to_thread(running.stop)
    return 0


@app.command(
    option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 in Docker)."),
    option("--port", type=int, default=0, help="Port to listen on (0: any free port)."),
    option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("var/salesforce-emulator"),
        help="CA, credentials and the SQLite store live here.",
    ),
    option("--api-version", default="62.0", help="Newest API version served."),
    option(
        "--public-url",
        default=None,
        help="instance_url given to clients (Docker: https://salesforce:8443).",
    ),
    option("--tls-name", multiple=True, help="Extra certificate name (repeatable)."),
    option("--daily-limit", type=int, default=100_000, help="API calls per day."),
    option("--token-ttl", type=float, default=7200.0, help="Token lifetime in seconds."),
    option("--faults", default=None, help="Fault configuration: JSON, or @file."),
    option(
        "--client-id",
        default=None,
        help="Default: $ACTIVITY_SYNC_EMULATOR_CLIENT_ID, else generated.",
    ),
    option(
        "--client-secret-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="Read the client secret from this file (Docker secrets).",
    ),
    base=OperatorCommand,
)
async def salesforce_emulator(
    self: OperatorCommand,
    host: str,
    port: int,
    data_dir: Path,
    api_version: str,
    public_url: str | None,
    tls_name: tuple[str, ...],
    daily_limit: int,
    token_ttl: float,
    faults: str | None,
    client_id: str | None,
    client_secret_file: Path | None,
) -> int:
    """Run the local Salesforce REST API emulator (HTTPS) until Ctrl-C.

    Prints one JSON line when ready: url, ca_file and the credentials to give the
    worker (ACTIVITY_SYNC_SALESFORCE_*). Other credentials come from
    ACTIVITY_SYNC_EMULATOR_{CLIENT_SECRET,USERNAME,PASSWORD,SECURITY_TOKEN}.
    """
    from pydantic import ValidationError

    from streams.salesforce.emulator import config_from_args, run_emulator

    namespace = argparse.Namespace(
        host=host,
        port=port,
        data_dir=data_dir,
        api_version=api_version,
        public_url=public_url,
        tls_name=list(tls_name),
        daily_limit=daily_limit,
        token_ttl=token_ttl,
        faults=faults,
        client_id=client_id,
        client_secret=_read_secret(client_secret_file),
        username=None,
        password=None,
        security_token=None,
    )
    try:
        config = config_from_args(namespace)
    except (ValidationError, OSError) as exc:
        raise UserError(f"--faults: {exc}") from None

    def announce(running: Any) -> None:
        sys.stdout.write(json.dumps(running.ready_line()) + "\n")
        sys.stdout.flush()

    try:
        await run_emulator(config, announce)
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return 0


@app.command(
    argument("file", required=False, metavar="FILE|-"),
    option(
        "--generate",
        type=int,
        default=None,
        metavar="N",
        help="Send N generated bookings' events instead of a file.",
    ),
    option("--seed", type=int, default=0, help="Seed for --generate (same seed, same events)."),
    option("--topic", default=None, help="Topic to send to [default: booking-events]."),
    BROKER_TIMEOUT,
    base=OperatorCommand,
)
async def produce(
    self: OperatorCommand,
    file: str | None,
    generate: int | None,
    seed: int,
    topic: str | None,
    timeout_s: float,
) -> int:
    """Validate booking events (JSON lines from FILE, or - for stdin) and send them.

    Each line is checked against the event contract first; a bad line is reported
    with its line number and skipped, the others are still sent. Exit code 1 when
    any line was rejected. The Kafka key is the event's subject (the booking id).
    """
    from streams.producer import generated_lines, open_input, produce_lines, read_lines

    if (file is None) == (generate is None):
        raise UserError("give a FILE (or - for stdin) or --generate N, not both")
    target = topic or settings.topics.events
    if generate is not None:
        if generate < 0:
            raise UserError("--generate needs a count >= 0")
        summary = await produce_lines(
            settings.broker_url,
            target,
            generated_lines(generate, seed),
            timeout_s=timeout_s,
        )
    else:
        assert file is not None
        stream = open_input(file)
        try:
            summary = await produce_lines(
                settings.broker_url,
                target,
                read_lines(stream),
                timeout_s=timeout_s,
                report=sys.stderr,
            )
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
    print(f"sent {summary.sent} events to {target}; rejected {summary.failed}")
    return 1 if summary.failed else 0


@app.command(
    argument("booking_id"),
    option(
        "--worker",
        "worker_url",
        default=None,
        help="Any worker's web URL; it forwards to the booking's owner [default: from settings].",
    ),
    option(
        "--timeout", "timeout_s", type=float, default=10.0, help="Seconds to wait for the worker."
    ),
    base=OperatorCommand,
)
async def status(
    self: OperatorCommand, booking_id: str, worker_url: str | None, timeout_s: float
) -> int:
    """Show one booking: its events, the derived view, the projection and the sync state."""
    from streams.status import fetch_report, render_report

    url = worker_url or f"http://{settings.web_host}:{settings.web_port}"
    report = await fetch_report(url, booking_id, timeout_s)
    print(json.dumps(report, indent=2) if self.json else render_report(report))
    return 0


@app.command(
    option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("var/demo"),
        help="Logs and emulator data go here.",
    ),
    option(
        "--timeout", "timeout_s", type=float, default=60.0, help="Seconds to wait for Salesforce."
    ),
    option("--keep-running", is_flag=True, default=False, help="Keep everything up until Ctrl-C."),
    base=OperatorCommand,
)
async def demo(self: OperatorCommand, directory: Path, timeout_s: float, keep_running: bool) -> int:
    """Run broker, Salesforce emulator and a worker; sync a set of bookings; show the result."""
    from streams.demo import run_demo

    return await run_demo(directory, timeout_s, keep_running)


@app.command(
    option(
        "--since",
        default=None,
        metavar="TIME",
        help="Bookings with events since TIME (ISO-8601, or an age: 2h, 1d).",
    ),
    option(
        "--bookings",
        "-b",
        "booking_ids",
        multiple=True,
        metavar="ID",
        help="A booking to replay (repeatable; or IDs as arguments).",
    ),
    argument("ids", nargs=-1, metavar="[ID]..."),
    BROKER_TIMEOUT,
    base=OperatorCommand,
)
async def replay(
    self: OperatorCommand,
    since: str | None,
    booking_ids: tuple[str, ...],
    ids: tuple[str, ...],
    timeout_s: float,
) -> int:
    """Re-project bookings to Salesforce with a forced upsert (even if already synced).

    Reads booking-events from the start, folds the chosen bookings like the workers
    do, and sends their projections marked as forced; the workers' sink writes them.
    Exit code 1 when a requested booking has no events in the topic.
    """
    from streams.projection import PRESETS
    from streams.replay import parse_since
    from streams.replay import replay as run_replay

    chosen = [*booking_ids, *ids]
    if (since is None) == (not chosen):
        raise UserError("give --since TIME or --bookings ID..., not both")
    summary = await run_replay(
        settings.broker_url,
        settings.topics.events,
        settings.topics.projections,
        PRESETS[settings.field_mapping],
        bookings=chosen,
        since=parse_since(since) if since is not None else None,
        timeout_s=timeout_s,
        embedded=EMBEDDED,
        app_version=settings.app_version,
    )
    for booking in summary.unknown:
        print(
            f"unknown booking {booking!r}: no events in {settings.topics.events}", file=sys.stderr
        )
    print(summary.line())
    return 1 if summary.unknown else 0


@app.command(
    option(
        "--app-version",
        type=int,
        default=None,
        help="The rebuilding version [default: ACTIVITY_SYNC_APP_VERSION].",
    ),
    option(
        "--worker",
        "worker_urls",
        multiple=True,
        metavar="URL",
        help="Web URL of a worker of that version, for its Salesforce API calls (repeatable).",
    ),
    option("--interval", type=float, default=2.0, help="Seconds between progress lines."),
    option(
        "--timeout",
        "timeout_s",
        type=float,
        default=None,
        help="Give up after this many seconds [default: wait].",
    ),
    base=OperatorCommand,
)
async def backfill(
    self: OperatorCommand,
    app_version: int | None,
    worker_urls: tuple[str, ...],
    interval: float,
    timeout_s: float | None,
) -> int:
    """Follow a rebuild: a new app version folding booking-events from the start.

    Start workers with ACTIVITY_SYNC_APP_VERSION=N, then run this with the same settings: it shows
    the new consumer group's progress and the Salesforce API calls spent, and exits 0
    when the rebuild has caught up. See docs/operations.md.
    """
    from streams.backfill import group_id, watch

    version = settings.app_version if app_version is None else app_version
    if version <= 1:
        raise UserError(
            "a rebuild needs a new app version > 1 (--app-version or ACTIVITY_SYNC_APP_VERSION)"
        )
    return await watch(
        settings.broker_url,
        group=group_id(settings.app_id, version),
        events_topic=settings.topics.events,
        projections_topic=settings.topics.projections,
        worker_urls=list(worker_urls),
        interval_s=interval,
        timeout_s=timeout_s,
        out=sys.stdout,
        embedded=EMBEDDED,
    )
