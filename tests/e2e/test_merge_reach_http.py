"""A merge over HTTP in embedded mode, where the views are not (#17): referral decides on a
consent given under the duplicate's id, every list line names the survivor and the id it was
recorded under, meeting's declarations and applications are the merged person's, and an unmerge
gives every answer back exactly as before."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.projection.audit import RECORD_VIEWED, AuditEntry, AuditLog
from services.wiring import embedded_app
from tests.e2e.answers import ok
from tests.e2e.test_desk_http import sign_in
from tests.e2e.test_merge_http import HELLOWORK, consent, duplicate_with_a_case, register

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
MERGE = {"reason": "同一人物(二重登録)"}
REASON = "安否確認のため"


def slip(person: str, consent_id: str) -> dict[str, Any]:
    return {
        "kind": "use_recommendation",
        "to": HELLOWORK,
        "reason": "就労の相談",
        "categories": ["identity", "consultation"],
        "person_id": person,
        "consent_id": consent_id,
    }


def merge(client: TestClient, auth: Auth, duplicate: str, survivor: str) -> None:
    body = MERGE | {"into": survivor}
    ok(client.post(f"/intake/persons/{duplicate}/merge", json=body, headers=auth()))


def unmerge(client: TestClient, auth: Auth, duplicate: str) -> None:
    ok(client.post(f"/intake/persons/{duplicate}/unmerge", json={"reason": "別人"}, headers=auth()))


def declare(client: TestClient, auth: Auth, person: str) -> str:
    body = {
        "person_id": person,
        "recipients": ["zama-kodomo"],
        "categories": ["family"],
        "reason": REASON,
        "hours": 24,
    }
    answer = client.post(
        "/meeting/vital-interests", json=body, headers=auth("zama-jiritsu", "supervisor")
    )
    return str(ok(answer, 201)["id"])


def answered(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


def test_referral_decides_on_a_consent_given_under_the_duplicates_id(
    client: TestClient, auth: Auth
) -> None:
    survivor = register(client, auth, "試験")
    duplicate = register(client, auth, "試験ダブリ")
    given = consent(client, auth, duplicate, ["identity", "consultation"])
    about_survivor = slip(survivor, given)

    def send() -> Any:
        return client.post("/referral/referrals", json=about_survivor, headers=auth())

    before = answered(send())
    assert before[0] == 403 and before[1]["missing_categories"] == ["consultation", "identity"]

    merge(client, auth, duplicate, survivor)
    read = f"/referral/referrals/{ok(send(), 201)['id']}"
    received = ok(client.get(read, headers=auth(HELLOWORK)))
    assert (received["basis"], received["basis_id"]) == ("consent", given)
    assert received["reason"] == "就労の相談"
    assert received["bases"]["consultation"] == {"basis": "consent", "basis_id": given}

    unmerge(client, auth, duplicate)
    assert answered(send()) == before
    # Sent while merged, the slip is now the survivor's alone: its content is withheld.
    withheld = ok(client.get(read, headers=auth(HELLOWORK)))
    assert withheld["reason"] is None
    assert "consultation" in {w["category"] for w in withheld["withheld"]}


def test_every_line_names_the_survivor_while_merged_and_its_own_id_once_unmerged(
    client: TestClient, auth: Auth
) -> None:
    survivor, duplicate, consultation, _, _ = duplicate_with_a_case(client, auth)
    given = consent(client, auth, duplicate, ["identity", "consultation"])
    referral = ok(
        client.post("/referral/referrals", json=slip(duplicate, given), headers=auth()), 201
    )
    declared = declare(client, auth, duplicate)
    supervisor = auth("zama-jiritsu", "supervisor")

    def lines() -> dict[str, tuple[int, Any]]:
        """Every list the office, Hello Work and a supervisor read, and the slip itself."""
        asked = {
            "consultations": ("/views/consultations", auth()),
            "views_outbox": ("/views/outbox", auth()),
            "views_inbox": ("/views/inbox", auth(HELLOWORK)),
            "outbox": ("/referral/referrals/outbox", auth()),
            "inbox": ("/referral/referrals/inbox", auth(HELLOWORK)),
            "slip": (f"/referral/referrals/{referral['id']}", auth(HELLOWORK)),
            "cases": ("/meeting/cases", auth()),
            "meetings": ("/meeting/meetings", auth()),
        }
        for person in (survivor, duplicate):
            asked[f"declarations {person}"] = (
                f"/meeting/persons/{person}/vital-interests",
                supervisor,
            )
            asked[f"applications {person}"] = (f"/meeting/persons/{person}/applications", auth())
        return {name: answered(client.get(url, headers=h)) for name, (url, h) in asked.items()}

    before = lines()
    assert before[f"declarations {survivor}"] == (200, [])
    assert before[f"applications {survivor}"] == (200, [])

    merge(client, auth, duplicate, survivor)
    merged = lines()
    named = {"person_id": survivor, "recorded_under": duplicate}
    for name in ("consultations", "views_outbox", "views_inbox", "outbox", "inbox", "cases"):
        status, [line] = merged[name]
        assert status == 200 and {k: line[k] for k in named} == named, name
    slip_read = merged["slip"][1]
    assert {k: slip_read[k] for k in named} == named
    assert slip_read["reason"] == "就労の相談"  # still decided on the duplicate's consent
    [meeting] = merged["meetings"][1]
    assert {k: meeting[k] for k in named} == named
    [declaration] = merged[f"declarations {survivor}"][1]
    assert (declaration["id"], declaration["recorded_under"]) == (declared, duplicate)
    [application] = merged[f"applications {survivor}"][1]
    assert application["consultation_id"] == consultation
    for pointer in (merged[f"declarations {duplicate}"], merged[f"applications {duplicate}"]):
        assert pointer[0] == 409 and pointer[1]["survivor_id"] == survivor

    unmerge(client, auth, duplicate)
    assert lines() == before
    assert before["consultations"][1][0]["recorded_under"] is None


def test_the_desk_follows_a_merged_duplicate_to_the_survivors_case_declarations_and_review(
    embedded_settings: Settings, auth: Auth
) -> None:
    with TestClient(embedded_app(embedded_settings)) as desk:
        survivor = register(desk, auth, "試験")
        duplicate = register(desk, auth, "試験ダブリ")
        declared = declare(desk, auth, duplicate)
        # Kodomo read the duplicate under the declaration before the merge: the privacy
        # officer has that read to review.
        log: AuditLog = desk.app.state.audit  # type: ignore[attr-defined]
        log.append(
            AuditEntry(
                kind=RECORD_VIEWED,
                viewer_staff_id="k001",
                viewer_agency="zama-kodomo",
                viewer_roles=("caseworker",),
                recorded_at=datetime.now(UTC),
                person_id=duplicate,
                shown={"family": ("vital_interest", declared)},
                response_hash="b" * 64,
            )
        )
        merge(desk, auth, duplicate, survivor)

        sign_in(desk, "zama-jiritsu", "supervisor")
        for page in ("case", "vital-interest"):
            moved = desk.get(f"/persons/{duplicate}/{page}", follow_redirects=False)
            assert (moved.status_code, moved.headers["location"]) == (
                303,
                f"/persons/{survivor}/{page}",
            )
        form = desk.get(f"/persons/{survivor}/vital-interest")
        assert form.status_code == 200 and REASON in form.text

        sign_in(desk, "zama-jiritsu", "privacy_officer")
        review = desk.get("/privacy/vital-interest")
        assert review.status_code == 200 and REASON in review.text
