"""Composition root: the same services wired for embedded or distributed mode.

Embedded: SQLite under the var dir and the in-process bus, the relay run after every command so
a caseworker sees the view change at once. Distributed: PostgreSQL schemas and Kafka, the relay
and the projector in processes of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from contracts.topics import Topics
from services.intake.api import build_router as intake_router
from services.intake.application import IntakeApplication
from services.intake.integration import to_cloudevent as intake_cloudevent
from services.platform.bus import InProcessBus, Publisher
from services.platform.eventstore import eventstore_env
from services.platform.http import create_app
from services.platform.relay import Relay, RelayPosition
from services.platform.settings import Settings
from services.platform.sql import connect
from services.projection.api import build_router as views_router
from services.projection.projectors import PROJECTORS
from services.projection.runner import ProjectionRunner
from services.projection.store import ViewStore


def intake_application(settings: Settings) -> IntakeApplication:
    return IntakeApplication(env=eventstore_env(settings, "intake"))


def intake_relay(settings: Settings, intake: IntakeApplication, publisher: Publisher) -> Relay:
    database = connect(settings.database_url, "intake", settings.var_dir / "intake-relay.sqlite3")
    return Relay(
        recorder=intake.recorder,
        mapper=intake.tracing_mapper,
        translate=intake_cloudevent,
        topic=Topics(settings.topic_prefix).events("intake"),
        publisher=publisher,
        position=RelayPosition(database, "intake"),
    )


def view_store(settings: Settings) -> ViewStore:
    return ViewStore(
        connect(settings.database_url, "projection", settings.var_dir / "views.sqlite3")
    )


def projection_runner(
    settings: Settings, store: ViewStore, dead_letters: Publisher
) -> ProjectionRunner:
    return ProjectionRunner(
        store, PROJECTORS, dead_letters, Topics(settings.topic_prefix).dead_letter
    )


def intake_app(settings: Settings, after_command: Callable[[], object] = lambda: None) -> FastAPI:
    intake = intake_application(settings)
    app = create_app("Tsunagu intake", settings, "相談受付: consultations, persons, consent.")
    app.state.intake = intake
    app.include_router(intake_router(intake, after_command))
    return app


def projection_app(settings: Settings) -> FastAPI:
    views = view_store(settings)
    app = create_app("Tsunagu views", settings, "Each agency's lawful view of a person.")
    app.state.views = views
    app.include_router(views_router(views))
    return app


def embedded_app(settings: Settings) -> FastAPI:
    """Every service in one process: SQLite and the in-process bus; no server to install."""
    bus = InProcessBus()
    topics = Topics(settings.topic_prefix)
    intake = intake_application(settings)
    views = view_store(settings)
    runner = projection_runner(settings, views, bus)
    bus.subscribe(topics.events("intake"), runner.consume)
    relay = intake_relay(settings, intake, bus)
    relay.drain()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        intake.close()
        views.database.close()

    app = create_app(
        "Tsunagu (embedded)",
        settings,
        "All of Tsunagu in one process: intake, referral, meeting and views.",
    )
    app.router.lifespan_context = lifespan
    app.state.intake, app.state.views, app.state.relay = intake, views, relay
    app.include_router(intake_router(intake, relay.drain), prefix="/intake")
    app.include_router(views_router(views), prefix="/views")
    return app
