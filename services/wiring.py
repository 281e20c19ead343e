"""Composition root: the same services wired for embedded or distributed mode.

Embedded: SQLite under the var dir and the in-process bus, each relay run after every command so
a caseworker sees the views change at once. Distributed: PostgreSQL schemas and Kafka, with the
relays and the feeds (faust workers) in processes of their own.

A command service is an `eventsourcing` application with HTTP routes whose stored events a relay
publishes. A feed is what a service keeps from other services' events, in its own schema (the
views, or a service's replica of the consent ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import httpx
from fastapi import APIRouter, FastAPI, Request, Response

from contracts.reference import reference
from contracts.topics import SERVICES, Topics
from services.feeds import consents
from services.feeds.changes import Projector
from services.feeds.deadletters import FILE as DEAD_LETTERS
from services.feeds.deadletters import FileDeadLetters
from services.feeds.quarantine import Consumer, apply_or_quarantine
from services.feeds.runner import FeedRunner, Reads
from services.feeds.store import ViewStore
from services.intake import retention
from services.intake.api import build_router as intake_router
from services.intake.application import IntakeApplication
from services.intake.integration import PUBLISHED as intake_published
from services.intake.integration import to_cloudevent as intake_cloudevent
from services.intake.retention import RetentionBook
from services.intake.retention_api import build_router as retention_router
from services.meeting import feed as meeting_feed
from services.meeting.api import build_router as meeting_router
from services.meeting.application import MeetingApplication
from services.meeting.integration import PUBLISHED as meeting_published
from services.meeting.integration import to_cloudevent as meeting_cloudevent
from services.platform.blind_index import blind_index
from services.platform.bus import InProcessBus, Message, Publisher, ensure_topics
from services.platform.disclose import Disclosures
from services.platform.disclosure_outbox import DisclosureOutbox
from services.platform.eventstore import TracingApplication, eventstore_env, wait_for_events
from services.platform.http import create_app
from services.platform.keys import KEY_SCHEMA, KeyStore, key_encryption_key
from services.platform.publishing import Published
from services.platform.relay import Relay, RelayBacklog, RelayPosition, Translate
from services.platform.sealed_events import Sealing
from services.platform.sealing import Opener, Sealer
from services.platform.settings import Settings
from services.platform.sql import connect
from services.projection import feed as projection_feed
from services.projection import merges, person_facts
from services.projection.api import build_router as views_router
from services.projection.audit_api import build_router as audit_router
from services.projection.chains import Chains, neighbour_store
from services.projection.checkpoint import Anchoring, Checkpointer, anchoring
from services.projection.disclosure_ingest import AuditIngest
from services.projection.person_api import build_router as person_router
from services.projection.person_search import PersonIndex
from services.projection.purges import publish_purges, sweep_and_publish
from services.referral import feed as referral_feed
from services.referral.api import build_router as referral_router
from services.referral.application import ReferralApplication
from services.referral.integration import PUBLISHED as referral_published
from services.referral.integration import to_cloudevent as referral_cloudevent
from services.web import oidc
from services.web.app import build_web
from services.web.client import Services, embedded_urls

CallNext = Callable[[Request], Awaitable[Response]]
# Requests that store no command: nothing to relay after them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Feed:
    """What one service keeps from other services' events, in tables of its own schema."""

    tables: tuple[str, ...]
    # Made with the person index (the key store and the blind index), which only the views'
    # person index uses: it opens sealed values as it ingests them.
    projectors: Callable[[PersonIndex], tuple[Projector, ...]]
    sources: tuple[str, ...]
    # Keep every applied event in commit order (the views: what disclosure replay reads).
    journal: bool = False
    # A catch-up over a backlog (a rebuild): its projectors, if they differ (the views record
    # no purge again: the live run's are history).
    catching_up: Callable[[PersonIndex], tuple[Projector, ...]] | None = None
    # What the projectors read rows by for an event, which a batch reads up front.
    reads: Reads = person_facts.reads


@dataclass(frozen=True)
class CommandService:
    """A service that records commands as events and publishes them through a relay."""

    # (settings, how it seals personal fields; None where it stores nothing, as in its relay)
    application: Callable[[Settings, Sealing | None], TracingApplication]
    published: tuple[Published, ...]
    translate: Translate
    # (application, the service's own feed store or None, how its reads are disclosed) -> routes
    routes: Callable[[TracingApplication, ViewStore | None, Disclosures], APIRouter]
    title: str


def _intake_routes(
    app: TracingApplication, feed: ViewStore | None, disclosures: Disclosures
) -> APIRouter:
    assert isinstance(app, IntakeApplication) and feed is not None
    routes = intake_router(app, disclosures)
    routes.include_router(retention_router(app, RetentionBook(feed), disclosures))
    return routes


def _referral_routes(
    app: TracingApplication, feed: ViewStore | None, disclosures: Disclosures
) -> APIRouter:
    assert isinstance(app, ReferralApplication) and feed is not None
    return referral_router(app, feed, disclosures)


def _meeting_routes(
    app: TracingApplication, feed: ViewStore | None, disclosures: Disclosures
) -> APIRouter:
    assert isinstance(app, MeetingApplication) and feed is not None
    return meeting_router(app, feed, disclosures)


COMMAND_SERVICES: dict[str, CommandService] = {
    "intake": CommandService(
        application=lambda s, sealing: IntakeApplication(
            # Without sealing (a relay, a schema made ready) it looks nothing up by token.
            eventstore_env(s, "intake"),
            sealing,
            blind_index(sealing.sealer.keys) if sealing else None,
        ),
        published=intake_published,
        translate=intake_cloudevent,
        routes=_intake_routes,
        title="相談受付: consultations, persons, consent.",
    ),
    "referral": CommandService(
        application=ReferralApplication,
        published=referral_published,
        translate=referral_cloudevent,
        routes=_referral_routes,
        title="つなぐ: closed-loop referrals between agencies.",
    ),
    "meeting": CommandService(
        application=lambda s, sealing: MeetingApplication(eventstore_env(s, "meeting"), sealing),
        published=meeting_published,
        translate=meeting_cloudevent,
        routes=_meeting_routes,
        title="支援プラン: support cases, coordination meetings, 支援会議, vital interest.",
    ),
}

FEEDS: dict[str, Feed] = {
    "projection": Feed(
        projection_feed.TABLES,
        projection_feed.projectors,
        ("intake", "referral", "meeting"),
        journal=True,
        catching_up=functools.partial(projection_feed.projectors, postponed=True),
        reads=projection_feed.reads,
    ),
    # Referral decides on consents: it keeps its own replica of the ledger, and intake's merges
    # so that a consent given under a merged duplicate's id counts for the merged person.
    "referral": Feed(referral_feed.TABLES, lambda _: referral_feed.PROJECTORS, ("intake",)),
    # Meeting opens cases from applications and shares tax only under a consent; it reads a
    # merged person's cases, meetings and bases as one person's.
    "meeting": Feed(
        consents.TABLES + meeting_feed.TABLES,
        lambda _: (
            consents.project_consents,
            meeting_feed.project_applications,
            merges.project_merges,
        ),
        ("intake",),
    ),
    # Intake erases by retention: it learns from meeting when each case closes or reopens, and
    # keeps its own extensions and erasures beside them, for the due list and the sweep.
    "intake": Feed(retention.TABLES, lambda _: (retention.project_retention,), retention.SOURCES),
}


def declare_topics(settings: Settings) -> None:
    """Create every topic the platform uses where it is missing, before anything uses it: each
    service's events and the dead letters with ``topic_partitions`` partitions, the audit
    checkpoints with one, kept for ever. Brokers are run with auto-creation off, so a topic
    left out here fails at its first use rather than appearing with the broker's defaults."""
    assert settings.kafka_bootstrap_servers, "topics are declared on Kafka"
    topics = Topics(settings.topic_prefix)
    ensure_topics(
        settings.kafka_bootstrap_servers,
        [*(topics.events(service) for service in SERVICES), topics.dead_letter],
        settings.topic_partitions,
    )
    ensure_topics(
        settings.kafka_bootstrap_servers, [topics.audit_checkpoints], 1, {"retention.ms": "-1"}
    )


def create_schemas(settings: Settings) -> None:
    """Every service's schema and tables, made once before the processes start: processes that
    start together race on the same CREATE TABLE IF NOT EXISTS, and PostgreSQL can fail one of
    them ("tuple concurrently updated")."""
    key_store(settings).close()
    for name, spec in COMMAND_SERVICES.items():
        spec.application(settings, None).close()
        relay_position(settings, name)
        disclosure_outbox(settings, name).database.close()
    for service in FEEDS:
        store = feed_store(settings, service)
        if service == "projection":
            chains = audit_chains(settings, store)
            # Each municipality's chain, its tables and triggers made as it is opened.
            dict(chains.each())
            chains.close()
        store.database.close()


def person_index(keys: KeyStore) -> PersonIndex:
    """The views' person index: blind tokens under the deployment's key, sealed values opened
    with ``keys`` (as it ingests a registration, and to order what a search found)."""
    return PersonIndex(keys, blind_index(keys))


def person_views(
    views: ViewStore, settings: Settings, disclosures: Disclosures, keys: KeyStore
) -> APIRouter:
    return person_router(
        views,
        disclosures,
        person_index(keys),
        acknowledgement_hours=settings.acknowledgement_hours,
        decline_follow_up_days=settings.decline_follow_up_days,
    )


def feed_store(settings: Settings, service: str) -> ViewStore:
    database = connect(settings.database_url, service, settings.var_dir / f"{service}-feed.sqlite3")
    return ViewStore(database, FEEDS[service].tables, journal=FEEDS[service].journal)


def view_store(settings: Settings) -> ViewStore:
    return feed_store(settings, "projection")


def audit_chains(settings: Settings, views: ViewStore) -> Chains:
    """Each municipality's audit chain; the first's in the views' database."""
    return Chains(views.database, neighbour_store(settings))


def anchorings(settings: Settings, *, signing: bool = True) -> Callable[[str], Anchoring]:
    """Each municipality's anchoring (where its checkpoints are kept), made once."""
    return functools.cache(
        lambda municipality: anchoring(settings, signing=signing, municipality=municipality)
    )


def disclosure_outbox(
    settings: Settings, service: str, publish_to: Publisher | None = None
) -> DisclosureOutbox:
    """Where a command service records the reads it serves, in its own database, until they
    are on the audit topic: ``publish_to`` at once (embedded), else by its relay process."""
    database = connect(
        settings.database_url, service, settings.var_dir / f"{service}-disclosures.sqlite3"
    )
    topic = Topics(settings.topic_prefix).events("audit")
    return DisclosureOutbox(database, service, topic, publish_to)


def feed_runner(
    settings: Settings,
    service: str,
    store: ViewStore,
    dead_letters: Publisher,
    *,
    keys: KeyStore,
    catching_up: bool = False,
) -> FeedRunner:
    """``keys``: the key store the person index opens sealed values with (its caller closes
    it); ``catching_up``: the runner of a catch-up over a backlog."""
    feed = FEEDS[service]
    projectors = (feed.catching_up if catching_up else None) or feed.projectors
    return FeedRunner(
        store,
        projectors(person_index(keys)),
        dead_letters,
        Topics(settings.topic_prefix).dead_letter,
        feed.reads,
    )


def feed_one(runner: Consumer, message: Message) -> None:
    """The in-process bus's delivery to a feed or the audit ingest: applied, or quarantined if
    it cannot be."""
    apply_or_quarantine(runner, [message])


def projection_runner(
    settings: Settings, store: ViewStore, dead_letters: Publisher, keys: KeyStore
) -> FeedRunner:
    return feed_runner(settings, "projection", store, dead_letters, keys=keys)


def relay_position(settings: Settings, service: str) -> RelayPosition:
    database = connect(
        settings.database_url, service, settings.var_dir / f"{service}-relay.sqlite3"
    )
    return RelayPosition(database, service)


def relay_backlog(settings: Settings, service: str, app: TracingApplication) -> RelayBacklog:
    return RelayBacklog(app.recorder, relay_position(settings, service))


def relay(settings: Settings, service: str, app: TracingApplication, publisher: Publisher) -> Relay:
    return Relay(
        recorder=app.recorder,
        mapper=app.tracing_mapper,
        translate=COMMAND_SERVICES[service].translate,
        topic=Topics(settings.topic_prefix).events(service),
        publisher=publisher,
        position=relay_position(settings, service),
        wait=wait_for_events(settings, app.recorder),
    )


def intake_application(settings: Settings, keys: KeyStore) -> IntakeApplication:
    app = command_application(settings, "intake", keys)
    assert isinstance(app, IntakeApplication)
    return app


def key_store(settings: Settings) -> KeyStore:
    """The data keys: in the ``keys`` schema every service reaches (distributed), or in
    ``keys.sqlite3`` (embedded); wrapped by the key-encryption key from settings. A key is
    made just before the event sealed with it is stored, on the same server: that event's
    durable commit makes the key's durable too (it must stay the same server)."""
    database = connect(
        settings.database_url,
        KEY_SCHEMA,
        settings.var_dir / "keys.sqlite3",
        followed_by_durable=True,
    )
    return KeyStore(database, key_encryption_key(settings))


def command_application(settings: Settings, service: str, keys: KeyStore) -> TracingApplication:
    """A command service's application, sealing each personal field it stores."""
    spec = COMMAND_SERVICES[service]
    return spec.application(settings, Sealing(spec.published, Sealer(keys)))


def intake_relay(settings: Settings, intake: TracingApplication, publisher: Publisher) -> Relay:
    return relay(settings, "intake", intake, publisher)


def closing(app: FastAPI, *closers: Callable[[], object]) -> FastAPI:
    """``app`` closes what it opened (its connection pools) when it shuts down, or when
    ``close_app`` is called on an app built but never served. Each pool holds connections
    open until closed, so an app left unclosed keeps them for the life of its process."""
    done: list[bool] = []

    def close() -> None:
        if not done:
            done.append(True)
            for closer in closers:
                closer()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        close()

    app.router.lifespan_context = lifespan
    app.state.close = close
    return app


def close_app(app: FastAPI) -> None:
    """Close what a service app opened, as its shutdown would (the desk holds no pool)."""
    close = getattr(app.state, "close", None)
    if close is not None:
        close()


def service_app(settings: Settings, service: str) -> FastAPI:
    """One service's HTTP API in distributed mode (its relay and feed run as other processes)."""
    if service == "web":
        return distributed_web_app(settings)
    if service == "projection":
        views = view_store(settings)
        app = create_app("Tsunagu views", settings, "Each agency's lawful view of a person.")
        chains = audit_chains(settings, views)
        keys = key_store(settings)
        # The views keep the chains: their reads are appended to them at once.
        disclosures = Disclosures(chains, Opener(keys))
        app.state.views, app.state.chains = views, chains
        app.state.audit = chains.of(reference().municipality_code)
        app.include_router(views_router(views, settings, disclosures))
        app.include_router(audit_router(chains, views, anchorings(settings), disclosures))
        app.include_router(person_views(views, settings, disclosures, keys))
        return closing(app, chains.close, views.database.close, keys.close)
    spec = COMMAND_SERVICES[service]
    keys = key_store(settings)
    application = command_application(settings, service, keys)
    store = feed_store(settings, service) if service in FEEDS else None
    app = create_app(f"Tsunagu {service}", settings, spec.title)
    app.state.application = application
    outbox = disclosure_outbox(settings, service)
    app.include_router(spec.routes(application, store, Disclosures(outbox, Opener(keys))))
    closers = [application.close, outbox.database.close, keys.close]
    if store is not None:
        closers.append(store.database.close)
    return closing(app, *closers)


def web_app(settings: Settings, services: Services, *, dev_signin: bool = False) -> FastAPI:
    """The desk. Its development sign-in exists only where no identity provider is set."""
    app = build_web(settings, services)
    app.state.dev_signin = dev_signin and settings.jwks_url is None and not settings.oidc_issuer
    app.state.oidc = oidc.install(app, settings)
    return app


def distributed_web_app(settings: Settings) -> FastAPI:
    """``tsunagu serve web``: the desk in front of each service's URL."""
    return web_app(settings, Services(settings.service_urls))


def intake_app(settings: Settings) -> FastAPI:
    return service_app(settings, "intake")


def projection_app(settings: Settings) -> FastAPI:
    return service_app(settings, "projection")


def embedded_app(settings: Settings) -> FastAPI:
    """Every service in one process: SQLite and the in-process bus; no server to install."""
    bus = InProcessBus()
    topics = Topics(settings.topic_prefix)
    stores = {service: feed_store(settings, service) for service in FEEDS}
    keys = key_store(settings)
    for service, feed in FEEDS.items():
        runner = feed_runner(settings, service, stores[service], bus, keys=keys)
        for source in feed.sources:
            bus.subscribe(topics.events(source), functools.partial(feed_one, runner))
    # Nothing here reads the dead-letter topic: its letters are kept for `tsunagu deadletter`.
    bus.subscribe(topics.dead_letter, FileDeadLetters(settings.var_dir / DEAD_LETTERS).deliver)
    applications = {name: command_application(settings, name, keys) for name in COMMAND_SERVICES}
    opener = Opener(keys)
    relays = [relay(settings, name, app, bus) for name, app in applications.items()]
    outboxes = {name: disclosure_outbox(settings, name, publish_to=bus) for name in applications}

    views = stores["projection"]
    purged = topics.events("projection")

    def relay_all() -> None:
        # Until nothing moves: one service's events can lead another's feed to change.
        while sum(r.drain() for r in relays):
            pass
        publish_purges(views, bus, purged)

    relay_all()
    chains = audit_chains(settings, views)
    # Other services' reads reach the chains as they would over Kafka: through their outboxes,
    # onto the audit topic, appended by the same ingest.
    ingest = AuditIngest(chains, bus, topics.dead_letter)
    bus.subscribe(topics.events("audit"), functools.partial(feed_one, ingest))
    anchored = anchorings(settings)
    checkpointers = [Checkpointer(anchored(code), chain) for code, chain in chains.each()]

    intake = applications["intake"]
    assert isinstance(intake, IntakeApplication)
    retention_book = RetentionBook(stores["intake"])

    def sweep_retention(now: datetime) -> list[UUID]:
        # What ``tsunagu retention sweep`` does in distributed mode; the erasures then reach
        # every feed before it returns.
        erased = intake.erase_due(retention_book, now)
        relay_all()
        return erased

    async def sweep_now_and_then() -> None:
        # No sweeper process runs here: bases that lapse with no event are swept from inside,
        # and records whose retention ended are erased.
        while True:
            await asyncio.to_thread(sweep_and_publish, views, bus, purged)
            await asyncio.to_thread(sweep_retention, datetime.now(UTC))
            await asyncio.sleep(settings.sweep_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(sweep_now_and_then())
        # No checkpointer process runs here either: one task per municipality's chain.
        signing = [
            asyncio.create_task(c.run_inside(settings.checkpoint_seconds)) for c in checkpointers
        ]
        yield
        for task in (sweeper, *signing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # What this run appended is anchored before it stops.
        for checkpointer in checkpointers:
            await asyncio.to_thread(checkpointer.tick)
        for application in applications.values():
            application.close()
        for each in relays:
            each.close()
        for outbox in outboxes.values():
            outbox.database.close()
        for store in stores.values():
            store.database.close()
        chains.close()
        keys.close()

    app = create_app(
        "Tsunagu (embedded)",
        settings,
        "All of Tsunagu in one process: intake, referral, meeting and views.",
    )
    app.router.lifespan_context = lifespan
    app.state.applications, app.state.views, app.state.bus = applications, views, bus
    app.state.keys = keys
    app.state.sweep_retention = sweep_retention

    @app.middleware("http")
    async def relay_after_command(request: Request, call_next: CallNext) -> Response:
        # What the relays and feed processes do in distributed mode, done here after each
        # command and before its answer leaves: the next request reads its effects everywhere.
        response = await call_next(request)
        if request.method not in SAFE_METHODS:
            await asyncio.to_thread(relay_all)
        return response

    for name, spec in COMMAND_SERVICES.items():
        disclosures = Disclosures(outboxes[name], opener)
        routes = spec.routes(applications[name], stores.get(name), disclosures)
        app.include_router(routes, prefix=f"/{name}")
    view_disclosures = Disclosures(chains, opener)
    app.include_router(views_router(views, settings, view_disclosures), prefix="/views")
    app.state.chains, app.state.view_disclosures = chains, view_disclosures
    app.state.audit = chains.of(reference().municipality_code)
    app.include_router(audit_router(chains, views, anchored, view_disclosures), prefix="/views")
    app.include_router(person_views(views, settings, view_disclosures, keys), prefix="/views")
    # The desk last, at "/": every route above is matched first. It calls this same app's
    # routes in-process, with the signed-in user's token, exactly as it would over the network.
    in_process = Services(embedded_urls(), httpx.ASGITransport(app=app))
    app.mount("/", web_app(settings, in_process, dev_signin=True))
    return app
