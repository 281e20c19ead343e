"""Group commit for the PostgreSQL event store: concurrent saves share one transaction.

`eventsourcing` serialises writers with a table lock, so that notification ids are committed in
order; one save per transaction then caps a service at the rate one connection can lock, insert
and commit. Here the saves that arrive while a transaction is in flight wait, and the next
transaction writes them all: one lock, one INSERT and one commit for the group. A save still
returns only once its own events are committed, and the order of ids still matches commit
order. Nothing else changes: no thread of its own, and the same errors for the same saves.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

# Bounds one transaction's size, so that a burst does not become one very long lock.
MAX_GROUP_EVENTS = 1000


class _Save:
    """One caller's events, and what became of them."""

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
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

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events or any(value is not None for value in kwargs.values()):
            # Tracking records belong to one transaction each: nothing to share.
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        mine = _Save(stored_events)
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
            ids: Sequence[int] | None = super().insert_events(
                [event for save in group for event in save.events]
            )
        except IntegrityError as clash:
            if len(group) == 1:
                group[0].finish(None, clash)
                return
            # One save's conflict must not fail the others: write each on its own.
            for save in group:
                self._write([save])
            return
        except Exception as error:
            for save in group:
                save.finish(None, error)
            return
        start = 0
        for save in group:
            end = start + len(save.events)
            save.finish(ids[start:end] if ids is not None else None, None)
            start = end
