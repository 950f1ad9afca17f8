"""`activity-sync worker`: what is checked before Faust starts, so a mistake is one line.

A worker that starts with the broker down, wrong Salesforce credentials or a missing CA
file would log Ready and then fail on every write with a traceback. Before Faust runs,
`check_worker` checks, in order:

1. the web server: its access rules (`web_access_problem`: a non-loopback bind needs
   `ACTIVITY_SYNC_WEB_TOKEN`) and that its port is free; that this user can write
   `ACTIVITY_SYNC_DATA_DIR` (or create it: `check_data_dir`; the tables' RocksDB files
   live there, and Faust would fail later with a traceback);
2. the Salesforce settings (`check_salesforce_settings`, also run by
   `check-salesforce`): an org is configured (`ACTIVITY_SYNC_SALESFORCE_CLIENT_ID`,
   the flow's secret), `ACTIVITY_SYNC_SALESFORCE_CA_FILE`, when set, is a readable PEM
   bundle;
3. that the broker answers (bootstrap metadata), and that the app's topics that exist
   have `ACTIVITY_SYNC_PARTITIONS` partitions (`check_partitions`: a mismatch would send
   every event to the dead-letter topic); that the tables' state in the data dir belongs
   to the broker's changelogs (streams/commands/table_state_check.py: state ahead of
   them, or built on another cluster, would stop Faust's recovery or mix two histories);
4. that something speaking TLS listens at the login URL (`probe_salesforce`): nothing
   listening (connection refused), an unknown host or a plain-HTTP port is a wrong
   URL, not an outage;
5. that Salesforce issues a token for the credentials;
6. that the org is ready (streams/commands/check_salesforce.py: API version, each
   mapped field's type, length, external id, picklist and access, read on Contact,
   Lead and Case, the user permissions, API calls left): on a failure every check's
   line is printed and the worker does not start, before it consumes anything; a
   `warn` line (no Modify All Data) is printed and the worker starts. The result is
   kept for `/health/` (streams/worker/watch/web.py).

The broker and a Salesforce that does not answer (timeouts, 5xx) are waited for, up to
`ACTIVITY_SYNC_STARTUP_TIMEOUT` seconds, with one line per retry; a refused login or an
untrusted certificate fails at once. A Salesforce still down at the deadline is an
outage, not a mistake: the worker starts with one warning line (the org checks are
skipped), the fold goes on and the sink holds its records until Salesforce answers.
Every failure is a `UserError`: one line, exit code 1, or 2 (`UsageError`) when a
setting is what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO
from urllib.parse import urlsplit

import requests
from aiokafka.errors import KafkaError

from streams.commands.base import UsageError, UserError, one_line
from streams.commands.kafka_io import admin
from streams.commands.table_state_check import check_table_state
from streams.salesforce.errors import (
    SalesforceAuthenticationError,
    SalesforceClientError,
    SalesforceUnavailable,
    SalesforceUntrusted,
)
from streams.salesforce.session import SalesforceSession
from streams.salesforce.settings import ENV_PREFIX as SF
from streams.salesforce.settings import SalesforceSettings
from streams.worker.settings import Settings
from streams.worker.watch.web import web_access_problem

RETRY_S = 2.0
# A metadata request refused by a node that is down, asked again (of another node).
METADATA_RETRY_S = 0.2
# The TCP and TLS probe of the login URL: longer means a host that does not answer,
# which is left to the login's retries (an outage, not a mistake).
PROBE_TIMEOUT_S = 5.0


def check_web_port(settings: Settings, bind: str | None = None, port: int | None = None) -> None:
    """A `UsageError` when the worker's web server could not listen (the port is taken:
    Faust would fail with a traceback after joining the group)."""
    if not settings.web.enabled:
        return
    host = bind or settings.web.bind
    port = settings.web.port if port is None else port
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(
            f"ACTIVITY_SYNC_WEB_BIND={host}: cannot listen there ({exc.strerror or exc})"
        ) from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # As the web server binds (aiohttp sets SO_REUSEADDR): only a listener counts.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    continue  # e.g. no IPv6 for `localhost`'s ::1: the web server's call
                taken = exc.errno == errno.EADDRINUSE
                why = "in use (another worker on this host?)" if taken else exc.strerror
                raise UsageError(
                    f"ACTIVITY_SYNC_WEB_PORT={port}: cannot listen on {host}:{port}: {why}; "
                    "give each worker its own ACTIVITY_SYNC_WEB_PORT (or --web-port)"
                ) from None


def check_data_dir(settings: Settings) -> None:
    """A `UsageError` when this user can neither write `data_dir` nor create it (a relative
    default under a read-only working directory: an image's /app)."""
    path = settings.store.data_dir
    shown = f"ACTIVITY_SYNC_DATA_DIR={path}" + (
        "" if path.is_absolute() else f" ({path.absolute()})"
    )
    hint = "set ACTIVITY_SYNC_DATA_DIR to a directory this user can write"
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UsageError(f"{shown}: {existing} is not a directory; {hint}")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "cannot write" if existing == path.absolute() else f"cannot create it in {existing}"
        raise UsageError(f"{shown}: {what} (permission denied); {hint}")


def check_salesforce_settings(salesforce: SalesforceSettings) -> None:
    """A `UsageError` naming the variable when the Salesforce settings cannot work: no
    org configured (the default login URL alone is no org), the flow's secret missing,
    or a CA file that is not a readable PEM bundle."""
    if not salesforce.client_id:
        unset = [f"{SF}CLIENT_ID"]
        if "login_url" not in salesforce.model_fields_set:
            unset.insert(0, f"{SF}LOGIN_URL")
        raise UsageError(
            f"no Salesforce org configured: set {' and '.join(unset)} (and the flow's "
            f"secret: README, 'A real Salesforce org'; the dev kit's emulator prints them)"
        )
    if salesforce.auth == "client_credentials" and not salesforce.client_secret.get_secret_value():
        raise UsageError(
            f"{SF}AUTH=client_credentials needs {SF}CLIENT_SECRET (or {SF}CLIENT_SECRET_FILE)"
        )
    ca_file = salesforce.ca_file
    if ca_file is None:
        return
    try:
        with open(ca_file, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise UsageError(f"{SF}CA_FILE: cannot read {ca_file}: {exc.strerror or exc}") from None
    try:
        ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, ValueError):
        raise UsageError(
            f"{SF}CA_FILE: {ca_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); "
            "give the PEM file of the CA that signed Salesforce's certificate"
        ) from None


async def probe_salesforce(salesforce: SalesforceSettings, timeout_s: float) -> None:
    """A `UsageError` when the login URL cannot be Salesforce: an unknown host, nothing
    listening at its port, or a port that does not speak TLS. Timeouts and other
    failures are left to the login's retries (an outage looks like them)."""
    url = urlsplit(salesforce.login_url)
    host, port = url.hostname or "", url.port or 443
    hint = f"check {SF}LOGIN_URL"
    tls = ssl.create_default_context()
    # Only whether it speaks TLS: the login checks the certificate, with the CA it uses.
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls, server_hostname=host or None),
            timeout_s,
        )
    except ConnectionRefusedError:
        raise UsageError(
            f"nothing listens at {host}:{port} (connection refused): {hint} and its port"
        ) from None
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise UsageError(f"unknown host {host!r} ({exc.strerror}): {hint}") from None
        return
    except ssl.SSLError as exc:
        if exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"):
            raise UsageError(
                f"{host}:{port} does not speak HTTPS (TLS handshake: {exc.reason}): {hint}; "
                "is it the HTTPS port?"
            ) from None
        return
    except (OSError, TimeoutError):
        return
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


async def check_salesforce_setup(settings: Settings, deadline: float) -> None:
    """The Salesforce checks that need no login: settings, then the login URL's probe."""
    check_salesforce_settings(settings.salesforce)
    remaining = max(0.5, deadline - time.monotonic())
    await probe_salesforce(settings.salesforce, min(PROBE_TIMEOUT_S, remaining))


async def check_partitions(
    settings: Settings, changelogs: Sequence[str] = (), timeout_s: float = 5.0
) -> None:
    """A `UsageError` when a topic of the app exists with another partition count than
    `ACTIVITY_SYNC_PARTITIONS`: the fold and the tables rely on the same count, and a
    worker started so would dead-letter every event (PartitionsMismatch). Topics that do
    not exist yet are created by the worker with the setting's count."""
    topics = settings.topics
    ours = [topics.events, topics.events_dlq, topics.projections, topics.projections_dlq]
    ours += list(changelogs)
    deadline = time.monotonic() + timeout_s
    async with admin(settings.broker.connection(), timeout_s) as client:
        while True:
            try:
                # Every topic's metadata: asking for named ones could make a broker with
                # auto.create.topics.enable create them, with its own count.
                described = await client.describe_topics()
                break
            except KafkaError as exc:
                # The request goes to a random node of the cluster's metadata, which
                # still lists a node that is down (a broker restarting): it refuses at
                # once (NodeNotReadyError); asked again, another node answers.
                if time.monotonic() + METADATA_RETRY_S >= deadline:
                    why = one_line(exc)
                    raise UserError(f"no Kafka node answered the topic metadata: {why}") from None
                await asyncio.sleep(METADATA_RETRY_S)
    counts = {
        str(t["topic"]): len(t["partitions"])
        for t in described
        if t["topic"] in ours and not t.get("error_code")
    }
    wrong = [
        (name, counts[name])
        for name in ours
        if counts.get(name, settings.broker.partitions) != settings.broker.partitions
    ]
    if not wrong:
        return
    found = ", ".join(f"{name} has {count}" for name, count in wrong)
    first = wrong[0][1]
    raise UsageError(
        f"ACTIVITY_SYNC_PARTITIONS={settings.broker.partitions} but the topics have other counts "
        f"({found}): set ACTIVITY_SYNC_PARTITIONS={first}, the topics' count "
        "(docs/operations.md, 'Sizing up front')"
    )


async def wait_for_broker(settings: Settings, deadline: float, say: IO[str]) -> None:
    broker = settings.broker.connection()
    quiet = [logging.getLogger(name) for name in ("aiokafka", "kafka")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # aiokafka logs each refused connection: the line below says it
        logger.setLevel(logging.CRITICAL)
    try:
        while True:
            remaining = deadline - time.monotonic()
            try:
                async with admin(broker, max(0.5, min(5.0, remaining))):
                    return
            except UserError as exc:
                if time.monotonic() + RETRY_S >= deadline:
                    raise UserError(f"{exc} (ACTIVITY_SYNC_STARTUP_TIMEOUT passed)") from None
                print(f"activity-sync worker: waiting: {exc}", file=say, flush=True)
            await asyncio.sleep(RETRY_S)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


class _OneLine(logging.Handler):
    """The client's retry warnings, as `activity-sync worker: waiting: ...` lines."""

    def __init__(self, say: IO[str]) -> None:
        super().__init__(logging.WARNING)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        print(f"activity-sync worker: waiting: {record.getMessage()}", file=self.say, flush=True)


async def check_salesforce_login(settings: Settings, deadline: float, say: IO[str]) -> bool:
    """True once Salesforce issued a token; False when it did not answer by `deadline`
    (an outage: the worker starts anyway, see `check_worker`). A refused login, a bad
    certificate or any other answer is a `UserError`."""
    login_url = settings.salesforce.login_url
    session = SalesforceSession(settings.salesforce)
    logger = logging.getLogger("streams.salesforce.session")
    handler, propagate = _OneLine(say), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        await session.connect(deadline=deadline)
        return True
    except SalesforceAuthenticationError as exc:
        raise UserError(
            f"Salesforce at {login_url} refused the credentials ({one_line(exc)}); check "
            "ACTIVITY_SYNC_SALESFORCE_CLIENT_ID and _CLIENT_SECRET (or the password flow's)"
        ) from None
    except SalesforceUntrusted as exc:
        raise UsageError(f"Salesforce at {login_url}: {one_line(exc)}") from None
    except SalesforceUnavailable as exc:
        print(
            f"activity-sync worker: warning: cannot reach Salesforce at {login_url} "
            f"({one_line(exc)}); starting anyway: the sink holds its records and retries",
            file=say,
            flush=True,
        )
        return False
    except SalesforceClientError as exc:
        raise UserError(f"Salesforce at {login_url}: {one_line(exc)}") from None
    except (requests.RequestException, OSError, ValueError) as exc:
        raise UserError(f"Salesforce login at {login_url} failed: {one_line(exc)}") from None
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        session.close()


async def check_salesforce_org(settings: Settings, deadline: float, say: IO[str]) -> None:
    """The org checks of `check-salesforce`; on a failure, every line, then a UserError."""
    from streams.commands.check_salesforce import print_report, run_checks
    from streams.worker.watch import org_status

    try:
        report = await run_checks(settings, deadline=deadline)
    except SalesforceClientError as exc:
        org_status.record(False, [one_line(exc)])
        raise UserError(f"Salesforce org check failed: {one_line(exc)}") from None
    org_status.record(report.ok, [str(line) for line in report.lines])
    if report.ok:
        # Warnings fail nothing: said once at start, and kept in /health/'s lines.
        for line in report.warnings:
            print(f"activity-sync worker: {line}", file=say, flush=True)
        return
    print_report(report, say, prefix="activity-sync worker: ")
    failed = len(report.failures)
    raise UserError(
        f"the Salesforce org is not ready: {failed} check{'s' if failed > 1 else ''} failed "
        f"(first: {report.failures[0].text}); fix and run activity-sync check-salesforce"
    )


async def check_worker(
    settings: Settings,
    *,
    web_bind: str | None = None,
    web_port: int | None = None,
    changelogs: Sequence[str] = (),
    tables: Mapping[str, str] | None = None,
    say: IO[str] = sys.stderr,
) -> None:
    """Raise a one-line `UserError` for the first thing that stops this worker working
    (`changelogs`: the app's table changelog topics, checked for their partitions;
    `tables`: table name -> changelog topic, whose stored state is checked against the
    broker's log)."""
    problem = web_access_problem(settings, web_bind)
    if problem:
        raise UsageError(problem)
    check_web_port(settings, web_bind, web_port)
    check_data_dir(settings)
    check_salesforce_settings(settings.salesforce)
    deadline = time.monotonic() + settings.startup.timeout
    await wait_for_broker(settings, deadline, say)
    await check_partitions(settings, changelogs, max(1.0, min(10.0, deadline - time.monotonic())))
    await check_table_state(settings, tables or {}, deadline, say)
    await check_salesforce_setup(settings, deadline)
    # An outage at start is not a setup mistake: a worker restarted during one must not
    # exit (a supervisor would restart it in a loop, and its partitions would wait), so
    # it starts, the fold goes on and the sink holds. The org checks need Salesforce.
    reached = await check_salesforce_login(settings, deadline, say)
    if reached and settings.startup.org_check:
        await check_salesforce_org(settings, deadline, say)
