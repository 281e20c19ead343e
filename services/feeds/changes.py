"""What a projector returns: row changes, applied by the view store in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


Projector = Callable[[ViewState, CloudEvent, IntegrationEvent], Sequence[Change]]


@runtime_checkable
class Prepares(Protocol):
    """A projector that reads what it needs for a whole batch before the batch is applied (the
    data keys of the persons it registers), rather than once for each event."""

    def prepare(self, datas: Sequence[IntegrationEvent]) -> None: ...
