"""The desk's catalogue names every code it can show, in both languages, and writes dates as
forms do."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contracts import disclosure
from contracts.identity import ROLES
from contracts.reference import reference
from services.intake.consent import METHODS
from services.intake.consultation import TRIAGE_OUTCOMES
from services.referral.referral import FOLLOW_UPS, KINDS, MOVES
from services.web import formatting
from services.web.catalogue import LOCALES, Translator, messages

pytestmark = pytest.mark.unit

STATES = {"sent", *(target for _, _, target, _ in MOVES.values())}


def codes() -> list[tuple[str, str]]:
    ref = reference()
    kinds: dict[str, tuple[str, ...] | list[str] | set[str]] = {
        "channel": ref.channels,
        "route_in": ref.routes_in,
        "caller_kind": ref.caller_kinds,
        "category": ref.data_categories,
        "agency": list(ref.agencies),
        "role": ROLES,
        "basis": disclosure.BASES,
        "purpose": disclosure.PURPOSES,
        "method": METHODS,
        "outcome": TRIAGE_OUTCOMES,
        "kind": KINDS,
        "move": list(MOVES),
        "state": STATES,
        "follow_up": FOLLOW_UPS,
        "issue": ref.issue_categories,
        "closure": ref.closure_reasons,
    }
    return [(kind, code) for kind, values in kinds.items() for code in values]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_code_the_desk_can_show_has_a_label(locale: str) -> None:
    t = Translator(locale)
    missing = [f"{kind}.{code}" for kind, code in codes() if not t.knows(f"{kind}.{code}")]
    assert missing == []


def test_both_catalogues_hold_the_same_keys() -> None:
    assert set(messages("ja")) == set(messages("en"))


def test_a_code_reads_as_words_not_as_itself() -> None:
    t = Translator("ja")
    assert t.code("route_in", "minsei_volunteer") == "民生委員"
    assert t.code("category", "tax") == "税情報"


def test_an_unknown_locale_falls_back_to_japanese() -> None:
    assert Translator("fr").locale == "ja"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (date(2025, 4, 1), "令和7年4月1日"),
        (date(2019, 5, 1), "令和元年5月1日"),
        (date(2019, 4, 30), "平成31年4月30日"),
        (date(1989, 1, 7), "昭和64年1月7日"),
        ("1979-06-15", "昭和54年6月15日"),
    ],
)
def test_dates_are_written_in_the_japanese_era(value: date | str, written: str) -> None:
    assert formatting.wareki(value) == written


def test_an_instant_is_shown_on_its_japanese_date_and_time() -> None:
    # 15:30 UTC on 31 March is already 1 April in Japan.
    moment = datetime(2025, 3, 31, 15, 30, tzinfo=UTC)
    assert formatting.jst_time(moment) == "令和7年4月1日 00:30"
    assert formatting.wareki_with_year(moment) == "令和7年（2025年）4月1日"
    assert formatting.iso_date("2025-03-31T15:30:00+00:00") == "2025-04-01"


def test_a_typed_date_and_time_become_a_japan_time_instant() -> None:
    assert formatting.business_time("2025-09-01", "10:05") == "2025-09-01T10:05:00+09:00"
    assert formatting.business_time("2025-09-01") == "2025-09-01T00:00:00+09:00"
    assert formatting.business_time("") is None
