"""`activity-sync reset-state`: set this worker's table state aside, so it starts empty.

The fix the worker's start-up check names when the tables in `ACTIVITY_SYNC_DATA_DIR`
do not belong to the broker's changelogs (streams/commands/table_state_check.py). It
touches only this app version's tables (`<data_dir>/v<N>/tables`), never the broker:
the next worker start rebuilds them from the changelogs the broker has. The state is
moved aside (`tables.reset-<UTC time>` beside it), not deleted, unless `--delete`: it
may be the only copy of a history the broker lost. Refused while a worker runs on it.
"""

from __future__ import annotations

from typing import IO

from streams.commands.base import UserError
from streams.worker.process import table_state
from streams.worker.settings import Settings


def reset_state(settings: Settings, *, delete: bool, out: IO[str]) -> int:
    directory = table_state.tables_dir(settings.store.data_dir, settings.app.version)
    if not table_state.holds_state(directory):
        print(f"no table state in {directory}: nothing to reset", file=out)
        return 0
    busy = table_state.store_in_use(directory)
    if busy is not None:
        raise UserError(
            f"a worker is running on {directory} (RocksDB lock held on {busy.name}): "
            "stop it first, then run activity-sync reset-state again"
        )
    kept = table_state.discard(directory, keep=not delete)
    where = "deleted" if kept is None else f"moved to {kept} (delete it when not needed)"
    print(
        f"table state of app version {settings.app.version} {where}; the next worker "
        "start rebuilds its tables from the broker's changelogs",
        file=out,
    )
    return 0
