"""Faust's own per-message ceiling: an agent that only iterates booking-events.

Run as a worker process, like the real app: `python -m bench.bare_faust_app worker`.
Same broker profile, GC thresholds, partitions and live batching
(`take_events`) as the ingest agent; raw bytes, no table, no sends. `GET /count/`
answers how many events it has iterated. Settings come from the same
`ACTIVITY_SYNC_*` variables as the worker's.
"""

from __future__ import annotations

from typing import Any, cast

import faust

from streams import embedded_transport  # noqa: F401  (the profile's tansu:// consumer)
from streams.gc_tuning import tune_gc
from streams.settings import Settings

settings = Settings()

app = faust.App(
    "bench-bare-faust",
    broker=settings.broker_url,
    store="memory://",
    datadir=str(settings.data_dir),
    topic_partitions=settings.partitions,
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    web_port=settings.web_port,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    **settings.broker_profile_options(),
)
events_topic = app.topic(
    settings.topics.events,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
iterated = 0


@app.agent(events_topic, name="bare")
async def bare(stream: faust.StreamT[bytes]) -> None:
    global iterated
    concrete = cast(faust.Stream[bytes], stream)
    async for batch in concrete.take_events(
        settings.fold_batch_size, within=settings.fold_batch_window
    ):
        iterated += len(batch)


@app.page("/count/")
async def count(web: Any, request: Any) -> Any:
    return web.json({"count": iterated})


if __name__ == "__main__":
    tune_gc()  # as the worker does, so the ceiling runs under the same runtime settings
    app.main()
