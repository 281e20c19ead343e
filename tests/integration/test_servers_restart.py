"""deploy/local's servers stop and start with their data, on the same address; only ``wipe``
deletes it; and the broker creates no topic on first use."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError

from services.platform.bus import ensure_topics
from tests.integration.kafka_tools import produce_raw, read_topic
from tests.integration.own_servers import OwnServers, own_servers

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServers]:
    with own_servers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers


def partitions_of(bootstrap: str, topic: str) -> set[int]:
    """The topic's partitions; none when the broker has no such topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        return set(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def test_a_broker_stopped_and_started_keeps_its_address_topics_and_messages(
    servers: OwnServers,
) -> None:
    bootstrap = servers.start("kafka")
    ensure_topics(bootstrap, ["kept"], 2)
    sent = [f"message {n}".encode() for n in range(20)]
    for number, value in enumerate(sent):
        produce_raw(bootstrap, "kept", f"key {number % 5}".encode(), value)

    servers.stop("kafka")
    assert not servers.running("kafka")
    assert servers.start("kafka") == bootstrap

    assert partitions_of(bootstrap, "kept") == {0, 1}
    records = read_topic(bootstrap, "kept", expect=len(sent))
    assert sorted(r.value for r in records) == sorted(sent)  # type: ignore[attr-defined]


def test_a_database_stopped_and_started_keeps_its_address_and_rows(servers: OwnServers) -> None:
    url = servers.start("postgres")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (n INT)")
        connection.execute("INSERT INTO kept SELECT generate_series(1, 100)")

    servers.stop("postgres")
    assert not servers.running("postgres")
    assert servers.start("postgres") == url

    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*), sum(n) FROM kept").fetchone() == (100, 5050)


def test_a_database_whose_directory_was_closed_since_starts_again_with_its_rows() -> None:
    """Tsunagu closes its var/ dir to others (0700) whenever it runs, where deploy/local keeps
    its state: the server's OS user may then no longer reach a data dir an earlier version made
    there. (Closed under a running server, nothing can save it: PostgreSQL reopens pg_control by
    its full path to write the shutdown checkpoint, and panics. That is why a new data dir is
    never made under var/ when the server runs as another user.)"""
    home = Path(tempfile.mkdtemp(prefix="tsunagu-closed-", dir="/tmp"))
    home.chmod(0o755)
    with own_servers(home / "local") as servers:
        url = servers.start("postgres")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE kept (n INT)")
            connection.execute("INSERT INTO kept SELECT generate_series(1, 100)")
        servers.stop("postgres")
        home.chmod(0o700)

        assert not servers.running("postgres")
        assert servers.start("postgres") == url
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT count(*), sum(n) FROM kept").fetchone() == (100, 5050)
    shutil.rmtree(home)


def test_wipe_deletes_the_topics_and_the_broker_creates_none_on_first_use(
    servers: OwnServers,
) -> None:
    bootstrap = servers.start("kafka")
    ensure_topics(bootstrap, ["kept"], 2)
    servers.wipe("kafka")
    bootstrap = servers.start("kafka")
    assert partitions_of(bootstrap, "kept") == set()

    producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=3000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send("never.declared", b"value").get(timeout=10)
    finally:
        producer.close()
    assert partitions_of(bootstrap, "never.declared") == set()
