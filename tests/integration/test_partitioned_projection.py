"""Eight partitions, two projector replicas in one consumer group, generated lifecycles:
each person's events keep their order, and the work spreads over partitions and replicas."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import simulate
from services.platform.settings import Settings

pytestmark = pytest.mark.integration


def test_two_replicas_over_eight_partitions(distributed_settings: Settings) -> None:
    settings = replace(distributed_settings, topic_partitions=8)
    report = simulate.run(settings, persons=120, replica_count=2, seed=5)

    assert report["journalled"] == report["produced"] > 0
    order = report["order"]
    assert order["persons"] > 0
    assert order["persons_out_of_order_within_a_topic"] == 0
    assert order["partition_offsets_out_of_order"] == 0
    assert report["statistics_match_generator"]

    partitions = report["per_partition"]
    assert len(partitions["events"]) == 8
    assert all(count > 0 for count in partitions["events"].values())
    assert partitions["matches_kafka_end_offsets"]

    replicas = report["per_replica"]
    held = [set(partitions_held) for partitions_held in replicas["partitions_held"].values()]
    assert len(held) == 2 and not held[0] & held[1]
    assert len(held[0] | held[1]) == 8 * len(simulate.SOURCES)
    assert all(count > 0 for count in replicas["events"].values())
    assert not replicas["rebalanced_during_run"]
