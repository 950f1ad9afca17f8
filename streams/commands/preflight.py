"""`activity-sync worker`: what is checked before Faust starts, so a mistake is one line.

A worker that starts with the broker down, wrong Salesforce credentials or a missing CA
file would log Ready and then fail on every write with a traceback. Before Faust runs,
`check_worker` checks, in order:

1. the web server's access rules (`web_access_problem`: a non-loopback bind needs
   `ACTIVITY_SYNC_WEB_TOKEN`);
2. that `ACTIVITY_SYNC_SALESFORCE_CA_FILE`, when set, is a readable file;
3. that the broker answers (bootstrap metadata);
4. that Salesforce issues a token for the credentials;
5. that the org is ready (streams/commands/check_salesforce.py: API version, each
   mapped field's type, length, external id, picklist and access, API calls left):
   on a failure every check's line is printed and the worker does not start, before
   it consumes anything. The result is kept for `/health/` (streams/worker/web.py).

The broker and a Salesforce that does not answer are waited for, up to
`ACTIVITY_SYNC_STARTUP_TIMEOUT` seconds, with one line per retry; a refused login or an
untrusted certificate fails at once. A Salesforce still down at the deadline is an
outage, not a mistake: the worker starts with one warning line (the org checks are
skipped), the fold goes on and the sink holds its records until Salesforce answers.
Every failure is a `UserError`: one line, exit 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import IO

import requests

from streams.commands.base import UserError, one_line
from streams.commands.kafka_io import admin
from streams.salesforce.errors import (
    SalesforceAuthenticationError,
    SalesforceClientError,
    SalesforceUnavailable,
)
from streams.salesforce.session import SalesforceSession
from streams.worker.settings import Settings
from streams.worker.web import web_access_problem

RETRY_S = 2.0


def check_files(settings: Settings) -> None:
    ca_file = settings.salesforce.ca_file
    if ca_file is None:
        return
    try:
        with open(ca_file, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise UserError(
            f"ACTIVITY_SYNC_SALESFORCE_CA_FILE: cannot read {ca_file}: {exc.strerror or exc}"
        ) from None


async def wait_for_broker(settings: Settings, deadline: float, say: IO[str]) -> None:
    broker = settings.broker()
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
    from streams.worker import org_status

    try:
        report = await run_checks(settings, deadline=deadline)
    except SalesforceClientError as exc:
        org_status.record(False, [one_line(exc)])
        raise UserError(f"Salesforce org check failed: {one_line(exc)}") from None
    org_status.record(report.ok, [str(line) for line in report.lines])
    if report.ok:
        return
    print_report(report, say, prefix="activity-sync worker: ")
    failed = len(report.failures)
    raise UserError(
        f"the Salesforce org is not ready: {failed} check{'s' if failed > 1 else ''} failed "
        f"(first: {report.failures[0].text}); fix and run activity-sync check-salesforce"
    )


async def check_worker(
    settings: Settings, *, web_bind: str | None = None, say: IO[str] = sys.stderr
) -> None:
    """Raise a one-line `UserError` for the first thing that stops this worker working."""
    problem = web_access_problem(settings, web_bind)
    if problem:
        raise UserError(problem)
    check_files(settings)
    deadline = time.monotonic() + settings.startup_timeout
    await wait_for_broker(settings, deadline, say)
    # An outage at start is not a setup mistake: a worker restarted during one must not
    # exit (a supervisor would restart it in a loop, and its partitions would wait), so
    # it starts, the fold goes on and the sink holds. The org checks need Salesforce.
    reached = await check_salesforce_login(settings, deadline, say)
    if reached and settings.startup_org_check:
        await check_salesforce_org(settings, deadline, say)
