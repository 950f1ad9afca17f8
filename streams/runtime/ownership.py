"""Whether this worker owns a partition right now: the one rule the ack guard, the sink
and the timers ask.

Faust knows a worker's partitions in three places, and a rebalance moves them at
different moments:

- the flow control and the consumer generation (`app.flow_control`,
  `app.consumer_generation_id`): the flow is suspended as soon as a rebalance begins,
  and the next generation starts with the new assignment;
- the consumer's assignment (`app.consumer.assignment()`), which changes only once
  Faust's revoke step is over (it waits for the agents first);
- the assignor's active assignment (`app.assignor.assigned_actives()`, read with the
  assignor's private `_assignment`): the table partitions whose active store this
  worker holds; what a timer, which has no record, can ask.

The rule, built from them:

- A record is *current* when the flow is active and the record was fetched in the
  consumer's current generation (a record not fetched by the consumer has no
  generation: Faust's own rules apply). Only a current record's acknowledgement may
  move a committed offset (the ack guard, streams/transport/acks.py).
- This worker *owns* a record's partition when the record is current, its partition is
  assigned, and the partition has not been revoked since (the revoked set is kept from
  Faust's revoke and assign signals once `follow_rebalances()` is called). Only then
  may a table row of that partition be written for the record::

      if ownership.owns(event.message):
          synced.under(event).set(key, value)

  The sink asks this of each outcome, after its own check that no rebalance has begun
  since it took the batch (streams/worker/pipeline/sink_driver.py, `Held`).
- A timer *holds* a table partition while the assignor names its changelog partition
  among this worker's actives (`ownership.holds(tp)`).
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any, cast

from faust.types import TP, Message


def record_is_current(
    *, message_generation: int | None, current_generation: int, flow_active: bool
) -> bool:
    """The rule for a record, on plain values (see the module's docstring)."""
    return flow_active and message_generation in (None, current_generation)


def is_current(message: Message, app: Any) -> bool:
    """Whether `message` is current for `app` (a Faust app)."""
    return record_is_current(
        message_generation=message.generation_id,
        current_generation=app.consumer_generation_id,
        flow_active=app.flow_control.is_active(),
    )


class Ownership:
    """The rule of the module's docstring, for one Faust app (`app`)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        # Partitions revoked and not assigned again since `follow_rebalances()`.
        self._revoked: set[TP] = set()
        self._assignment_seen: object = None
        self._actives: Set[TP] = frozenset()

    def follow_rebalances(self) -> None:
        """Keep the revoked set from the app's revoke and assign signals (once per app)."""
        # mode's stub types receivers too narrowly for a method taking the set.
        self._app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        self._app.on_partitions_assigned.connect(cast(Any, self._on_assigned))

    def current(self, message: Message) -> bool:
        """Whether the record is current (its acknowledgement may be committed)."""
        return is_current(message, self._app)

    def owns(self, message: Message) -> bool:
        """Whether this worker owns the record's partition: current, assigned, not revoked.

        `app.consumer.assignment()` alone lags: it changes only once the revoke step is
        over, so a revoked partition is still in it while the agents are awaited."""
        return (
            self.current(message)
            and message.tp not in self._revoked
            and message.tp in self._app.consumer.assignment()
        )

    def holds(self, tp: TP) -> bool:
        """Whether `tp`, a table's changelog partition, is one of this worker's actives."""
        return tp in self._assigned_actives()

    def _assigned_actives(self) -> Set[TP]:
        # Asked once per timer entry: the assignor builds a new set at each call, so keep
        # it until its assignment object is replaced (Faust assigns a new one per rebalance).
        assignor = self._app.assignor
        assignment = getattr(assignor, "_assignment", None)
        if assignment is None or assignment is not self._assignment_seen:
            self._actives = assignor.assigned_actives()
            self._assignment_seen = assignment
        return self._actives

    def _on_revoked(self, sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        # Sent once Faust's revoke step has waited for the agents.
        revoked: Set[TP] = args[0]
        self._revoked.update(revoked)

    def _on_assigned(self, sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        assigned: Set[TP] = args[0]
        self._revoked.difference_update(assigned)
