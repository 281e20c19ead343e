"""The view store: applies projector changes, once per event id, many events per transaction.

A batch of events is applied in one transaction: the events' ids are claimed, each new event's
projectors run against the views as the events before it in the batch left them (rows read once,
then overlaid with the batch's changes), and the changes are written together at the end, with
the feed's position and the event journal. A crash before the commit leaves nothing of the batch;
after it, the position says so, and a redelivered event is dropped by its id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from services.feeds.changes import Change, Delete, ViewState
from services.platform.sql import Database, Row, Transaction

PROCESSED = """CREATE TABLE IF NOT EXISTS processed_event (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL
)"""
# Where the feed has got to in each topic partition, written with the rows themselves.
POSITION = """CREATE TABLE IF NOT EXISTS feed_position (
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, part)
)"""

# Every event a journalled store applied, in the order its transaction committed: what a
# disclosure replay re-derives a response from. ``seq`` is the position an audit entry records.
# A rebuild keeps it: the positions already recorded must keep naming the same events.
JOURNAL = (
    """CREATE TABLE IF NOT EXISTS event_journal (
        seq BIGINT PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT,
        part INTEGER,
        kafka_offset BIGINT,
        partition_key TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Journalled:
    """The message an event came in, as the journal keeps it."""

    partition_key: str
    body: bytes
    position: Position | None = None


@dataclass(frozen=True)
class Applying:
    """One event of a batch: its id, and the changes its projectors make to the views."""

    event_id: str
    event_type: str
    changes: Callable[[ViewState], Sequence[Change]]
    journalled: Journalled | None = None


def _journal(tx: Transaction, entries: Sequence[tuple[str, Journalled]]) -> None:
    """The batch's events, numbered on from the last seq in the order applied; a rebuild
    applies journalled events again: they keep their number, and take no new one."""
    rows = [_journal_row(event_id, entry) for event_id, entry in entries]
    tx.append_numbered("event_journal", "seq", _JOURNALLED, rows)


def _journal_row(event_id: str, entry: Journalled) -> tuple[Any, ...]:
    """What the journal keeps of an event, but its number: ``_JOURNALLED``'s columns."""
    at = entry.position
    return (
        event_id,
        at.topic if at else None,
        at.partition if at else None,
        at.offset if at else None,
        entry.partition_key,
        entry.body.decode("utf-8"),
    )


def journal_position(tx: Transaction) -> int:
    """The last journalled event a transaction sees: the state a response was built from."""
    row = tx.fetchone("SELECT MAX(seq) AS seq FROM event_journal")
    return int(row["seq"]) if row and row["seq"] is not None else 0


def _advance(tx: Transaction, positions: Collection[Position]) -> None:
    """Move each partition's position past its message: one each, in one statement."""
    if not positions:
        return
    tx.execute(
        "INSERT INTO feed_position (topic, part, next_offset) VALUES "
        f"{', '.join('(?, ?, ?)' for _ in positions)} "
        "ON CONFLICT (topic, part) DO UPDATE SET next_offset = excluded.next_offset "
        "WHERE excluded.next_offset > feed_position.next_offset",
        [v for p in positions for v in (p.topic, p.partition, p.offset + 1)],
    )


def _created_table(statement: str) -> str | None:
    words = statement.split()
    if words[:5] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"]:
        return words[5].split("(")[0]
    return None


@dataclass(frozen=True)
class Schema:
    """A table as its DDL declares it: its columns with their SQL types, and its key."""

    name: str
    types: dict[str, str]
    key: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)  # column -> its DEFAULT's value


def _parts(body: str) -> list[str]:
    """The comma-separated parts of a CREATE TABLE body (a key's own commas kept)."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:at].strip())
            start = at + 1
    parts.append(body[start:].strip())
    return parts


def schema(statement: str) -> Schema | None:
    """The table a CREATE TABLE statement declares; None for any other statement."""
    name = _created_table(statement)
    if name is None:
        return None
    types: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    key: tuple[str, ...] = ()
    for part in _parts(statement[statement.index("(") + 1 : statement.rindex(")")]):
        words = part.split()
        if words[:2] == ["PRIMARY", "KEY"]:
            inner = part[part.index("(") + 1 : part.rindex(")")]
            key = tuple(column.strip() for column in inner.split(","))
        elif words[0] not in ("UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT"):
            types[words[0]] = words[1].lower()
            if "PRIMARY KEY" in part:
                key = (words[0],)
            if "DEFAULT" in words:
                given = words[words.index("DEFAULT") + 1].rstrip(",")
                defaults[words[0]] = int(given) if given.lstrip("-").isdigit() else given.strip("'")
    return Schema(name, types, key, defaults)


# The journal's columns but its number, with their SQL types: what ``_journal_row`` gives.
_JOURNALLED = {
    column: sql_type
    for column, sql_type in cast(Schema, schema(JOURNAL[0])).types.items()
    if column != "seq"
}


# A shape is the sorted names of the columns a read matches on; its values follow that order.
Shape = tuple[str, ...]
_Op = tuple[bool, dict[str, Any] | None]  # (stored row discarded first, values; None: deleted)
_Keyed = tuple[tuple[Any, ...], Row]  # a stored row and its key


def _keyed(table: Schema, rows: list[Row]) -> list[_Keyed]:
    # itemgetter rather than a generator per row: a batch keys every stored row of the persons
    # it touches, and this was an eighth of a catch-up's time (py-spy, B3).
    if len(table.key) == 1:
        [column] = table.key
        return [((row[column],), row) for row in rows]
    key = itemgetter(*table.key)
    return [(key(row), row) for row in rows]


def column_value(value: Any) -> Any:
    """A column's value as written: a record the projectors keep as a dict (a person's facts
    of one category) goes as JSON text, encoded once per batch rather than once per event."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


class _Batch:
    """The views as a batch's transaction will leave them, for the projectors to read.

    Stored rows are read at most once per batch (the store pre-reads, in one query per table,
    the rows the projectors read by a column for every value the batch names); the changes of
    the events applied so far lie over them, indexed by the columns they are read by. Only
    ``write`` sends changes to the database: one statement per table and column set.
    """

    def __init__(
        self, tx: Transaction, tables: Mapping[str, Schema], learned: set[tuple[str, str]]
    ) -> None:
        self._tx, self._tables, self._learned = tx, tables, learned
        # table -> shape -> values -> the stored rows matching, each with its key
        self._stored: dict[str, dict[Shape, dict[tuple[Any, ...], list[_Keyed]]]] = {}
        self._overlay: dict[str, dict[tuple[Any, ...], Row | None]] = {}
        self._index: dict[str, dict[Shape, dict[tuple[Any, ...], dict[tuple[Any, ...], None]]]]
        self._index = {}
        self._ops: dict[str, dict[tuple[Any, ...], _Op]] = {}
        # column -> the values the batch's events name (``warm``)
        self._named: dict[str, Collection[Any]] = {}

    # --- reading ---------------------------------------------------------------------------

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self.rows(table, key)
        return found[0] if found else None

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        shape = tuple(sorted(where))
        values = tuple(where[column] for column in shape)
        stored = self._read(table, shape, values)
        overlay = self._overlay.get(table)
        if not overlay:
            return [row for _, row in stored]
        found = [row for pk, row in stored if pk not in overlay]
        for pk in self._indexed(table, shape).get(values, ()):
            row = overlay[pk]
            assert row is not None
            found.append(row)
        return found

    def warm(self, column: str, values: Collection[Any]) -> None:
        """Read, one query per table, the rows of ``values`` the projectors read by ``column``.

        Tables the projectors have read by ``column`` before (with or without other columns)
        are read now; one first read by it later in the batch is read then, for all ``values``.
        Either way the table needs an index that starts with ``column``.
        """
        self._named[column] = values
        for table in sorted(t for t, c in self._learned if c == column):
            self._warm_table(table, column, values)

    def _warm_table(self, table: str, column: str, values: Collection[Any]) -> None:
        known = self._stored.setdefault(table, {}).setdefault((column,), {})
        wanted = list(dict.fromkeys(value for value in values if (value,) not in known))
        for value in wanted:
            known[(value,)] = []
        schema = self._tables[table]
        rows = self._tx.select_in(table, column, schema.types[column], wanted)
        for keyed in _keyed(schema, rows):
            known[(keyed[1][column],)].append(keyed)

    def _read(self, table: str, shape: Shape, values: tuple[Any, ...]) -> list[_Keyed]:
        """The stored rows matching, as the transaction found them (nothing is written yet)."""
        known = self._stored.setdefault(table, {})
        found = known.get(shape, {}).get(values)
        if found is not None:
            return found
        wanted = dict(zip(shape, values, strict=True))
        # A read already made on fewer of these columns holds every row this one can match.
        for fewer, by_values in known.items():
            if fewer != shape and set(fewer) <= set(wanted):
                rows = by_values.get(tuple(wanted[c] for c in fewer))
                if rows is not None:
                    rest = [(c, v) for c, v in wanted.items() if c not in fewer]
                    return [
                        (pk, r)
                        for pk, r in rows
                        if all(v is not None and r[c] == v for c, v in rest)
                    ]
        for column in shape:
            if column in self._named and (table, column) not in self._learned:
                # Without this, the first batch would read a row at a time (a catch-up's first
                # batch of 50,000 read referral lines in 24,000 queries).
                self._learned.add((table, column))
                self._warm_table(table, column, self._named[column])
                return self._read(table, shape, values)
        clause = " AND ".join(f"{column} = ?" for column in shape) or "1 = 1"
        selected = self._tx.fetchall(f"SELECT * FROM {table} WHERE {clause}", values)
        found = known.setdefault(shape, {})[values] = _keyed(self._tables[table], selected)
        self._learned.update((table, column) for column in shape)
        return found

    def _indexed(
        self, table: str, shape: Shape
    ) -> dict[tuple[Any, ...], dict[tuple[Any, ...], None]]:
        indexes = self._index.setdefault(table, {})
        index = indexes.get(shape)
        if index is None:
            index = indexes[shape] = {}
            for pk, row in self._overlay.get(table, {}).items():
                if row is not None:
                    index.setdefault(tuple(row.get(c) for c in shape), {})[pk] = None
        return index

    # --- changing ---------------------------------------------------------------------------

    def stage(self, changes: Sequence[Change]) -> None:
        """Lay changes over the views, as whatever runs next in the batch will see them."""
        for change in changes:
            table = self._tables[change.table]
            pk = tuple(change.key[column] for column in table.key)
            ops = self._ops.setdefault(table.name, {})
            if isinstance(change, Delete):
                ops[pk] = (True, None)
                self._put(table.name, pk, None)
                continue
            earlier = ops.get(pk)
            if earlier is None:
                ops[pk] = (False, dict(change.values))
            elif earlier[1] is None:
                ops[pk] = (True, dict(change.values))
            else:
                ops[pk] = (earlier[0], {**earlier[1], **change.values})
            row = {**change.key, **change.values}
            if len(row) < len(table.types):
                # Some columns keep what they held: the row as it stands underneath.
                row = {**(self._current(table, pk) or {}), **row}
            self._put(table.name, pk, row)

    def _current(self, table: Schema, pk: tuple[Any, ...]) -> Row | None:
        overlay = self._overlay.get(table.name, {})
        if pk in overlay:
            return overlay[pk]
        where = dict(zip(table.key, pk, strict=True))
        shape = tuple(sorted(where))
        found = self._read(table.name, shape, tuple(where[c] for c in shape))
        return found[0][1] if found else None

    def _put(self, table: str, pk: tuple[Any, ...], row: Row | None) -> None:
        overlay = self._overlay.setdefault(table, {})
        before = overlay.get(pk)
        for shape, index in self._index.get(table, {}).items():
            if before is not None:
                index[tuple(before.get(c) for c in shape)].pop(pk, None)
            if row is not None:
                index.setdefault(tuple(row.get(c) for c in shape), {})[pk] = None
        overlay[pk] = row

    def write(self) -> None:
        """Send every staged change: deletions first, then one upsert per set of columns.

        Rows go in the order the batch first changed them, as one event at a time would have
        inserted them: stored order is what an unordered read gives back.
        """
        for name, staged in self._ops.items():
            table, ops = self._tables[name], list(staged.items())
            gone = [pk for pk, (discarded, _) in ops if discarded]
            if gone:
                self._tx.delete_many(table.name, table.key, gone)
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
            for pk, (_, values) in ops:
                if values is not None:
                    groups[tuple(values)].append(pk + tuple(map(column_value, values.values())))
            for columns, rows in groups.items():
                self._tx.upsert_many(table.name, table.key, columns, rows)


class ViewStore:
    """Tables kept by projectors, each event applied once; ``tables`` is their DDL."""

    def __init__(self, database: Database, tables: Sequence[str], *, journal: bool = False) -> None:
        self.database = database
        self.journalled = journal
        with database.transaction() as tx:
            # Replicas starting together would race on CREATE TABLE IF NOT EXISTS (a unique
            # violation in PostgreSQL's catalogue): one creates, the others wait for it.
            tx.take_turn("tsunagu view store DDL")
            for statement in (PROCESSED, POSITION, *(JOURNAL if journal else ()), *tables):
                tx.execute(statement)
        self._tables = tuple(tables)
        self._schema = {t.name: t for t in map(schema, tables) if t is not None}
        # (table, column) the projectors read rows by: what the next batch reads up front.
        self._learned: set[tuple[str, str]] = set()

    def apply(
        self,
        event_id: str,
        event_type: str,
        changes: Callable[[ViewState], Sequence[Change]],
        position: Position | None = None,
        journalled: Journalled | None = None,
    ) -> bool:
        """Apply the changes unless this event id was applied before; True if applied.

        The position moves in the same transaction, duplicate or not: after a crash the views
        and the position agree, and a redelivered event is dropped by its id. A journalled
        store also keeps the event itself (``journalled``), in the same transaction.
        """
        [applied] = self.apply_batch(
            [Applying(event_id, event_type, changes, journalled)],
            [position] if position is not None else [],
        )
        return applied

    def apply_batch(
        self,
        events: Sequence[Applying],
        positions: Iterable[Position] = (),
        warm: Mapping[str, Collection[Any]] | None = None,
    ) -> list[bool]:
        """Apply each event not applied before, in order, in one transaction; which were.

        Each event's projectors see the views as the events before it left them. ``positions``
        are the messages the batch moves past (dead letters included); ``warm`` names, per
        column, the values the projectors are about to read rows by (the persons).
        """
        with self.database.transaction() as tx:
            last: dict[tuple[str, int], Position] = {}
            for position in positions:
                at = (position.topic, position.partition)
                if at not in last or last[at].offset < position.offset:
                    last[at] = position
            _advance(tx, last.values())
            fresh = self._claim(tx, events)
            batch = _Batch(tx, self._schema, self._learned)
            for column, values in (warm or {}).items():
                batch.warm(column, values)
            applied = []
            for event in events:
                first_time = event.event_id in fresh
                fresh.discard(event.event_id)
                applied.append(first_time)
                if first_time:
                    batch.stage(event.changes(batch))
            batch.write()
            if self.journalled:
                entries = [
                    (e.event_id, e.journalled)
                    for e, done in zip(events, applied, strict=True)
                    if done and e.journalled is not None
                ]
                _journal(tx, entries)
        return applied

    def _claim(self, tx: Transaction, events: Sequence[Applying]) -> set[str]:
        """The ids of ``events`` never applied before, now recorded as applied."""
        first: dict[str, str] = {}
        for event in events:
            first.setdefault(event.event_id, event.event_type)
        return tx.insert_new("processed_event", ("event_id", "event_type"), list(first.items()))

    def apply_now(self, changes: Callable[[ViewState], Sequence[Change]]) -> None:
        """Apply changes that no event carries (what a swept basis end took): nothing to
        dedupe, in a transaction of their own."""
        with self.database.transaction() as tx:
            batch = _Batch(tx, self._schema, self._learned)
            batch.stage(changes(batch))
            batch.write()

    def advance(self, position: Position) -> None:
        """Move past a message that changed no view (a dead letter)."""
        with self.database.transaction() as tx:
            _advance(tx, [position])

    def positions(self) -> dict[tuple[str, int], int]:
        with self.database.transaction() as tx:
            rows = tx.fetchall("SELECT topic, part, next_offset FROM feed_position")
        return {(r["topic"], int(r["part"])): int(r["next_offset"]) for r in rows}

    def reset(self, keep: Sequence[str] = ()) -> None:
        """Drop every table this store keeps (but ``keep``) and start empty: for a rebuild."""
        with self.database.transaction() as tx:
            for statement in (PROCESSED, POSITION, *self._tables):
                name = _created_table(statement)
                if name is not None and name not in keep:
                    tx.execute(f"DROP TABLE IF EXISTS {name}")
            for statement in (PROCESSED, POSITION, *self._tables):
                tx.execute(statement)

    def count(self, table: str) -> int:
        with self.database.transaction() as tx:
            row = tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
        return int(row["n"]) if row else 0
