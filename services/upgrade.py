"""``tsunagu upgrade``: stores written before personal fields were sealed (#20), copied into
stores that hold them sealed, and the events onto new topics.

A stored event is never changed. Of the ways to migrate immutable events, `eventsourcing` takes
"copy and transformation", which "rewrite[s] events into an entirely new store"
(pyeventsourcing/eventsourcing#103, after Overeem et al., "The Dark Side of Event Sourcing"):
the old store's notification log read in order, through a mapper that reads the old way, and
each event written through one that writes the new way (a cipher, a compressor; here the
services' sealing). So, for each command service:

1. The old store is kept as it is, beside the live one: a copy in the ``<service>_cleartext``
   schema, or ``<service>-events.cleartext.sqlite3``.
2. Each of its events, in notification order, is decoded, sealed as the service seals (a value
   sealed already stays as it is) and written to a staging store with its originator id,
   version, timestamp, trace and topic. Intake's index aggregates whose id or key is made of
   personal data (a local id; likely duplicates' names) are not copied but made again from the
   persons, as intake makes them now.
3. The staging store is compared with the kept one, event by event; then it replaces the live
   store in one step (a rename, or one transaction).

Every relay then starts again from the first event, onto new topics (distributed: a new
``TSUNAGU_TOPIC_PREFIX``; the signed audit checkpoints are copied there, as they are), and every
feed is emptied to be rebuilt from them; the views' journal keeps its positions, each entry's
message replaced by the sealed one. Run again, the upgrade finds each live store to be the
sealed copy of the kept one and does nothing; ``--drop-old`` then deletes the kept copies.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.domain import Aggregate, DomainEvent, DomainEventProtocol
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    InfrastructureFactory,
    Notification,
    StoredEvent,
    Transcoder,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import Environment

from contracts.envelope import CloudEvent
from contracts.errors import Conflict
from contracts.topics import SERVICES, Topics
from services.feeds.rebuild import KEEP
from services.feeds.store import ViewStore
from services.intake.application import duplicates_list_key
from services.intake.person import Person
from services.platform.blind_index import BlindIndex, blind_index
from services.platform.bus import KafkaPublisher, Message
from services.platform.eventstore import TracingMapper, eventstore_env
from services.platform.indexes import DUPLICATES, ListIndex, LocalIdIndex
from services.platform.keys import KEY_BYTES, KeyStore
from services.platform.private_files import private_database
from services.platform.publishing import Published
from services.platform.relay import Translate
from services.platform.sealed_events import Sealing
from services.platform.sealing import Opener, Sealer, is_sealed
from services.platform.settings import Settings
from services.platform.sql import SqliteDatabase
from services.projection.checkpoint import KafkaCheckpoints
from services.wiring import (
    COMMAND_SERVICES,
    FEEDS,
    declare_topics,
    feed_store,
    key_store,
    relay_position,
)

LIVE, KEPT, STAGING = "live", "cleartext", "upgrading"
# Events read and written per transaction.
PAGE = 500
_SIDECARS = ("-wal", "-shm", "-journal")


class UpgradeRefused(Exception):
    """Why the upgrade stopped, with every live store as it found it."""


@dataclass
class Outcome:
    """What the upgrade found and did in one service's store."""

    service: str
    state: str = "nothing to upgrade"
    # Events of the old store, and values in them that were in clear and are sealed now.
    events: int = 0
    sealed_values: int = 0
    # Events naming a person erased before the upgrade: sealed under keys nobody keeps.
    shredded_events: int = 0
    # Index aggregates not copied, and made again (intake's local ids and duplicate keys).
    indexes_dropped: int = 0
    indexes_made: int = 0
    # Entries of the views' journal whose message is now the sealed one.
    journal_entries: int = 0
    old_store_dropped: bool = False


@dataclass
class Report:
    services: list[Outcome] = field(default_factory=list)
    # Distributed: the topics the relays now publish to, and the old ones left to delete.
    topic_prefix: str | None = None
    old_topics: list[str] = field(default_factory=list)
    feeds_emptied: list[str] = field(default_factory=list)

    @property
    def upgraded(self) -> bool:
        return any(o.state == "upgraded" for o in self.services)


class _Store:
    """One event store of a service: its recorder, and a mapper that reads its events (and
    writes them as given)."""

    def __init__(self, env: Mapping[str, str], name: str, transcoder: Transcoder) -> None:
        self._factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(
            Environment(name, dict(env))
        )
        self.recorder: ApplicationRecorder = self._factory.application_recorder()
        self._transcoder = transcoder
        self.mapper = self.mapper_sealing(None)

    def mapper_sealing(self, sealing: Sealing | None) -> TracingMapper:
        mapper = self._factory.mapper(transcoder=self._transcoder, mapper_class=TracingMapper)
        assert isinstance(mapper, TracingMapper)
        mapper.sealing = sealing
        return mapper

    def notifications(self) -> Iterator[Notification]:
        """Every stored event, in notification order."""
        after = 0
        while page := self.recorder.select_notifications(
            start=after, limit=PAGE, inclusive_of_start=False
        ):
            yield from page
            after = page[-1].id

    def events(self) -> Iterator[tuple[Notification, DomainEventProtocol[UUID], dict[str, str]]]:
        for notification in self.notifications():
            yield notification, *self.mapper.decode(notification)

    def repository(self) -> Repository[UUID]:
        return Repository(EventStore(self.mapper, self.recorder))

    def close(self) -> None:
        self._factory.close()


class _Places(Protocol):
    """Where one service's live store, the kept copy of the old one and the staging store
    are, and the moves between them."""

    def env(self, which: str) -> dict[str, str]: ...

    def kept(self) -> bool: ...

    def keep(self) -> None:
        """Copy the live store, whole and unchanged, to the kept place (at once: a crash
        leaves no partial copy)."""

    def clear_staging(self) -> None: ...

    def publish(self) -> None:
        """The staging store becomes the live one, at once."""

    def drop_kept(self) -> None: ...

    def describe(self, which: str) -> str: ...


class _SqliteFiles:
    """Embedded: each store a file under the var dir, created readable by its owner only."""

    def __init__(self, live_env: Mapping[str, str]) -> None:
        self._env = dict(live_env)
        self._live = Path(live_env["SQLITE_DBNAME"])

    def path(self, which: str) -> Path:
        return self._live if which == LIVE else self._live.with_suffix(f".{which}.sqlite3")

    def env(self, which: str) -> dict[str, str]:
        return {**self._env, "SQLITE_DBNAME": str(private_database(self.path(which)))}

    def kept(self) -> bool:
        return self.path(KEPT).exists()

    def keep(self) -> None:
        draft = self.path(f"{KEPT}.partial")
        _remove(draft)
        with (
            contextlib.closing(sqlite3.connect(self._live)) as live,
            contextlib.closing(sqlite3.connect(private_database(draft))) as copy,
        ):
            # SQLite's backup reads through the write-ahead log: the store as committed.
            live.backup(copy)
        os.replace(draft, self.path(KEPT))

    def clear_staging(self) -> None:
        _remove(self.path(STAGING))

    def publish(self) -> None:
        staging = self.path(STAGING)
        _checkpoint(staging)
        # A log left beside the old file would be replayed into the new one at its next open.
        _remove_sidecars(self._live)
        os.replace(staging, self._live)
        _remove_sidecars(staging)

    def drop_kept(self) -> None:
        _remove(self.path(KEPT))

    def describe(self, which: str) -> str:
        return str(self.path(which))


def _checkpoint(path: Path) -> None:
    """Everything in ``path``'s write-ahead log copied into it, and the log emptied."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    _remove_sidecars(path)


def _remove_sidecars(path: Path) -> None:
    for suffix in _SIDECARS:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


class _PostgresSchemas:
    """Distributed: the live store is its service's events table; the kept copy and the
    staging store are tables of that name in schemas of their own."""

    def __init__(self, url: str, live_env: Mapping[str, str], table: str) -> None:
        self._url, self._env, self._table = url, dict(live_env), table
        self._live = live_env["POSTGRES_SCHEMA"]

    def schema(self, which: str) -> str:
        return self._live if which == LIVE else f"{self._live}_{which}"

    def env(self, which: str) -> dict[str, str]:
        # The kept copy is read only: its table was made by ``keep``.
        create = "n" if which == KEPT else self._env.get("CREATE_TABLE", "y")
        # One reader or writer at a time: no pool of the services' size.
        return {
            **self._env,
            "POSTGRES_SCHEMA": self.schema(which),
            "CREATE_TABLE": create,
            "POSTGRES_POOL_SIZE": "1",
        }

    def _run(self, *statements: str) -> None:
        import psycopg

        live, kept, staging = (self._identifier(w) for w in (LIVE, KEPT, STAGING))
        with psycopg.connect(self._url) as connection, connection.transaction():
            for statement in statements:
                text = statement.format(
                    live=live, kept=kept, staging=staging, table=self._quoted(self._table)
                )
                connection.execute(text.encode())

    def _identifier(self, which: str) -> str:
        return self._quoted(self.schema(which))

    @staticmethod
    def _quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def kept(self) -> bool:
        import psycopg

        with psycopg.connect(self._url) as connection:
            row = connection.execute(
                "SELECT to_regclass(%s)", (f"{self._identifier(KEPT)}.{self._quoted(self._table)}",)
            ).fetchone()
        return row is not None and row[0] is not None

    def keep(self) -> None:
        self._run(
            "CREATE SCHEMA IF NOT EXISTS {kept}",
            "CREATE TABLE {kept}.{table} AS SELECT * FROM {live}.{table}",
            "ALTER TABLE {kept}.{table} ADD PRIMARY KEY (originator_id, originator_version)",
            "CREATE UNIQUE INDEX ON {kept}.{table} (notification_id)",
        )

    def clear_staging(self) -> None:
        self._run("DROP SCHEMA IF EXISTS {staging} CASCADE", "CREATE SCHEMA {staging}")

    def publish(self) -> None:
        columns = "originator_id, originator_version, topic, state, notification_id"
        self._run(
            # Taken first: no one reads the store half replaced.
            "LOCK TABLE {live}.{table} IN ACCESS EXCLUSIVE MODE",
            "TRUNCATE {live}.{table} RESTART IDENTITY",
            f"INSERT INTO {{live}}.{{table}} ({columns}) "
            f"SELECT {columns} FROM {{staging}}.{{table}} ORDER BY notification_id",
            # The next event stored takes the number after the last one copied.
            "SELECT setval(pg_get_serial_sequence('{live}.{table}', 'notification_id'), "
            "COALESCE(MAX(notification_id), 1), MAX(notification_id) IS NOT NULL) "
            "FROM {live}.{table}",
            "DROP SCHEMA {staging} CASCADE",
        )

    def drop_kept(self) -> None:
        self._run("DROP SCHEMA IF EXISTS {kept} CASCADE")

    def describe(self, which: str) -> str:
        return f"{self.schema(which)}.{self._table}"


class _Counting(Sealer):
    """Counts the values it is given in clear; seals them as the service would, or, as a
    probe (``sealing=False``), leaves them as they are."""

    def __init__(self, keys: KeyStore, *, sealing: bool = True) -> None:
        super().__init__(keys)
        self.sealing, self.found = sealing, 0

    def seal(self, subject: UUID, value: Any, at: Any) -> Any:
        clear = value is not None and not is_sealed(value)
        sealed = super().seal(subject, value, at) if self.sealing else value
        self.found += clear
        return sealed


def _scratch_keys() -> KeyStore:
    """Keys kept nowhere: what is sealed under them opens to nothing, and no link made with
    them reaches the deployment's key store."""
    return KeyStore(SqliteDatabase(":memory:"), os.urandom(KEY_BYTES))


class _Dropping:
    """Skips intake's index aggregates whose id or key is made of personal data: a local id's
    (its id was derived from the local id), a list of likely duplicates (its key held their
    folded names and birth date). Notes the persons, to make the same lookups again."""

    def __init__(self) -> None:
        self.dropped: set[UUID] = set()
        self.persons: list[UUID] = []

    def drops(self, event: DomainEventProtocol[UUID]) -> bool:
        if isinstance(event, Person.Registered):
            self.persons.append(event.originator_id)
        if isinstance(event, LocalIdIndex.Created) or (
            isinstance(event, ListIndex.Created) and event.key.startswith(DUPLICATES)
        ):
            self.dropped.add(event.originator_id)
        return event.originator_id in self.dropped


def _remade(
    persons: list[UUID], found: Repository[UUID], blind: BlindIndex, opener: Opener
) -> list[Aggregate]:
    """The lookups of ``persons`` (their likely duplicates, their local ids) as intake makes
    them now: under blind keys; none for a person erased."""
    lists: dict[str, ListIndex] = {}
    linked: list[Aggregate] = []
    for person_id in persons:
        person: object = found.get(person_id)
        assert isinstance(person, Person)
        if person.erased is not None:
            continue
        listed = duplicates_list_key(person, blind, opener)
        if listed is not None:
            lists.setdefault(listed, ListIndex(listed)).add(person.id)
        linked += [
            LocalIdIndex.of(blind, agency, local_id, person.id)
            for agency, local_id in person.local_ids.items()
        ]
    return [*lists.values(), *linked]


class _Journal:
    """The views' journal: each entry's message replaced by the one the relay now publishes
    for its event, keeping its position (what audit entries name) and its trace."""

    def __init__(self, views: ViewStore) -> None:
        self._views = views

    def rewrite(self, messages: Mapping[str, CloudEvent]) -> int:
        if not messages:
            return 0
        ids = sorted(messages)
        with self._views.database.transaction() as tx:
            rows = tx.fetchall(
                f"SELECT event_id, body FROM event_journal WHERE event_id IN "
                f"({', '.join('?' * len(ids))})",
                ids,
            )
            for row in rows:
                old = CloudEvent.from_bytes(str(row["body"]).encode())
                new = messages[row["event_id"]].model_copy(
                    update={"traceparent": old.traceparent, "tracestate": old.tracestate}
                )
                tx.execute(
                    "UPDATE event_journal SET body = ? WHERE event_id = ?",
                    (new.to_bytes().decode(), row["event_id"]),
                )
        return len(rows)


@dataclass
class _Service:
    """One command service's stores during the upgrade."""

    name: str
    places: _Places
    transcoder: Transcoder
    app_name: str
    published: tuple[Published, ...]

    def open(self, which: str) -> _Store:
        return _Store(self.places.env(which), self.app_name, self.transcoder)


def _service(settings: Settings, name: str) -> _Service:
    spec = COMMAND_SERVICES[name]
    # Built once to learn how the service's events are read: its transcodings and its table.
    app = spec.application(settings, None)
    try:
        env = eventstore_env(settings, name)
        places: _Places
        if settings.database_url:
            assert isinstance(app.recorder, PostgresApplicationRecorder)
            places = _PostgresSchemas(settings.database_url, env, app.recorder.events_table_name)
        else:
            places = _SqliteFiles(env)
        return _Service(name, places, app.mapper.transcoder, app.name, spec.published)
    finally:
        app.close()


def _differences(service: _Service, kept: _Store, live: _Store) -> list[str]:
    """How ``live`` is not the sealed copy of ``kept``: the same events in the same order
    (by originator id, version, topic and timestamp; intake's rekeyed index aggregates
    aside), then any made since, with no personal value in clear. Empty if it is."""
    probe = _Counting(_scratch_keys(), sealing=False)
    probing = Sealing(service.published, probe)
    dropping = _Dropping()
    found = live.events()
    compared = 0
    for _, event, _ in kept.events():
        if dropping.drops(event):
            continue
        copied = next(found, None)
        if copied is None:
            return [f"the live store ends after {compared} events; the old one has more"]
        _, new, _ = copied
        probing.seal(new)
        if _identity(new) != _identity(event):
            return [f"event {compared + 1} is {_identity(new)}, not {_identity(event)}"]
        compared += 1
    for _, new, _ in found:
        probing.seal(new)
    return [f"{probe.found} personal values in clear"] if probe.found else []


def _identity(event: DomainEventProtocol[UUID]) -> tuple[Any, ...]:
    assert isinstance(event, DomainEvent)
    return (event.originator_id, event.originator_version, type(event), event.timestamp)


def _still_old(kept: _Store, live: _Store) -> bool:
    """Whether ``live`` holds exactly the events of ``kept`` still, or none at all."""
    if not live.recorder.select_notifications(start=None, limit=1):
        return True
    pairs = zip_longest(kept.notifications(), live.notifications())
    return all(a is not None and b is not None and _stored(a) == _stored(b) for a, b in pairs)


def _stored(event: StoredEvent) -> tuple[Any, ...]:
    return (event.originator_id, event.originator_version, event.topic, bytes(event.state))


def _clear_values(service: _Service, store: _Store) -> int:
    probe = _Counting(_scratch_keys(), sealing=False)
    probing = Sealing(service.published, probe)
    for _, event, _ in store.events():
        probing.seal(event)
    return probe.found


def _copy(
    service: _Service,
    kept: _Store,
    staging: _Store,
    keys: KeyStore,
    blind: BlindIndex,
    journal: _Journal,
) -> Outcome:
    """Every event of ``kept`` into ``staging``, sealed, in order; intake's personal index
    aggregates made again after them."""
    outcome = Outcome(service.name, "upgraded")
    counting = _Counting(keys)
    sealing = staging.mapper_sealing(Sealing(service.published, counting))
    # A person erased before the upgrade (by this version, started before it ran) has no key
    # to seal under: their values are sealed under keys nobody keeps, erased all the same.
    shredding = staging.mapper_sealing(Sealing(service.published, Sealer(_scratch_keys())))

    def sealed(event: DomainEventProtocol[UUID], carrier: dict[str, str]) -> StoredEvent:
        try:
            return sealing.store(event, carrier)
        except Conflict:
            outcome.shredded_events += 1
            return shredding.store(event, carrier)

    translate = COMMAND_SERVICES[service.name].translate
    dropping = _Dropping()
    page: list[StoredEvent] = []
    for _, event, carrier in kept.events():
        outcome.events += 1
        if dropping.drops(event):
            continue
        page.append(sealed(event, carrier))
        if len(page) >= PAGE:
            outcome.journal_entries += _write(staging, page, translate, journal)
            page = []
    made = _remade(dropping.persons, kept.repository(), blind, Opener(keys))
    page += [sealed(e, {}) for aggregate in made for e in aggregate.collect_events()]
    outcome.indexes_dropped, outcome.indexes_made = len(dropping.dropped), len(made)
    outcome.journal_entries += _write(staging, page, translate, journal)
    outcome.sealed_values = counting.found
    return outcome


def _write(
    staging: _Store, page: list[StoredEvent], translate: Translate, journal: _Journal
) -> int:
    """``page`` stored; the journal's entries for its events given their new messages."""
    if not page:
        return 0
    staging.recorder.insert_events(page)
    # What the relay will publish for each of them, read back as it will read them.
    messages = {
        message.id: message
        for stored in page
        if (message := translate(staging.mapper.decode(stored)[0])) is not None
    }
    return journal.rewrite(messages)


def _upgrade_service(
    service: _Service, keys: KeyStore, blind: BlindIndex, journal: _Journal
) -> tuple[Outcome, bool]:
    """The service's old store kept, and copied, sealed, into its staging store (unless there
    is nothing to do); whether the staging store is to become the live one."""
    places = service.places
    if not places.kept():
        with contextlib.closing(service.open(LIVE)) as live:
            events = sum(1 for _ in live.notifications())
            clear = _clear_values(service, live)
        if not clear:
            return Outcome(service.name, "nothing to upgrade", events=events), False
        places.keep()
    with contextlib.closing(service.open(KEPT)) as kept:
        with contextlib.closing(service.open(LIVE)) as live:
            if not _differences(service, kept, live):
                events = sum(1 for _ in kept.notifications())
                return Outcome(service.name, "already upgraded", events=events), False
            if not _still_old(kept, live):
                raise UpgradeRefused(
                    f"{service.name}: the live store {places.describe(LIVE)} is neither the old "
                    f"store kept in {places.describe(KEPT)} nor its sealed copy (did a service "
                    "store events since?): stop every process, delete the kept copy, run again"
                )
        places.clear_staging()
        with contextlib.closing(service.open(STAGING)) as staging:
            outcome = _copy(service, kept, staging, keys, blind, journal)
            problems = _differences(service, kept, staging)
    if problems:
        raise UpgradeRefused(f"{service.name}: the sealed copy differs: {problems[0]}")
    return outcome, True


def _verified_drop(service: _Service) -> bool:
    if not service.places.kept():
        return False
    kept, live = service.open(KEPT), service.open(LIVE)
    try:
        problems = _differences(service, kept, live)
    finally:
        kept.close()
        live.close()
    if problems:
        raise UpgradeRefused(
            f"{service.name}: the old store {service.places.describe(KEPT)} is kept: the live "
            f"store is not its sealed copy ({problems[0]})"
        )
    service.places.drop_kept()
    return True


def _empty_feeds(settings: Settings) -> list[str]:
    """Every feed's tables dropped (the purge history and the journal kept), to be rebuilt
    from the new topics; SQLite's files then hold no copy of what they held."""
    for name in FEEDS:
        store = feed_store(settings, name)
        try:
            store.reset(keep=KEEP)
            store.database.scrub()
        finally:
            store.database.close()
    return list(FEEDS)


def _new_topics(settings: Settings, prefix: str) -> list[str]:
    """The new topics made; the signed audit checkpoints copied to the new prefix's topic, as
    they are (the chain they sign is not changed); the old topics, left to delete."""
    assert settings.kafka_bootstrap_servers
    servers = settings.kafka_bootstrap_servers
    old, new = Topics(settings.topic_prefix), Topics(prefix)
    declare_topics(replace(settings, topic_prefix=prefix))
    source = KafkaCheckpoints(servers, old.audit_checkpoints)
    target = KafkaCheckpoints(servers, new.audit_checkpoints)
    there = sum(1 for _ in target.records())
    missing = [text for _, text in source.records()][there:]
    if missing:
        publisher = KafkaPublisher(servers)
        try:
            publisher.publish(
                [Message(new.audit_checkpoints, _municipality(t), t.encode()) for t in missing]
            )
        finally:
            publisher.close()
    return [*(old.events(s) for s in SERVICES), old.dead_letter]


def _municipality(checkpoint: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(checkpoint).get("municipality", ""))
    return ""


def upgrade(settings: Settings, *, topic_prefix: str | None, drop_old: bool) -> Report:
    """Upgrade every command service's store; ``topic_prefix``: the new topics (distributed
    mode, required when a store is upgraded); ``drop_old``: delete the kept old stores once
    each live store is their verified sealed copy. Every process of the deployment must be
    stopped while it runs."""
    if settings.distributed and not settings.kafka_bootstrap_servers:
        raise UpgradeRefused("distributed mode: set KAFKA_BOOTSTRAP_SERVERS too")
    if not settings.distributed and topic_prefix is not None:
        raise UpgradeRefused("embedded mode has no topics: run without --topic-prefix")
    if topic_prefix is not None and topic_prefix == settings.topic_prefix:
        raise UpgradeRefused(f"the new topic prefix must differ from {settings.topic_prefix!r}")
    services = {name: _service(settings, name) for name in COMMAND_SERVICES}
    report = Report()
    keys = key_store(settings)
    blind = blind_index(keys)
    views = feed_store(settings, "projection")
    staged: list[_Service] = []
    try:
        for service in services.values():
            outcome, publish = _upgrade_service(service, keys, blind, _Journal(views))
            report.services.append(outcome)
            if publish:
                staged.append(service)
    finally:
        views.database.close()
        keys.close()
    if report.upgraded:
        if settings.distributed:
            if topic_prefix is None:
                raise UpgradeRefused(
                    "the relays must publish the sealed events to new topics: give "
                    "--topic-prefix, then run every process with TSUNAGU_TOPIC_PREFIX set to it"
                )
            report.old_topics = _new_topics(settings, topic_prefix)
            report.topic_prefix = topic_prefix
        # Before any live store changes: a crash after leaves the next run all to do again.
        for name in COMMAND_SERVICES:
            position = relay_position(settings, name)
            position.set(0)
            position.close()
        report.feeds_emptied = _empty_feeds(settings)
        for service in staged:
            service.places.publish()
    if drop_old:
        for outcome in report.services:
            outcome.old_store_dropped = _verified_drop(services[outcome.service])
    return report
