"""That a person was erased, when and why: what the views keep of an erasure.

On PersonErased the person's search index drops its tokens (``person_search``), and the views
note the erasure here, so that the person's pages say so. Everything else the views hold of
the person is sealed under keys that are now destroyed: it opens to 消去済み, and the views, the
支援経過記録 and the replays of earlier disclosures keep their shape. Nothing is counted again or
uncounted: the statistics stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.envelope import CloudEvent
from contracts.events import IntegrationEvent, PersonErased
from services.feeds.changes import Change, Upsert, ViewState
from services.platform.times import municipal
from services.projection.person_facts import Reader, utc

TABLES = (
    """CREATE TABLE IF NOT EXISTS person_erasure (
        person_id TEXT PRIMARY KEY,
        erased_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        erased_with TEXT
    )""",
)


def note_erasure(_: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
    """When and why the person was erased: a person table, which a replay rebuilds too."""
    if not isinstance(data, PersonErased):
        return []
    return [
        Upsert(
            "person_erasure",
            {"person_id": str(data.person_id)},
            {
                "erased_at": utc(data.at),
                "reason": data.reason,
                "erased_with": str(data.erased_with) if data.erased_with else None,
            },
        )
    ]


def erasure(state: Reader, person_id: str) -> dict[str, Any] | None:
    """When (at the municipality's offset) and why the person was erased; None if not."""
    found = state.rows("person_erasure", {"person_id": person_id})
    if not found:
        return None
    [row] = found
    return {"erased_at": municipal(row["erased_at"]), "reason": row["reason"]}
