"""Kafka header names this app puts on activity-projections records."""

from __future__ import annotations

# Kafka timestamp (ms) of the newest booking event folded into a projection; the sink
# measures end-to-end latency from it once the Event is in Salesforce.
EVENT_TIMESTAMP = "activity-sync.event-timestamp-ms"
# "1": write even if the `synced` table says Salesforce already has this version
# (set by `activity-sync replay`).
FORCE = "activity-sync.force"
# The app version whose fold made the projection. A rebuild (new app version) starts
# its consumer group at the beginning of activity-projections; the sink skips records
# of other versions, so the old fold's projections are not written again, and their
# version numbers cannot shadow the new fold's.
APP_VERSION = "activity-sync.app-version"
