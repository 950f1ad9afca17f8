"""The one door to Faust's, mode's and aiokafka's internals.

Every private name of those libraries the worker needs (a context variable, a store's
per-partition databases, a consumer's bookkeeping, a stream's buffer machinery) is read
here, behind a small public API with a contract of its own; the rest of `streams/`
uses the libraries' public names only (`tests/unit/test_layout.py` fails otherwise).
`streams/transport/` is the other place allowed to: the broker adapter overrides private
methods of Faust's aiokafka driver in subclasses, which is what an adapter is for.

A Faust upgrade is checked here first: each module says which internal it reads.

- `tables`: a table row read and written under its booking's own partition.
- `ownership`: whether this worker owns a record's or a table's partition right now.
- `stores`: a RocksDB table's per-partition databases.
- `consumers`: what a consumer knows of its offsets and the cluster.
- `batches`: Faust's stream with batches whose size is asked before each batch.
"""
