"""The base of our `activity-sync` commands, and the error type they report.

Faust runs an async command inside a mode Worker, which prints tracebacks, logs its
own start-up banner and always exits 0 or 1. Our commands are short operator tools:
this base runs the command's coroutine with `asyncio.run` and exits with the code it
returns. A `UserError` (bad input, broker unreachable, unknown booking) becomes one
line on stderr and exit code 1, never a traceback; a `UsageError` (a bad option value
or setting) exit code 2.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, NoReturn

import click
from faust.cli import AppCommand
from pydantic import ValidationError

from streams.salesforce.settings import SecretFileError
from streams.worker.settings import error_variable


class UserError(Exception):
    """A problem the operator can fix; shown as one line, exit code 1."""

    exit_code = 1


class UsageError(UserError):
    """A bad option value or setting: one line, exit code 2 (as click's usage errors and
    bad settings)."""

    exit_code = 2


class Interrupted(UserError):
    exit_code = 130


# Faust's -l/--loglevel choices.
_LEVELS = {
    "CRIT": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message without newlines, or its type name."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def settings_problem(exc: ValidationError | SecretFileError) -> str:
    """A settings error as one line naming each variable; never the values given (the
    models hide their input, and this reads only the locations and messages)."""
    if isinstance(exc, SecretFileError):
        return one_line(exc)
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        name = error_variable(exc.title, error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {message}" if name else message)
    return one_line(ValueError("; ".join(parts)))


@contextmanager
def settings_checked(command: str | None) -> Iterator[None]:
    """Settings errors inside become one line on stderr and exit code 2."""
    try:
        yield
    except (ValidationError, SecretFileError) as exc:
        name = f"activity-sync {command}" if command else "activity-sync"
        print(f"{name}: error: bad settings: {settings_problem(exc)}", file=sys.stderr)
        sys.exit(2)


async def until_signal() -> None:
    """Wait for SIGINT or SIGTERM (Ctrl-C, `docker stop`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class OperatorCommand(AppCommand):
    """An `@app.command(base=OperatorCommand)` runs without a Faust Worker around it."""

    abstract: ClassVar[bool] = True

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._configure_logging()
        name = self.ctx.info_name or type(self).__name__
        try:
            code = asyncio.run(self.run(*self.args, *args, **{**self.kwargs, **kwargs}))
        except UserError as exc:
            self.fail(name, one_line(exc), exc.exit_code)
        except KeyboardInterrupt:
            self.fail(name, "interrupted", Interrupted.exit_code)
        except click.exceptions.Exit:
            raise
        sys.exit(int(code or 0))

    def fail(self, name: str, message: str, code: int) -> NoReturn:
        print(f"activity-sync {name}: error: {message}", file=sys.stderr)
        sys.exit(code)

    def _configure_logging(self) -> None:
        # Client libraries (aiokafka above all) log connection failures at ERROR level;
        # the command reports them itself as one line, so they stay quiet unless the
        # operator asks for `-l info` or `-l debug`.
        level = _LEVELS.get(str(self.loglevel).upper(), logging.WARNING)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        if level > logging.INFO:
            for noisy in ("aiokafka", "kafka"):
                logging.getLogger(noisy).setLevel(logging.CRITICAL)
