"""Each municipality's audit chain, and the RecordViewed entries appended to it.

One deployment serves several municipalities; each has a chain of its own, with its own
positions and its own signed checkpoints, so that no answer about one municipality's chain (who
saw what, how long it is, whether it verifies) ever counts or shows another's. The deployment's
first municipality keeps its chain where it always was, in the views' database; each neighbour's
is kept in a schema (PostgreSQL) or file (SQLite) of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from contracts.errors import NotFound
from contracts.events.audit import RecordViewed
from contracts.reference import reference
from services.platform.settings import Settings
from services.platform.sql import Database, connect
from services.projection.audit import AuditEntry, AuditLog


def neighbour_store(settings: Settings) -> Callable[[str], Database]:
    def store(code: str) -> Database:
        return connect(
            settings.database_url, f"audit_{code}", settings.var_dir / f"audit-{code}.sqlite3"
        )

    return store


class Chains:
    """The audit chain of each municipality the reference data lists, opened when first used."""

    def __init__(self, home: Database, store: Callable[[str], Database]) -> None:
        self._home, self._store = home, store
        self._chains: dict[str, AuditLog] = {}
        self._opened: list[Database] = []
        self._lock = threading.Lock()

    def of(self, municipality: str) -> AuditLog:
        with self._lock:
            chain = self._chains.get(municipality)
            if chain is None:
                chain = self._chains[municipality] = AuditLog(self._database(municipality))
            return chain

    def each(self) -> Iterator[tuple[str, AuditLog]]:
        """Every municipality's chain, the deployment's first first."""
        for code in reference().municipalities:
            yield code, self.of(code)

    def record(self, municipality: str, entries: Sequence[RecordViewed]) -> None:
        """A ``Sink`` for the service that keeps the chains: appended at once."""
        self.of(municipality).append_all([entry_of(e) for e in entries])

    def close(self) -> None:
        for database in self._opened:
            database.close()

    def _database(self, municipality: str) -> Database:
        if municipality not in reference().municipalities:
            raise NotFound(f"no municipality {municipality} in this deployment")
        if municipality == reference().municipality_code:
            return self._home
        database = self._store(municipality)
        self._opened.append(database)
        return database


def entry_of(event: RecordViewed) -> AuditEntry:
    """The chain's entry for a RecordViewed event."""
    return AuditEntry(
        kind=event.kind,
        viewer_staff_id=event.staff_id,
        viewer_agency=event.agency,
        viewer_roles=tuple(event.roles),
        recorded_at=event.at,
        person_id=event.person_id,
        shown={c: (b.basis, b.basis_id) for c, b in event.shown.items()},
        request_id=event.request_id,
        trace_id=event.trace_id,
        view_request=event.view,
        state_position=event.state_position,
        response_hash=event.response_hash,
        reason=event.reason,
        disclosed_by=tuple(event.disclosed_by),
    )
