"""The app's table class (streams/transport/tables.py): the changelog partition check
waits for a count the consumer's metadata knows, and still refuses a real mismatch."""

from __future__ import annotations

from types import SimpleNamespace

import faust
import pytest
from faust.exceptions import PartitionsMismatch

from streams.transport.tables import TABLE_CLASS, Table


def table(partitions: dict[str, int | None], monkeypatch: pytest.MonkeyPatch) -> Table:
    """A `bookings` table of an app whose consumer's metadata holds `partitions`."""
    consumer = SimpleNamespace(topic_partitions=partitions.get)
    # The app's consumer, without building a real one (it would start a transport).
    monkeypatch.setattr(faust.App, "consumer", property(lambda _: consumer))
    app = faust.App("tables-test", Table=TABLE_CLASS, topic_partitions=4)
    built = app.Table("bookings", partitions=4)
    assert isinstance(built, Table)
    return built


@pytest.mark.parametrize(
    ("changelog", "verified"),
    [
        (0, False),  # not in the metadata snapshot yet: no error, checked again later
        (None, True),  # unknown to the consumer: Faust skips the check
        (4, True),  # as many partitions as the source
    ],
)
def test_the_check_waits_for_a_known_changelog(
    changelog: int | None, verified: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = table({"events": 4, "tables-test-bookings-changelog": changelog}, monkeypatch)
    built._verify_source_topic_partitions("events")
    assert ("events" in built._verified_source_topics_for_partitions) is verified


def test_a_real_mismatch_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    built = table({"events": 4, "tables-test-bookings-changelog": 8}, monkeypatch)
    with pytest.raises(PartitionsMismatch):
        built._verify_source_topic_partitions("events")
