"""HTTP views served by every worker (Faust's web server).

- `GET /bookings/{booking_id}`: the booking's report, answered by the worker that owns
  its partition (Faust's table routing forwards the request there).
- `GET /metrics`: Prometheus text format.
- `GET /health`: 200 once the worker runs.
"""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.booking_report import booking_report
from streams.core.fold import BookingState
from streams.worker import metrics
from streams.worker.app import app, bookings, settings, synced

MAPPING = settings.mapping()


@app.page("/bookings/{booking_id}/")
class BookingPage(View):
    @app.table_route(table=bookings.faust_table, match_info="booking_id")  # type: ignore[arg-type]
    async def get(self, request: Request, booking_id: str) -> Response:
        key = booking_id.encode()
        raw = bookings.get(key, under=None)
        if raw is None:
            return self.json({"error": f"unknown booking {booking_id!r}"}, status=404)
        state = BookingState.from_bytes(raw)
        return self.json(booking_report(state, synced.get(key, under=None) or 0, MAPPING))


@app.page("/metrics/")
class MetricsPage(View):
    async def get(self, request: Request) -> Response:
        # The header, not content_type=: aiohttp refuses a content_type carrying a charset,
        # and Prometheus' type is "text/plain; version=0.0.4; charset=utf-8".
        return self.bytes(
            generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


@app.page("/health/")
class HealthPage(View):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok", "app": settings.app_id, "version": settings.app_version})
