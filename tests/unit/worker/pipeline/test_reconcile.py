"""The reconcile timer (streams/worker/pipeline/reconcile.py): the registry watch (which
orgs were added or reconnected since the last look, so what waited for them is re-sent
at once; the registry's first reading at start is not a change), and its sweep over the
fold's sent entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from streams.core.due_index import (
    Kind,
    entry_value,
    is_due,
    parse_key,
    parse_sent_value,
    parse_value,
    sent_entries,
)
from streams.core.projection import Projection
from streams.core.sink_progress import SinkProgress
from streams.salesforce.org_registry import OrgConnection
from streams.worker.due_table import Due, SentDue
from streams.worker.pipeline import reconcile
from streams.worker.pipeline.reconcile import RegistryWatch
from tests import factories as f


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


# The sweep over sent entries (`resend_lagging_projections`), its tables, sink and sends
# replaced by in-memory fakes: one sent entry of two bookings, b-moving still on its way
# to this worker's sink, b-acme (org acme) read by the sink and not written.

ACME_PAGE = {**f.page("p-acme", "Acme sales"), "salesforce_org": "acme"}
SENT_AT_MS = 1_000_000


class Rows:
    def __init__(self, rows: dict[bytes, Any]) -> None:
        self.rows = rows

    def get(self, key: bytes) -> Any:
        return self.rows.get(key)


class Table:
    def __init__(self, rows: dict[bytes, Any]) -> None:
        self.rows = rows

    def under(self, anchor: Any) -> Rows:
        return Rows(self.rows)


class DueIndex:
    """The due index as the sweep uses it: slices read in key order, entries added and
    dropped under an anchor."""

    def __init__(self, entries: dict[bytes, bytes]) -> None:
        self.entries = entries

    def under(self, anchor: Any) -> DueIndex:
        return self

    def add(self, key: bytes, *, resent: int = 0, version: int = 0) -> None:
        self.entries[key] = entry_value(0, resent, version)

    def drop(self, due: Any) -> None:
        del self.entries[due.key]

    def _slice(self, kind: Kind, until_ms: int) -> list[tuple[bytes, bytes]]:
        return sorted((k, v) for k, v in self.entries.items() if is_due(k, kind, until_ms))

    async def due_sent(
        self, until_ms: int, sweep: Any, *, stopped: set[int]
    ) -> AsyncIterator[SentDue]:
        for key, raw in self._slice("sent", until_ms):
            yield SentDue(key, parse_key(key), parse_sent_value(raw), None)  # type: ignore[arg-type]

    async def due(
        self, kind: Kind, until_ms: int, sweep: Any, *, stopped: set[int]
    ) -> AsyncIterator[Due]:
        for key, raw in self._slice(kind, until_ms):
            value = parse_value(raw)
            if value.partition not in stopped:
                yield Due(key, parse_key(key), value, None)  # type: ignore[arg-type]


class Lanes:
    def writes_steadily(self, projection: Projection) -> bool:
        return True

    def waits_for(self, projection: Projection) -> list[str]:
        return []


@pytest.fixture
def swept(monkeypatch: pytest.MonkeyPatch) -> tuple[DueIndex, list[bytes]]:
    states = {
        b"b-moving": f.fold_dicts([f.scheduled(booking_id="b-moving")]),
        b"b-acme": f.fold_dicts([f.scheduled(booking_id="b-acme", page=ACME_PAGE)]),
    }
    bookings = Table({key: state.to_bytes() for key, state in states.items()})
    progress = SinkProgress()
    progress.sent(b"b-moving", 1, partition=0, offset=9)  # the sink has read up to 4
    progress.read(0, 4)
    index = DueIndex(dict(sent_entries(SENT_AT_MS, 0, 12, [(b"b-moving", 1), (b"b-acme", 1)])))
    resent: list[bytes] = []

    async def send_projection(key: bytes, projection: Projection, **_: Any) -> None:
        resent.append(key)

    monkeypatch.setattr(reconcile, "due_table", index)
    monkeypatch.setattr(reconcile, "bookings", bookings)
    monkeypatch.setattr(reconcile, "synced", Table({}))
    monkeypatch.setattr(reconcile, "sink_progress", progress)
    monkeypatch.setattr(reconcile, "org_sinks", Lanes())
    monkeypatch.setattr(reconcile, "send_projection", send_projection)
    return index, resent


async def test_a_batch_waits_while_the_sink_has_not_read_all_it_sent(
    swept: tuple[DueIndex, list[bytes]],
) -> None:
    index, resent = swept
    before = dict(index.entries)
    assert await reconcile.resend_lagging_projections(now_ms=SENT_AT_MS + 3_600_000) == 0
    assert resent == []
    assert index.entries == before  # left whole for a later sweep


async def test_a_registry_change_re_sends_its_org_s_booking_from_a_waiting_batch(
    swept: tuple[DueIndex, list[bytes]],
) -> None:
    index, resent = swept
    assert await reconcile.resend_lagging_projections(for_orgs=frozenset({"acme"})) == 1
    assert resent == [b"b-acme"]
    # The batch became an entry per booking behind: b-moving's waits for the sink, and
    # b-acme's records the version re-sent.
    kinds = sorted((parse_key(k).kind, parse_key(k).booking) for k in index.entries)
    assert kinds == [("reconcile", b"b-acme"), ("reconcile", b"b-moving")]
