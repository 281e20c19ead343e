"""Who did what, where and when: the actor every domain event of every aggregate carries.

An event records an act of a staff member (``staff_id``) of an agency (``agency``) in a
municipality (``municipality``, whose data never mixes with another's). ``at`` is its business
time, when it happened in the world: it may be back-dated (never before the step it follows),
unlike the event's ``timestamp``, when it was recorded.

Aggregates' events derive from these instead of each declaring the four again. The names are
the attributes already stored: a stored event is read back by its topic and by these names, so
neither may change without an upcast.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from eventsourcing.domain import Aggregate

from contracts.personal import CODE, STAFF, Personal

# Personal data whose subject is the aggregate itself: a person, or a referral whose slip is a
# subject of its own until the person is known (the domain's name for its id: originator_id).
OF_AGGREGATE = Personal(subject="originator_id")


class Founding(Aggregate.Created):
    """The act that creates an aggregate. Its business time is each event's own: ``at``, or the
    name it was first stored under (a consultation's ``opened_at``, a person's
    ``registered_at``, a consent's ``valid_from``)."""

    municipality: Annotated[str, CODE]
    agency: Annotated[str, CODE]
    staff_id: Annotated[str, STAFF]


class Act(Aggregate.Event):
    """An act on an existing aggregate, at business time ``at``."""

    municipality: Annotated[str, CODE]
    agency: Annotated[str, CODE]
    staff_id: Annotated[str, STAFF]
    at: datetime
