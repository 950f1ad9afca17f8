"""The org check's result at this worker's start (streams/commands/preflight.py), for
`/health/`: the worker runs only when it passed, so /health/ shows what passed, when."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class OrgStatus:
    checked: bool = False
    ok: bool = False
    lines: list[str] = field(default_factory=list)
    at: float = 0.0

    def summary(self) -> str:
        if not self.checked:
            return "not checked (ACTIVITY_SYNC_STARTUP_ORG_CHECK=false)"
        if self.ok:
            warned = sum(line.startswith("warn") for line in self.lines)
            extra = f", {warned} with a warning" if warned else ""
            return f"ok ({len(self.lines)} checks passed at start{extra})"
        return "failing: " + "; ".join(line for line in self.lines if line.startswith("FAIL"))


STATUS = OrgStatus()


def record(ok: bool, lines: list[str]) -> None:
    STATUS.checked, STATUS.ok, STATUS.lines, STATUS.at = True, ok, list(lines), time.time()
