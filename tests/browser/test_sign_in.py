"""Signing in and out of the desk in a real browser, in Japanese, with nothing from elsewhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in

pytestmark = pytest.mark.browser


def test_the_desk_sends_a_stranger_to_sign_in_then_home(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    page.goto(desk.origin + "/")
    expect(page).to_have_url(desk.origin + "/signin")
    expect(page.get_by_role("heading", level=1)).to_have_text("ログイン")
    checked(page, "signin")
    sign_in(page, desk, "zama-jiritsu", "caseworker")
    expect(page.get_by_role("heading", level=1)).to_have_text("ホーム（担当業務）")
    expect(page.locator(".site-header__user")).to_contain_text("座間市 地域福祉課 自立サポート係")
    checked(page, "home")
    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_role("status")).to_have_text("ログアウトしました。")
    page.goto(desk.origin + "/")
    expect(page).to_have_url(desk.origin + "/signin")
