"""Which projections of a sink batch are worth a Salesforce write. Pure: no I/O.

A batch may hold several projections of one booking (each fold batch re-emits), and
after a restart projections that were already written come again. Only the newest
version per booking is kept, and only when it is newer than what Salesforce already
has (the `synced` table), unless the projection is a forced replay. Projections made
by another app version (a rebuild reads the topic from its start) are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from streams.core.projection import Projection

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Candidate(Generic[M]):
    """A decoded projection with the transport's record it came from (`meta`)."""

    projection: Projection
    meta: M
    forced: bool = False
    # The app version that made it; None for records without the header.
    app_version: str | None = None
    # A departure mark or a withdrawal made from the record's projection for another org
    # (streams/worker/pipeline/org_sinks.py), not the projection's own write.
    mark: bool = False


@dataclass(frozen=True, slots=True)
class SinkPlan(Generic[M]):
    to_write: list[Candidate[M]]
    superseded: int  # older versions of a booking present in the same batch
    already_synced: int  # versions Salesforce already has
    other_app_version: int = 0  # made by another app version's fold
    # Newest versions the sink cannot write yet (`served` said no): left unwritten.
    waiting: list[Candidate[M]] = field(default_factory=list)


def plan_writes(
    candidates: Iterable[Candidate[M]],
    synced_version: Callable[[str], int],
    app_version: str | None = None,
    served: Callable[[Projection], bool] = lambda _: True,
) -> SinkPlan[M]:
    newest: dict[str, Candidate[M]] = {}
    superseded = 0
    other_app_version = 0
    for candidate in candidates:
        if (
            app_version is not None
            and candidate.app_version is not None
            and candidate.app_version != app_version
        ):
            other_app_version += 1
            continue
        booking = candidate.projection.booking_id
        current = newest.get(booking)
        if current is None:
            newest[booking] = candidate
            continue
        superseded += 1
        # Ties keep the later record: same version, maybe a forced replay of it.
        if candidate.projection.version >= current.projection.version:
            newest[booking] = Candidate(
                candidate.projection,
                candidate.meta,
                candidate.forced or current.forced,
                candidate.app_version,
            )
    to_write: list[Candidate[M]] = []
    waiting: list[Candidate[M]] = []
    already = 0
    for candidate in newest.values():
        if not candidate.forced and candidate.projection.version <= synced_version(
            candidate.projection.booking_id
        ):
            already += 1
        elif not served(candidate.projection):
            waiting.append(candidate)
        else:
            to_write.append(candidate)
    return SinkPlan(to_write, superseded, already, other_app_version, waiting)
