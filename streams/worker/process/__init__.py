"""Process set-up: `boot()` and what it installs (the RocksDB store, glibc's arenas, the
collector, the log filters), and the tables' state on disk. Nothing here imports the
app: it runs before the app does."""
