"""Group commit for the PostgreSQL event store: concurrent saves share one transaction.

`eventsourcing` serialises writers with a table lock, so that notification ids are committed in
order; one save per transaction then caps a service at the rate one connection can lock, insert
and commit. Here the saves that arrive while a transaction is in flight wait, and the next
transaction writes them all: one lock, one INSERT and one commit for the group. A save still
returns only once its own events are committed, and the order of ids still matches commit
order. Nothing else changes: no thread of its own, and the same errors for the same saves.

A group is written by one statement on an autocommit connection, a function that locks, inserts
and notifies: the lock is then held only for the server's own work and the commit. Written as
`eventsourcing` writes (lock, insert, then commit, each sent by the client), the lock was held
while the writing process waited for its interpreter between statements: under B1's load a
backend sat "idle in transaction" three quarters of the time, and every other writer waited.

The same statement stores the data keys of the subjects the group's saves create
(``KeyStore.stored_with_events``), in the key store's schema on the same database, before it
takes the lock: an event is never committed without its key, nor a key without its event, and
a new subject costs a command no transaction of its own. A key that finds its subject with one
already fails its save alone (``DataKeyExists``), having stored nothing; the application seals
it again with the key on record. And a key wrapped under a key-encryption key that a
rotation has since replaced is refused, with the whole group (``KeyRotated``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.errors import RaiseException, UniqueViolation
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from services.platform.keys import (
    KEY_CHECK_TURN,
    KEY_SCHEMA,
    ROTATED,
    DataKeyExists,
    KeyRotated,
    KeyStore,
    NewKey,
    NewKeys,
)

# Bounds one transaction's size, so that a burst does not become one very long lock.
MAX_GROUP_EVENTS = 1000


class _Save:
    """One caller's events, and what became of them."""

    def __init__(self, events: Sequence[StoredEvent], keys: Sequence[NewKey]) -> None:
        self.events, self.keys = events, keys
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None
        self.done = False
        # Set when the save is done, or when its caller is to write the next group.
        self.woken = threading.Event()

    def finish(self, ids: Sequence[int] | None, error: BaseException | None) -> None:
        self.ids, self.error, self.done = ids, error, True
        self.woken.set()


class GroupCommitRecorder(PostgresApplicationRecorder):
    """An application recorder whose concurrent ``insert_events`` calls commit together.

    The first caller to find no transaction in flight leads: it writes every waiting save in one
    transaction, then hands the lead to the oldest save that arrived meanwhile, if any.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._waiting: deque[_Save] = deque()
        self._leading = False
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        self._function = f"tsunagu_insert_locked_{self.datastore.originator_id_type}"
        # As eventsourcing's own insert function, with the table lock taken inside it; the new
        # subjects' keys stored first, off the lock. A key whose subject has one already
        # (another process's, an erasure's tombstone) undoes the whole statement.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[], "
                "key_subjects text[], key_wrapped text[], key_created text[], "
                "key_checks text[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "DECLARE stored bigint; BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "IF cardinality(key_subjects) > 0 THEN "
                "PERFORM pg_advisory_xact_lock_shared(hashtext({key_check_turn})); "
                "IF EXISTS (SELECT FROM unnest(key_checks) AS made(c) WHERE c IS DISTINCT FROM "
                "(SELECT wrapped FROM {keys}.key_check WHERE id = 1)) THEN "
                "RAISE EXCEPTION {rotated}; "
                "END IF; "
                "INSERT INTO {keys}.data_key (subject, wrapped, created_at) "
                "SELECT * FROM unnest(key_subjects, key_wrapped, key_created) "
                "ON CONFLICT (subject) DO NOTHING; "
                "GET DIAGNOSTICS stored = ROW_COUNT; "
                "IF stored < cardinality(key_subjects) THEN "
                "RAISE unique_violation USING MESSAGE = 'a new subject has a data key already', "
                "SCHEMA = {keys_name}, TABLE = 'data_key'; "
                "END IF; END IF; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} AS t "
                "(originator_id, originator_version, topic, state) "
                "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
                "RETURNING notification_id; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=Identifier(self._function),
                event=Identifier(self.stored_event_type_name),
                lock_timeout=self.datastore.lock_timeout,
                keys=Identifier(KEY_SCHEMA),
                keys_name=Literal(KEY_SCHEMA),
                key_check_turn=Literal(KEY_CHECK_TURN),
                rotated=Literal(ROTATED),
                table=table,
                channel=Identifier(self.channel_name),
            )
        )
        self._insert_locked = SQL("SELECT * FROM {schema}.{function}(%s, %s, %s, %s, %s)").format(
            schema=schema, function=Identifier(self._function)
        )

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # Processes starting together (``serve --workers``) each replace the same functions:
        # concurrent CREATE OR REPLACE FUNCTION fails with "tuple concurrently updated".
        # One at a time, then; the lock is released with the transaction.
        curs.execute("SELECT pg_advisory_xact_lock(hashtext('tsunagu event store DDL'))")
        super()._create_table(curs)

    def stores_keys_of(self, keys: KeyStore) -> bool:
        """Whether this recorder's transactions reach ``keys``' own table (the same database
        and schema): only then may it be handed the new subjects' keys of a save."""
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            table = f"{KEY_SCHEMA}.key_check"
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (table,))
            found = cursor.fetchone()
            if found is None or not found["found"]:
                return False
            cursor.execute(
                SQL("SELECT wrapped FROM {}.key_check WHERE id = 1").format(Identifier(KEY_SCHEMA))
            )
            check = cursor.fetchone()
        return check is not None and check["wrapped"] == keys.check

    def insert_events(
        self, stored_events: Sequence[StoredEvent], new_keys: NewKeys | None = None, **kwargs: Any
    ) -> Sequence[int] | None:
        """``new_keys``: the keys of the subjects these events create, stored with them."""
        keys = new_keys.rows() if new_keys is not None else []
        if not stored_events or any(value is not None for value in kwargs.values()):
            if keys:
                raise ValueError("new data keys are stored with events saved without tracking")
            # Tracking records belong to one transaction each: nothing to share.
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        mine = _Save(stored_events, keys)
        with self._lock:
            self._waiting.append(mine)
            follow, self._leading = self._leading, True
        if follow:
            mine.woken.wait()
        if not mine.done:
            self._lead()
        if mine.error is not None:
            raise mine.error
        return mine.ids

    def _lead(self) -> None:
        group: list[_Save] = []
        try:
            with self._lock:
                size = 0
                while self._waiting and (not group or size < MAX_GROUP_EVENTS):
                    group.append(self._waiting.popleft())
                    size += len(group[-1].events)
            self._write(group)
        finally:
            for save in group:
                if not save.done:
                    save.finish(None, RuntimeError("the group commit was interrupted"))
            with self._lock:
                if self._waiting:
                    self._waiting[0].woken.set()
                else:
                    self._leading = False

    def _write(self, group: list[_Save]) -> None:
        try:
            ids: Sequence[int] | None = self._insert_group(
                [event for save in group for event in save.events],
                keys=[key for save in group for key in save.keys],
            )
        except IntegrityError as clash:
            if len(group) == 1:
                group[0].finish(None, DataKeyExists(str(clash)) if _of_a_key(clash) else clash)
                return
            # One save's conflict must not fail the others: write each on its own.
            for save in group:
                self._write([save])
            return
        except Exception as error:
            if _rotated(error):
                error = KeyRotated()
            for save in group:
                save.finish(None, error)
            return
        start = 0
        for save in group:
            end = start + len(save.events)
            save.finish(ids[start:end] if ids is not None else None, None)
            start = end

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_group(
        self, events: Sequence[StoredEvent], *, keys: Sequence[NewKey]
    ) -> Sequence[int]:
        """Insert the events and the keys in one statement, its own transaction; the events'
        notification ids."""
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in events
        ]
        # In one order of subjects, whoever stores them: two groups storing the same subjects
        # then never each hold a row the other waits for.
        ordered = sorted(keys, key=lambda key: str(key.subject))
        columns = (
            [str(key.subject) for key in ordered],
            [key.wrapped for key in ordered],
            [key.created_at.isoformat() for key in ordered],
            [key.check for key in ordered],
        )
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._insert_locked, (rows, *columns), prepare=True)
            return [row[self._function] for row in cursor.fetchall()]


def _of_a_key(clash: IntegrityError) -> bool:
    """Whether ``clash`` is a new key finding its subject with one already, not an event's."""
    cause = clash.__cause__
    return isinstance(cause, UniqueViolation) and cause.diag.table_name == "data_key"


def _rotated(error: Exception) -> bool:
    """Whether ``error`` is the statement refusing keys wrapped under a rotated-out key."""
    cause = error.__cause__
    return isinstance(cause, RaiseException) and cause.diag.message_primary == ROTATED
