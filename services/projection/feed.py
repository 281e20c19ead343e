"""What the projection keeps from every service's events: its tables and its projectors.

The person tables and projectors are the part a disclosure replay needs to build a person's
views again from the journal; the rest (consultations, statistics, the person index) is not
about one person's view. The person index opens sealed values as it ingests them: its
projector is made with the key store (``person_search.PersonIndex``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from contracts.events import IntegrationEvent
from services.feeds import consents
from services.feeds.changes import Projector
from services.projection import (
    agency_view,
    erasures,
    merges,
    person_facts,
    person_search,
    statistics,
)
from services.projection.person_search import PersonIndex
from services.projection.projectors import CONSULTATION_VIEW, consultation_reads, consultations

PERSON_TABLES = (
    consents.TABLES + person_facts.TABLES + agency_view.TABLES + erasures.TABLES + merges.TABLES
)
TABLES = CONSULTATION_VIEW + statistics.TABLES + person_search.TABLES + PERSON_TABLES


def _now() -> datetime:
    return datetime.now(UTC)


def person_projectors(
    clock: Callable[[], datetime] = _now, *, postponed: bool = False
) -> tuple[Projector, ...]:
    """``clock``: the instant each agency's view is decided at (a replay's is the entry's).

    The consent replica, the facts, the merges and the purges of what an ended basis took out
    of a view, in one projector (``person_views``); ``postponed``: a catch-up's, which records
    no purge again. Then when and why a person was erased, which their pages say.
    """
    return (agency_view.person_views(clock, postponed=postponed), erasures.note_erasure)


def projectors(index: PersonIndex, *, postponed: bool = False) -> tuple[Projector, ...]:
    return (
        consultations,
        statistics.count,
        person_search.search_keys(index),
        *person_projectors(postponed=postponed),
    )


def reads(data: IntegrationEvent) -> dict[str, str]:
    """What this feed's projectors read rows by for ``data`` (``FeedRunner``'s ``reads``)."""
    return {**person_facts.reads(data), **consultation_reads(data)}
