"""Which disclosures under a consent came after the withdrawal that covered them: a partial
withdrawal ends the consent for the recipients and categories it names, from its instant on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.disclosure import Consent, Withdrawal
from services.projection.audit import AuditRecord
from services.projection.revocation import after_withdrawal

pytestmark = pytest.mark.unit

T = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
CONSENT = Consent(
    consent_id="c1",
    person_id="p1",
    recipients=frozenset({"zama-shakyo", "oneaid"}),
    categories=frozenset({"identity", "housing"}),
    purposes=frozenset({"support_coordination"}),
    valid_from=T - timedelta(days=30),
    valid_until=T + timedelta(days=30),
    withdrawals=(Withdrawal("w1", T, frozenset({"oneaid"}), frozenset({"housing"})),),
)


def entry(agency: str, at: datetime, **bases: tuple[str, str | None]) -> AuditRecord:
    return AuditRecord(
        position=1,
        kind="record_viewed",
        viewer_staff_id="s001",
        viewer_agency=agency,
        viewer_roles=["caseworker"],
        person_id="p1",
        categories=list(bases),
        bases={c: {"basis": b, "basis_id": i} for c, (b, i) in bases.items()},
        request_id=None,
        trace_id=None,
        view_request=None,
        recorded_at=at.isoformat(),
        state_position=None,
        response_hash=None,
        reason=None,
        previous_hash="0" * 64,
        entry_hash="1" * 64,
    )


@pytest.mark.parametrize(
    ("seen", "after"),
    [
        (entry("oneaid", T - timedelta(seconds=1), housing=("consent", "c1")), False),
        (entry("oneaid", T, housing=("consent", "c1")), True),
        (entry("oneaid", T + timedelta(hours=1), identity=("consent", "c1")), False),
        (entry("zama-shakyo", T + timedelta(hours=1), housing=("consent", "c1")), False),
        (entry("oneaid", T + timedelta(hours=1), housing=("consent", "c2")), False),
        (entry("oneaid", T + timedelta(hours=1), housing=("own_record", None)), False),
    ],
    ids=[
        "before",
        "at-the-instant",
        "category-not-withdrawn",
        "recipient-not-withdrawn",
        "another-consent",
        "another-basis",
    ],
)
def test_a_disclosure_is_after_the_withdrawal_only_where_the_withdrawal_reached(
    seen: AuditRecord, after: bool
) -> None:
    assert after_withdrawal(seen, CONSENT) is after
