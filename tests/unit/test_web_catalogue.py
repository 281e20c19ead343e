"""The desk's catalogue names every code it can show, in both languages, and writes dates as
forms do."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, date, datetime

import pytest
from pydantic import BaseModel

from contracts import disclosure, events
from contracts.identity import ROLES
from contracts.reference import reference
from services.intake.consent import METHODS
from services.intake.consultation import TRIAGE_OUTCOMES
from services.meeting.support_case import EMERGENCY_KINDS, EVALUATION_OUTCOMES, WORK_OUTCOMES
from services.meeting.support_case import MOVES as CASE_MOVES
from services.platform.keys import ERASURE_REASONS
from services.projection.field_names import FIELD_NAMES
from services.projection.person_facts import _NAMING as NAMING
from services.referral.referral import FOLLOW_UPS, KINDS, MOVES
from services.web import formatting, presenting
from services.web.catalogue import LOCALES, Translator, messages
from services.web.pages import privacy, replay

pytestmark = pytest.mark.unit

STATES = {"sent", *(target for _, _, target, _ in MOVES.values())}
PLAN_STATUSES = ("draft", "approved", "evaluated")
MEETING_MOVES = ("hold", "share_information")


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
        "meeting_kind": list(ref.meeting_kinds),
        "program": ref.programs,
        "service_class": ref.service_classes,
        "plan_status": PLAN_STATUSES,
        "evaluation": EVALUATION_OUTCOMES,
        "work_outcome": WORK_OUTCOMES,
        "emergency": EMERGENCY_KINDS,
        "case_move": (*CASE_MOVES, "replan"),
        "meeting_move": MEETING_MOVES,
        "event": [schema.name for schema in events.latest_versions()],
        "replay.mode": replay.MODES,
        "audit_view": privacy.VIEWS,
        "finding": privacy.FINDINGS,
        "basis_reason": disclosure.BASES,
        "erasure_reason": ERASURE_REASONS,
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


def event_fields() -> set[str]:
    """Every field a person view can name: the integration events' fields under the names the
    views give them, less those that only say who acted or which record is meant."""
    names: set[str] = set()
    for module in pkgutil.iter_modules(events.__path__):
        if module.name == "audit":
            continue  # RecordViewed is the audit chain's record of a read, never in a view
        loaded = importlib.import_module(f"{events.__name__}.{module.name}")
        for model in vars(loaded).values():
            if isinstance(model, type) and issubclass(model, BaseModel):
                names |= set(model.model_fields)
    return (names - NAMING) | set(FIELD_NAMES.values()) | {"named_on_slip", "state"}


@pytest.mark.parametrize("locale", LOCALES)
def test_every_field_a_person_view_can_show_has_a_label(locale: str) -> None:
    t = Translator(locale)
    assert sorted(f for f in event_fields() if not t.knows(f"field.{f}")) == []


def test_a_code_field_reads_in_its_records_own_words() -> None:
    t = Translator("ja")
    assert presenting.show(t, "kind", "use_recommendation", "referral") == "利用勧奨（法第8条）"
    assert presenting.show(t, "categories", ["tax", "identity"]).startswith("税情報、")
    assert presenting.show(t, "birth_date", "1979-06-15") == "昭和54年6月15日"
    assert presenting.show(t, "named_on_slip", True) == "はい"
