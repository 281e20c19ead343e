"""Every topic is declared with its partitions before any process uses one, and every schema
before the processes start: ``tsunagu topics create`` and ``tsunagu setup``."""

from __future__ import annotations

import psycopg
import pytest
from kafka import KafkaConsumer

from contracts.topics import SERVICES, Topics
from services.platform.settings import Settings
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def partitions(bootstrap: str, prefix: str) -> dict[str, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        return {
            topic: len(consumer.partitions_for_topic(topic) or ())
            for topic in consumer.topics()
            if topic.startswith(f"{prefix}.")
        }
    finally:
        consumer.close()


def test_topics_create_declares_every_topic_with_its_partitions(
    distributed_settings: Settings,
) -> None:
    settings = distributed_settings
    assert settings.kafka_bootstrap_servers
    done = run_cli(settings, "topics", "create")
    assert done.returncode == 0, done.stderr

    topics = Topics(settings.topic_prefix)
    # The projection's own (ViewPurged) too: before, it appeared on first publish, one partition.
    assert partitions(settings.kafka_bootstrap_servers, settings.topic_prefix) == {
        **{topics.events(service): 2 for service in SERVICES},
        topics.dead_letter: 2,
        topics.audit_checkpoints: 1,
    }
    assert run_cli(settings, "topics", "create").returncode == 0, "a second run changes nothing"


def test_setup_creates_every_schema_and_table_before_the_processes_start(
    distributed_settings: Settings,
) -> None:
    settings = distributed_settings
    done = run_cli(settings, "setup")
    assert done.returncode == 0, done.stderr

    assert settings.database_url
    with psycopg.connect(settings.database_url) as connection:
        tables = {
            f"{schema}.{table}"
            for schema, table in connection.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            )
        }
    assert {
        "intake.intake_events",
        "intake.relay_position",
        "referral.relay_position",
        "referral.consent",
        "meeting.relay_position",
        "meeting.processed_event",
        "projection.consultation_view",
        "projection.audit_log",
    } <= tables
    assert settings.kafka_bootstrap_servers
    assert Topics(settings.topic_prefix).dead_letter in partitions(
        settings.kafka_bootstrap_servers, settings.topic_prefix
    )
