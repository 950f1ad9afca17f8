"""Which projections this worker's sink can write now: one rule for the sink (which
leaves the others unwritten) and the reconcile timer (which parks them instead of
re-sending, and sends them once they are served).

Today the sink writes to the default org only (`ACTIVITY_SYNC_SALESFORCE_*`): a
projection for another org (`Projection.salesforce_org`), or one that must also mark an
org the booking's Event left (`departures`), waits rather than land in the wrong org.
Routing by org (issue 23) widens this rule to the registered orgs that answer.
"""

from __future__ import annotations

from streams.core.projection import Projection


def sink_serves(projection: Projection) -> bool:
    """Whether the sink can write `projection` now."""
    return projection.salesforce_org is None and not projection.departures
