"""The faust-streaming agent that feeds other services' topics through a feed runner.

Faust owns the consumer group, partition assignment and offset commits; the runner owns the
views. Messages are handed over in batches, each applied in one transaction; a message is
acknowledged only after the runner has committed it (or dead-lettered it), and a redelivery
after a crash is dropped by event id, so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust

from contracts.topics import Topics
from services.feeds.quarantine import apply_or_quarantine
from services.feeds.runner import FeedRunner
from services.platform.bus import KafkaPublisher, Message
from services.platform.collector import freeze_long_lived
from services.platform.lifecycle import MustRestart, Stopping
from services.platform.private_files import private_dir
from services.platform.settings import Settings

log = logging.getLogger(__name__)

# Messages per transaction at most: a backlog is caught up in batches of this many. Faust
# hands over what has arrived every WITHIN seconds, counted from the end of the previous batch:
# messages that arrive while a batch is being written already make the next one, so a longer
# wait adds latency without adding much company (at 300/s, 20 ms cost 10 ms on average).
BATCH = 1000
WITHIN = 0.005


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    items = raw.items() if isinstance(raw, dict) else (raw or ())
    return tuple((str(k), bytes(v) if v is not None else b"") for k, v in items)


async def consume_until_done(runner: FeedRunner, messages: Sequence[Message]) -> None:
    """Apply a batch, waiting out the servers' absences and quarantining poison events
    (``services.feeds.quarantine``); only then are its messages acknowledged. A process that
    cannot go on as started stops, as on SIGTERM: a crashed agent would be restarted by faust
    past the batch it did not apply."""
    try:
        await asyncio.to_thread(apply_or_quarantine, runner, messages)
    except MustRestart as error:
        log.critical("this feed cannot go on as started: stopping", extra={"why": str(error)})
        os.kill(os.getpid(), signal.SIGTERM)
        raise


def _message(received: Any, value: bytes) -> Message:
    key = received.key.decode("utf-8") if received.key else ""
    return Message(
        received.topic,
        key,
        bytes(value),
        _headers(received.headers),
        received.partition,
        received.offset,
    )


def create_faust_app(
    settings: Settings, runner: FeedRunner, consumer: str, sources: Sequence[str]
) -> faust.App:
    """A faust app whose consumer group ``consumer`` feeds ``sources``' topics to ``runner``."""
    assert settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is required"
    topics = Topics(settings.topic_prefix)
    # Faust keeps a data directory per app even with in-memory tables: under the var dir, not
    # in the working directory (it creates only the last level).
    faust_dir = private_dir(settings.var_dir / "faust")
    app = faust.App(
        f"{settings.topic_prefix}-{consumer}",
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")],
        store="memory://",
        datadir=str(faust_dir / "{conf.name}"),
        web_enabled=False,
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        # A worker killed outright is noticed after this, not faust's default of a minute,
        # so its partitions move to a live worker quickly.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
    )
    source = app.topic(
        *(topics.events(s) for s in sources),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(source, name="project")
    async def project(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # Whatever has arrived, up to BATCH messages, is applied in one transaction; faust
        # acknowledges the batch's messages once the runner has committed them.
        assert isinstance(stream, faust.Stream)  # StreamT does not declare take_events
        async for events in stream.take_events(BATCH, within=WITHIN):
            await consume_until_done(runner, [_message(e.message, e.value) for e in events])
            yield None

    return app


def run_worker(
    settings: Settings,
    runner: FeedRunner,
    consumer: str,
    sources: Sequence[str],
    stopping: Stopping,
) -> None:
    """Faust's worker, until SIGTERM or SIGINT: faust stops its agent and the consumer, and
    ``stopping`` bounds how long that may take."""
    from faust.worker import Worker

    class StoppingWorker(Worker):
        def _on_sigterm(self) -> None:
            stopping.request("SIGTERM")
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            stopping.request("SIGINT")
            super()._on_sigint()

    app = create_faust_app(settings, runner, consumer, sources)
    freeze_long_lived()
    StoppingWorker(app, loglevel="WARNING").execute_from_commandline()


def dead_letter_publisher(settings: Settings) -> KafkaPublisher:
    assert settings.kafka_bootstrap_servers
    return KafkaPublisher(settings.kafka_bootstrap_servers)
