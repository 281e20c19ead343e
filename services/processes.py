"""The composition root's processes: each distributed process assembled from ``services.wiring``
(its stores, publishers, runners, stop event and tracing), and the one-off commands that build
the same parts. ``tsunagu`` (``services.cli``) parses arguments and calls one function here.

Kept beside ``wiring`` rather than in it: wiring says what the parts are, for both modes; this
module says how a process of the distributed mode waits for its servers, runs and stops.
Each process waits for PostgreSQL and Kafka (``until_available``) and returns 0 if told to stop
while waiting; one that lacks a server's address in its settings says so and returns 2.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING
from uuid import UUID

from contracts.topics import Topics
from services.feeds.deadletters import FILE, FileDeadLetters
from services.feeds.lag import unread
from services.feeds.quarantine import apply_or_quarantine
from services.intake.retention import RetentionBook
from services.platform.bus import KafkaPublisher, Message
from services.platform.lifecycle import READY, Stopped, Stopping, report, until_available
from services.platform.settings import Settings
from services.platform.tracing import setup_tracing
from services.projection.agency_view import Purge, sweep
from services.projection.checkpoint import Checkpointer, anchoring
from services.projection.disclosure_ingest import AuditIngest, run_ingest
from services.projection.purges import run_sweeper, sweep_and_publish
from services.wiring import (
    COMMAND_SERVICES,
    FEEDS,
    audit_chains,
    create_schemas,
    declare_topics,
    disclosure_outbox,
    embedded_app,
    feed_runner,
    feed_store,
    intake_application,
    key_store,
    relay,
    relay_backlog,
    service_app,
    view_store,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("tsunagu")


def _declared(settings: Settings, stop: threading.Event) -> None:
    """Every topic created before this process uses any, once Kafka answers."""
    until_available("Kafka", lambda: declare_topics(settings), stop)


def _needs_servers(settings: Settings, who: str) -> bool:
    """Whether ``who`` lacks the servers' addresses (said on stderr): it cannot run."""
    if settings.kafka_bootstrap_servers and settings.database_url:
        return False
    print(f"{who} needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
    return True


def traced_embedded_app(settings: Settings, *, demo: bool) -> FastAPI:
    """``tsunagu run``'s app, traced, with the scenario data unless ``demo`` is false."""
    from services.demo import load_demo

    setup_tracing("tsunagu-embedded", otlp_endpoint=settings.otlp_endpoint)
    app = embedded_app(settings)
    if demo:
        load_demo(app, settings)
    return app


def traced_service_app(settings: Settings, service: str) -> FastAPI:
    """``tsunagu serve``'s app: one service's HTTP API (or the desk), traced."""
    setup_tracing(f"tsunagu-{service}", otlp_endpoint=settings.otlp_endpoint)
    return service_app(settings, service)


def setup(settings: Settings, *, schemas: bool) -> int:
    """What the processes need before they start: every topic, and with ``schemas`` every
    schema and table too. Both wait for their servers (a deployment's first step may run while
    they are still starting); both may be run again. 1 if stopped while waiting."""
    if not settings.kafka_bootstrap_servers or (schemas and not settings.database_url):
        print("set KAFKA_BOOTSTRAP_SERVERS (and DATABASE_URL for setup)", file=sys.stderr)
        return 2
    stop = Stopping().install().event
    try:
        if schemas:
            until_available("PostgreSQL", lambda: create_schemas(settings), stop)
        _declared(settings, stop)
    except Stopped:
        return 1
    step = "setup" if schemas else "topics"
    log.info("ready", extra={"step": step, "topic_prefix": settings.topic_prefix})
    return 0


def relay_process(settings: Settings, service: str) -> int:
    """``tsunagu relay``: a command service's stored events to its topic, and beside them its
    reads (RecordViewed) from its disclosure outbox to the audit topic, where ``tsunagu audit
    ingest`` appends them to the chains."""
    if _needs_servers(settings, "the relay"):
        return 2
    bootstrap = settings.kafka_bootstrap_servers
    assert bootstrap
    setup_tracing(f"tsunagu-{service}-relay", otlp_endpoint=settings.otlp_endpoint)
    stop = Stopping().install().event
    try:
        _declared(settings, stop)
        application = until_available(
            "PostgreSQL", lambda: COMMAND_SERVICES[service].application(settings, None), stop
        )
        publisher = until_available("Kafka", lambda: KafkaPublisher(bootstrap), stop)
        relaying = until_available(
            "PostgreSQL", lambda: relay(settings, service, application, publisher), stop
        )
        outbox = until_available("PostgreSQL", lambda: disclosure_outbox(settings, service), stop)
    except Stopped:
        return 0
    disclosures = threading.Thread(
        target=outbox.run,
        args=(publisher, stop, settings.relay_poll_seconds),
        name="disclosures",
        daemon=True,
    )
    disclosures.start()
    report(READY)
    log.info("relay started", extra={"service": service})
    relaying.run(stop, settings.relay_poll_seconds)
    disclosures.join()
    relaying.close()
    outbox.database.close()
    publisher.close()
    application.close()
    return 0


def feed_process(settings: Settings, service: str) -> int:
    """``tsunagu project``: the faust worker feeding ``service``'s tables from its sources."""
    from services.feeds.worker import dead_letter_publisher, run_worker

    if _needs_servers(settings, "the projector"):
        return 2
    setup_tracing(f"tsunagu-{service}-feed", otlp_endpoint=settings.otlp_endpoint)
    stopping = Stopping().install()
    try:
        _declared(settings, stopping.event)
        store = until_available("PostgreSQL", lambda: feed_store(settings, service), stopping.event)
        keys = until_available("PostgreSQL", lambda: key_store(settings), stopping.event)
        dead_letters = until_available(
            "Kafka", lambda: dead_letter_publisher(settings), stopping.event
        )
    except Stopped:
        return 0
    runner = feed_runner(settings, service, store, dead_letters, keys=keys)
    report(READY)
    run_worker(settings, runner, f"{service}-feed", FEEDS[service].sources, stopping)
    return 0


def ingest_process(settings: Settings) -> int:
    """``tsunagu audit ingest``: other services' reads, from the audit topic to the chain of
    each one's municipality."""
    from services.feeds.worker import dead_letter_publisher

    if _needs_servers(settings, "the ingest"):
        return 2
    stop = Stopping().install().event
    try:
        _declared(settings, stop)
        chains = until_available(
            "PostgreSQL", lambda: audit_chains(settings, view_store(settings)), stop
        )
        dead_letters = until_available("Kafka", lambda: dead_letter_publisher(settings), stop)
    except Stopped:
        return 0
    ingest = AuditIngest(chains, dead_letters, Topics(settings.topic_prefix).dead_letter)
    report(READY)
    log.info("audit ingest started")
    run_ingest(settings, ingest, stop)
    dead_letters.close()
    chains.close()
    return 0


def checkpointer_process(settings: Settings, every: float, municipality: str | None) -> int:
    """``tsunagu audit checkpoint --every``: once its servers answer, a checkpoint of each
    municipality's chain (or only ``municipality``'s) every ``every`` seconds (0: the
    settings' ``checkpoint_seconds``)."""
    stop = Stopping().install().event
    try:
        if settings.kafka_bootstrap_servers:
            _declared(settings, stop)
        chains = until_available(
            "PostgreSQL", lambda: dict(audit_chains(settings, view_store(settings)).each()), stop
        )
    except Stopped:
        return 0
    if municipality:
        chains = {municipality: chains[municipality]}
    anchors = [anchoring(settings, signing=True, municipality=code) for code in chains]
    report(READY)
    every = every or settings.checkpoint_seconds
    threads = [
        threading.Thread(target=Checkpointer(anchor, chain).run, args=(every, stop))
        for anchor, chain in zip(anchors, chains.values(), strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for anchor in anchors:
            anchor.store.close()
    return 0


def views_sweep(
    settings: Settings, at: datetime | None, every: float | None, swept: Callable[[Purge], None]
) -> int:
    """``tsunagu views sweep``: purge what lapsed bases allowed (consents expire and emergency
    windows close with no event: something must look); once (at ``at``, default now: ``swept``
    told of each purge), or, distributed, every ``every`` seconds (the sweeper process).
    Embedded, the running app publishes the purges recorded here."""
    bootstrap = settings.kafka_bootstrap_servers if settings.distributed else None
    if bootstrap and every:
        return _sweeper(settings, bootstrap, every)
    store = view_store(settings)
    if not bootstrap:
        purges = sweep(store, at)
    else:
        publisher = KafkaPublisher(bootstrap)
        try:
            topic = Topics(settings.topic_prefix).events("projection")
            purges = sweep_and_publish(store, publisher, topic, at)
        finally:
            publisher.close()
    for purge in purges:
        swept(purge)
    return 0


def _sweeper(settings: Settings, bootstrap: str, every: float) -> int:
    """The sweeper process: once its servers answer, a sweep every ``every`` seconds."""
    stop = Stopping().install().event
    try:
        _declared(settings, stop)
        store = until_available("PostgreSQL", lambda: view_store(settings), stop)
        publisher = until_available("Kafka", lambda: KafkaPublisher(bootstrap), stop)
    except Stopped:
        return 0
    report(READY)
    try:
        run_sweeper(
            store, publisher, Topics(settings.topic_prefix).events("projection"), every, stop
        )
    finally:
        publisher.close()
    return 0


# ``tsunagu retention sweep``'s exit status when intake's retention feed is behind, or an
# event it feeds on still waits for its service's relay: erasing then could erase the person
# of a case reopened meanwhile. Run it again later.
BEHIND = 3


def retention_sweep(
    settings: Settings, at: datetime | None, every: float | None, erased: Callable[[UUID], None]
) -> int:
    """``tsunagu retention sweep``: erase, for retention, every person whose records' retention
    has ended; once (at ``at``, default now: ``erased`` told of each person), or every
    ``every`` seconds (the retention sweeper process). It writes to intake's event store and
    key store: intake's relay publishes the erasures."""
    stop = Stopping().install().event
    sources = FEEDS["intake"].sources
    # Embedded, the feeds are fed as each command is saved: nothing can be behind.
    watched = settings.distributed and bool(settings.kafka_bootstrap_servers)
    try:
        keys = until_available("PostgreSQL", lambda: key_store(settings), stop)
        intake = until_available("PostgreSQL", lambda: intake_application(settings, keys), stop)
        # The other services the retention feed learns from, as their relays open them: only
        # their last notification ids are read.
        others = {
            service: until_available(
                "PostgreSQL", partial(COMMAND_SERVICES[service].application, settings, None), stop
            )
            for service in sources
            if watched and service != "intake"
        }
        store = until_available("PostgreSQL", lambda: feed_store(settings, "intake"), stop)
    except Stopped:
        return 0
    book = RetentionBook(store)
    topics = [Topics(settings.topic_prefix).events(s) for s in sources]
    backlogs = {s: relay_backlog(settings, s, others.get(s, intake)) for s in sources if watched}

    def caught_up() -> bool:
        """Whether intake's retention feed has applied every event the services it learns
        from had stored when asked: none left for their relays to publish, then none published
        that the feed has not applied, asked in that order so that nothing moves from one to
        the other unseen."""
        if not watched:
            return True
        assert settings.kafka_bootstrap_servers
        unpublished = {s: left for s, b in backlogs.items() if (left := b.unpublished())}
        if unpublished:
            log.warning(
                "events the retention feed learns from are not published yet: nothing erased "
                "until their relays have published them (is `tsunagu relay "
                f"{' / '.join(sorted(unpublished))}` running?)",
                extra={"unpublished": unpublished},
            )
            return False
        left = unread(settings.kafka_bootstrap_servers, store, topics)
        if left:
            log.warning(
                "intake's retention feed is behind its topics: nothing erased until it has "
                "caught up (is `tsunagu project intake` running?)",
                extra={"unread": left},
            )
        return not left

    try:
        if every is None:
            if not caught_up():
                return BEHIND
            for person in intake.erase_due(book, at or datetime.now(UTC)):
                erased(person)
            return 0
        report(READY)
        while not stop.is_set():
            try:
                persons = intake.erase_due(book, datetime.now(UTC)) if caught_up() else []
                if persons:
                    log.info("erased for retention", extra={"persons": len(persons)})
            except Exception:
                log.exception("retention sweep failed; retrying at the next tick")
            stop.wait(every)
        return 0
    finally:
        for backlog in backlogs.values():
            backlog.close()
        for app in (intake, *others.values()):
            app.close()
        store.database.close()
        keys.close()


def replay_dead_letter(settings: Settings, message: Message) -> None:
    """The message to its topic's feeds again: on Kafka, published there; embedded, where the
    running app's bus is out of reach, applied here to each feed of that topic (the feeds'
    files are shared). A feed that had applied it drops it as a repeat."""
    if settings.distributed and settings.kafka_bootstrap_servers:
        publisher = KafkaPublisher(settings.kafka_bootstrap_servers)
        publisher.publish([message])
        publisher.close()
        return
    topics = Topics(settings.topic_prefix)
    letters = FileDeadLetters(settings.var_dir / FILE)
    keys = key_store(settings)
    for service, feed in FEEDS.items():
        if message.topic in {topics.events(source) for source in feed.sources}:
            store = feed_store(settings, service)
            runner = feed_runner(settings, service, store, letters, keys=keys)
            apply_or_quarantine(runner, [message])
            store.database.close()
    keys.close()
