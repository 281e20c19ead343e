"""``bench.document_fold``'s sketch of #17's design does the real views' work on facts: folded
into one document, a person's events leave the facts, with their provenance, that the views'
projectors leave in ``category_facts``. Its cost then bounds the design from below."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from bench.document_fold import about, fold, new_document
from contracts.events import AssessmentRecorded, IntegrationEvent, ReferralAccepted, ReferralSent
from services.projection.agency_view import person_views
from services.projection.person_facts import facts_of
from tests.unit.test_person_facts import NOW, T0, Views, act, cloudevent, consent, registered

pytestmark = pytest.mark.unit


def test_the_sketch_leaves_the_facts_the_views_leave() -> None:
    person, referral = uuid4(), uuid4()
    ends: dict[str, Any] = {"sender": "zama-shuno", "receiver": "zama-jiritsu", "person_id": person}
    events: list[IntegrationEvent] = [
        registered(person),
        consent(person, ["zama-shakyo"], ["identity", "contact"]),
        ReferralSent(
            **act("zama-shuno"),
            referral_id=referral,
            **ends,
            kind="use_recommendation",
            reason="滞納",
            categories=["identity", "tax"],
            basis="consent",
            provisional=False,
        ),
        ReferralAccepted(**act(at=T0 + timedelta(days=1)), referral_id=referral, **ends),
        AssessmentRecorded(
            **act(at=T0 + timedelta(days=2)),
            case_id=uuid4(),
            person_id=person,
            assessment_number=1,
            issues=["illness", "job_search_difficulty", "no_kin"],
        ),
    ]
    views, documents = Views(), {str(person): new_document()}
    for data in events:
        event = cloudevent(data)
        views.apply(list(person_views(lambda: NOW)(views, event, data)))
        owner = about(event, data)
        fold(documents.setdefault(owner, new_document()), event, data)

    expected: dict[tuple[str, str], list[Any]] = {
        (fact["category"], fact["field"]): [
            fact["value"],
            fact["agency"],
            fact["audience"],
            fact["at"],
            fact["event_id"],
        ]
        for fact in facts_of(views, str(person))
    }
    folded = {
        (category, field): provenance
        for category, fields in documents[str(person)]["facts"].items()
        for field, provenance in fields.items()
    }
    assert len(expected) > 10
    assert folded == expected
    assert len(documents[str(person)]["bases"]) == 1
