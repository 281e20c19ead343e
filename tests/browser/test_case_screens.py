"""Scenario 01 (Aさん, released from prison) played through the desk's screens only, then
replayed as of 2025-04-24 as the story's ``expect:`` block reads it.

The office takes his call, registers him, takes his application and consent, opens his case,
assesses him, drafts the plan with him, holds the 支援調整会議; the municipality's approver makes
the 支援決定 (offered to nobody else); monitoring; a slip to ワンエイド under a second consent is
declined and followed up as a resource gap; the plan is evaluated (re-plan) and the case closed
(moved away) with a follow-up period. Every step is dated as the story dates it, moved by the
same whole days the demo moves it (consents are checked against today's clock), the
registration, the application and the slip included.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from services.scenarios import JST, step_time
from services.web.formatting import wareki
from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in
from tests.browser.stories import (
    CATEGORY,
    OFFICE,
    Dates,
    case_step,
    choose,
    done,
    open_case,
    open_consultation,
    record_consent,
    register_applicant,
    switch,
    take,
)

pytestmark = pytest.mark.browser

DATES = Dates("01-released-offender-a")
HELLOWORK = "厚木公共職業安定所（ハローワーク）"
ONEAID = "NPO法人ワンエイド（居住支援・フードバンク）"
ISSUES = [
    "刑余者（再犯防止）",
    "病気",
    "問題飲酒",
    "身寄りなし（保証人・葬祭）",
    "経済的困窮",
    "就職活動困難",
]
STRENGTHS = ["1日1万歩歩く", "30万円に手を付けずにいる", "年金が月9万円"]


def test_scenario_01_through_the_case_screens_then_replayed_as_of_2025_04_24(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-jiritsu", "meeting_organiser", "m101")
    # 相談受付: he phones, apparently drunk; the worker's priority is to meet him.
    consultation = open_consultation(
        page,
        desk,
        DATES,
        "2025-04-07T10:12",
        "phone",
        "justice_system",
        "本人",
        主訴="仕事の相談をしたい",
        相談内容の記録="酒に酔っている様子。まず会うことを最優先。",
    )
    person = register_applicant(
        page,
        consultation,
        "画面",
        "エー",
        "男性",
        DATES,
        registered="2025-04-09T14:00",
        applied="2025-04-09T14:30",
    )
    record_consent(
        page,
        DATES,
        person,
        [OFFICE, HELLOWORK],
        ["identity", "contact", "consultation", "employment"],
        "支援の調整",
        "2025-04-09T14:31",
        "2026-04-09T00:00",
    )

    # The case, from his application.
    page.goto(person)
    links = page.get_by_role("navigation", name="ケース・会議")
    expect(links.get_by_role("link")).to_have_text(
        [
            "ケース（支援プラン）",
            "会議（支援調整会議・支援会議）",
            "振り返り（ある日の時点の支援経過）",
        ]
    )
    checked(page, "case-person-links")
    links.get_by_role("link", name="ケース（支援プラン）").click()
    checked(page, "case-open")
    case = open_case(page, DATES, "2025-04-09T14:35")
    next_steps = page.get_by_role("region", name="次にできること")
    # Nothing but an assessment (and emergency support, at any time) is offered yet.
    expect(next_steps.get_by_role("link")).to_have_text(
        ["アセスメントを記録する", "社会資源の不足を記録する", "緊急的な支援を記録する", "終結する"]
    )
    checked(page, "case-opened")

    # アセスメント: issues as check boxes, strengths one a line.
    case_step(page, "アセスメントを記録する")
    choose(page, "課題", *ISSUES)
    page.get_by_label(re.compile("^本人の強み")).fill("\n".join(STRENGTHS))
    DATES.dated(page, "2025-04-09T15:00")
    checked(page, "case-assessment-form")
    page.get_by_role("button", name="アセスメントを記録する").click()
    done(page, "アセスメントを記録しました。")
    assessment = page.get_by_role("region", name="アセスメント")
    for issue in ISSUES:
        expect(assessment).to_contain_text(issue)
    expect(assessment.get_by_role("listitem")).to_have_text(STRENGTHS)

    # プラン案, made with him: a goal and two services.
    case_step(page, "プラン案を作成する")
    page.get_by_label(re.compile("^目標")).fill("月3〜5万円の就労収入")
    start = step_time("2025-04-20T10:00") + DATES.shift
    page.get_by_label(re.compile("^プラン期間（開始）")).fill(DATES.day("2025-04-20T10:00"))
    page.get_by_label(re.compile("^プラン期間（終了）")).fill(
        (start + timedelta(days=182)).astimezone(JST).date().isoformat()
    )
    first = page.get_by_role("group", name="支援内容 1")
    first.get_by_label("提供機関").select_option("zama-jiritsu")
    first.get_by_label(re.compile("^事業")).select_option("free_job_placement")
    first.get_by_label("サービスの区分").select_option("D")
    second = page.get_by_role("group", name="支援内容 2")
    second.get_by_label("提供機関").select_option("hellowork-atsugi")
    second.get_by_label("サービスの区分").select_option("B")
    expect(page.get_by_label("本人と一緒に作成した")).to_be_checked()
    DATES.dated(page, "2025-04-20T10:00")
    checked(page, "case-plan-form")
    page.get_by_role("button", name="プラン案を作成する").click()
    done(page, "プラン案を記録しました。")
    plans = page.get_by_role("region", name="プラン（版ごと）")
    expect(plans.get_by_role("columnheader")).to_have_text(["項目", "第1版"])
    expect(plans).to_contain_text("案（支援決定前）")
    expect(plans).to_contain_text("無料職業紹介事業（D：自立相談支援機関が自ら支援）")
    expect(plans).to_contain_text(f"{HELLOWORK}（B：その他の制度サービス）")
    # No 支援決定 before the meeting, and none to a worker who is not the approver.
    expect(next_steps.get_by_role("link", name="支援決定をする")).to_have_count(0)
    expect(next_steps).to_contain_text("支援調整会議で検討してから支援決定に進みます")
    checked(page, "case-plan-drafted")

    # 個別支援調整会議: scheduled, then held with him and Hello Work.
    next_steps.get_by_role("link", name="支援調整会議を予定する").click()
    page.get_by_label(re.compile("^開催予定日")).fill(DATES.day("2025-04-25T10:00"))
    page.get_by_label(re.compile("^開始時刻")).fill(DATES.clock("2025-04-25T10:00"))
    DATES.dated(page, "2025-04-21T09:00")
    checked(page, "meeting-individual-new")
    page.get_by_role("button", name="予定する").click()
    done(page, "会議を予定しました。")
    page.get_by_role("link", name="会議の開催を記録する").click()
    attendees = page.get_by_role("group", name=re.compile("^出席機関"))
    expect(attendees.get_by_label(OFFICE, exact=True)).to_be_checked()
    attendees.get_by_label(HELLOWORK, exact=True).check()
    page.get_by_label("本人が出席した").check()
    page.get_by_label(re.compile("^確認・合意したこと")).fill("プラン案のとおり就労支援を始める")
    DATES.dated(page, "2025-04-25T10:00")
    checked(page, "meeting-individual-hold")
    page.get_by_role("button", name="会議の開催を記録する").click()
    done(page, "会議の開催を記録しました。")
    record = page.get_by_role("region", name="会議の記録")
    expect(record).to_contain_text(HELLOWORK)
    expect(record).to_contain_text("第1版")
    checked(page, "meeting-individual-held")
    page.goto(case)
    expect(next_steps.get_by_role("link", name="支援決定をする")).to_have_count(0)
    expect(next_steps).to_contain_text("支援決定は、プランを決定する権限のある市の担当者")

    # 支援決定: the municipality's approver, and only once.
    switch(page, desk, "zama-jiritsu", "approver", "a101")
    page.goto(person)
    page.get_by_role("link", name="ケース（支援プラン）").click()
    stale = page.context.new_page()
    stale.goto(page.url + "/steps/approve_plan")
    case_step(page, "支援決定をする")
    expect(page.get_by_role("region", name="対象のプラン")).to_contain_text("月3〜5万円の就労収入")
    DATES.dated(page, "2025-04-25T11:00")
    checked(page, "case-approval")
    page.get_by_role("button", name="支援決定をする").click()
    done(page, "支援決定を記録しました。")
    expect(page.locator(".facts").first).to_contain_text("第1版：支援決定済み")
    # A second tab opened before it: its 支援決定 is refused with the API's reason.
    stale.get_by_role("button", name="支援決定をする").click()
    refusal = stale.get_by_role("alert")
    expect(refusal).to_contain_text("この操作はできませんでした。")
    expect(refusal).to_contain_text("plan version 1 is already approved")
    expect(refusal).to_contain_text(re.compile("今できること：.*モニタリングを記録する"))
    checked(stale, "case-approval-refused")
    stale.close()

    switch(page, desk, "zama-jiritsu", "meeting_organiser", "m101")
    page.goto(case)
    take(
        page,
        DATES,
        "モニタリングを記録する",
        "2025-06-10T09:00",
        "モニタリングを記録しました。",
        内容="体調不良で面接できず。3日に1度酔って電話。",
    )

    # Eviction threat: his consent to the housing NPO, and a slip it declines.
    record_consent(
        page,
        DATES,
        person,
        [ONEAID],
        ["identity", "contact", "housing", "criminal_record"],
        "関係機関へのつなぎ",
        "2025-06-20T10:00",
        "2026-06-20T00:00",
    )
    page.goto(person)
    page.get_by_role("link", name="つなぐシートを送る").click()
    page.get_by_label(re.compile("^種類")).select_option("service_request")
    page.get_by_label(re.compile("^送付先")).select_option("oneaid")
    under = f"{wareki(DATES.day('2025-06-20T10:00'))}〜{wareki(DATES.day('2026-06-20T00:00'))}"
    page.get_by_label(re.compile("^根拠となる同意")).select_option(label=under)
    choose(
        page,
        "提供する情報",
        *(CATEGORY[c] for c in ("identity", "contact", "housing", "criminal_record")),
    )
    page.get_by_label(re.compile("^つなぐ理由")).fill("契約更新不可・保証人なし")
    page.get_by_label(re.compile("^送付日")).fill(DATES.day("2025-06-20T10:05"))
    page.get_by_label(re.compile("^送付時刻")).fill(DATES.clock("2025-06-20T10:05"))
    page.get_by_role("button", name="つなぐシートを送る").click()
    done(page, "つなぐシートを送りました。")
    slip = page.url
    switch(page, desk, "oneaid", "caseworker", "n101")
    page.goto(slip)
    page.locator("summary", has_text="辞退する").click()
    form = page.locator("details[open] form")
    form.get_by_label(re.compile("^理由")).fill(
        "近隣での転居先が見つからない（実名検索で過去の事件が出る）"
    )
    form.get_by_role("button", name="辞退する").click()
    done(page, "操作を記録しました。")

    # Never a silent end: the decline followed up, and the gap noted on his case.
    switch(page, desk, "zama-jiritsu", "meeting_organiser", "m101")
    gap = "刑余者の市外転居を受け入れる居住支援"
    page.goto(slip)
    page.locator("summary", has_text="フォローアップを記録する").click()
    form = page.locator("details[open] form")
    form.get_by_label("社会資源の不足として記録する").check()
    form.get_by_label(re.compile("^理由")).fill(gap)
    form.get_by_role("button", name="フォローアップを記録する").click()
    done(page, "操作を記録しました。")
    page.goto(case)
    case_step(page, "社会資源の不足を記録する")
    page.get_by_label(re.compile("^不足している社会資源")).fill(gap)
    DATES.dated(page, "2025-06-22T16:10")
    checked(page, "case-gap-form")
    page.get_by_role("button", name="社会資源の不足を記録する").click()
    done(page, "社会資源の不足を記録しました。")
    expect(page.get_by_role("region", name="社会資源の不足")).to_contain_text(gap)

    case_step(page, "プランを評価する")
    choose(page, "評価の結果", "再プラン（支援を続ける）")
    DATES.dated(page, "2025-10-01T10:00")
    page.get_by_role("button", name="プランを評価する").click()
    done(page, "プラン評価を記録しました。")
    expect(next_steps.get_by_role("link", name="再プランを作成する")).to_have_count(1)

    # 終結: a follow-up period that ends before the closure is refused beside its field.
    case_step(page, "終結する")
    choose(page, "終結の理由", "転出")
    page.get_by_label(re.compile("^フォローアップ期限")).fill(DATES.day("2025-10-01T00:00"))
    DATES.dated(page, "2025-10-15T10:00")
    page.get_by_role("button", name="終結する").click()
    expect(page.locator("#e-follow_up_until")).to_have_text("＊終結日より前の日付にはできません。")
    checked(page, "case-close-refused")
    page.get_by_label(re.compile("^フォローアップ期限")).fill(DATES.day("2026-04-15T00:00"))
    page.get_by_role("button", name="終結する").click()
    done(page, "終結を記録しました。")
    facts = page.locator(".facts").first
    expect(facts).to_contain_text("終結（転出）")
    expect(facts).to_contain_text(wareki(DATES.day("2026-04-15T00:00")))
    expect(next_steps.get_by_role("link")).to_have_text(
        ["緊急的な支援を記録する", "再開する", "フォローアップを記録する"]
    )
    checked(page, "case-closed")

    # 振り返り as of 2025-04-24: what the meeting knew the day before it met.
    page.goto(person)
    page.get_by_role("link", name="振り返り（ある日の時点の支援経過）").click()
    page.get_by_label(re.compile("^日付")).fill(DATES.day("2025-04-24T00:00"))
    page.get_by_role("button", name="表示する").click()
    replay = page.get_by_role("region", name=re.compile("時点$"))
    # Recorded by then: nothing, since every step was typed in today.
    expect(replay).to_contain_text("その時点までに記録されたもの")
    expect(replay).to_contain_text("この時点で記録されたものはありません。")
    checked(page, "replay-recorded")
    page.get_by_label("後から入力されたものも含める").check()
    page.get_by_role("button", name="表示する").click()
    situation = replay.locator("dl.facts").first
    # The story's expectation: plan drafted and not yet approved; no referral to oneaid yet.
    expect(situation).to_contain_text("第1版：案（支援決定前）")
    expect(situation.locator("dd").nth(3)).to_have_text("なし")
    sheet = replay.locator("table.record-sheet")
    expect(sheet).to_contain_text("相談を受け付けた")
    expect(sheet).to_contain_text("アセスメントを行った")
    expect(sheet).to_contain_text("本人とプラン案を作成した（第1版）")
    expect(sheet).to_contain_text("会議の開催を決めた")
    expect(sheet).to_contain_text("後日記録")
    for later in (
        "支援決定を行った",
        "会議を開催した",
        "つなぐシートを送った",
        "モニタリングを行った",
    ):
        expect(sheet).not_to_contain_text(later)
    checked(page, "replay-back-entered")

    # What each agency of the story's expect: block could see, on its date.
    def could_see(agency: str, on: str) -> set[str]:
        page.get_by_label(re.compile("^日付")).fill(DATES.day(on))
        page.get_by_label(re.compile("^機関ごとの見え方")).select_option(agency)
        with page.expect_navigation():
            page.get_by_role("button", name="表示する").click()
        seen = page.get_by_role("region", name=re.compile("時点$")).locator("table").last
        if page.get_by_text("この機関がこの時点で見られた情報はありません。").count():
            return set()
        return {
            c
            for c, label in CATEGORY.items()
            if seen.get_by_role("rowheader", name=label, exact=True).count()
        }

    hellowork = could_see("hellowork-atsugi", "2025-05-01T00:00")
    checked(page, "replay-hellowork")
    assert {"identity", "contact", "consultation", "employment"} <= hellowork
    assert not hellowork & {"health", "criminal_record", "housing", "mental_health"}
    oneaid = could_see("oneaid", "2025-06-21T00:00")
    assert {"identity", "contact", "housing", "criminal_record"} <= oneaid
    assert not oneaid & {"health", "employment"}
    assert could_see("zama-shuno", "2025-06-21T00:00") == set()
    expect(page.get_by_text("この機関がこの時点で見られた情報はありません。")).to_be_visible()
    checked(page, "replay-shuno")
