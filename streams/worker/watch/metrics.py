"""Prometheus metrics of the worker, served at `/metrics` by the worker's web server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

EVENTS_INGESTED = Counter(
    "activity_sync_events_ingested", "Records read from booking-events.", registry=REGISTRY
)
EVENTS_DEAD_LETTERED = Counter(
    "activity_sync_events_dead_lettered",
    "Records sent to a dead-letter topic, by topic and reason.",
    ["topic", "reason"],
    registry=REGISTRY,
)
EVENTS_FOLDED = Counter(
    "activity_sync_events_folded",
    "Valid events folded into booking state, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
REASSIGNMENTS_REJECTED = Counter(
    "activity_sync_reassignments_rejected",
    "Reassignments folded as rejected: the booking was not Scheduled/Rescheduled "
    "(each booking's list: /bookings/{id}/).",
    registry=REGISTRY,
)
FOLD_BATCH_EVENTS = Histogram(
    "activity_sync_fold_batch_events",
    "Events per fold batch: small while live, large while catching up on a backlog.",
    buckets=(1, 10, 100, 1000, 2500, 5000, 10_000, 25_000),
    registry=REGISTRY,
)
PROJECTIONS_EMITTED = Counter(
    "activity_sync_projections_emitted",
    "Projections sent to activity-projections.",
    registry=REGISTRY,
)
PROJECTIONS_RESENT = Counter(
    "activity_sync_projections_resent",
    "Projections re-sent by the reconcile timer because Salesforce stayed behind.",
    registry=REGISTRY,
)
PROJECTIONS_SKIPPED = Counter(
    "activity_sync_projections_skipped",
    "Projections the sink skipped: superseded in the batch or already written.",
    ["why"],
    registry=REGISTRY,
)
SALESFORCE_CALLS = Counter(
    "activity_sync_salesforce_calls",
    "Salesforce API calls made by the sink, by operation.",
    ["operation", "org"],
    registry=REGISTRY,
)
SALESFORCE_RECORDS = Counter(
    "activity_sync_salesforce_records",
    "Event records sent to Salesforce, by outcome.",
    ["outcome", "org"],
    registry=REGISTRY,
)
SALESFORCE_ERRORS = Counter(
    "activity_sync_salesforce_errors",
    "Salesforce errors seen by the sink, by error code.",
    ["code", "org"],
    registry=REGISTRY,
)
SALESFORCE_FALLBACKS = Counter(
    "activity_sync_salesforce_fallbacks",
    "Events written with a fallback after Salesforce refused a reference, by kind "
    "(owner-on-event, owner-fallback, owner-integration-user, who-resolved, who-dropped, "
    "what-dropped)",
    ["kind", "org"],
    registry=REGISTRY,
)
SALESFORCE_API_REMAINING = Gauge(
    "activity_sync_salesforce_api_remaining",
    "Remaining daily API calls, from the last Sforce-Limit-Info header, by org.",
    ["org"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "activity_sync_consumer_lag",
    "Records not yet processed, by topic and partition.",
    ["topic", "partition"],
    registry=REGISTRY,
)
END_TO_END_LATENCY = Histogram(
    "activity_sync_end_to_end_latency_seconds",
    "From the newest booking event's arrival at the worker to its Event being in Salesforce.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
# The timers' last sweep (streams/worker/pipeline/sweep.py): what it read and what it cost.
SWEEP_ITEMS = Gauge(
    "activity_sync_sweep_items",
    "Due-index entries the timer's last sweep read.",
    ["timer"],
    registry=REGISTRY,
)
SWEEP_CPU = Gauge(
    "activity_sync_sweep_cpu_seconds",
    "CPU seconds of the timer's last sweep (its slices, not the waits between them).",
    ["timer"],
    registry=REGISTRY,
)
SWEEP_LONGEST_SLICE = Gauge(
    "activity_sync_sweep_longest_slice_seconds",
    "The longest the timer's last sweep held the event loop in one slice.",
    ["timer"],
    registry=REGISTRY,
)
ORGS_REGISTERED = Gauge(
    "activity_sync_orgs_registered",
    "Orgs in the org registry as this worker sees it (the default org not counted).",
    registry=REGISTRY,
)
BOOKINGS_EXPIRED = Counter(
    "activity_sync_bookings_expired",
    "Bookings whose state retention replaced by a marker.",
    registry=REGISTRY,
)


def record_sweep(timer: str, items: int, cpu_s: float, longest_slice_s: float) -> None:
    SWEEP_ITEMS.labels(timer).set(items)
    SWEEP_CPU.labels(timer).set(cpu_s)
    SWEEP_LONGEST_SLICE.labels(timer).set(longest_slice_s)
