"""Faust's own per-message ceiling: an agent that only iterates booking-events.

Run as a worker process, like the real app: `python -m bench.bare_faust_app worker`.
Same broker profile, GC thresholds, partitions and live batching
(`take_events`) as the ingest agent; raw bytes, no table, no sends. `GET /count/`
answers how many events it has iterated. Settings come from the same
`ACTIVITY_SYNC_*` variables as the worker's.

`BENCH_BARE_CONSUMER` picks the consumer:
- `faust` (default): Faust's own aiokafka consumer, as it is on Apache Kafka (the
  `kafka` profile), with only the fetch wait corrected on the embedded broker as the
  worker's is (Tansu holds a fetch for half of Faust's hard-coded 1.5 s): Faust's
  ceiling, the reference of the fold target;
- `app`: the worker's consumer (`streams.transport.consumer`, which also drains cheaper), to
  show what the same loop costs with it.
"""

from __future__ import annotations

import os
from typing import Any, cast

import faust
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.transport import tansu
from streams.worker.process.gc_tuning import tune_gc
from streams.worker.settings import Settings

CONSUMER = os.environ.get("BENCH_BARE_CONSUMER", "faust")
FAUST_SCHEME = "bench-faust"


class FaustTansuConsumer(tansu.TansuThread, faust_aiokafka.Consumer):
    """Faust's consumer; its thread (the fetch wait) is the embedded profile's."""


class FaustTransport(faust_aiokafka.Transport):
    """Faust's own transport (Apache Kafka answers a fetch once a byte is there)."""


class FaustTansuTransport(faust_aiokafka.Transport):
    Consumer = FaustTansuConsumer


settings = Settings()
if CONSUMER not in ("faust", "app"):
    raise SystemExit(f"BENCH_BARE_CONSUMER must be faust or app, not {CONSUMER!r}")
# Faust's own consumer on the broker the profile names: on the embedded broker with the
# fetch wait the worker's consumer corrects there too, on Kafka untouched.
_faust_transport = (
    "FaustTansuTransport"
    if settings.broker.connection().profile.name == "embedded"
    else "FaustTransport"
)
TRANSPORTS.aliases[FAUST_SCHEME] = f"{__name__}:{_faust_transport}"
# The broker and its profile's options, as the worker's; `faust` swaps in Faust's consumer.
broker_options = settings.broker.connection().faust_options(
    consumer_scheme=FAUST_SCHEME if CONSUMER == "faust" else None
)

app = faust.App(
    # One consumer group per variant: each run reads the topic from the start.
    f"bench-bare-{CONSUMER}",
    store="memory://",
    datadir=str(settings.store.data_dir),
    topic_partitions=settings.broker.partitions,
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    web_port=settings.web.port,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    **broker_options,
)
events_topic = app.topic(
    settings.topics.events,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.broker.partitions,
)
iterated = 0


@app.agent(events_topic, name="bare")
async def bare(stream: faust.StreamT[bytes]) -> None:
    global iterated
    concrete = cast(faust.Stream[bytes], stream)
    async for batch in concrete.take_events(
        settings.fold.batch_size, within=settings.fold.batch_window
    ):
        iterated += len(batch)


@app.page("/count/")
async def count(web: Any, request: Any) -> Any:
    return web.json({"count": iterated})


if __name__ == "__main__":
    tune_gc()  # as the worker does, so the ceiling runs under the same runtime settings
    app.main()
