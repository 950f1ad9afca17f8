"""The image's HEALTHCHECK: `python -m streams.commands.healthcheck`.

Asks this container's worker for `GET /health/` where its web server listens: the port
and bind from the worker's settings (ACTIVITY_SYNC_WEB_PORT, ACTIVITY_SYNC_WEB_BIND, the
env file) and from the worker's own command line, `--web-port`/`-p`, `--web-bind`/`-b`
and `--without-web` (read from /proc/1/cmdline: the worker is the container's first
process). Exit 0 when it answers 200, or when the worker runs no web server (nothing to
ask: the container is as healthy as its process); 1 otherwise, with one line saying why.
Neither the app nor Faust is imported: every 15 s, that would cost more than the check.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from streams.commands import argv as command_line
from streams.worker.settings import Settings

TIMEOUT_S = 4.0
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def worker_argv(cmdline: Path = Path("/proc/1/cmdline")) -> list[str]:
    """The worker's arguments after `activity-sync`, or [] when process 1 is not one."""
    try:
        parts = cmdline.read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
    for index, part in enumerate(parts):
        if Path(part).name == "activity-sync":
            return [p for p in parts[index + 1 :] if p]
    return []


def health_url(settings: Settings, args: Sequence[str]) -> str | None:
    """Where the worker answers /health/, or None when it serves no web."""
    if args and "worker" not in args:
        return None  # an operator command, not a worker: nothing listens
    if not settings.web.enabled or "--without-web" in args:
        return None
    bind = command_line.option_value(args, "--web-bind", "-b") or settings.web.bind
    port = command_line.option_value(args, "--web-port", "-p") or str(settings.web.port)
    host = "127.0.0.1" if bind in WILDCARDS else bind
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}/health/"


def main(args: Sequence[str] | None = None) -> int:
    url = health_url(Settings(), worker_argv() if args is None else args)
    if url is None:
        return 0
    try:
        # No proxy: the worker is in this container, whatever http_proxy says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=TIMEOUT_S) as answer:
            return 0 if answer.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {url} answered {exc.code}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
