"""The Faust app and what runs in it, top to bottom as an event travels.

- app.py, settings.py, due_table.py: the app, its settings, topics and tables.
- pipeline/: what runs, the agents and timers (ingest, sink, completion, reconcile,
  retention) and the timers' sweep pacing (sweep.py).
- watch/: how a worker is watched (HTTP views, metrics, lag, memory profile).
- process/: set-up before the app runs (`boot()`, streams/worker/process/boot.py).
"""
