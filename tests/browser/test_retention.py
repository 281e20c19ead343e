"""保存期間 in a real browser: the privacy officer finds, through the menu, a person whose records
the retention sweep erases within 90 days, is told beside each field what an extension lacks,
extends it with a reason, and sees the person leave the list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from services.intake.retention import add_years, municipal_date
from services.platform.auth import mint_token
from services.web.formatting import wareki
from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in
from tests.conftest import JWT_SECRET

pytestmark = pytest.mark.browser

OFFICE = "zama-jiritsu"


def call(desk: LiveDesk, path: str, body: dict[str, Any]) -> Any:
    token = mint_token(JWT_SECRET, staff_id="s901", agency=OFFICE, roles=["caseworker"])
    answer = httpx.post(
        f"{desk.origin}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code < 300, answer.text
    return answer.json()


def closed_a_month_short_of_five_years(desk: LiveDesk) -> tuple[str, str]:
    """A person whose case closed five years less 30 days ago: their records go in 31 days
    (the live desk's own sweep, on the real clock, leaves them). (person id, erasure date)"""
    today = municipal_date(datetime.now(UTC))
    closed_on = add_years(today, -5) + timedelta(days=30)
    closed = datetime(closed_on.year, closed_on.month, closed_on.day, 1, tzinfo=UTC)
    start = (closed - timedelta(days=200)).isoformat()
    person = call(
        desk,
        "/intake/persons",
        {"family_name": "期限", "given_name": "近子", "registered_at": start},
    )["id"]
    opened = {"channel": "visit", "route_in": "self", "caller_kind": "self", "opened_at": start}
    consultation = call(desk, "/intake/consultations", {**opened, "person_id": person})["id"]
    call(desk, f"/intake/consultations/{consultation}/application", {"at": start})
    case = call(
        desk, "/meeting/cases", {"consultation_id": consultation, "person_id": person, "at": start}
    )["id"]
    closure = {"reason": "goals_achieved", "at": closed.isoformat()}
    call(desk, f"/meeting/cases/{case}/closure", closure)
    return person, wareki(add_years(closed_on, 5) + timedelta(days=1))


def test_the_privacy_officer_extends_a_retention_ending_soon(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    person, erasure_on = closed_a_month_short_of_five_years(desk)
    sign_in(page, desk, OFFICE, "privacy_officer")
    page.get_by_role("navigation").get_by_role("link", name="保存期間").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("保存期間の満了")
    row = page.get_by_role("row").filter(has_text=person)
    expect(row).to_contain_text(erasure_on)
    checked(page, "retention")

    row.get_by_role("link", name=re.compile("保存期間を延長する")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("保存期間の延長")
    page.get_by_role("button", name="保存期間を延長する").click()
    expect(page.get_by_role("alert")).to_contain_text("入力内容を確認してください")
    reason = page.get_by_label(re.compile("^延長の理由"))
    expect(reason).to_have_attribute("aria-invalid", "true")
    checked(page, "retention-extend-errors")

    until = add_years(municipal_date(datetime.now(UTC)), 2)
    page.get_by_label(re.compile("^保存期限（延長後）")).fill(until.isoformat())
    reason.fill("訴訟で記録の提出を求められている")
    page.get_by_role("button", name="保存期間を延長する").click()
    expect(page.get_by_role("status")).to_contain_text("保存期間を延長しました")
    expect(page.get_by_role("row").filter(has_text=person)).to_have_count(0)
    checked(page, "retention-extended")

    page.goto(f"{desk.origin}/retention/{person}")
    expect(page.locator("dl.facts")).to_contain_text(wareki(until))
    expect(page.locator("dl.facts")).to_contain_text("訴訟で記録の提出を求められている")
