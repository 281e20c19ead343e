"""Merged persons (名寄せ): which records intake has linked as one human, read as one person.

Intake merges a duplicate into a survivor (PersonsMerged) and may undo it (PersonsUnmerged);
nothing recorded under either id is rewritten, here as there. This module keeps the link
(``person_merge``, a row for each end, so that either id reads it by ``person_id``) and reads
a person with every record merged into them (``united``). Writes stay under the id they were
recorded under, and the merge is applied when a person is read. So:

- events about the duplicate arriving after the merge (another partition, another topic) join
  the survivor's picture as they come, and a merge is idempotent (two upserts by key);
- an unmerge removes the link and nothing else: both pictures are again exactly what they
  were, since nothing was moved;
- a merge and its undo are keyed by the duplicate's id on intake's topic, so they arrive in
  the order intake recorded them, and a rebuild replays them in that order.

What the survivor is read with (the lawful reasoning is in ``united``): the duplicate's facts,
each with its provenance (the agency, the event, business and recorded time, and the id it
was recorded under), and its bases: consents, withdrawals, 支援会議 memberships and
vital-interest declarations. Where both records hold the same field (a name spelt twice),
the survivor's value stands: the survivor is the record the office chose to keep.

The duplicate's own id is not a second picture while merged: the views answer it with a
pointer to the survivor (409, ``survivor_id``), and its facts are decided as the survivor's.
Meeting and referral keep the same table from the same events (``project_merges``): meeting
reads a merged person's case, meetings and bases the same way, and referral decides a slip, about
either id, on the merged person's consents (``as_one``). A line that names a person (a list's,
a slip's, a case's) names the survivor and the id it was recorded under (``named``).

A replay as of an earlier instant reads the records as they are merged now: the case of the
human as known today. What each agency was actually served before the merge is the audit's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from contracts.envelope import CloudEvent
from contracts.events import IntegrationEvent, PersonsMerged, PersonsUnmerged
from services.feeds.changes import Change, Upsert, ViewState

TABLES = (
    """CREATE TABLE IF NOT EXISTS person_merge (
        person_id TEXT NOT NULL,
        other_id TEXT NOT NULL,
        survivor_id TEXT NOT NULL,
        merged INTEGER NOT NULL,
        at TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (person_id, other_id)
    )""",
)
KEY = ("person_id", "other_id")

# The person tables whose rows a merged person is read with: what is recorded about them and
# the bases ``decide`` weighs.
UNITED = (
    "timeline",
    "category_facts",
    "consent",
    "consent_withdrawal",
    "meeting_membership",
    "vital_interest",
)


class Rows(Protocol):
    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]: ...


def project_merges(_: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
    """The link between a duplicate and its survivor, on both ends; kept, not deleted, when
    undone, so that each end says when and by which event it was last changed."""
    if not isinstance(data, PersonsMerged | PersonsUnmerged):
        return []
    duplicate, survivor = str(data.person_id), str(data.survivor_id)
    values = {
        "survivor_id": survivor,
        "merged": int(isinstance(data, PersonsMerged)),
        "at": data.at.isoformat(),
        "event_id": event.id,
    }
    return [
        Upsert("person_merge", {"person_id": one, "other_id": other}, values)
        for one, other in ((duplicate, survivor), (survivor, duplicate))
    ]


def survivor_of(state: Rows, person_id: str) -> str:
    """The person ``person_id`` is merged into now, through any chain; itself if none."""
    seen = {person_id}
    while True:
        into = [
            row
            for row in state.rows("person_merge", {"person_id": person_id})
            if row["merged"] and row["survivor_id"] == row["other_id"]
        ]
        if not into:
            return person_id
        survivor = max(into, key=lambda row: (row["at"], row["event_id"]))["other_id"]
        if survivor in seen:
            return person_id  # a cycle cannot be recorded by intake; stop rather than loop
        seen.add(survivor)
        person_id = survivor


def records_of(state: Rows, person_id: str) -> list[str]:
    """The records read as one person with ``person_id`` now, whichever of them it names: the
    survivor's first, then every record merged into them."""
    survivor = survivor_of(state, person_id)
    return [survivor, *merged_into(state, survivor)]


def named(state: Rows, row: dict[str, Any]) -> dict[str, Any]:
    """A line recorded under ``row["person_id"]`` as it names its person now: ``person_id``
    the merged person's (the survivor, whom every read of the person answers), and
    ``recorded_under`` the id it was recorded under while that is a duplicate (else None).
    An unmerge gives the line back as it was."""
    recorded = row["person_id"]
    person = survivor_of(state, recorded) if recorded is not None else None
    return {**row, "person_id": person, "recorded_under": recorded if person != recorded else None}


def merged_into(state: Rows, survivor: str) -> list[str]:
    """The persons merged into ``survivor`` now, and into them in turn, in a fixed order."""
    found: list[str] = []
    frontier = [survivor]
    while frontier:
        into = frontier.pop()
        for row in state.rows("person_merge", {"person_id": into}):
            other = row["other_id"]
            if row["merged"] and row["survivor_id"] == into and other not in (survivor, *found):
                found.append(other)
                frontier.append(other)
    return sorted(found)


class United:
    """Rows about ``person`` read with those of the persons merged into them.

    Their rows are read as the person's (``person_id`` is the person's, ``recorded_under`` the
    id they were recorded under). That includes the bases: a consent given under the
    duplicate's id was given by this human, for the scope it names (recipients, categories,
    purposes, period), and its withdrawals bind as they did; a 支援会議 was held on this human
    and a vital-interest declaration protects this human. The intake office established, with
    a recorded reason, that the two records are one person; the basis belongs to the person,
    not to the record. Nothing wider is granted: each basis still answers only for its own
    scope, through ``decide`` and the audit like any other. An unmerge (the office finding they
    are two people after all) ends that at once: the rows go back to their own ids.

    The person's own rows come first, then each merged record's in id order: of a field
    several hold, ``person_facts.facts_of`` keeps the first.
    """

    def __init__(self, base: Rows, person: str, members: Sequence[str]) -> None:
        self._base, self.person, self.members = base, person, tuple(members)

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(self._base.rows(table, where))
        if not self.members or table not in UNITED or where.get("person_id") != self.person:
            return found
        for member in self.members:
            for row in self._base.rows(table, {**where, "person_id": member}):
                found.append({**row, "person_id": self.person, "recorded_under": member})
        return found


def united(state: Rows, person_id: str) -> United:
    """``state`` reading ``person_id`` with every record merged into them."""
    if isinstance(state, United) and state.person == person_id:
        return state
    return United(state, person_id, merged_into(state, person_id))


def as_one(state: Rows, person_id: str) -> United:
    """``state`` reading ``person_id`` with every record it is merged with now, a duplicate's
    id too: what a record kept under a duplicate's id (a slip) is decided on, as ``united``
    decides the survivor's own."""
    return United(state, person_id, [r for r in records_of(state, person_id) if r != person_id])
