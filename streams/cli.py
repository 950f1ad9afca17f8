"""`activity-sync`: Faust's command line (worker, agents, tables, ...) plus our commands."""

from __future__ import annotations

# Importing the agent modules registers them with the app.
from streams import completion, ingest, sink  # noqa: F401
from streams.app import app


def main() -> None:
    app.main()
