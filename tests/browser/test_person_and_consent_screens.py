"""本人登録 to 同意 through the screens: the agency's own id linked in one step and found again,
a consent withdrawn in part with its effect shown before it is confirmed, and a 振り分け that
connects elsewhere landing on the worklist when its follow-up is due."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from services.web.formatting import today
from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in

pytestmark = pytest.mark.browser


def register(page: Page, desk: LiveDesk, family: str, given: str, kana: str) -> str:
    page.goto(desk.origin + "/persons/new")
    page.get_by_label("氏", exact=True).fill(family)
    page.get_by_label("名", exact=True).fill(given)
    page.get_by_label("氏（ふりがな）").fill(kana)
    page.get_by_role("button", name=re.compile("登録する|別の方として登録する")).click()
    expect(page.get_by_role("status")).to_have_text("本人を登録しました。")
    return page.url


def test_a_local_id_is_linked_in_one_step_and_finds_the_person(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-jiritsu", "caseworker", "p301")
    person = register(page, desk, "結城", "桃子", "ゆうき")
    page.get_by_role("textbox", name=re.compile("^自機関の管理番号")).fill("J-30001")
    page.get_by_role("button", name="自機関の管理番号を結び付ける").click()
    expect(page.get_by_role("status")).to_have_text("管理番号を結び付けました。")
    page.goto(desk.origin + "/persons?local_id=J-30001")
    expect(page.get_by_role("row", name=re.compile("結城 桃子"))).to_have_count(1)
    page.get_by_role("link", name=re.compile("結城 桃子")).click()
    expect(page).to_have_url(person)
    checked(page, "person-linked")


def test_a_partial_withdrawal_shows_who_loses_what_before_it_is_confirmed(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-jiritsu", "caseworker", "p302")
    register(page, desk, "早川", "葵", "はやかわ")
    page.get_by_role("link", name="同意を記録する").click()
    recipients = page.get_by_role("group", name=re.compile("^情報を提供する相手"))
    recipients.get_by_label("座間市社会福祉協議会", exact=True).check()
    recipients.get_by_label("NPO法人ワンエイド（居住支援・フードバンク）", exact=True).check()
    categories = page.get_by_role("group", name=re.compile("^提供する情報の種類"))
    categories.get_by_label("債務", exact=True).check()
    categories.get_by_label("住まい", exact=True).check()
    page.get_by_role("group", name=re.compile("^利用目的")).get_by_label("支援の調整").check()
    until = today() + timedelta(days=180)
    page.get_by_label(re.compile("^有効期間（終了）")).fill(until.isoformat())
    page.get_by_role("button", name="登録する").click()
    expect(page.get_by_role("status")).to_have_text("同意を記録しました。")
    consent = page.url

    # Withdraw debt from the NPO only: the preview names exactly that, and nothing is done yet.
    withdraw = page.locator("section", has=page.locator("#h-withdraw"))
    withdraw.get_by_role("group", name=re.compile("^情報を提供する相手")).get_by_label(
        "NPO法人ワンエイド（居住支援・フードバンク）"
    ).check()
    withdraw.get_by_role("group", name=re.compile("^提供する情報の種類")).get_by_label(
        "債務"
    ).check()
    withdraw.get_by_label(re.compile("^撤回の理由")).fill("本人の申出")
    withdraw.get_by_role("button", name="撤回した場合の影響を確認する").click()
    effect = page.get_by_role("status")
    expect(effect).to_contain_text("NPO法人ワンエイド（居住支援・フードバンク）：債務")
    expect(effect).not_to_contain_text("座間市社会福祉協議会")
    checked(page, "consent-withdrawal-preview")
    page.goto(consent)
    expect(page.locator("main")).not_to_contain_text("撤回を確定する")

    page.goto(page.url)  # the preview again, then confirm it
    withdraw = page.locator("section", has=page.locator("#h-withdraw"))
    withdraw.get_by_role("group", name=re.compile("^情報を提供する相手")).get_by_label(
        "NPO法人ワンエイド（居住支援・フードバンク）"
    ).check()
    withdraw.get_by_role("group", name=re.compile("^提供する情報の種類")).get_by_label(
        "債務"
    ).check()
    withdraw.get_by_role("button", name="撤回した場合の影響を確認する").click()
    page.get_by_role("button", name="撤回を確定する").click()
    expect(page.get_by_role("status")).to_have_text("同意を撤回しました。")
    withdrawals = page.locator("main ul").first
    expect(withdrawals).to_contain_text("NPO法人ワンエイド（居住支援・フードバンク）（債務）")
    checked(page, "consent-withdrawn")


def test_connecting_elsewhere_lands_on_the_worklist_when_its_follow_up_is_due(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-jiritsu", "caseworker", "p303")
    page.goto(desk.origin + "/consultations/new")
    page.get_by_label(re.compile("^相談方法")).select_option("visit")
    page.get_by_label(re.compile("^相談経路")).select_option("minsei_volunteer")
    page.get_by_label("匿名", exact=True).check()
    page.get_by_label(re.compile("^主訴")).fill("生活保護の相談（振り分けの試験）")
    page.get_by_role("button", name="登録する").click()
    expect(page.get_by_role("status")).to_have_text("相談を受け付けました。")
    triage = page.locator("section", has=page.locator("#h-triage"))
    triage.get_by_label("他制度・他機関へつなぐ").check()
    triage.get_by_label(re.compile("^つなぎ先の制度")).fill("生活保護")
    triage.get_by_label(re.compile("^フォローアップ予定日")).fill(today().isoformat())
    triage.get_by_role("button", name="振り分ける").click()
    expect(page.get_by_role("status")).to_have_text("相談を受け付けました。")
    expect(page.locator(".facts")).to_contain_text("他制度・他機関へつなぐ")
    page.get_by_role("link", name="ホーム").click()
    due = page.locator("section", has=page.locator("#h-due"))
    expect(due).to_contain_text("民生委員")
    expect(due).to_contain_text("他制度・他機関へつなぐ")
    checked(page, "home-follow-up-due")
