"""Each registered org's check while the worker runs (streams/worker/org_checks.py):
checked when it appears or changes, a failing one again after a while, a removed one
forgotten, and no problem of one org ever raised. A scripted check stands for
Salesforce: no I/O."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from streams.core.projection import FieldMapping
from streams.salesforce.org_check import OrgReport
from streams.salesforce.org_registry import OrgConnection
from streams.salesforce.settings import SalesforceSettings
from streams.worker.org_checks import OrgChecks

BASE = SalesforceSettings(
    _env_file=None,  # type: ignore[call-arg]
    login_url="https://default.my.salesforce.com",
    client_id="default",
    client_secret=SecretStr("default-secret"),
)
ENVIRON = {"ACME_SECRET": "acme-secret", "GLOBEX_SECRET": "g", "INITECH_SECRET": "i"}


def org(name: str, secret: str = "", **changes: Any) -> OrgConnection:
    ref = secret or f"env:{name.upper()}_SECRET"
    return OrgConnection(
        name=name, login_url=f"https://{name}.my.salesforce.com", client_id=name,
        client_secret=ref, **changes,
    )  # fmt: skip


class Salesforce:
    """Answers each org's check as scripted: ok, failing, or an exception."""

    def __init__(self) -> None:
        self.answers: dict[str, OrgReport | Exception] = {}
        self.checked: list[tuple[str, str]] = []

    async def check(
        self, settings: SalesforceSettings, mapping: FieldMapping, deadline: float
    ) -> OrgReport:
        name = settings.client_id
        self.checked.append((name, settings.client_secret.get_secret_value()))
        answer = self.answers.get(name)
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        report = OrgReport()
        report.add(True, "API version 62.0: served")
        return report


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def checks(salesforce: Salesforce, clock: Clock) -> OrgChecks:
    return OrgChecks(
        BASE, check=salesforce.check, recheck_after_s=300, clock=clock, environ=ENVIRON
    )


async def test_an_org_is_checked_when_it_appears_and_when_it_changes() -> None:
    salesforce, clock = Salesforce(), Clock()
    results = checks(salesforce, clock)
    await results.refresh({"acme": org("acme")})
    assert salesforce.checked == [("acme", "acme-secret")]
    assert results.summaries() == {"acme": "ok (1 checks passed)"}
    clock.now += 10_000
    await results.refresh({"acme": org("acme")})  # unchanged and ok: not again
    assert len(salesforce.checked) == 1
    await results.refresh({"acme": org("acme", fallback_owner_id="005000000000001AAA")})
    assert len(salesforce.checked) == 2
    await results.refresh({})
    assert results.summaries() == {}


async def test_a_failing_org_is_its_own_line_and_is_checked_again_later() -> None:
    salesforce, clock = Salesforce(), Clock()
    failing = OrgReport()
    failing.add(False, "Event.Event_Status__c: missing")
    salesforce.answers = {"globex": failing, "initech": ConnectionError("refused\n twice")}
    results = checks(salesforce, clock)
    orgs = {"acme": org("acme"), "globex": org("globex"), "initech": org("initech")}
    await results.refresh(orgs)
    assert results.summaries() == {
        "acme": "ok (1 checks passed)",
        "globex": "failing: FAIL Event.Event_Status__c: missing",
        "initech": "failing: ConnectionError: refused twice",
    }
    clock.now += 299
    await results.refresh(orgs)
    assert len(salesforce.checked) == 3
    del salesforce.answers["globex"]
    clock.now += 1
    await results.refresh(orgs)  # the two failing ones again, acme not
    assert sorted(name for name, _ in salesforce.checked[3:]) == ["globex", "initech"]
    assert results.summaries()["globex"] == "ok (1 checks passed)"


async def test_a_secret_that_cannot_be_resolved_fails_without_a_login() -> None:
    salesforce = Salesforce()
    results = checks(salesforce, Clock())
    await results.refresh({"hooli": org("hooli", "env:HOOLI_SECRET")})
    assert salesforce.checked == []
    assert results.summaries() == {"hooli": "failing: env:HOOLI_SECRET: the variable is not set"}
