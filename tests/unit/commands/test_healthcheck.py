"""The image's HEALTHCHECK (streams/commands/healthcheck.py) asks /health/ where the
worker listens: it used to read ACTIVITY_SYNC_WEB_PORT only, so a worker started with
`--web-port` or `--without-web` was reported unhealthy forever (issue 21, item 9)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streams.commands import healthcheck
from streams.commands.healthcheck import health_url, worker_argv
from streams.worker.settings import Settings


def worker(**web: Any) -> Settings:
    return Settings(_env_file=None, web=web)


@pytest.mark.parametrize(
    ("values", "args", "url"),
    [
        ({}, ["worker", "-l", "info"], "http://127.0.0.1:6066/health/"),
        ({"bind": "0.0.0.0"}, [], "http://127.0.0.1:6066/health/"),
        ({"bind": "::"}, ["worker"], "http://127.0.0.1:6066/health/"),
        ({"port": 7000}, ["worker"], "http://127.0.0.1:7000/health/"),
        ({"port": 7000}, ["worker", "--web-port", "7001"], "http://127.0.0.1:7001/health/"),
        ({}, ["worker", "-p", "7002"], "http://127.0.0.1:7002/health/"),
        ({}, ["worker", "--web-port=7003"], "http://127.0.0.1:7003/health/"),
        ({"bind": "10.0.0.5"}, ["worker"], "http://10.0.0.5:6066/health/"),
        ({}, ["worker", "--web-bind", "fd00::5"], "http://[fd00::5]:6066/health/"),
        ({}, ["worker", "--without-web"], None),
        ({"enabled": False}, ["worker"], None),
        ({}, ["status", "b-1"], None),  # an operator command: no web server
    ],
)
def test_the_probe_asks_where_the_worker_listens(
    values: dict[str, Any], args: list[str], url: str | None
) -> None:
    assert health_url(worker(**values), args) == url


def test_the_worker_command_line_is_read_from_process_one(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(
        b"/usr/local/bin/python\0/usr/local/bin/activity-sync\0worker\0-p\x007001\0"
    )
    assert worker_argv(cmdline) == ["worker", "-p", "7001"]
    cmdline.write_bytes(b"python\0-m\0devkit\0salesforce-emulator\0")
    assert worker_argv(cmdline) == []
    assert worker_argv(tmp_path / "missing") == []


@pytest.fixture
def health_server() -> Iterator[tuple[int, list[int]]]:
    statuses = [200]

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[0] if self.path == "/health/" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], statuses
    finally:
        server.shutdown()
        server.server_close()


def test_exit_code_follows_the_answer(
    health_server: tuple[int, list[int]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, statuses = health_server
    monkeypatch.setattr(healthcheck, "Settings", lambda: worker())
    assert healthcheck.main(["worker", "--web-port", str(port)]) == 0
    statuses[0] = 503
    assert healthcheck.main(["worker", "--web-port", str(port)]) == 1
    assert capsys.readouterr().err == f"unhealthy: http://127.0.0.1:{port}/health/ answered 503\n"
    assert healthcheck.main(["worker", "--without-web"]) == 0
