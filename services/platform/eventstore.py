"""The `eventsourcing` event store, on PostgreSQL or SQLite by configuration.

Each service is an ``eventsourcing`` Application in its own PostgreSQL schema (distributed) or
its own SQLite file (embedded). ``TracingApplication`` stores the W3C trace context with every
event, so the relay can continue the trace that the HTTP request started.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Mapper, Recording, StoredEvent

from contracts.errors import NotFound
from services.platform.indexes import ListIndex
from services.platform.keys import DataKeyExists, KeyStore
from services.platform.private_files import private_database
from services.platform.settings import Settings
from services.platform.tracing import current_carrier, tracer

if TYPE_CHECKING:
    import psycopg

    from services.platform.sealed_events import Sealing

TRACE_KEY = "_trace"
A = TypeVar("A", bound=Aggregate)
# How often a long wait for new events looks whether it has been told to stop.
STOP_CHECK_SECONDS = 0.1


def eventstore_env(settings: Settings, service: str) -> dict[str, str]:
    if settings.database_url:
        import psycopg

        url = urlparse(settings.database_url)
        with psycopg.connect(settings.database_url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{service}"')
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/"),
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_SCHEMA": service,
            "POSTGRES_POOL_SIZE": "8",
            "APPLICATION_RECORDER_TOPIC": "services.platform.group_commit:GroupCommitRecorder",
            "CREATE_TABLE": "y",
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(private_database(settings.var_dir / f"{service}-events.sqlite3")),
        "CREATE_TABLE": "y",
    }


class NewEventsListener:
    """Waits for PostgreSQL's word that events were stored in one application's event store.

    The recorder's insert sends ``NOTIFY <channel>`` in its transaction, and PostgreSQL delivers
    it only once that transaction has committed: a reader that looks after waking finds those
    events. Called as ``listener(stop, seconds)``, like ``threading.Event.wait``.
    """

    def __init__(self, url: str, channel: str) -> None:
        self._url, self._channel = url, channel
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None

    def __call__(self, stop: threading.Event, seconds: float) -> None:
        import psycopg
        from psycopg import sql

        try:
            if self._connection is None:
                self._connection = psycopg.connect(self._url, autocommit=True)
                self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                # Nothing stored before the LISTEN was announced here: the caller looks now.
                return
            deadline = time.monotonic() + seconds
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                timeout = min(left, STOP_CHECK_SECONDS)
                if list(self._connection.notifies(timeout=timeout, stop_after=1)):
                    # Notices already queued are for commits the caller's next look covers too.
                    list(self._connection.notifies(timeout=0))
                    return
        except psycopg.Error:
            # A fresh connection (and LISTEN) at the next call; the caller retries meanwhile.
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def wait_for_events(
    settings: Settings, recorder: ApplicationRecorder
) -> Callable[[threading.Event, float], object] | None:
    """How a reader of ``recorder``'s notification log waits for more: on PostgreSQL, for the
    notice each insert sends; None where the store sends none (the reader polls)."""
    if not settings.database_url:
        return None
    from eventsourcing.postgres import PostgresApplicationRecorder

    if not isinstance(recorder, PostgresApplicationRecorder):
        return None
    return NewEventsListener(settings.database_url, recorder.channel_name)


class TracingMapper(Mapper[UUID]):
    """Stores the current trace context beside each event's state, and hands it back; seals
    each event's personal fields before it is stored, where the service seals them."""

    sealing: Sealing | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        return self.store(domain_event, current_carrier())

    def store(
        self, domain_event: DomainEventProtocol[UUID], carrier: dict[str, str]
    ) -> StoredEvent:
        """``domain_event`` as stored in the trace ``carrier`` names: sealed where the service
        seals (an upgrade copies old events with the trace they were first stored in)."""
        if self.sealing is not None:
            domain_event = self.sealing.seal(domain_event)
        if not carrier:
            return super().to_stored_event(domain_event)
        traced = copy.copy(domain_event)
        object.__setattr__(traced, TRACE_KEY, carrier)
        return super().to_stored_event(traced)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.decode(stored_event)[0]

    def decode(self, stored_event: StoredEvent) -> tuple[DomainEventProtocol[UUID], dict[str, str]]:
        domain_event = super().to_domain_event(stored_event)
        carrier = domain_event.__dict__.pop(TRACE_KEY, None) or {}
        return domain_event, carrier


def _keys_stored_by(recorder: ApplicationRecorder, sealing: Sealing | None) -> KeyStore | None:
    """The key store whose new keys ``recorder`` stores with the events sealed under them:
    the sealing's, when the event store's transactions reach its table (distributed, one
    database); None when the keys live elsewhere (embedded: two SQLite files)."""
    from services.platform.group_commit import GroupCommitRecorder

    if sealing is None or not isinstance(recorder, GroupCommitRecorder):
        return None
    keys = sealing.sealer.keys
    return keys if recorder.stores_keys_of(keys) else None


class TracingApplication(Application[UUID]):
    """An Application whose saves are traced and whose stored events carry trace context, with
    their personal fields sealed by ``sealing`` (none: stored as given, as in unit tests of
    the domain alone)."""

    def __init__(self, env: dict[str, str] | None = None, sealing: Sealing | None = None) -> None:
        self._sealing = sealing
        super().__init__(env=env)
        self._keys_with_events = _keys_stored_by(self.recorder, sealing)

    def construct_mapper(self) -> Mapper[UUID]:
        mapper = self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=TracingMapper
        )
        assert isinstance(mapper, TracingMapper)
        mapper.sealing = self._sealing
        return mapper

    @property
    def tracing_mapper(self) -> TracingMapper:
        assert isinstance(self.mapper, TracingMapper)
        return self.mapper

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        with tracer(__name__).start_as_current_span(f"eventstore.save {self.name}"):
            return super().save(*objs, **kwargs)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Recorded with the keys of the subjects it creates, where the event store can write
        them in the same transaction."""
        keys = self._keys_with_events
        if keys is None or processing_event.tracking is not None:
            return super()._record(processing_event)
        created = [
            event.originator_id
            for event in processing_event.events
            if event.originator_version == Aggregate.INITIAL_VERSION
        ]
        try:
            with keys.stored_with_events(created) as new_keys:
                processing_event.saved_kwargs["new_keys"] = new_keys
                return super()._record(processing_event)
        except DataKeyExists:
            # Another process stored one of these subjects' keys (or its erasure) first: seal
            # again under what it stored, or be refused as nothing new is sealed for the erased.
            del processing_event.saved_kwargs["new_keys"]
            return super()._record(processing_event)

    def find(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate of that kind with that id, or None."""
        try:
            found: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None

    def fetch(self, kind: type[A], aggregate_id: UUID, label: str) -> A:
        """The aggregate of that kind with that id, or 404 naming it as ``label``."""
        found = self.find(kind, aggregate_id)
        if found is None:
            raise NotFound(f"no {label} {aggregate_id}")
        return found

    def index(self, key: str) -> ListIndex | None:
        return self.find(ListIndex, ListIndex.create_id(key))

    def listed(self, key: str, member: UUID) -> ListIndex:
        """The index under ``key`` (new if need be) with ``member`` added, ready to save."""
        index = self.index(key) or ListIndex(key)
        index.add(member)
        return index
