"""Every text field of every integration event is judged personal (with its subject) or not."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import pytest
from pydantic import BaseModel

from contracts.events import CATALOGUE, ConsultationOpened, MeetingHeld, PersonRegistered
from contracts.events.meeting import PlanDrafted
from contracts.personal import (
    CODE,
    NotPersonal,
    Personal,
    personal_fields,
    unmarked_text_fields,
)

pytestmark = pytest.mark.unit

ALL = sorted(CATALOGUE.items())


@pytest.mark.parametrize("event", [cls for _, cls in ALL], ids=[f"{n}.v{v}" for (n, v), _ in ALL])
def test_every_text_field_of_every_event_is_marked_personal_or_not(
    event: type[BaseModel],
) -> None:
    assert unmarked_text_fields(event) == [], (
        f"mark these fields of {event.__name__} Annotated[..., Personal(subject=...)] or "
        "Annotated[..., NotPersonal(reason)] (contracts/personal.py)"
    )
    # Every subject names an id the event always carries (personal_fields raises otherwise).
    personal_fields(event)


def test_a_person_s_identity_and_contact_are_theirs() -> None:
    theirs = Personal(subject="person_id")
    assert personal_fields(PersonRegistered) == {
        field: theirs
        for field in (
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "birth_date",
            "birth_year",
            "sex",
            "address",
            "phone",
        )
    }


def test_what_is_said_in_a_consultation_is_the_consultation_s_own_subject() -> None:
    # Opened perhaps anonymously: not the person's, whose id may be missing.
    its_own = Personal(subject="consultation_id")
    assert personal_fields(ConsultationOpened) == {"main_complaint": its_own, "notes": its_own}


def test_a_part_s_subject_is_found_in_the_part_first_then_in_the_event() -> None:
    assert personal_fields(MeetingHeld)["resource_gaps.gap"] == Personal("resource_gaps.case_id")
    assert personal_fields(PlanDrafted)["services.description"] == Personal("person_id")


class _Part(BaseModel):
    text: str


class _Unjudged(BaseModel):
    person_id: UUID
    name: str | None = None
    aliases: list[str] = []
    counts: dict[str, int] = {}
    anything: Any = None
    part: _Part | None = None
    kind: Literal["a", "b"] = "a"
    year: int = 0
    code: Annotated[str, CODE] = ""
    phone: Annotated[str, Personal(subject="person_id")] = ""


def test_text_of_any_shape_that_is_not_marked_is_found() -> None:
    assert unmarked_text_fields(_Unjudged) == [
        "name",
        "aliases",
        "counts",
        "anything",
        "part.text",
    ]


class _NoSuchSubject(BaseModel):
    note: Annotated[str, Personal(subject="nobody_id")]


class _OptionalSubject(BaseModel):
    person_id: UUID | None = None
    note: Annotated[str, Personal(subject="person_id")]


class _MarkedTwice(BaseModel):
    note: Annotated[str, Personal(subject="note"), NotPersonal("undecided")]


@pytest.mark.parametrize(
    ("model", "why"),
    [
        (_NoSuchSubject, "no field"),
        (_OptionalSubject, "required UUID"),
        (_MarkedTwice, "more than once"),
    ],
)
def test_a_mark_that_cannot_be_kept_is_refused(model: type[BaseModel], why: str) -> None:
    with pytest.raises(TypeError, match=why):
        personal_fields(model)
