"""相談受付 by keyboard alone: every field reached with Tab, chosen with the keys, sent with
Enter; an error is announced beside its field and reached from the summary."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in

pytestmark = pytest.mark.browser


def tab_to(page: Page, label: str, limit: int = 40) -> None:
    """Presses Tab until the focused element is the one labelled ``label``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " const l = e && e.labels && e.labels[0]; return l ? l.innerText : ''; }"
        )
        if focused.startswith(label):
            return
    raise AssertionError(f"Tab never reached {label!r}")


def test_a_consultation_is_opened_by_keyboard_alone(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-jiritsu", "caseworker", "k001")
    page.goto(desk.origin + "/consultations/new")
    # Sent empty first: the summary names each missing field, beside which the error shows.
    tab_to(page, "主訴")
    page.keyboard.type("家賃が払えない（キーボードのみ）")
    page.keyboard.press("Tab")  # to the notes
    page.keyboard.press("Tab")  # the date
    page.keyboard.press("Tab")  # the time
    page.keyboard.press("Tab")  # the button
    page.keyboard.press("Enter")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("相談方法")
    channel = page.get_by_label(re.compile("^相談方法"))
    expect(channel).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-channel")).to_have_text("＊選んでください。")
    checked(page, "keyboard-errors")
    # What was typed is kept.
    expect(page.get_by_label(re.compile("^主訴"))).to_have_value("家賃が払えない（キーボードのみ）")

    tab_to(page, "相談方法")
    page.keyboard.press("ArrowDown")  # 来所
    page.keyboard.press("ArrowDown")  # 電話
    tab_to(page, "相談経路")
    page.keyboard.press("ArrowDown")  # 本人
    tab_to(page, "本人")  # the first caller kind (radio)
    page.keyboard.press("ArrowRight")  # 家族
    expect(page.get_by_label("家族", exact=True)).to_be_checked()
    tab_to(page, "受付時刻")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("相談を受け付けました。")
    facts = page.locator(".facts")
    expect(facts).to_contain_text("電話")
    expect(facts).to_contain_text("家族")
    expect(facts).to_contain_text("家賃が払えない（キーボードのみ）")
    checked(page, "keyboard-saved")
