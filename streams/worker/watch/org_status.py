"""The org check's result at this worker's start (streams/commands/preflight.py), for
`/health/`: the worker runs only when it passed, so /health/ shows what passed, when."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streams.worker.org_checks import summary


@dataclass
class OrgStatus:
    checked: bool = False
    ok: bool = False
    lines: list[str] = field(default_factory=list)
    at: float = 0.0

    def summary(self) -> str:
        if not self.checked:
            return "not checked (ACTIVITY_SYNC_STARTUP_ORG_CHECK=false)"
        return summary(self.lines, self.ok, " at start")


STATUS = OrgStatus()


def record(ok: bool, lines: list[str]) -> None:
    STATUS.checked, STATUS.ok, STATUS.lines, STATUS.at = True, ok, list(lines), time.time()
