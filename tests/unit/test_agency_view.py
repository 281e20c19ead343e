"""The agency view's shortcut through the bases gives exactly what ``decide`` gives."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings

from contracts import disclosure
from contracts.reference import reference
from services.projection.agency_view import VIEW_PURPOSES, Allowed, _end, allowed_categories
from tests.unit.test_disclosure import Case, cases

pytestmark = pytest.mark.unit


def by_decide(agency: str, record: disclosure.PersonRecord, at: datetime) -> dict[str, Allowed]:
    """``decide`` asked for every purpose and category in turn, the first allow kept."""
    viewer = disclosure.Viewer(agency=agency, staff_id="projection")
    allowed: dict[str, Allowed] = {}
    for purpose in VIEW_PURPOSES:
        for category in reference().data_categories:
            allow = disclosure.decide(viewer, record, category, purpose, at)
            if isinstance(allow, disclosure.Allow) and category not in allowed:
                end = _end(record, agency, category, allow, at)
                allowed[category] = Allowed(allow.basis, allow.basis_id, end)
    return allowed


@settings(max_examples=500, deadline=None)
@given(cases())
def test_allowed_categories_are_decides_answers_in_decides_order(case: Case) -> None:
    fast = allowed_categories(case.viewer.agency, case.person, case.at)
    slow = by_decide(case.viewer.agency, case.person, case.at)
    assert list(fast.items()) == list(slow.items())
