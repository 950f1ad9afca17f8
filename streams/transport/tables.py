"""The app's Faust table: its changelog check waits for the consumer's metadata.

Before its first write from a source topic, a Faust table checks that its changelog
topic has as many partitions as the source (`PartitionsMismatch` otherwise). It reads
both counts from the consumer's metadata snapshot of the last rebalance. On Apache
Kafka a fresh deployment's first rebalance runs before Faust has created the changelog
topics (aiokafka logs "Topic ... not found in cluster metadata"), so the snapshot says
the changelog has 0 partitions until the consumer's next metadata refresh; the check then
fails every write for that window, and the fold dead-lettered valid events as an
internal error (found by the integration suite's first run on Apache Kafka). No Kafka
topic has 0 partitions: 0 means "not known yet", so the check waits for a count it can
compare, and a real mismatch is still refused.
"""

from __future__ import annotations

import faust

# `faust.App(..., Table=...)`: the class `app.Table(...)` builds.
TABLE_CLASS = f"{__name__}:Table"


class Table(faust.Table):  # type: ignore[type-arg]  # faust declares Table generic, untyped
    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return  # not in the consumer's metadata yet: checked on a later write
        super()._verify_source_topic_partitions(source_topic)
