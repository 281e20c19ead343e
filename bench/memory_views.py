"""The views held in dicts: what a catch-up's own work costs with no database at all.

B3's ceiling feeds each replica's share to the projectors a catch-up runs, as ``tsunagu views
rebuild`` does, but over ``MemoryViews`` rather than the view store: nothing is claimed,
journalled or written. Its rate bounds what any storage of these views could reach with these
projectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.envelope import CloudEvent
from contracts.events import parse
from services.feeds.changes import Change, Prepares, Projector, Upsert
from services.feeds.store import schema
from services.platform.bus import Message
from services.platform.collector import freeze_long_lived, paused
from services.platform.sql import Row

_Key = tuple[Any, ...]


class MemoryViews:
    """Rows by table and key, read by equality on any columns (an index built at first use).

    Changes apply as the view store applies them: an upsert sets its columns over the row (or
    makes it), a delete removes it.
    """

    def __init__(self, tables: Sequence[str]) -> None:
        declared = [t for t in map(schema, tables) if t is not None]
        self._keys = {t.name: t.key for t in declared}
        # A read by exactly the key's columns, in any order, is a lookup, not an index.
        self._sorted_keys = {t.name: tuple(sorted(t.key)) for t in declared}
        self._defaults = {t.name: t.defaults for t in declared}
        self._rows: dict[str, dict[_Key, Row]] = {name: {} for name in self._keys}
        # table -> columns read by -> their values -> keys of the rows holding them
        self._indexes: dict[str, dict[tuple[str, ...], dict[_Key, set[_Key]]]] = {
            name: {} for name in self._keys
        }

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._rows[table].get(tuple(key[c] for c in self._keys[table]))

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        columns = tuple(sorted(where))
        if columns == self._sorted_keys[table]:
            found = self.get(table, where)
            return [found] if found is not None else []
        index = self._indexes[table].get(columns)
        if index is None:
            index = self._indexes[table][columns] = {}
            for key, row in self._rows[table].items():
                index.setdefault(tuple(row.get(c) for c in columns), set()).add(key)
        stored = self._rows[table]
        return [stored[key] for key in index.get(tuple(where[c] for c in columns), ())]

    def apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            stored = self._rows[change.table]
            key = tuple(change.key[c] for c in self._keys[change.table])
            old = stored.get(key)
            new = (
                {**(old or self._defaults[change.table]), **change.key, **change.values}
                if isinstance(change, Upsert)
                else None
            )
            for columns, index in self._indexes[change.table].items():
                if old is not None:
                    index[tuple(old.get(c) for c in columns)].discard(key)
                if new is not None:
                    index.setdefault(tuple(new.get(c) for c in columns), set()).add(key)
            if new is None:
                stored.pop(key, None)
            else:
                stored[key] = new

    def table(self, name: str) -> list[Row]:
        return list(self._rows[name].values())


class MemoryFold:
    """A catch-up's runner over ``MemoryViews``: each event id applied once."""

    def __init__(self, tables: Sequence[str], projectors: Sequence[Projector]) -> None:
        self.views = MemoryViews(tables)
        self._projectors = tuple(projectors)
        self._applied: set[str] = set()

    # As the feed runner's batches do: see ``paused``.
    @paused()
    def consume_batch(self, messages: Sequence[Message]) -> list[str]:
        """The messages' events applied in order; their ids."""
        applied = []
        events = [(e, parse(e)) for e in (CloudEvent.from_bytes(m.value) for m in messages)]
        for projector in self._projectors:
            if isinstance(projector, Prepares):
                projector.prepare([data for _, data in events])
        for event, data in events:
            if event.id in self._applied:
                continue
            self._applied.add(event.id)
            self.views.apply([c for p in self._projectors for c in p(self.views, event, data)])
            applied.append(event.id)
        # The rows kept live as long as the fold: no later collection need walk them again.
        freeze_long_lived()
        return applied
