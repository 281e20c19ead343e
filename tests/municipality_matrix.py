"""Two municipalities in one deployment, and every read route asked across them.

Zama (142182) and Ebina (142158) each get a person with a consultation, an application, a
consent, a referral slip, a support case with an assessment, a 支援会議 with information shared,
a vital-interest declaration, and reads recorded in their audit chain. Then the staff of each,
with every oversight role their office may hold and as a council of social welfare, ask every
read route about the other's records (and the lists, the figures and the audit about their own
municipality): nothing of the other municipality is ever in an answer, counted or audited.

Shared by the embedded test and the PostgreSQL one, so both are held to the same matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from services.platform.auth import mint_token
from services.platform.times import MUNICIPAL_OFFSET
from tests.conftest import JWT_SECRET


class Answer(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


class Platform(Protocol):
    """The services, however they run: ``call`` one service's route; ``settle`` until every
    event and every recorded read has reached the views and the chains."""

    def call(
        self, service: str, method: str, path: str, token: str, body: Any | None = None
    ) -> Answer: ...

    def settle(self) -> None: ...


OVERSIGHT = ["caseworker", "privacy_officer", "meeting_organiser", "supervisor", "approver"]
IDS = ("person", "consent", "consultation", "referral", "case", "meeting")


@dataclass
class Municipal:
    code: str
    office: str
    shakyo: str
    kana: tuple[str, str]
    local_id: str
    ids: dict[str, str] = field(default_factory=dict)

    def token(self, agency: str | None = None, roles: list[str] | None = None) -> str:
        """The office's staff with every oversight role it may hold; another agency's
        caseworker."""
        return mint_token(
            JWT_SECRET,
            staff_id=f"{self.code}-staff",
            agency=agency or self.office,
            roles=roles or (["caseworker"] if agency else OVERSIGHT),
            municipality=self.code,
        )

    @property
    def markers(self) -> list[bytes]:
        """What of this municipality's records may never appear in another's answers."""
        return [v.encode() for v in (*self.ids.values(), *self.kana, self.local_id)]


ZAMA = Municipal("142182", "zama-jiritsu", "zama-shakyo", ("ザマ", "タロウ"), "Z-LOCAL-1")
EBINA = Municipal("142158", "ebina-jiritsu", "ebina-shakyo", ("エビナ", "ハナコ"), "E-LOCAL-1")


def ok(answer: Answer, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def build(platform: Platform, m: Municipal) -> None:
    """The municipality's records, made through the API as its staff would."""
    now = datetime.now(UTC)
    staff = m.token()

    def post(service: str, path: str, body: Any, status: int = 201) -> Any:
        return ok(platform.call(service, "POST", path, staff, body), status)

    family, given = m.kana
    person = post(
        "intake",
        "/persons",
        {
            "family_name": family,
            "given_name": given,
            "family_name_kana": family,
            "given_name_kana": given,
            "birth_date": "1980-01-01",
            "address": f"{m.code} 1-1",
            "local_id": m.local_id,
        },
    )["id"]
    consent = post(
        "intake",
        "/consents",
        {
            "person_id": person,
            "recipients": [m.office, m.shakyo],
            "categories": ["identity", "contact", "housing", "family"],
            "purposes": ["support_coordination", "referral", "meeting"],
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_until": (now + timedelta(days=90)).isoformat(),
        },
    )["id"]
    consultation = post(
        "intake",
        "/consultations",
        {"channel": "visit", "route_in": "self", "caller_kind": "self", "person_id": person},
    )["id"]
    post("intake", f"/consultations/{consultation}/application", {}, 200)
    platform.settle()
    referral = post(
        "referral",
        "/referrals",
        {
            "kind": "service_request",
            "to": m.shakyo,
            "reason": "住まいの相談",
            "categories": ["identity", "housing"],
            "person_id": person,
            "consent_id": consent,
        },
    )["id"]
    ok(
        platform.call(
            "referral", "POST", f"/referrals/{referral}/acknowledge", m.token(m.shakyo), {}
        )
    )
    case = post("meeting", "/cases", {"consultation_id": consultation, "person_id": person})["id"]
    post(
        "meeting",
        f"/cases/{case}/assessments",
        {"issues": ["unstable_housing"], "strengths": ["s"]},
    )
    until = (now + timedelta(days=30)).isoformat()
    meeting = post(
        "meeting",
        "/meetings",
        {
            "kind": "article9_support_meeting",
            "scheduled_for": (now - timedelta(hours=2)).isoformat(),
            "person_id": person,
            "members": [
                {"agency": m.office, "valid_until": until},
                {"agency": m.shakyo, "valid_until": until},
            ],
        },
    )["id"]
    held = {
        "attendees": [{"agency": m.office, "role": "organiser"}],
        "at": (now - timedelta(hours=1)).isoformat(),
    }
    post("meeting", f"/meetings/{meeting}/held", held, 200)
    post("meeting", f"/meetings/{meeting}/information", {"categories": ["housing"], "note": "n"})
    post(
        "meeting",
        "/vital-interests",
        {
            "person_id": person,
            "recipients": [m.shakyo],
            "categories": ["family"],
            "reason": "生命の危険",
            "hours": 24,
        },
    )
    platform.settle()
    # Reads, so that the municipality's chain holds entries of its own.
    ok(platform.call("views", "GET", f"/persons/{person}", m.token(m.shakyo, ["caseworker"])))
    ok(platform.call("intake", "GET", f"/persons/{person}", staff))
    platform.settle()
    m.ids.update(
        person=person,
        consent=consent,
        consultation=consultation,
        referral=referral,
        case=case,
        meeting=meeting,
    )


def month() -> str:
    return datetime.now(MUNICIPAL_OFFSET).strftime("%Y-%m")


def read_routes(other: Municipal) -> dict[tuple[str, str], str]:
    """Every read route, by (service, route path), asked with the other municipality's ids."""
    at = quote(datetime.now(UTC).isoformat())
    ids, this_month = other.ids, month()
    person, consent = ids["person"], ids["consent"]
    family, given = other.kana
    return {
        ("intake", "/consultations/{consultation_id}"): f"/consultations/{ids['consultation']}",
        ("intake", "/persons/by-local-id"): (
            f"/persons/by-local-id?local_id={other.local_id}&agency={other.office}"
        ),
        ("intake", "/persons/{person_id}"): f"/persons/{person}",
        ("intake", "/persons/{person_id}/duplicates"): f"/persons/{person}/duplicates",
        ("intake", "/persons/{person_id}/consents"): f"/persons/{person}/consents",
        ("intake", "/consents/{consent_id}"): f"/consents/{consent}",
        ("intake", "/consents/{consent_id}/receipt"): f"/consents/{consent}/receipt",
        ("intake", "/consents/{consent_id}/coverage"): (
            f"/consents/{consent}/coverage?recipient={other.shakyo}&purpose=referral"
        ),
        ("intake", "/consents/{consent_id}/withdrawal-effect"): (
            f"/consents/{consent}/withdrawal-effect"
        ),
        ("intake", "/persons/{person_id}/retention"): f"/persons/{person}/retention",
        ("intake", "/retention/due"): "/retention/due?within_days=365",
        ("referral", "/referrals/inbox"): "/referrals/inbox",
        ("referral", "/referrals/outbox"): "/referrals/outbox",
        ("referral", "/referrals/{referral_id}"): f"/referrals/{ids['referral']}",
        ("meeting", "/cases"): "/cases",
        ("meeting", "/persons/{person_id}/case"): f"/persons/{person}/case",
        ("meeting", "/persons/{person_id}/applications"): f"/persons/{person}/applications",
        ("meeting", "/cases/{case_id}"): f"/cases/{ids['case']}",
        ("meeting", "/meetings"): "/meetings",
        ("meeting", "/persons/{person_id}/meetings"): f"/persons/{person}/meetings",
        ("meeting", "/meetings/{meeting_id}/resource-gaps"): (
            f"/meetings/{ids['meeting']}/resource-gaps"
        ),
        ("meeting", "/meetings/{meeting_id}"): f"/meetings/{ids['meeting']}",
        ("meeting", "/meetings/{meeting_id}/information/preview"): (
            f"/meetings/{ids['meeting']}/information/preview?categories=housing"
        ),
        (
            "meeting",
            "/meetings/{meeting_id}/information",
        ): f"/meetings/{ids['meeting']}/information",
        ("meeting", "/persons/{person_id}/vital-interests"): f"/persons/{person}/vital-interests",
        ("meeting", "/persons/{person_id}/disclosure"): f"/persons/{person}/disclosure",
        ("views", "/statistics"): f"/statistics?from={this_month}&to={this_month}",
        ("views", "/statistics/{month}"): f"/statistics/{this_month}",
        ("views", "/statistics/{month}/export.json"): f"/statistics/{this_month}/export.json",
        ("views", "/statistics/{month}/export.csv"): f"/statistics/{this_month}/export.csv",
        ("views", "/statistics/{month}/export.xlsx"): f"/statistics/{this_month}/export.xlsx",
        ("views", "/consultations"): "/consultations",
        ("views", "/inbox"): "/inbox",
        ("views", "/outbox"): "/outbox",
        ("views", "/persons/by-local-id"): f"/persons/by-local-id?local_id={other.local_id}",
        ("views", "/persons/search"): f"/persons/search?q={quote(family)}",
        ("views", "/persons/candidates"): (
            f"/persons/candidates?family_name_kana={quote(family)}&given_name_kana={quote(given)}"
        ),
        ("views", "/persons/{person_id}"): f"/persons/{person}",
        ("views", "/persons/{person_id}/as-of"): f"/persons/{person}/as-of?at={at}",
        ("views", "/audit/persons/{person_id}"): f"/audit/persons/{person}",
        ("views", "/audit/agencies/{agency}"): f"/audit/agencies/{other.shakyo}",
        ("views", "/audit/consents/{consent_id}"): f"/audit/consents/{consent}",
        ("views", "/audit/vital-interest/pending"): "/audit/vital-interest/pending",
        ("views", "/audit/consents/{consent_id}/impact"): f"/audit/consents/{consent}/impact",
        ("views", "/audit/entries/{position}"): "/audit/entries/1",
        ("views", "/audit/entries/{position}/replay"): "/audit/entries/1/replay",
        ("views", "/audit/persons/{person_id}/purges"): f"/audit/persons/{person}/purges",
        ("views", "/audit/verify"): "/audit/verify",
    }


# What an answer across municipalities may be: found nothing, refused, or (lists, figures,
# the caller's own audit) an answer about the caller's own municipality.
ALLOWED = {200, 403, 404, 409, 422}


def check(platform: Platform, this: Municipal, other: Municipal) -> int:
    """Every read route asked by ``this`` municipality's staff about ``other``'s records: no
    answer holds any of them. The number of answers checked."""
    checked = 0
    askers = [this.token(), this.token(this.shakyo, ["caseworker", "privacy_officer"])]
    for (service, _), path in read_routes(other).items():
        for token in askers:
            answer = platform.call(service, "GET", path, token)
            assert answer.status_code in ALLOWED, (service, path, answer.status_code, answer.text)
            # The ids the caller itself asked about may be echoed back ("no person X here").
            leaked = [m for m in other.markers if m in answer.content and m not in path.encode()]
            assert not leaked, (service, path, leaked, answer.text[:500])
            checked += 1
    return checked


def check_counts_and_chains(platform: Platform, this: Municipal, other: Municipal) -> None:
    """Figures count only this municipality's records; its audit chain holds only its own
    reads, and the other's chain none of this one's staff (refusals included)."""
    figures = ok(platform.call("views", "GET", f"/statistics/{month()}", this.token()))
    assert figures["municipality"] == this.code
    assert figures["figures"]["new_consultations"] == 1
    officer = this.token()
    verified = ok(platform.call("views", "GET", "/audit/verify", officer))
    own = ok(platform.call("views", "GET", f"/audit/agencies/{this.office}?limit=200", officer))
    shakyo = ok(platform.call("views", "GET", f"/audit/agencies/{this.shakyo}?limit=200", officer))
    assert verified["ok"] and verified["checked"] == len(own) + len(shakyo)
    theirs = ok(platform.call("views", "GET", f"/audit/agencies/{this.office}", other.token()))
    assert theirs == []


def covered(routes: Callable[[str], set[str]]) -> None:
    """The matrix names every read route the services serve: a new one must join it.
    ``routes``: a service's GET route paths."""
    placeholder = Municipal("000000", "-", "-", ("-", "-"), "-", dict.fromkeys(IDS, "-"))
    named = read_routes(placeholder)
    for service in ("intake", "referral", "meeting", "views"):
        expected = {path for (s, path) in named if s == service}
        assert routes(service) == expected, (service, routes(service) ^ expected)
