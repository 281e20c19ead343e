"""The overdue rules a referral and the desk's boxes share, at and just past their deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.referral.referral import acknowledgement_overdue, follow_up_overdue

pytestmark = pytest.mark.unit

T0 = datetime(2025, 6, 20, 1, 5, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def test_an_acknowledgement_is_overdue_only_after_the_deadline_has_passed() -> None:
    deadline = T0 + timedelta(hours=72)
    assert not acknowledgement_overdue("sent", T0, deadline - TICK, 72)
    assert not acknowledgement_overdue("sent", T0, deadline, 72)
    assert acknowledgement_overdue("sent", T0, deadline + TICK, 72)


@pytest.mark.parametrize("state", ["acknowledged", "accepted", "declined", "withdrawn"])
def test_only_a_slip_still_sent_awaits_its_acknowledgement(state: str) -> None:
    assert not acknowledgement_overdue(state, T0, T0 + timedelta(days=30), 72)


def test_a_box_line_not_yet_sent_is_never_overdue() -> None:
    """A move that arrived before its slip made the line: no sending instant yet."""
    assert not acknowledgement_overdue("sent", None, T0 + timedelta(days=30), 72)


def test_a_decline_needs_its_follow_up_only_after_the_days_have_passed() -> None:
    deadline = T0 + timedelta(days=7)
    assert not follow_up_overdue("declined", False, T0, deadline - TICK, 7)
    assert not follow_up_overdue("declined", False, T0, deadline, 7)
    assert follow_up_overdue("declined", False, T0, deadline + TICK, 7)


def test_a_decline_followed_up_or_a_slip_never_declined_needs_no_follow_up() -> None:
    late = T0 + timedelta(days=30)
    assert not follow_up_overdue("declined", True, T0, late, 7)
    assert not follow_up_overdue("declined", False, None, late, 7)
    assert not follow_up_overdue("sent", False, T0, late, 7)
