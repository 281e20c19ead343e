"""The names a person view shows for the facts the views keep under internal keys.

A fact is kept as ``<subject>.<field>``: the record it came from (``person``, a consultation, a
support case, one of its plans or assessments, a meeting, a referral), then the event's field.
A response names the record by kind and id and the field by what it means, never by the key:
``case:<id>/assessment:1.issues`` is field ``issues`` of record
``{"record": "assessment", "case_id": <id>, "number": 1}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PERSON = "person"

# Fields whose event field name says less than it should once the event is no longer in sight,
# by record kind: the last step's time of a record, a consultation's triage fields.
FIELD_NAMES: dict[tuple[str, str], str] = {
    ("consultation", "at"): "application_received_at",
    ("consultation", "outcome"): "triage_outcome",
    ("consultation", "note"): "triage_note",
    ("consultation", "target_agency"): "triage_target_agency",
    ("consultation", "target_system"): "triage_target_system",
    ("case", "at"): "step_at",
    ("plan", "at"): "step_at",
    ("meeting", "note"): "shared_note",
}


@dataclass(frozen=True)
class Named:
    """A fact's record (None: the person's own) and its readable field name."""

    record: dict[str, Any] | None
    field: str


def _record(subject: str) -> dict[str, Any]:
    """``case:<id>/plan:2`` -> ``{"record": "plan", "case_id": <id>, "version": 2}``."""
    kind, _, rest = subject.partition(":")
    parent, _, child = rest.partition("/")
    if not child:
        return {"record": kind, "id": parent}
    part, _, number = child.partition(":")
    counter = "version" if part == "plan" else "number"
    return {"record": part, f"{kind}_id": parent, counter: int(number)}


def readable(key: str) -> Named:
    subject, _, field = key.partition(".")
    if subject == PERSON:
        return Named(None, FIELD_NAMES.get((PERSON, field), field))
    record = _record(subject)
    return Named(record, FIELD_NAMES.get((record["record"], field), field))
