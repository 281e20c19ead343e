"""The meeting screens played through a browser: scenario 05 (Cさん's family: a vital-interest
declaration when her sister is arrested, then the support team's coordination meeting and the
支援決定), and the 支援会議 of scenario 03, whose tax share is refused under 地方税法第22条 naming
the members no consent covers, while the office's share is shown to each member with its basis
before it is made.

The stories' dates are moved by the same whole days the demo moves them; what the screens date
"now" (a registration, an application) falls after every date the replay reads.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from services.scenarios import JST, step_time
from services.web.formatting import today
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

SHAKYO = "座間市社会福祉協議会"
SEIKATSUCLUB = "生活クラブ生協・ワーカーズコレクティブ協会（はたらつく・ざま／ここから）"
SHUNO = "座間市 収納課（市税の納付・滞納相談）"
KODOMO = "座間市 子ども政策課"


def test_scenario_05_vital_interest_then_the_support_teams_meeting(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    dates = Dates("05-family-c")
    sign_in(page, desk, "zama-jiritsu", "meeting_organiser", "m501")
    # The outreach visit the minsei volunteer arranged, then C's registration and consent.
    consultation = open_consultation(
        page, desk, dates, "2014-06-02T10:30", "home_visit", "minsei_volunteer", "その他"
    )
    person = register_applicant(page, consultation, "画面", "シー", "女性")
    record_consent(
        page,
        dates,
        person,
        [OFFICE, "座間市 介護保険課", "地域包括支援センター", SHAKYO],
        ["identity", "contact", "consultation", "family", "finances"],
        "支援の調整",
        "2014-06-20T14:10",
        "2015-06-20T00:00",
    )
    page.goto(person)
    page.get_by_role("link", name="ケース（支援プラン）").click()
    case = open_case(page, dates, "2014-06-20T14:20")
    case_step(page, "アセスメントを記録する")
    choose(page, "課題", "経済的困窮", "家計管理の問題", "家族関係", "社会的孤立", "就職活動困難")
    dates.dated(page, "2014-06-25T10:00")
    page.get_by_role("button", name="アセスメントを記録する").click()
    done(page, "アセスメントを記録しました。")

    # 生命・身体の保護: the sister's arrest; the child's protection cannot wait for consent.
    switch(page, desk, "zama-jiritsu", "supervisor", "v501")
    page.goto(person)
    page.get_by_role("link", name="生命・身体の保護（緊急の情報提供）").click()
    categories = page.get_by_role("group", name=re.compile("^情報の種類"))
    expect(categories).to_contain_text("税情報は選べません（地方税法第22条")
    expect(categories.get_by_label("税情報", exact=True)).to_have_count(0)
    choose(page, "提供先", KODOMO)
    choose(page, "情報の種類", CATEGORY["family"])
    page.get_by_label(re.compile("^理由")).fill("妹の逮捕により子どもの保護が必要")
    page.get_by_label(re.compile("^期間（時間）")).fill("96")
    dates.dated(page, "2014-07-15T09:00")
    page.get_by_role("button", name="宣言する").click()
    expect(page.locator("#e-hours")).to_have_text("＊72時間以内（0より大きい時間）にしてください。")
    checked(page, "s05-vital-refused")
    page.get_by_label(re.compile("^期間（時間）")).fill("72")
    page.get_by_role("button", name="宣言する").click()
    done(page, "宣言しました。個人情報保護担当者の確認待ちです。")
    declared = page.get_by_role("region", name="これまでの宣言")
    expect(declared).to_contain_text(KODOMO)
    expect(declared).to_contain_text("確認待ち")
    checked(page, "s05-vital-declared")

    # The support team meets with C: the plan she drafted with the office, then the decision.
    switch(page, desk, "zama-jiritsu", "meeting_organiser", "m501")
    page.goto(case)
    start = step_time("2014-07-18T10:00") + dates.shift
    take(
        page,
        dates,
        "プラン案を作成する",
        "2014-07-18T10:00",
        "プラン案を記録しました。",
        目標="Cさんの就労と家族の生活の安定",
        **{
            "プラン期間（開始）": dates.day("2014-07-18T10:00"),
            "プラン期間（終了）": (start + timedelta(days=182)).astimezone(JST).date().isoformat(),
        },
    )
    page.get_by_role("link", name="支援調整会議を予定する").click()
    page.get_by_label(re.compile("^開催予定日")).fill(dates.day("2014-07-20T10:00"))
    page.get_by_label(re.compile("^開始時刻")).fill(dates.clock("2014-07-20T10:00"))
    dates.dated(page, "2014-07-18T11:00")
    page.get_by_role("button", name="予定する").click()
    done(page, "会議を予定しました。")
    page.get_by_role("link", name="会議の開催を記録する").click()
    choose(page, "出席機関", "地域包括支援センター", SHAKYO, "民生委員・児童委員")
    page.get_by_label("本人が出席した").check()
    dates.dated(page, "2014-07-20T10:00")
    page.get_by_role("button", name="会議の開催を記録する").click()
    done(page, "会議の開催を記録しました。")
    record = page.get_by_role("region", name="会議の記録")
    for agency in (OFFICE, "地域包括支援センター", SHAKYO, "民生委員・児童委員"):
        expect(record).to_contain_text(agency)
    expect(record).to_contain_text(re.compile(r"本人が出席した\s*はい"))
    checked(page, "s05-meeting-held")
    switch(page, desk, "zama-jiritsu", "approver", "a501")
    page.goto(case)
    take(page, dates, "支援決定をする", "2014-07-20T11:00", "支援決定を記録しました。")
    expect(page.locator(".facts").first).to_contain_text("第1版：支援決定済み")

    # The story's expect: the children's desk saw the family's situation, for 72 hours only.
    switch(page, desk, "zama-jiritsu", "meeting_organiser", "m501")
    page.goto(person)
    page.get_by_role("link", name="振り返り（ある日の時点の支援経過）").click()

    def kodomo_sees(at: str) -> list[str]:
        page.get_by_label(re.compile("^日付")).fill(dates.day(at))
        page.get_by_label(re.compile("^時刻")).fill(dates.clock(at))
        page.get_by_label("後から入力されたものも含める").check()
        page.get_by_label(re.compile("^機関ごとの見え方")).select_option("zama-kodomo")
        with page.expect_navigation():
            page.get_by_role("button", name="表示する").click()
        view = page.get_by_role("region", name=re.compile("時点$")).locator("table").last
        if page.get_by_text("この機関がこの時点で見られた情報はありません。").count():
            return []
        return [f"{row[0]}|{row[1]}" for row in _rows(view)]

    during = kodomo_sees("2014-07-15T12:00")
    assert len(during) == 1 and during[0].startswith(f"{CATEGORY['family']}|生命・身体の保護")
    sheet = page.locator("table.record-sheet")
    expect(sheet).to_contain_text("生命・身体の保護のため情報提供を宣言した")
    checked(page, "s05-replay-kodomo-during")
    assert kodomo_sees("2014-07-20T00:00") == []
    checked(page, "s05-replay-kodomo-after")


def _rows(table: Locator) -> list[tuple[str, str]]:
    """Each category row of an agency's view: the category and the basis it was seen on."""
    found = []
    for row in table.locator("tbody tr").all():
        header = row.get_by_role("rowheader").inner_text()
        basis = row.locator("td").first.inner_text().split("\n")[0]
        found.append((header, basis))
    return found


def test_scenario_03_support_meeting_refuses_the_tax_share_and_previews_the_others(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    dates = Dates("03-tax-desk-referral")
    # The tax desk registers the taxpayer and records his consent for the support office.
    sign_in(page, desk, "zama-shuno", "caseworker", "t301")
    page.goto(desk.origin + "/persons/new")
    page.get_by_label("氏", exact=True).fill("画面")
    page.get_by_label("名", exact=True).fill("一郎")
    page.get_by_label(re.compile("^自機関の管理番号")).fill("T-903301")
    page.get_by_role("button", name="登録する").click()
    done(page, "本人を登録しました。")
    person = page.url
    record_consent(
        page,
        dates,
        person,
        [OFFICE],
        ["identity", "contact", "tax"],
        "関係機関へのつなぎ",
        "2025-09-01T10:05",
        "2025-12-02T00:00",
    )

    # The office schedules the 支援会議 with its members and their periods, and holds it.
    switch(page, desk, "zama-jiritsu", "meeting_organiser", "m301")
    page.goto(person)
    page.get_by_role("link", name="会議（支援調整会議・支援会議）").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("この人の会議")
    page.get_by_role("link", name="支援会議を予定する").click()
    page.get_by_label(re.compile("^開催予定日")).fill(dates.day("2025-09-12T10:00"))
    page.get_by_label(re.compile("^開始時刻")).fill(dates.clock("2025-09-12T10:00"))
    expect(
        page.get_by_role("group", name="構成員 1", exact=True).get_by_label("機関")
    ).to_have_value("zama-jiritsu")
    for row, agency in ((2, "zama-shakyo"), (3, "seikatsuclub"), (4, "zama-shuno")):
        member = page.get_by_role("group", name=f"構成員 {row}", exact=True)
        member.get_by_label("機関").select_option(agency)
    dates.dated(page, "2025-09-10T10:00")
    checked(page, "s03-meeting-new")
    page.get_by_role("button", name="予定する").click()
    done(page, "会議を予定しました。")
    meeting = page.url
    members = page.get_by_role("region", name="構成員と期間")
    for agency in (OFFICE, SHAKYO, SEIKATSUCLUB, SHUNO):
        expect(members).to_contain_text(agency)
    page.get_by_role("link", name="会議の開催を記録する").click()
    attendees = page.get_by_role("group", name=re.compile("^出席機関"))
    # Only members, bound by confidentiality, are offered; the person does not attend.
    expect(attendees.get_by_role("checkbox")).to_have_count(4)
    expect(page.get_by_label("本人が出席した")).to_have_count(0)
    choose(page, "出席機関", SHAKYO, SEIKATSUCLUB, SHUNO)
    dates.dated(page, "2025-09-12T10:00")
    checked(page, "s03-meeting-hold")
    page.get_by_role("button", name="会議の開催を記録する").click()
    done(page, "会議の開催を記録しました。")

    # The tax desk would share the arrears: refused before anything is shared, with the law.
    switch(page, desk, "zama-shuno", "caseworker", "t301")
    page.goto(meeting)
    page.get_by_role("link", name="情報を共有する").click()
    choose(page, "共有する情報の種類", CATEGORY["tax"])
    page.get_by_label(re.compile("^共有する内容")).fill("滞納額と分納可能性")
    dates.dated(page, "2025-09-12T10:10")
    page.get_by_role("button", name="共有先を確認する").click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("税情報は、本人の同意がなければ支援会議でも共有できません。")
    expect(refusal).to_contain_text("（地方税法第22条）")
    expect(refusal).to_contain_text(f"同意のない構成員：{SEIKATSUCLUB}、{OFFICE}、{SHAKYO}")
    expect(page.get_by_role("button", name="この内容で共有する")).to_have_count(0)
    checked(page, "s03-tax-refused")
    page.goto(meeting)
    expect(page.get_by_role("region", name="共有された情報")).to_contain_text(
        "あなたの機関が見られる共有情報はありません。"
    )

    # The office shares what it knows: each member's basis is shown before confirming.
    switch(page, desk, "zama-jiritsu", "meeting_organiser", "m301")
    page.goto(meeting)
    page.get_by_role("link", name="情報を共有する").click()
    shared = [CATEGORY[c] for c in ("consultation", "mental_health", "employment")]
    choose(page, "共有する情報の種類", *shared)
    page.get_by_label(re.compile("^共有する内容")).fill("失業後の抑うつ。就労準備から始める。")
    dates.dated(page, "2025-09-12T10:20")
    checked(page, "s03-share-form")
    page.get_by_role("button", name="共有先を確認する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("共有する前の確認")
    preview = page.get_by_role("table", name="構成員ごとの見え方")
    expect(preview.get_by_role("rowheader")).to_have_text([SHAKYO, SEIKATSUCLUB, SHUNO])
    expect(preview.get_by_role("columnheader")).to_have_text(["機関", "構成員の期間", *shared])
    for line in preview.locator("tbody tr").all():
        for cell in line.locator("td").all()[1:]:
            expect(cell).to_contain_text("見られる")
            expect(cell).to_contain_text("支援会議（法第9条）")
    checked(page, "s03-share-preview")
    page.get_by_role("button", name="この内容で共有する").click()
    done(page, "情報を共有しました。")

    # A member reads it, each category with its basis: the 支援会議 and its id; never tax.
    switch(page, desk, "seikatsuclub", "caseworker", "c301")
    page.goto(meeting)
    items = page.get_by_role("region", name="共有された情報")
    expect(items).to_contain_text("失業後の抑うつ。就労準備から始める。")
    for label in shared:
        expect(items).to_contain_text(
            f"{label}：支援会議（法第9条）（番号 {meeting.rsplit('/', 1)[1]}）"
        )
    expect(items).not_to_contain_text("税情報")
    expect(items).not_to_contain_text("滞納額")
    checked(page, "s03-member-reads")


def test_a_regular_meeting_reviews_the_resource_gaps_noted_since_the_last_one(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    # The menu offers 会議 to meeting organisers, not to every worker.
    sign_in(page, desk, "zama-jiritsu", "caseworker", "s601")
    menu = page.get_by_role("navigation", name="メインメニュー")
    expect(menu).not_to_contain_text("会議")
    switch(page, desk, "zama-jiritsu", "meeting_organiser", "m601")

    def regular(on: str) -> None:
        menu.get_by_role("link", name="会議").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("会議")
        page.get_by_role("link", name="定例支援調整会議を予定する").click()
        page.get_by_label(re.compile("^開催予定日")).fill(on)
        page.get_by_label(re.compile("^開始時刻")).fill("14:00")
        page.get_by_role("button", name="予定する").click()
        done(page, "会議を予定しました。")

    # The demo's declined housing slip left a gap (scenario 01): the first regular meeting
    # lists it before it is held, and keeps it as reviewed once held.
    regular(today().isoformat())
    pending = page.get_by_role("region", name="前回の定例会議以降に記録された社会資源の不足")
    expect(pending).to_contain_text("刑余者の市外転居を受け入れる居住支援")
    checked(page, "regular-pending")
    page.get_by_role("link", name="会議の開催を記録する").click()
    page.get_by_role("button", name="会議の開催を記録する").click()
    done(page, "会議の開催を記録しました。")
    reviewed = page.get_by_role("region", name="この会議で確認した社会資源の不足")
    expect(reviewed).to_contain_text("刑余者の市外転居を受け入れる居住支援")
    checked(page, "regular-held")
    # The next one starts from there: nothing noted since.
    regular((today() + timedelta(days=90)).isoformat())
    pending = page.get_by_role("region", name="前回の定例会議以降に記録された社会資源の不足")
    expect(pending).not_to_contain_text("刑余者の市外転居を受け入れる居住支援")
    expect(pending).to_contain_text("記録はありません。")
    menu.get_by_role("link", name="会議").click()
    expect(page.get_by_role("table")).to_contain_text("定例支援調整会議")
    checked(page, "meetings-list")
