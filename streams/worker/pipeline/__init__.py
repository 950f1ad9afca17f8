"""What runs: the agents and timers that carry an event from booking-events to Salesforce.

ingest (the fold) sends projections; the sink writes them; the completion, reconcile and
retention timers sweep the `due` table. Importing a module registers its agent or timer
with the app (streams.cli imports them all for `activity-sync worker`); this package's
own import registers nothing.
"""
