"""The console's reading of what the officer typed and of the audit API's entries: a period of
two dates both included, and an entry's categories grouped by the basis that allowed them."""

from __future__ import annotations

import pytest

from services.web.pages.privacy import Ground, compared, declarations_of, grounds, period, seen

pytestmark = pytest.mark.unit


def test_a_period_includes_its_last_day_in_japan_time() -> None:
    asked = period("2025-04-01", "2025-04-30")
    assert asked.errors == {}
    assert asked.params() == {
        "since": "2025-04-01T00:00:00+09:00",
        "until": "2025-05-01T00:00:00+09:00",
    }
    assert period("", "2025-04-30").params() == {
        "since": None,
        "until": "2025-05-01T00:00:00+09:00",
    }
    assert period("2025-04-30", "2025-04-30").errors == {}


@pytest.mark.parametrize(
    ("since", "until", "errors"),
    [
        ("2025-13-01", "", {"since": "date_parsing"}),
        ("", "30/04/2025", {"until": "date_parsing"}),
        ("2025-05-01", "2025-04-30", {"until": "not_before_since"}),
    ],
)
def test_a_period_that_is_not_one_names_the_field(
    since: str, until: str, errors: dict[str, str]
) -> None:
    asked = period(since, until)
    assert asked.errors == errors
    assert asked.params() == {}


def entry(position: int, **bases: tuple[str, str | None]) -> dict[str, object]:
    return {
        "position": position,
        "kind": "record_viewed",
        "view_request": {"view": "person", "shape": 2},
        "bases": {c: {"basis": b, "basis_id": i} for c, (b, i) in bases.items()},
    }


def test_an_entrys_categories_are_grouped_by_basis_in_the_person_views_order() -> None:
    found = grounds(
        entry(
            1,
            contact=("consent", "c1"),
            referral_status=("own_record", None),
            identity=("consent", "c1"),
            family=("vital_interest", "v1"),
        )["bases"]  # type: ignore[arg-type]
    )
    assert found == [
        Ground("consent", "c1", ["identity", "contact"]),
        Ground("vital_interest", "v1", ["family"]),
        Ground("own_record", None, ["referral_status"]),
    ]


def test_pending_disclosures_are_grouped_by_their_declaration() -> None:
    entries = seen(
        [
            entry(1, family=("vital_interest", "v1")),
            entry(2, family=("vital_interest", "v2"), identity=("consent", "c1")),
            entry(3, health=("vital_interest", "v1")),
        ]
    )
    grouped = declarations_of(entries)
    assert {d: [s.entry["position"] for s in found] for d, found in grouped.items()} == {
        "v1": [1, 3],
        "v2": [2],
    }
    assert entries[0].view == "person"
    assert seen([{**entry(4), "view_request": {"view": "slip"}}])[0].view == "other"


def test_the_proof_compares_bases_in_one_row_per_recorded_and_rebuilt_pair() -> None:
    consent = {"basis": "consent", "basis_id": "c1"}
    meeting = {"basis": "article9_meeting", "basis_id": "m1"}
    recorded = {"contact": consent, "identity": consent, "family": consent}
    rebuilt = {"identity": consent, "contact": consent, "family": meeting, "health": meeting}
    assert compared(recorded, rebuilt) == [
        (["identity", "contact"], consent, consent),
        (["health"], None, meeting),
        (["family"], consent, meeting),
    ]
