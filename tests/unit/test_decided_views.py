"""Views decided when read are what the materialised views were (#17's differential test).

``tests/data/materialised_views.json`` was written by the model this one replaced, at commit
18b7209: per-agency views materialised in ``agency_view``, refreshed after every event and at
each instant asked. Over the same generated stream of every event kind, it holds

- the purges the live projector recorded (a withdrawal's, named by its event);
- at each of a set of instants, every agency's view of every person (a hash of each fact's
  category, field, basis, basis id and the instant that basis ends: the values are sealed
  with fresh nonces, so they differ from run to run), and the purges between that instant
  and the one before.

Values are not in the hashes; a view's values are the facts' own, which the last test checks.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import CloudEvent
from contracts.events import parse
from services.feeds.changes import Change, ViewState
from services.feeds.store import ViewStore
from services.platform.sql import SqliteDatabase
from services.projection import agency_view, feed
from services.projection.person_facts import TxReader, facts_of
from tests.unit.test_batches import DECIDED_AT, messages

pytestmark = pytest.mark.unit

GOLDEN = json.loads((Path(__file__).parents[1] / "data" / "materialised_views.json").read_text())
INSTANTS = [datetime.fromisoformat(i["at"]) for i in GOLDEN["instants"]]
COLUMNS = ("category", "field", "basis", "basis_id", "valid_until")


@pytest.fixture(scope="module")
def store() -> ViewStore:
    """The stream applied by the live projector, deciding at the first instant."""
    assert INSTANTS[0] == DECIDED_AT
    views = ViewStore(SqliteDatabase(":memory:"), feed.TABLES, journal=True)
    projectors = feed.person_projectors(lambda: DECIDED_AT)
    for message in messages(4000):
        event = CloudEvent.from_bytes(message.value)
        data = parse(event)

        def changes(state: ViewState, event: CloudEvent = event, data: Any = data) -> list[Change]:
            return [change for project in projectors for change in project(state, event, data)]

        views.apply(event.id, event.type, changes)
    return views


def persons(store: ViewStore) -> list[str]:
    with store.database.transaction() as tx:
        return sorted({r["person_id"] for r in tx.fetchall("SELECT person_id FROM category_facts")})


def test_a_withdrawal_purges_what_the_materialised_views_purged(store: ViewStore) -> None:
    with store.database.transaction() as tx:
        recorded = sorted(
            [r["person_id"], r["agency"], json.loads(r["categories"]), r["reason"]]
            for r in tx.fetchall(
                "SELECT * FROM view_purge WHERE reason != ?", (agency_view.SWEEP_CAUSE,)
            )
        )
    assert recorded == GOLDEN["live_purges"] != []


@pytest.mark.parametrize("instant", range(len(INSTANTS)))
def test_every_view_decided_at_an_instant_is_the_materialised_one(
    store: ViewStore, instant: int
) -> None:
    at, everyone = INSTANTS[instant], persons(store)
    with store.database.transaction() as tx:
        reader = TxReader(tx)
        decided = {p: agency_view.decided_views(reader, p, at) for p in everyone}
    hashes = {
        f"{agency} {person}": hashlib.sha256(
            json.dumps([[view[key][c] for c in COLUMNS] for key in sorted(view)]).encode()
        ).hexdigest()[:16]
        for person, views in decided.items()
        for agency, view in views.items()
    }
    assert hashes == GOLDEN["instants"][instant]["views"]
    assert len(hashes) > 300


# The one person whose purge names another basis: their consent ended first, and the
# categories stayed in view on a 支援会議 membership until it ended too, before the next
# instant. The materialised row still named the consent it had been written with; the sweep
# names the membership, the basis that was in force when they left the view.
SHOWN_LONGER = {
    ("afd3b9a7-8d34-4d60-9910-ccc460724188", agency)
    for agency in ("hellowork-atsugi", "kiban-soudan", "zama-shakyo")
}
MEMBERSHIP = {"basis": "article9_meeting", "basis_id": "7becb4fe-fa0a-4fa3-9d24-a9c9e2e77a19"}


def test_the_sweep_records_the_purges_the_materialised_views_recorded(store: ViewStore) -> None:
    """Between one instant and the next, the bases that ended with time took out of the views
    what a refresh of the materialised views at the later instant deleted. The sweep records
    each end apart, at its own instant; gathered by person and agency they are the same."""
    for instant, at in enumerate(INSTANTS):
        swept: dict[tuple[str, str], dict[str, Any]] = {}
        for purge in agency_view.sweep(store, at):
            swept.setdefault((purge.person_id, purge.agency), {}).update(purge.categories)
        expected = GOLDEN["instants"][instant]["purges"]
        assert [[p, a, sorted(c)] for p, a, c in expected] == [
            [p, a, sorted(c)] for (p, a), c in sorted(swept.items())
        ]
        for person, agency, categories in expected:
            for category, basis in swept[(person, agency)].items():
                longer = (person, agency) in SHOWN_LONGER
                assert basis == (MEMBERSHIP if longer else categories[category])
    assert agency_view.sweep(store, INSTANTS[-1]) == []


def test_a_view_shows_each_fact_s_own_value(store: ViewStore) -> None:
    some = persons(store)[:100]
    with store.database.transaction() as tx:
        reader = TxReader(tx)
        shown = 0
        for person in some:
            facts = {(f["category"], f["field"]): f["value"] for f in facts_of(reader, person)}
            for view in agency_view.decided_views(reader, person, INSTANTS[0]).values():
                for key, row in view.items():
                    assert row["value"] == facts[key]
                    shown += 1
    assert shown > 100
