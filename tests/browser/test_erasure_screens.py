"""本人の情報を消去する through the screens: refused until the user ticks that it cannot be
undone, then the person page says when and why their data was erased, and every value it
showed reads 消去済み."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from services.web.formatting import today, wareki
from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in
from tests.browser.test_person_and_consent_screens import register

pytestmark = pytest.mark.browser


def test_an_erasure_is_confirmed_then_the_page_shows_the_data_erased(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-jiritsu", "privacy_officer", "p401")
    register(page, desk, "鵜飼", "千歳", "うかい")
    erasure = page.locator("section", has=page.locator("#h-erase"))
    erasure.get_by_label("本人からの消去請求").check()
    erasure.get_by_role("button", name="消去する").click()
    expect(page.get_by_role("alert")).to_contain_text("確認")
    expect(page.locator("h1")).to_contain_text("鵜飼")  # nothing was erased yet
    checked(page, "person-erasure-unconfirmed")

    erasure = page.locator("section", has=page.locator("#h-erase"))
    erasure.get_by_label("本人からの消去請求").check()
    erasure.get_by_label("元に戻せないことを確認しました").check()
    erasure.get_by_role("button", name="消去する").click()
    expect(page.get_by_role("status").first).to_have_text("本人の情報を消去しました。")
    on = wareki(today())
    main = page.locator("main")
    expect(main).to_contain_text(f"この方の情報は{on}に消去されました（本人からの消去請求）")
    expect(main).to_contain_text(f"消去済み（{on}・本人からの消去請求）")
    expect(main).not_to_contain_text("鵜飼")
    expect(main).not_to_contain_text("千歳")
    expect(page.get_by_role("heading", name=re.compile("本人の情報を消去する"))).to_have_count(0)
    checked(page, "person-erased")

    # No case is offered for them: the case page says why, in words, with no form.
    page.goto(page.url.split("?")[0].rstrip("/") + "/case")
    expect(page.locator("h1")).to_have_text("ケースを開始する")
    main = page.locator("main")
    expect(main).to_contain_text(f"この方の情報は{on}に消去されました（本人からの消去請求）")
    expect(page.get_by_role("button", name="ケースを開始する")).to_have_count(0)
    checked(page, "case-open-erased")
