"""The registry watch of the reconcile timer (streams/worker/pipeline/reconcile.py): which
orgs were added or reconnected since the last look, so what waited for them is re-sent
at once; the registry's first reading at start is not a change."""

from __future__ import annotations

from streams.salesforce.org_registry import OrgConnection
from streams.worker.pipeline.reconcile import RegistryWatch


def org(name: str, secret: str = "") -> OrgConnection:
    return OrgConnection(
        name=name,
        login_url=f"https://{name}.my.salesforce.com",
        client_id=name,
        client_secret=secret or f"env:{name.upper()}_SECRET",
    )


def test_the_watch_names_orgs_added_or_reconnected_since_its_last_look() -> None:
    watch = RegistryWatch()
    acme, globex = org("acme"), org("globex")
    assert watch.changed({"acme": acme}, caught_up=False) == frozenset()  # not read yet
    assert watch.changed({"acme": acme}, caught_up=True) == frozenset()  # the first reading
    assert watch.changed({"acme": acme}, caught_up=True) == frozenset()
    assert watch.changed({"acme": acme, "globex": globex}, caught_up=True) == {"globex"}
    rotated = org("acme", "env:ACME_SECRET_2")
    assert watch.changed({"acme": rotated, "globex": globex}, caught_up=True) == {"acme"}
    assert watch.changed({"acme": rotated}, caught_up=True) == frozenset()  # removed
