"""`activity-sync`: Faust's command line (worker, agents, tables, ...) plus our commands.

Our commands (`produce`, `replay`, `backfill`, `delete-version`, `status`, ...) use
`OperatorCommand`: no Faust Worker around them, one-line errors on stderr and a
meaningful exit code. Their logic lives in `streams/commands/`; this module only
declares the command line. The local dev kit adds `demo`, `broker` and
`salesforce-emulator` when run as `python -m devkit` (devkit/commands.py).

Before any of it: bad settings are one line (the app is built from them when this module
imports it), and `main` renames `--app-version` before Faust's `--app` prefix match can
take it (streams/commands/argv.py), sets up the process (`boot`, streams/worker/process/boot.py:
RocksDB store, glibc arenas, collector, log filters), and checks a worker's broker,
Salesforce login and web access before Faust starts it (streams/commands/preflight.py).
"""

from __future__ import annotations

import asyncio
import json
import sys

import click
from faust.cli import argument, option

from streams.commands import argv as command_line
from streams.commands.base import (
    OperatorCommand,
    UsageError,
    UserError,
    one_line,
    settings_checked,
)
from streams.commands.console import plural
from streams.commands.kafka_io import DEFAULT_TIMEOUT_S

with settings_checked(command_line.command_of(sys.argv[1:])):
    # Importing the app reads the settings; the agent and view modules register with it.
    # memory_profile: GET /debug/memory/ (loopback only; ACTIVITY_SYNC_MEMORY_PROFILE_FRAMES).
    from streams.worker.app import app, settings
    from streams.worker.pipeline import completion, ingest, reconcile, retention, sink  # noqa: F401
    from streams.worker.process.boot import boot
    from streams.worker.watch import lag, memory_profile, web  # noqa: F401


def main() -> None:
    sys.argv[1:] = command_line.rewrite(sys.argv[1:])
    args = sys.argv[1:]
    command = command_line.command_of(args)
    if command is None and "--version" in args:
        # Faust's group option would print Faust's version; this is ours.
        print(f"activity-sync, version {package_version()}")
        sys.exit(0)
    # The process's set-up (streams/worker/process/boot.py) before the worker's checks run a
    # thread: glibc's arena cap binds only threads to come.
    boot(settings)
    if command == "worker" and "--help" not in args:
        check_worker(args)
    app.main()


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("booking-activity-sync")
    except PackageNotFoundError:  # a checkout run without `pip install -e .`
        return "unknown (not installed)"


def check_worker(args: list[str]) -> None:
    """The worker's start-up checks (streams/commands/preflight.py): one line, exit 1
    (2 for a setting to fix)."""
    from streams.commands.preflight import check_worker as run_checks

    conf = settings
    if "--without-web" in args:
        conf = settings.without_web()
    bind = command_line.option_value(args, "--web-bind", "-b")
    port = command_line.option_value(args, "--web-port", "-p")
    tables = {name: table.changelog_topic.get_topic_name() for name, table in app.tables.items()}
    changelogs = list(tables.values())
    try:
        asyncio.run(
            run_checks(
                conf,
                web_bind=bind,
                web_port=int(port) if port and port.isdigit() else None,
                changelogs=changelogs,
                tables=tables,
            )
        )
    except UserError as exc:
        print(f"activity-sync worker: error: {one_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


# `--timeout` of every command that talks to the broker.
BROKER_TIMEOUT = option(
    "--timeout",
    "timeout_s",
    type=float,
    default=DEFAULT_TIMEOUT_S,
    help="Seconds to wait for the broker.",
)


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
    option(
        "--id-prefix",
        default=None,
        metavar="PREFIX",
        help="Booking ids of --generate: PREFIX + a number [default: b-s{seed}-].",
    ),
    option("--topic", default=None, help="Topic to send to [default: booking-events]."),
    BROKER_TIMEOUT,
    base=OperatorCommand,
)
async def produce(
    self: OperatorCommand,
    file: str | None,
    generate: int | None,
    seed: int,
    id_prefix: str | None,
    topic: str | None,
    timeout_s: float,
) -> int:
    """Validate booking events (JSON lines from FILE, or - for stdin) and send them.

    Each line is checked against the event contract first; a bad line is reported
    with its line number and skipped, the others are still sent. Exit code 1 when
    any line was rejected. The Kafka key is the event's subject (the booking id).
    Generated bookings are named after the seed (b-s7-000000, ...), so two seeds never
    share a booking id; --id-prefix names them otherwise.
    """
    from streams.commands.produce import (
        check_id_prefix,
        generated_lines,
        open_input,
        produce_lines,
        read_lines,
    )

    if file is None and generate is None:
        raise UserError("give a FILE (or - for stdin) or --generate N")
    if file is not None and generate is not None:
        raise UserError("give a FILE (or - for stdin) or --generate N, not both")
    if id_prefix is not None and generate is None:
        raise UsageError("--id-prefix names generated bookings: use it with --generate N")
    target = topic or settings.topics.events
    if generate is not None:
        if generate < 0:
            raise UserError("--generate needs a count >= 0")
        if id_prefix is not None:
            check_id_prefix(id_prefix)
        summary = await produce_lines(
            settings.broker.connection(),
            target,
            generated_lines(generate, seed, id_prefix),
            timeout_s=timeout_s,
        )
    else:
        assert file is not None
        stream = open_input(file)
        try:
            summary = await produce_lines(
                settings.broker.connection(),
                target,
                read_lines(stream),
                timeout_s=timeout_s,
                report=sys.stderr,
            )
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
    print(f"sent {plural(summary.sent, 'event')} to {target}; rejected {summary.failed}")
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
        "--timeout",
        "timeout_s",
        type=float,
        default=10.0,
        help="Seconds to wait for the worker, and then for Salesforce.",
    ),
    option(
        "--no-salesforce",
        "offline",
        is_flag=True,
        default=False,
        help="Only the worker's view: do not read the Event from Salesforce.",
    ),
    base=OperatorCommand,
)
async def status(
    self: OperatorCommand,
    booking_id: str,
    worker_url: str | None,
    timeout_s: float,
    offline: bool,
) -> int:
    """Show one booking: its events, the derived view, its Salesforce org (and the orgs
    its Event has left), the projection, the Event as Salesforce holds it, and whether
    the two agree (the sync state). The Event is read from the booking's org: for a
    registered org with the registry's connection (activity-sync orgs), its secret
    references resolved here; an org that is not registered is not checked."""
    from streams.commands.status import (
        SalesforceCheck,
        booking_org,
        check_org_salesforce,
        check_salesforce,
        fetch_report,
        org_json,
        render_report,
        salesforce_json,
    )

    url = worker_url or f"http://{settings.web.host}:{settings.web.port}"
    report = await fetch_report(url, booking_id, timeout_s, token=settings.web.token)
    mapping = settings.app.mapping()
    org = booking_org(report)
    if offline:
        found = SalesforceCheck.skipped("--no-salesforce", org)
    elif org is None:
        found = await check_salesforce(settings.salesforce, mapping, booking_id, timeout_s)
    else:
        found, mapping = await check_org_salesforce(settings, org, booking_id, timeout_s)
    if self.json:
        print(
            json.dumps(
                {
                    **report,
                    "org": org_json(report),
                    "salesforce": salesforce_json(report, found, mapping),
                },
                indent=2,
            )
        )
    else:
        print(render_report(report, found, mapping))
    return 0


@app.command(
    option(
        "--since",
        default=None,
        metavar="TIME",
        help="Bookings with events since TIME (ISO-8601 with a timezone, or an age: 2h, 1d).",
    ),
    option(
        "--bookings",
        "-b",
        "booking_ids",
        multiple=True,
        metavar="ID",
        help="A booking to replay (repeatable; or IDs as arguments).",
    ),
    option(
        "--org",
        default=None,
        metavar="NAME",
        help="Only bookings whose Event lives in this org (default: the default org).",
    ),
    argument("ids", nargs=-1, metavar="[ID]..."),
    BROKER_TIMEOUT,
    base=OperatorCommand,
)
async def replay(
    self: OperatorCommand,
    since: str | None,
    booking_ids: tuple[str, ...],
    org: str | None,
    ids: tuple[str, ...],
    timeout_s: float,
) -> int:
    """Re-project bookings to Salesforce with a forced upsert (even if already synced).

    Reads booking-events from the start, folds the chosen bookings like the workers
    do, and sends their projections marked as forced; the workers' sink writes them.
    `--org NAME` keeps only the chosen bookings whose Event lives in org NAME (the
    folded view's org; `default` for the default org); the others are counted as left
    out. Exit code 1 when a requested booking has no events in the topic.
    """
    from streams.commands.replay import ReplayOptions, Selection, parse_org, parse_since
    from streams.commands.replay import replay as run_replay

    chosen = (*booking_ids, *ids)
    if since is None and not chosen:
        raise UserError("give --since TIME or --bookings ID...")
    if since is not None and chosen:
        raise UserError("give --since TIME or --bookings ID..., not both")
    summary = await run_replay(
        settings.broker.connection(),
        ReplayOptions.of(settings, timeout_s),
        Selection(
            bookings=chosen,
            since=parse_since(since) if since is not None else None,
            org=parse_org(org) if org is not None else None,
        ),
    )
    for booking in summary.unknown:
        print(
            f"unknown booking {booking!r}: no events in {settings.topics.events}", file=sys.stderr
        )
    print(summary.line())
    return 1 if summary.unknown else 0


@app.command(
    option(
        # Also --rebuild-version: main() renames --app-version to it before Faust's
        # --app prefix match sees it (streams/commands/argv.py).
        "--app-version",
        "--rebuild-version",
        "app_version",
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
    when the rebuild has caught up. Version 1 follows a new deployment's first load.
    See docs/operations.md.
    """
    from streams.commands.backfill import watch
    from streams.commands.versions import check_version, group_id

    version = check_version(settings.app.version if app_version is None else app_version)
    return await watch(
        settings.broker.connection(),
        group=group_id(settings.app.id, version),
        events_topic=settings.topics.events,
        projections_topic=settings.topics.projections,
        worker_urls=list(worker_urls),
        worker_token=settings.web.token,
        interval_s=interval,
        timeout_s=timeout_s,
        out=sys.stdout,
    )


@app.command(
    argument("version", type=int),
    option("--yes", is_flag=True, default=False, help="Delete them (without it: only list)."),
    BROKER_TIMEOUT,
    base=OperatorCommand,
)
async def delete_version(self: OperatorCommand, version: int, yes: bool, timeout_s: float) -> int:
    """Delete an old app version's topics after a rebuild: its table changelogs and its
    leader topic, by their exact names (never another version's, never the shared
    topics). Lists them; deletes only with --yes, and not while that version's workers
    are in its group. Run it with the new version's settings. See docs/operations.md."""
    from streams.commands.versions import delete_version as run_delete_version

    return await run_delete_version(
        settings.broker.connection(),
        app_id=settings.app.id,
        version=version,
        running_version=settings.app.version,
        tables=list(app.tables),
        yes=yes,
        out=sys.stdout,
        timeout_s=timeout_s,
    )


@app.command(
    option(
        "--timeout",
        "timeout_s",
        type=float,
        default=30.0,
        help="Seconds to wait for Salesforce to answer.",
    ),
    option(
        "--org",
        default=None,
        metavar="NAME",
        help="Check this registered org (activity-sync orgs list) [default: the default org].",
    ),
    base=OperatorCommand,
)
async def check_salesforce(self: OperatorCommand, timeout_s: float, org: str | None) -> int:
    """Is the org ready? Logs in and checks the API version, each field the projection
    writes (type, length, External ID and unique, picklist values, create/edit access),
    read access to Contact, Lead and Case, Edit Events, and the daily API calls left: one
    line each with a fix hint (ok, FAIL or warn). Without Modify All Data the line is a
    warn: Events owned by other users are then editable only through sharing. Exit 0
    unless a line FAILs (warn lines do not fail). A worker runs the same checks at start.
    `--org NAME` checks a registered org instead (as `orgs check NAME`: its references
    resolved here); `--org default` is the default org."""
    import time

    from streams.commands.check_salesforce import print_report, run_checks
    from streams.commands.preflight import check_salesforce_setup
    from streams.salesforce.errors import SalesforceClientError, SalesforceUntrusted
    from streams.salesforce.org_registry import DEFAULT_ORG

    if org is not None and org != DEFAULT_ORG:
        from streams.commands.orgs import check as check_org

        return await check_org(settings, org, sys.stdout, DEFAULT_TIMEOUT_S, timeout_s)
    deadline = time.monotonic() + timeout_s
    await check_salesforce_setup(settings, deadline)
    try:
        report = await run_checks(settings, deadline=deadline)
    except SalesforceUntrusted as exc:
        raise UsageError(f"Salesforce at {settings.salesforce.login_url}: {exc}") from None
    except SalesforceClientError as exc:
        raise UserError(f"Salesforce at {settings.salesforce.login_url}: {exc}") from None
    print_report(report, sys.stdout)
    return 0 if report.ok else 1


@app.command(
    argument("action", type=click.Choice(["add", "list", "remove", "check"])),
    argument("name", required=False, metavar="[NAME]"),
    option("--login-url", default=None, help="add: where the org logs in (https://...)."),
    option(
        "--auth",
        type=click.Choice(["client_credentials", "password", "jwt"]),
        default="client_credentials",
        help="add: the OAuth flow.",
    ),
    option("--client-id", default=None, help="add: the connected app's consumer key."),
    option(
        "--client-secret",
        default=None,
        metavar="REF",
        help="add: env:VARIABLE or file:/path holding the consumer secret (never the secret).",
    ),
    option("--username", default=None, help="add: the integration user (password, jwt)."),
    option("--password", default=None, metavar="REF", help="add: env:VARIABLE or file:/path."),
    option(
        "--security-token", default=None, metavar="REF", help="add: env:VARIABLE or file:/path."
    ),
    option("--private-key-file", default=None, help="add: jwt: the PEM key's path."),
    option("--jwt-audience", default=None, help="add: jwt: the aud claim."),
    option(
        "--fallback-owner-id",
        default=None,
        help="add: OwnerId for an Event whose owner the org refuses.",
    ),
    option(
        "--field-mapping",
        type=click.Choice(["default", "oncehub"]),
        default="default",
        help="add: the Salesforce fields the org's Events use.",
    ),
    option("--ca-file", default=None, help="add: a PEM bundle to trust for this org."),
    option(
        "--worker",
        "worker_urls",
        multiple=True,
        metavar="URL",
        help="list: count the bookings waiting for each org on this worker (repeatable: "
        "every worker, for the whole count).",
    ),
    option(
        "--salesforce-timeout",
        type=float,
        default=30.0,
        help="check: seconds to wait for Salesforce.",
    ),
    BROKER_TIMEOUT,
    base=OperatorCommand,
)
async def orgs(
    self: OperatorCommand,
    action: str,
    name: str | None,
    salesforce_timeout: float,
    timeout_s: float,
    worker_urls: tuple[str, ...],
    **connection: str | None,
) -> int:
    """The registry of Salesforce orgs besides the default one (a compacted topic every
    worker reads): `add NAME --login-url URL --client-id ID --client-secret env:VAR`
    adds or replaces an org (secrets only by reference: env:VARIABLE or file:/path,
    resolved where the workers run), `list` shows them (`--worker URL`: with the bookings
    waiting for each org), `remove NAME` removes one, `check
    NAME` runs the check-salesforce checks against it."""
    from streams.commands import orgs as registry

    if action == "list":
        return await registry.list_orgs(settings, sys.stdout, timeout_s, worker_urls)
    if not name:
        raise UsageError(f"orgs {action} needs the org's NAME")
    if action == "add":
        org = registry.connection_from({"name": name, **connection})
        return await registry.add(settings, org, sys.stdout, timeout_s)
    if action == "remove":
        return await registry.remove(settings, name, sys.stdout, timeout_s)
    return await registry.check(settings, name, sys.stdout, timeout_s, salesforce_timeout)


@app.command(
    argument("action", type=click.Choice(["list", "show", "redrive"])),
    argument("ref", required=False, metavar="[PARTITION:OFFSET]"),
    option(
        "--topic",
        "which",
        type=click.Choice(["events", "projections", "all"]),
        default="all",
        help="Which dead-letter topic: booking-events.dlq, activity-projections.dlq, or both.",
    ),
    option("--reason", default=None, metavar="CODE", help="Redrive only this reason."),
    option(
        "--since",
        default=None,
        metavar="TIME",
        help="Redrive only what failed since TIME (ISO-8601 with a timezone, or an age).",
    ),
    option(
        "--bookings",
        "-b",
        "booking_ids",
        multiple=True,
        metavar="ID",
        help="Redrive only these bookings (repeatable).",
    ),
    option(
        "--file",
        default=None,
        metavar="FILE",
        help="booking-events.dlq: re-submit these corrected events (JSON lines) instead.",
    ),
    option(
        "--org",
        default=None,
        metavar="NAME",
        help=(
            "list, redrive: only dead letters whose record names org NAME (default: the "
            "default org); records that name no org (not JSON, no page) match none."
        ),
    ),
    BROKER_TIMEOUT,
    base=OperatorCommand,
)
async def dlq(
    self: OperatorCommand,
    action: str,
    ref: str | None,
    which: str,
    reason: str | None,
    since: str | None,
    booking_ids: tuple[str, ...],
    file: str | None,
    org: str | None,
    timeout_s: float,
) -> int:
    """The dead-letter topics: `list` (counts by reason, oldest first, with positions),
    `show PARTITION:OFFSET --topic T` (one message with its headers), `redrive` (once the
    cause is fixed: current projections re-sent for activity-projections.dlq; for
    booking-events.dlq the events re-sent after a worker fix (internal-error), or --file
    re-submitted: bad input needs corrected events; redriven messages are marked, so a
    second redrive skips them). `--org NAME`: list and redrive only the dead letters
    whose record names org NAME (a projection's org; an event's page.salesforce_org;
    none: default); a record that names none (not JSON, an event without a page) matches
    no --org and is counted apart. `--json` before the command: list and show as JSON.
    See docs/operations.md, "Dead-letter topics".
    """
    from streams.commands import dlq as dead_letters
    from streams.commands.replay import ReplayOptions, parse_org, parse_since

    # Every argument checked before the broker is asked anything.
    dead_letters.check_reason(reason, which)
    since_time = parse_since(since) if since is not None else None
    only_org = parse_org(org) if org is not None else None
    if only_org is not None and action == "show":
        raise UsageError("--org chooses what list and redrive cover; show takes a position")
    if only_org is not None and file is not None:
        raise UsageError("--file re-submits the events it holds: give it without --org")
    if action == "show" and (ref is None or which == "all"):
        raise UsageError("show needs PARTITION:OFFSET and --topic events|projections")
    if file is not None and which != "events":
        raise UsageError("--file re-submits booking events: use it with --topic events")
    broker = settings.broker.connection()
    topics = dead_letters.DeadLetterTopics(
        events=settings.topics.events,
        events_dlq=settings.topics.events_dlq,
        projections=settings.topics.projections,
        projections_dlq=settings.topics.projections_dlq,
    )
    if action == "show":
        assert ref is not None
        topic = topics.chosen(which)[0]
        found = dead_letters.Pending.of(
            await dead_letters.read_dead_letters(broker, topic, timeout_s)
        ).find(ref)
        if found is None:
            raise UserError(f"no dead letter {ref} waiting in {topic} (dlq list shows them)")
        if self.json:
            print(json.dumps(dead_letters.show_json(topic, found), indent=2))
        else:
            print("\n".join(dead_letters.show_lines(topic, found)))
        return 0
    listed = []
    left: list[str] = []  # why dead letters were not redriven
    for topic in topics.chosen(which):
        records = await dead_letters.read_dead_letters(broker, topic, timeout_s)
        unsaid = 0  # with --org: waiting dead letters whose record names no org
        if only_org is not None:
            records, others = dead_letters.by_org(
                records, only_org, projections=topic == topics.projections_dlq
            )
            unsaid = len(dead_letters.Pending.of(others).messages)
        pending = dead_letters.Pending.of(records)
        if action == "list":
            if self.json:
                entry = dead_letters.list_json(topic, pending)
                if only_org is not None:
                    entry.update(org=only_org, org_not_said=unsaid)
                listed.append(entry)
            else:
                print("\n".join(dead_letters.list_lines(topic, pending)))
                if unsaid:
                    print(dead_letters.org_unsaid_line(topic, str(only_org), unsaid))
            continue
        if unsaid:
            print(dead_letters.org_unsaid_line(topic, str(only_org), unsaid))
        chosen = pending.select(reason, since_time, booking_ids)
        if topic == topics.events_dlq and file is None:
            chosen, again = dead_letters.split_resendable(chosen)
            if again:
                left.append(dead_letters.needs_file_line(topic, again))
        if not chosen:
            if not left or topic != topics.events_dlq:
                print(f"{topic}: nothing to redrive")
            continue
        if topic == topics.projections_dlq:
            summary = await dead_letters.redrive_projections(
                broker,
                ReplayOptions.of(settings, timeout_s),
                chosen,
            )
            done = summary.line()
        elif file is not None:
            from streams.commands.produce import open_input, produce_lines, read_lines

            stream = open_input(file)
            try:
                sent = await produce_lines(
                    broker,
                    topics.events,
                    read_lines(stream),
                    timeout_s=timeout_s,
                    report=sys.stderr,
                )
            finally:
                stream.close()
            if sent.failed:
                raise UserError(f"{file}: {sent.failed} lines rejected; nothing marked redriven")
            done = f"re-submitted {plural(sent.sent, 'event')} from {file}"
        else:
            count = await dead_letters.resend_events(broker, topics.events, chosen, timeout_s)
            done = f"re-sent {plural(count, 'event')} to {topics.events}"
        await dead_letters.mark_redriven(broker, topic, chosen, timeout_s)
        print(f"{topic}: redrove {plural(len(chosen), 'dead letter')}; {done}")
    if listed:
        print(json.dumps(listed, indent=2))
    if left:
        raise UserError("; ".join(left))
    return 0


@app.command(
    option(
        "--delete",
        is_flag=True,
        default=False,
        help="Delete the state instead of moving it aside.",
    ),
    base=OperatorCommand,
)
async def reset_state(self: OperatorCommand, delete: bool) -> int:
    """Set this app version's table state (ACTIVITY_SYNC_DATA_DIR/v<N>/tables) aside, so
    the next worker start rebuilds its tables from the broker's changelogs: the fix a
    worker names when its state does not belong to the broker's log (a new cluster, a
    lost changelog). Moved to tables.reset-<time> beside it unless --delete; refused
    while a worker runs on it. See docs/operations.md."""
    from streams.commands.reset_state import reset_state as run_reset_state

    return run_reset_state(settings, delete=delete, out=sys.stdout)
