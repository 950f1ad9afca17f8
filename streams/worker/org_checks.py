"""The org checks of `check-salesforce` for a field mapping, and each registered org's
result while the worker runs (`GET /health/`'s `orgs`).

Guarantees:
- `field_specs(mapping)` are the fields the projection writes, as they must be in the
  org; `READ_SOBJECTS` the objects the integration user must read. The command, the
  worker's start and `OrgChecks` use these, so every check asks the same.
- `OrgChecks.refresh(orgs)` checks an org when it appears or its connection changes, and
  a failing one again after `recheck_after_s`; a removed org is forgotten. A check never
  raises: a secret reference that cannot be resolved, a login refused or Salesforce
  unreachable is that org's `failing: ...` line, and the worker goes on (one org's
  problem is never the worker's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from schemas import Related
from streams.core.projection import PRESETS, REASON_MAX, FieldMapping
from streams.core.view import STATUSES
from streams.salesforce.org_check import DEPLOY_HINT, FieldSpec, OrgReport, check_org
from streams.salesforce.org_registry import OrgConnection, OrgSecretError
from streams.salesforce.related import RELATED_SOBJECTS
from streams.salesforce.session import SalesforceSession
from streams.salesforce.settings import SalesforceSettings

log = logging.getLogger(__name__)

MANAGED_HINT = "install the ScheduleOnce (OnceHub) managed package, or use field mapping default"
# Contact, Lead (looked up by email) and Case, in a stable order.
READ_SOBJECTS: tuple[str, ...] = tuple(
    dict.fromkeys([*RELATED_SOBJECTS, *get_args(Related.model_fields["type"].annotation)])
)
RECHECK_AFTER_S = 300.0
CHECK_TIMEOUT_S = 30.0


def field_specs(mapping: FieldMapping) -> list[FieldSpec]:
    """What each field the projection writes must be, for `mapping`."""

    def hint(name: str) -> str:
        return MANAGED_HINT if name.startswith("ScheduleOnce__") else DEPLOY_HINT

    return [
        FieldSpec(
            mapping.external_id_field,
            "string",
            min_length=255,
            external_id=True,
            hint=hint(mapping.external_id_field),
        ),
        FieldSpec(
            mapping.status_field, "picklist", picklist=STATUSES, hint=hint(mapping.status_field)
        ),
        FieldSpec(
            mapping.reason_field, "string", min_length=REASON_MAX, hint=hint(mapping.reason_field)
        ),
        FieldSpec(mapping.version_field, "double", hint=DEPLOY_HINT),
    ]


async def check_connection(
    settings: SalesforceSettings, mapping: FieldMapping, deadline: float
) -> OrgReport:
    """Log in with `settings` and run every check (login failures raise the client's
    errors)."""
    session = SalesforceSession(settings)
    try:
        return await check_org(
            session, field_specs(mapping), readable=READ_SOBJECTS, deadline=deadline
        )
    finally:
        session.close()


def summary(lines: Sequence[str], ok: bool, when: str = "") -> str:
    """`ok (N checks passed[ when][, M with a warning])` or `failing: ` and the FAIL
    lines, from a check's printed lines (`ok ...`, `warn ...`, `FAIL ...`)."""
    if ok:
        warned = sum(line.startswith("warn") for line in lines)
        extra = f", {warned} with a warning" if warned else ""
        return f"ok ({len(lines)} checks passed{when}{extra})"
    return "failing: " + "; ".join(line for line in lines if line.startswith("FAIL"))


@dataclass(frozen=True)
class OrgCheck:
    """One org's last check: the connection it was run with, its summary, when."""

    connection: OrgConnection
    ok: bool
    summary: str
    at: float


Check = Callable[[SalesforceSettings, FieldMapping, float], Awaitable[OrgReport]]


class OrgChecks:
    """The registered orgs' check results, by name."""

    def __init__(
        self,
        base: SalesforceSettings,
        *,
        check: Check = check_connection,
        timeout_s: float = CHECK_TIMEOUT_S,
        recheck_after_s: float = RECHECK_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._base = base
        self._check = check
        self._timeout_s = timeout_s
        self._recheck_after_s = recheck_after_s
        self._clock = clock
        self._environ = environ
        self.results: dict[str, OrgCheck] = {}

    def _due(self, name: str, connection: OrgConnection) -> bool:
        done = self.results.get(name)
        if done is None or done.connection != connection:
            return True
        return not done.ok and self._clock() - done.at >= self._recheck_after_s

    async def refresh(self, orgs: Mapping[str, OrgConnection]) -> None:
        for name in [n for n in self.results if n not in orgs]:
            del self.results[name]
        for name, connection in sorted(orgs.items()):
            if self._due(name, connection):
                ok, text = await self._run(connection)
                if not ok:
                    log.warning("org %s: check %s", name, text)
                self.results[name] = OrgCheck(connection, ok, text, self._clock())

    async def _run(self, connection: OrgConnection) -> tuple[bool, str]:
        try:
            settings = connection.settings(self._base, self._environ)
        except OrgSecretError as exc:
            return False, f"failing: {exc}"
        mapping = PRESETS[connection.field_mapping]
        try:
            report = await self._check(settings, mapping, self._clock() + self._timeout_s)
        except Exception as exc:  # one org's trouble is its line, never the worker's
            text = " ".join(str(exc).split()) or type(exc).__name__
            return False, f"failing: {type(exc).__name__}: {text}"
        return report.ok, summary([str(line) for line in report.lines], report.ok)

    def summaries(self) -> dict[str, str]:
        """Each checked org's summary, by name."""
        return {name: self.results[name].summary for name in sorted(self.results)}
