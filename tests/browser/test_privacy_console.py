"""The privacy officer's console in a browser, checked against a run whose disclosures are known.

The run goes through the public APIs as each agency would: a person registered by the office,
a consent to the council of social welfare (社協) and one to Hello Work; 社協 reads the person
three times and Hello Work once; a referral slip goes to 社協 under the consent, which is then
withdrawn; 社協 reads once more; a supervisor declares a vital interest and the children's desk
reads under it. Then the officer of zama-jiritsu answers, through the screens alone, who saw the
person and on what basis (each entry once), what the withdrawal could not call back (exactly the
reads before it, and the slip), proves one disclosure (matching hashes, one A4 page), prints the
accounting for the person, verifies and anchors the chain, and reviews the vital-interest
disclosure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from services.platform.auth import mint_token
from services.web.formatting import today
from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in
from tests.conftest import JWT_SECRET

pytestmark = pytest.mark.browser

OFFICE, SHAKYO, HELLOWORK, KODOMO = "zama-jiritsu", "zama-shakyo", "hellowork-atsugi", "zama-kodomo"
SHAKYO_NAME = "座間市社会福祉協議会"
FAMILY, GIVEN = "開示確認", "花子"
PDF_PAGE = re.compile(rb"/Type\s*/Page[^s]")


@dataclass
class Run:
    """The disclosures made, by the entry that recorded each."""

    person: str = ""
    consent: str = ""
    other_consent: str = ""
    referral: str = ""
    declaration: str = ""
    before: list[int] = field(default_factory=list)  # 社協's reads under the consent
    hellowork: list[int] = field(default_factory=list)
    after: list[int] = field(default_factory=list)  # 社協's read after the withdrawal
    vital: list[int] = field(default_factory=list)


class Api:
    """The platform's public APIs on the live desk, each call with a token of its own."""

    def __init__(self, desk: LiveDesk) -> None:
        self.http = httpx.Client(base_url=desk.origin, timeout=30)

    def call(self, method: str, path: str, agency: str, role: str, body: Any = None) -> Any:
        token = mint_token(JWT_SECRET, staff_id="s900", agency=agency, roles=[role])
        response = self.http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code < 300, response.text
        return response.json()

    def read(self, person: str, agency: str) -> int:
        """The agency reads the person's view; the entry that recorded it."""
        self.call("GET", f"/views/persons/{person}", agency, "caseworker")
        seen = self.call(
            "GET",
            f"/views/audit/persons/{person}?agency={agency}&limit=200",
            OFFICE,
            "privacy_officer",
        )
        position: int = seen[-1]["position"]
        return position

    def positions(self, person: str) -> list[int]:
        entries = self.call(
            "GET", f"/views/audit/persons/{person}?limit=200", OFFICE, "privacy_officer"
        )
        return [e["position"] for e in entries]


def consent_body(person: str, recipient: str, categories: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "person_id": person,
        "recipients": [recipient],
        "categories": categories,
        "purposes": ["support_coordination", "referral"],
        "valid_from": (now - timedelta(hours=2)).isoformat(),
        "valid_until": (now + timedelta(days=90)).isoformat(),
        "method": "written_application_form",
    }


@pytest.fixture(scope="module")
def run(desk: LiveDesk) -> Iterator[Run]:
    api, known = Api(desk), Run()
    person = {
        "family_name": FAMILY,
        "given_name": GIVEN,
        "family_name_kana": "カイジカクニン",
        "given_name_kana": "ハナコ",
        "birth_date": "1984-05-06",
        "sex": "female",
        "address": "座間市緑ケ丘1-1-1",
        "phone": "046-255-0000",
    }
    known.person = api.call("POST", "/intake/persons", OFFICE, "caseworker", person)["id"]
    categories = ["identity", "contact", "debt"]
    body = consent_body(known.person, SHAKYO, categories)
    known.consent = api.call("POST", "/intake/consents", OFFICE, "caseworker", body)["id"]
    body = consent_body(known.person, HELLOWORK, ["identity"])
    known.other_consent = api.call("POST", "/intake/consents", OFFICE, "caseworker", body)["id"]
    known.before = [api.read(known.person, SHAKYO) for _ in range(3)]
    known.hellowork = [api.read(known.person, HELLOWORK)]
    slip = {
        "kind": "service_request",
        "to": SHAKYO,
        "reason": "家計改善支援",
        "categories": ["identity", "debt"],
        "person_id": known.person,
        "consent_id": known.consent,
    }
    known.referral = api.call("POST", "/referral/referrals", OFFICE, "caseworker", slip)["id"]
    withdrawal = f"/intake/consents/{known.consent}/withdrawals"
    api.call("POST", withdrawal, OFFICE, "caseworker", {})
    known.after = [api.read(known.person, SHAKYO)]
    declaration = {
        "person_id": known.person,
        "recipients": [KODOMO],
        "categories": ["identity", "contact"],
        "reason": "子どもの安全確認のため緊急に連絡先が必要",
        "hours": 24,
    }
    known.declaration = api.call(
        "POST", "/meeting/vital-interests", OFFICE, "supervisor", declaration
    )["id"]
    known.vital = [api.read(known.person, KODOMO)]
    yield known
    api.http.close()


def at_who_saw(page: Page, desk: LiveDesk, run: Run) -> None:
    """Signed in as zama-jiritsu's privacy officer, on the run's person's record."""
    sign_in(page, desk, OFFICE, "privacy_officer", "p001")
    page.goto(f"{desk.origin}/privacy/persons/{run.person}")


def as_printed(page: Page, checked: AccessibilityCheck, name: str) -> bytes:
    """The page with print styles, A4's width less its margins (180 mm at 96 dpi), checked;
    and the PDF it prints as."""
    page.set_viewport_size({"width": 680, "height": 960})
    page.emulate_media(media="print")
    checked(page, name)
    return page.pdf(format="A4", prefer_css_page_size=True)


def entry_row(page: Page, position: int) -> Locator:
    """The row of the entries table that lists entry ``position``."""
    return page.locator("table.audit-entries tbody tr").filter(
        has_text=re.compile(rf"記録番号 {position}(?!\d)")
    )


def entry_numbers(page: Page) -> list[int]:
    """The entry numbers listed on the page, in the order shown."""
    cells = page.locator("table.audit-entries tbody tr td:first-child .small").all_inner_texts()
    return [int(re.sub(r"\D", "", text)) for text in cells]


def test_who_saw_the_person_lists_every_entry_once_with_its_basis(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck, run: Run
) -> None:
    sign_in(page, desk, OFFICE, "privacy_officer", "p001")
    page.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="個人情報保護"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("個人情報保護（監査）")
    checked(page, "privacy-console")
    page.get_by_label("氏名またはふりがな").fill("かいじかくにん")
    page.get_by_role("button", name="検索する").click()
    checked(page, "privacy-console-found")
    page.get_by_role("link", name=re.compile(f"^{FAMILY} {GIVEN}.*情報を見た記録")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("本人の情報を見た記録")
    checked(page, "privacy-who-saw")

    shown = entry_numbers(page)
    assert len(shown) == len(set(shown)), f"an entry is listed twice: {shown}"
    made = [*run.before, *run.hellowork, *run.after, *run.vital]
    assert all(shown.count(p) == 1 for p in made), (made, shown)
    # Nothing else is listed than the audit log holds about the person (the officer's own
    # search read is one of them), and nothing it holds is left out.
    assert shown == [p for p in Api(desk).positions(run.person) if p <= max(shown)]
    first = entry_row(page, run.before[0])
    expect(first).to_contain_text(SHAKYO_NAME)
    expect(first).to_contain_text(
        "本人同意：本人確認情報（氏名・生年月日など）、連絡先（住所・電話）"
    )
    expect(first.get_by_role("link", name=f"同意番号 {run.consent}")).to_be_visible()
    vital = entry_row(page, run.vital[0])
    expect(vital).to_contain_text("生命・身体の保護")

    page.get_by_label("機関").select_option(SHAKYO)
    page.get_by_role("button", name="絞り込む").click()
    assert entry_numbers(page) == [*run.before, *run.after]
    checked(page, "privacy-who-saw-shakyo")
    page.get_by_label("期間（終了日）").fill((today() - timedelta(days=1)).isoformat())
    page.get_by_role("button", name="絞り込む").click()
    expect(page.get_by_text("該当する記録はありません。")).to_be_visible()
    page.get_by_label("期間（開始日）").fill(today().isoformat())
    page.get_by_role("button", name="絞り込む").click()
    expect(page.get_by_role("alert")).to_contain_text("入力内容を確認してください")
    expect(page.locator("#e-until")).to_have_text(
        "＊終了日は開始日と同じ日か、それより後にしてください。"
    )
    checked(page, "privacy-who-saw-bad-period")


def test_the_revocation_impact_lists_exactly_what_left_before_the_withdrawal(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck, run: Run
) -> None:
    at_who_saw(page, desk, run)
    row = entry_row(page, run.before[0])
    row.get_by_role("link", name=f"同意番号 {run.consent}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("同意の撤回による影響")
    checked(page, "privacy-revocation-impact")

    before = page.locator("section", has=page.locator("#h-before"))
    expect(before.get_by_role("heading", level=2)).to_contain_text("（3 件）")
    assert entry_numbers(page) == run.before
    expect(page.locator("#h-after")).to_have_count(0)
    expect(page.locator("section", has=page.locator("#h-withdrawals"))).to_contain_text(
        "すべて撤回"
    )
    purged = page.locator("section", has=page.locator("#h-purged"))
    expect(purged.locator("tbody tr")).to_have_count(1)
    expect(purged.locator("tbody tr")).to_contain_text(SHAKYO_NAME)
    onward = page.locator("section", has=page.locator("#h-onward"))
    [slip] = onward.locator("table").first.locator("tbody tr").all()
    expect(slip).to_contain_text(f"つなぎ番号 {run.referral}")
    expect(slip).to_contain_text(SHAKYO_NAME)
    expect(onward).to_contain_text("この同意による支援会議での共有はありません。")

    page.goto(f"{desk.origin}/privacy/consent?consent_id={run.other_consent}")
    assert entry_numbers(page) == run.hellowork
    expect(page.get_by_text("この同意は撤回されていません。", exact=False)).to_be_visible()
    checked(page, "privacy-revocation-impact-in-force")


def test_the_proof_of_a_disclosure_shows_matching_hashes_on_one_printed_page(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck, run: Run
) -> None:
    at_who_saw(page, desk, run)
    row = entry_row(page, run.before[1])
    row.get_by_role("link", name=re.compile("^開示の証明")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"記録番号 {run.before[1]}")
    checked(page, "privacy-proof")

    expect(
        page.get_by_text("一致：提供した内容は、記録から作り直した内容と同じです")
    ).to_be_visible()
    hashes = page.locator("table.proof__hashes")
    served = hashes.get_by_role("row", name=re.compile("^提供時に記録したハッシュ"))
    rebuilt = hashes.get_by_role("row", name=re.compile("^事象から作り直したハッシュ"))
    served_hash = served.locator("td").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", served_hash)
    assert rebuilt.locator("td").inner_text() == served_hash
    expect(hashes.get_by_role("row", name=re.compile("^照合"))).to_contain_text("同じ")
    entry = Api(desk).call(
        "GET", f"/views/audit/entries/{run.before[1]}", OFFICE, "privacy_officer"
    )
    assert entry["response_hash"] == served_hash
    expect(page.get_by_text("記録された根拠と、作り直した根拠は一致しています。")).to_be_visible()
    bases = page.locator("section", has=page.locator("#h-bases"))
    expect(bases.get_by_role("row", name=re.compile("^本人確認情報"))).to_contain_text(run.consent)
    served_section = page.locator("section", has=page.locator("#h-served"))
    expect(served_section).to_contain_text(FAMILY)
    expect(page.get_by_role("button", name="PDF で保存・印刷")).to_be_visible()

    pdf = as_printed(page, checked, "privacy-proof-print")
    assert len(PDF_PAGE.findall(pdf)) == 1, "the proof does not fit one A4 page"


def test_the_accounting_for_the_person_lists_date_recipient_what_and_why(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck, run: Run
) -> None:
    at_who_saw(page, desk, run)
    page.get_by_role("link", name="開示等の記録（あなたの情報の提供記録）").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "開示等の記録（あなたの情報の提供記録）"
    )
    checked(page, "privacy-accounting")
    expect(page.get_by_text(f"{FAMILY} {GIVEN} 様")).to_be_visible()
    rows = page.locator("table.accounting__table tbody tr")
    shakyo = rows.filter(has_text=SHAKYO_NAME).filter(has_text="あなたの同意による")
    expect(shakyo).to_have_count(len(run.before))
    expect(rows.filter(has_text="ハローワーク")).to_have_count(len(run.hellowork))
    expect(rows.filter(has_text="生命・身体の保護のため緊急に必要")).to_have_count(len(run.vital))
    as_printed(page, checked, "privacy-accounting-print")


def test_purges_and_the_chain_verified_then_anchored_now(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck, run: Run
) -> None:
    at_who_saw(page, desk, run)
    page.get_by_role("link", name="閲覧から消去された情報の記録").click()
    expect(page.locator("tbody tr").filter(has_text=SHAKYO_NAME)).to_have_count(1)
    expect(page.locator("tbody tr").filter(has_text=SHAKYO_NAME)).to_contain_text(run.consent)
    checked(page, "privacy-purges")

    page.goto(f"{desk.origin}/privacy")
    page.get_by_role("link", name="監査記録の検証").click()
    expect(page.get_by_text("✓ 改ざんは見つかりませんでした")).to_be_visible()
    checked(page, "privacy-chain")
    page.get_by_role("button", name="今すぐ署名する").click()
    expect(page.get_by_role("status")).to_have_text("チェックポイントに署名しました。")
    checkpoint = page.locator("section", has=page.locator("#h-checkpoint"))
    length = checkpoint.get_by_role("definition").nth(1).inner_text()
    assert int(re.sub(r"\D", "", length)) >= max(run.vital)
    checked(page, "privacy-chain-signed")


def test_the_vital_interest_disclosure_is_reviewed_with_a_note(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck, run: Run
) -> None:
    sign_in(page, desk, OFFICE, "privacy_officer", "p001")
    page.goto(f"{desk.origin}/privacy")
    page.get_by_role("link", name="生命・身体の保護による提供の確認").click()
    group = page.locator("section", has_text=run.declaration)
    expect(group).to_contain_text("子どもの安全確認のため緊急に連絡先が必要")
    checked(page, "privacy-vital-pending")
    group.get_by_role("link", name=re.compile("^確認する")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("生命・身体の保護による提供の確認")
    assert entry_numbers(page) == run.vital
    page.get_by_role("button", name="確認を記録する").click()
    expect(page.locator("#e-note")).to_have_text("＊入力してください。")
    checked(page, "privacy-vital-review-refused")
    page.get_by_label(re.compile("^確認の所見")).fill(
        "72時間以内で、提供先と情報は必要な範囲だった。"
    )
    page.get_by_role("button", name="確認を記録する").click()
    expect(page.get_by_role("status")).to_have_text("確認を記録しました。")
    expect(page.locator("section", has_text=run.declaration)).to_have_count(0)
    checked(page, "privacy-vital-reviewed")


def test_the_console_is_for_whom_the_audit_api_answers(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, OFFICE, "caseworker", "c001")
    nav = page.get_by_role("navigation", name="メインメニュー")
    expect(nav.get_by_role("link", name="個人情報保護")).to_have_count(0)
    page.goto(f"{desk.origin}/privacy")
    expect(page.get_by_role("alert")).to_have_text(
        "監査の記録を読む権限がありません。個人情報保護責任者として登録された職員が使う画面です。"
    )
    expect(page.get_by_role("search")).to_have_count(0)
    checked(page, "privacy-refused")


def test_everything_one_agency_saw_lists_its_reads_of_the_person(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck, run: Run
) -> None:
    sign_in(page, desk, OFFICE, "privacy_officer", "p001")
    page.goto(f"{desk.origin}/privacy")
    page.get_by_label("機関 必須").select_option(HELLOWORK)
    page.get_by_label("期間（開始日）").fill(today().isoformat())
    page.locator("form[action='/privacy/agency']").get_by_role("button").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ハローワーク")
    rows = page.locator("table.audit-entries tbody tr").filter(has_text=run.person)
    expect(rows).to_have_count(len(run.hellowork))
    assert [n for n in entry_numbers(page) if n in run.hellowork] == run.hellowork
    checked(page, "privacy-agency")


def test_from_the_demo_an_officer_answers_who_saw_a_person_and_prints_a_proof(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    """make run's demo: the agencies scenario 01 names opened the released offender's page, so
    a privacy officer finds him by name and reads who saw him and on what basis."""
    sign_in(page, desk, OFFICE, "privacy_officer", "p002")
    page.get_by_role("link", name="個人情報保護").click()
    page.get_by_label("氏名またはふりがな").fill("仮名")
    page.get_by_role("button", name="検索する").click()
    page.get_by_role("link", name=re.compile("^仮名 エー.*情報を見た記録")).click()
    hellowork = (
        page.locator("table.audit-entries tbody tr")
        .filter(has_text="ハローワーク")
        .filter(has_text="本人の情報の閲覧")
    )
    expect(hellowork).to_have_count(1)
    expect(hellowork).to_contain_text("本人同意：本人確認情報（氏名・生年月日など）")
    expect(hellowork).to_contain_text("就労")
    oneaid = page.locator("table.audit-entries tbody tr").filter(has_text="ワンエイド")
    expect(oneaid.filter(has_text="本人の情報の閲覧")).to_contain_text("犯罪歴・更生保護")
    checked(page, "privacy-demo-who-saw")
    hellowork.get_by_role("link", name=re.compile("^開示の証明")).click()
    expect(
        page.get_by_text("一致：提供した内容は、記録から作り直した内容と同じです")
    ).to_be_visible()
    expect(page.get_by_role("button", name="PDF で保存・印刷")).to_be_visible()
    checked(page, "privacy-demo-proof")
    pdf = as_printed(page, checked, "privacy-demo-proof-print")
    assert len(PDF_PAGE.findall(pdf)) == 1, "the proof does not fit one A4 page"
