"""Scenario 03 (the tax desk's 利用勧奨, 法8条) played through the desk's screens only.

The collection desk registers the taxpayer under its own id, records his consent for the
support office, and sends a つなぐシート; the support office accepts it from its worklist, opens
the consultation, finds him by his kana and ties the consultation to him; the tax desk sees that
its slip was accepted. Each step's result is read off the page.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from services.web.formatting import today
from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in

pytestmark = pytest.mark.browser

REASON = "失業のため収入がなくなり支払えない（画面からの送付）"
IDENTITY, CONTACT, TAX = "本人確認情報（氏名・生年月日など）", "連絡先（住所・電話）", "税情報"


def choose(page: Page, group: str, *labels: str) -> None:
    fieldset = page.get_by_role("group", name=re.compile(f"^{group}"))
    for label in labels:
        fieldset.get_by_label(label, exact=True).check()


def test_scenario_03_the_tax_desk_connects_a_taxpayer_through_the_screens(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    # 収納課: register the taxpayer under the desk's own id.
    sign_in(page, desk, "zama-shuno", "caseworker", "t101")
    page.get_by_role("link", name="本人登録").first.click()
    checked(page, "s03-person-new")
    page.get_by_label("氏", exact=True).fill("佐藤")
    page.get_by_label("名", exact=True).fill("一朗")
    page.get_by_label("氏（ふりがな）").fill("さとう")
    page.get_by_label("名（ふりがな）").fill("いちろう")
    page.get_by_label(re.compile("^生年月日")).fill("1979-06-15")
    page.get_by_label("男性").check()
    page.get_by_label("自機関の管理番号").fill("T-900123")
    page.get_by_role("button", name=re.compile("登録する|別の方として登録する")).click()
    expect(page.get_by_role("status")).to_have_text("本人を登録しました。")
    expect(page.get_by_role("heading", level=1)).to_contain_text("佐藤 一朗")
    expect(page.locator("#h-identity")).to_have_text("本人確認情報（氏名・生年月日など）")
    expect(page.locator(".basis").first).to_contain_text("自機関の記録")
    checked(page, "s03-person")
    person_url = page.url

    # His consent, for the support office, covering identity, contact and tax.
    page.get_by_role("link", name="同意を記録する").click()
    choose(page, "情報を提供する相手", "座間市 地域福祉課 自立サポート係")
    choose(
        page,
        "提供する情報の種類",
        "本人確認情報（氏名・生年月日など）",
        "連絡先（住所・電話）",
        "税情報",
    )
    choose(page, "利用目的", "関係機関へのつなぎ")
    until = today() + timedelta(days=90)
    page.get_by_label(re.compile("^有効期間（終了）")).fill(until.isoformat())
    page.get_by_label("書面（つなぐシート）").check()
    checked(page, "s03-consent-new")
    page.get_by_role("button", name="登録する").click()
    expect(page.get_by_role("status")).to_have_text("同意を記録しました。")
    expect(page.locator(".facts")).to_contain_text("税情報")
    checked(page, "s03-consent")
    page.get_by_role("link", name="同意書を印刷する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("個人情報の提供に関する同意書")
    checked(page, "s03-consent-form")

    # The slip: the consent's coverage for the receiver shows as it is chosen.
    page.goto(person_url)
    page.get_by_role("link", name="つなぐシートを送る").click()
    page.get_by_label(re.compile("^種類")).select_option("use_recommendation")
    page.get_by_label(re.compile("^送付先")).select_option("zama-jiritsu")
    coverage = page.locator("#coverage")
    expect(coverage).to_contain_text("この同意で送付先に提供できる情報")
    expect(coverage).to_contain_text("税情報")
    # What the consent does not cover for this receiver cannot even be ticked.
    shared = page.get_by_role("group", name=re.compile("^提供する情報"))
    expect(shared.get_by_label(re.compile("^健康"))).to_be_disabled()
    expect(shared.get_by_label(re.compile("^税情報"))).to_be_enabled()
    choose(
        page, "提供する情報", "本人確認情報（氏名・生年月日など）", "連絡先（住所・電話）", "税情報"
    )
    page.get_by_label(re.compile("^つなぐ理由")).fill(REASON)
    checked(page, "s03-referral-new")
    page.get_by_role("button", name="つなぐシートを送る").click()
    expect(page.get_by_role("status")).to_have_text("つなぐシートを送りました。")
    expect(page.locator(".sheet")).to_contain_text("送付済み")
    expect(page.locator(".sheet")).to_contain_text("利用勧奨（法第8条）")
    checked(page, "s03-referral-sent")
    slip_url = page.url
    page.get_by_role("button", name="ログアウト").click()

    # 自立サポート係: the slip is on the worklist; accept it.
    sign_in(page, desk, "zama-jiritsu", "caseworker", "s101")
    new_slips = page.locator("section", has=page.locator("#h-new"))
    expect(new_slips).to_contain_text("座間市 収納課")
    page.goto(slip_url)
    expect(page.locator(".sheet")).to_contain_text(REASON)
    checked(page, "s03-slip-received")
    page.get_by_role("button", name="受け入れる").click()
    expect(page.get_by_role("status")).to_have_text("操作を記録しました。")
    expect(page.locator(".sheet")).to_contain_text("受入れ")
    expect(page.get_by_role("button", name="受け入れる")).to_have_count(0)

    # The consultation, accompanied from the tax desk.
    page.get_by_role("link", name="相談受付").first.click()
    page.get_by_label(re.compile("^相談方法")).select_option("accompanied_by_staff")
    page.get_by_label(re.compile("^相談経路")).select_option("tax_desk")
    page.get_by_label("本人", exact=True).check()
    page.get_by_role("button", name="登録する").click()
    expect(page.get_by_role("status")).to_have_text("相談を受け付けました。")
    expect(page.locator(".facts")).to_contain_text("税務担当課")
    checked(page, "s03-consultation")

    # Found by his kana in katakana (registered in hiragana), and tied to the consultation.
    page.get_by_role("link", name="本人検索").last.click()
    page.get_by_label("氏名またはふりがな").fill("サトウ　イチロウ")
    page.get_by_role("button", name="検索する").click()
    row = page.get_by_role("row", name=re.compile("佐藤 一朗"))
    expect(row).to_contain_text("昭和54年6月15日")
    checked(page, "s03-search")
    row.get_by_role("button", name="この方と結び付ける").click()
    expect(page.locator(".facts")).to_contain_text("本人の情報")

    # The person as the office sees him: under his consent, tax included, with its end.
    page.get_by_role("link", name="本人の情報").click()
    identity = page.locator("section.category", has=page.locator("#h-identity"))
    expect(identity).to_contain_text("本人同意")
    expect(identity).to_contain_text("佐藤")
    tax = page.locator("section.category", has=page.locator("#h-tax"))
    expect(tax).to_contain_text("本人同意")
    checked(page, "s03-person-at-office")
    page.get_by_role("button", name="ログアウト").click()

    # 収納課 learns only that its slip was accepted.
    sign_in(page, desk, "zama-shuno", "caseworker", "t101")
    page.get_by_role("link", name="送信したつなぐシート").click()
    # Oldest first: the demo's own slip from this desk comes before today's.
    sent = page.get_by_role("row", name=re.compile("座間市 地域福祉課")).last
    expect(sent).to_contain_text("受入れ")
    checked(page, "s03-outbox")
    # Its view of him: its own records, and the office's consultation named as withheld only.
    page.goto(person_url)
    withheld = page.locator("section", has=page.locator("#h-withheld"))
    expect(withheld).to_contain_text("相談内容")
    expect(page.locator("#h-consultation")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("職員の同行")
    checked(page, "s03-person-at-tax-desk")
