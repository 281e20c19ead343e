"""Steps a story takes through the desk's screens, shared by the browser tests that play the
stories: each is what a worker does with labels and buttons, its result read off the page.

A story's dates are moved by the same whole days the demo moves them (every access check runs
on today's clock), and typed as the date and time fields take them.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from services.scenarios import JST, load_scenarios, shift_for, step_time
from tests.browser.conftest import LiveDesk, sign_in

STORIES = {s.name: s for s in load_scenarios()}
OFFICE = "座間市 地域福祉課 自立サポート係"
CATEGORY = {
    "identity": "本人確認情報（氏名・生年月日など）",
    "contact": "連絡先（住所・電話）",
    "consultation": "相談内容",
    "health": "健康",
    "mental_health": "こころの健康",
    "family": "家族の状況",
    "finances": "家計・収入",
    "employment": "就労",
    "housing": "住まい",
    "criminal_record": "犯罪歴・更生保護",
    "tax": "税情報",
}
# The labels of a step's date on the case and meeting screens.
STEP_DATE = re.compile("^(実施日|開始日|開催日|予定を決めた日|共有した日)")


class Dates:
    """A story's dates, moved as the demo moves them."""

    def __init__(self, story: str) -> None:
        self.shift = shift_for(STORIES[story])

    def moment(self, at: str) -> str:
        return (step_time(at) + self.shift).astimezone(JST).isoformat()

    def day(self, at: str) -> str:
        return self.moment(at)[:10]

    def clock(self, at: str) -> str:
        return self.moment(at)[11:16]

    def dated(self, page: Page, at: str) -> None:
        """A step's date and time, typed into its form."""
        page.get_by_label(STEP_DATE).fill(self.day(at))
        page.get_by_label(re.compile("^時刻")).fill(self.clock(at))


def choose(page: Page, group: str, *labels: str) -> None:
    fieldset = page.get_by_role("group", name=re.compile(f"^{group}"))
    for label in labels:
        fieldset.get_by_label(label, exact=True).check()


def done(page: Page, notice: str) -> None:
    expect(page.get_by_role("status")).to_have_text(notice)


def switch(page: Page, desk: LiveDesk, agency: str, role: str, staff: str) -> None:
    """Sign out, and sign in as someone else."""
    page.get_by_role("button", name="ログアウト").click()
    sign_in(page, desk, agency, role, staff)


def open_consultation(
    page: Page,
    desk: LiveDesk,
    dates: Dates,
    at: str,
    channel: str,
    route_in: str,
    caller: str,
    **words: str,
) -> str:
    """相談受付, dated as the story dates it; ``words`` fill the text boxes by label."""
    page.goto(desk.origin + "/consultations/new")
    page.get_by_label(re.compile("^相談方法")).select_option(channel)
    page.get_by_label(re.compile("^相談経路")).select_option(route_in)
    page.get_by_label(caller, exact=True).check()
    for label, text in words.items():
        page.get_by_label(re.compile(f"^{label}")).fill(text)
    page.get_by_label(re.compile("^受付日")).fill(dates.day(at))
    page.get_by_label(re.compile("^受付時刻")).fill(dates.clock(at))
    page.get_by_role("button", name="登録する").click()
    done(page, "相談を受け付けました。")
    return page.url


def register_applicant(
    page: Page,
    consultation: str,
    family: str,
    given: str,
    sex: str,
    dates: Dates | None = None,
    registered: str = "",
    applied: str = "",
) -> str:
    """本人登録 from the consultation, then its 利用申込 (each on the story's day, when given):
    the person's page."""
    page.goto(consultation)
    page.get_by_role("link", name="本人登録", exact=True).last.click()
    page.get_by_label("氏", exact=True).fill(family)
    page.get_by_label("名", exact=True).fill(given)
    page.get_by_label(sex, exact=True).check()
    if dates and registered:
        page.get_by_label(re.compile("^登録日")).fill(dates.day(registered))
    page.get_by_role("button", name="登録する").click()
    done(page, "本人を登録しました。")
    person = page.url
    page.goto(consultation)
    if dates and applied:
        page.get_by_label(re.compile("^利用申込の日")).fill(dates.day(applied))
    page.get_by_role("button", name="利用申込を受け付ける").click()
    done(page, "利用申込を受け付けました。")
    return person


def record_consent(
    page: Page,
    dates: Dates,
    person: str,
    recipients: list[str],
    categories: list[str],
    purpose: str,
    start: str,
    until: str,
) -> None:
    page.goto(person)
    page.get_by_role("link", name="同意を記録する").click()
    choose(page, "情報を提供する相手", *recipients)
    choose(page, "提供する情報の種類", *(CATEGORY[c] for c in categories))
    choose(page, "利用目的", purpose)
    page.get_by_label(re.compile("^有効期間（開始）")).fill(dates.day(start))
    page.get_by_label(re.compile("^有効期間（終了）")).fill(dates.day(until))
    page.get_by_role("button", name="登録する").click()
    done(page, "同意を記録しました。")


def open_case(page: Page, dates: Dates, at: str) -> str:
    """On ケースを開始する: the case opened from the person's one application."""
    expect(page.get_by_role("heading", level=1)).to_have_text("ケースを開始する")
    page.get_by_role("group", name=re.compile("^もとになる利用申込")).get_by_role("radio").check()
    dates.dated(page, at)
    page.get_by_role("button", name="ケースを開始する").click()
    done(page, "ケースを開始しました。")
    return page.url


def case_step(page: Page, name: str) -> None:
    """One of the case's next steps, opened from the case page."""
    page.get_by_role("region", name="次にできること").get_by_role(
        "link", name=name, exact=True
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def take(page: Page, dates: Dates, name: str, at: str, notice: str, **fill: str) -> None:
    """A step whose form is text boxes (by label) and its date: opened, filled, taken."""
    case_step(page, name)
    for label, value in fill.items():
        page.get_by_label(re.compile(f"^{label}")).fill(value)
    dates.dated(page, at)
    page.get_by_role("button", name=name).click()
    done(page, notice)
