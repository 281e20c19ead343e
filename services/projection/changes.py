"""What a projector returns: row changes, applied by the view store in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.envelope import CloudEvent
from contracts.events import IntegrationEvent


@dataclass(frozen=True)
class Upsert:
    table: str
    key: dict[str, Any]
    values: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    table: str
    key: dict[str, Any]


Change = Upsert | Delete


class ViewState(Protocol):
    """Read access to the views as they stand, for projectors that need the current row."""

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None: ...


# Work that brings derived rows up to date from the views as they stand (a person's views).
Refresh = Callable[[ViewState], Sequence[Change]]


class Deferring(Protocol):
    """A view state that applies a batch of events and can hold refreshes back to its end.

    ``defer`` keeps the first refresh asked for under ``key`` and runs it once, after the
    batch's last event; an ``urgent`` one runs once the asking event's changes are applied,
    after any refresh held under its key (run on the views as the events before it left them).
    """

    def defer(self, key: str, refresh: Refresh, *, urgent: bool) -> None: ...


Projector = Callable[[ViewState, CloudEvent, IntegrationEvent], Sequence[Change]]
