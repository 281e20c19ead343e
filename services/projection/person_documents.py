"""The documents the person views answer with, built from the projection's tables alone.

Each builder is a function of what a ``Reader`` sees and of the instant: the HTTP routes call
them on the live tables, and a disclosure replay calls them again on tables rebuilt from the
journalled events, so that the two can be compared byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from contracts import disclosure
from contracts.reference import reference
from services.platform.disclose import Disclosure, Shown
from services.platform.times import municipal, municipal_times
from services.projection.agency_view import (
    OWN_RECORD,
    POLICY_VIEWER,
    VIEW_PURPOSES,
    Allowed,
    FactBases,
    allowed_categories,
    decided_view,
    visible_to,
)
from services.projection.erasures import erasure
from services.projection.field_names import readable
from services.projection.merges import United, united
from services.projection.person_facts import Reader, facts_of, record_from, utc

# The person view's shape: a RecordViewed entry names it, and the entries recorded before
# shape 2 (categories keyed by name, internal field keys, UTC times) replay in their own shape.
PERSON_VIEW_SHAPE = 2
# A search result or duplicate candidate shows these categories of the person view, no more.
SUMMARY = ("identity",)


def person_view(
    state: Reader,
    agency: str,
    person_id: str,
    at: datetime,
    only: Collection[str] | None = None,
) -> Disclosure:
    """``agency``'s view of the person (``only`` some categories), decided at
    ``at``: each allowed category with its basis and its fields under readable names, and the
    categories held about the person that ``decide`` withholds, with the reason.

    Categories come in reference order; every time is at the municipality's offset. A person
    others were merged into is read with their records (``merges``), and says which.
    """
    state = united(state, person_id)
    wanted = reference().data_categories if only is None else only
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in decided_view(state, agency, person_id, at):
        if row["category"] in wanted:
            rows.setdefault(row["category"], []).append(row)
    categories = [_category(c, rows[c]) for c in wanted if c in rows]
    shown = {c: _basis(rows[c]) for c in wanted if c in rows}
    document = {
        "person_id": person_id,
        "agency": agency,
        "categories": categories,
        "withheld": _withheld(state, agency, person_id, at, [c for c in wanted if c not in rows]),
    }
    _note_erasure(document, state, person_id)
    _note_merged(document, state)
    recorders = {
        (fact["category"], fact["field"]): fact["agency"] for fact in facts_of(state, person_id)
    }
    disclosed_by = frozenset(
        recorders[(row["category"], row["field"])]
        for category in rows
        for row in rows[category]
        if (row["category"], row["field"]) in recorders
    )
    return Disclosure(document, shown, disclosed_by=disclosed_by)


def _disclosing(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row whose basis a category is shown on: where the agency's own facts and others'
    stand side by side, the basis the others' were disclosed on, which the audit must name."""
    return next((row for row in rows if row["basis"] != OWN_RECORD), rows[0])


def _basis(rows: list[dict[str, Any]]) -> tuple[str, str | None]:
    row = _disclosing(rows)
    return row["basis"], row["basis_id"]


def _category(category: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = _disclosing(rows)
    ends = first["valid_until"]
    fields: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda row: row["field"]):
        named = readable(row["field"])
        value = municipal_times(row["value"])
        if named.record is None:
            fields[named.field] = value
        else:
            subject = row["field"].partition(".")[0]
            record = records.setdefault(subject, {**named.record, "fields": {}})
            record["fields"][named.field] = value
    return {
        "category": category,
        "basis": {
            "kind": first["basis"],
            "id": first["basis_id"],
            "ends_at": municipal(ends) if ends is not None else None,
        },
        "fields": fields,
        "records": [records[subject] for subject in sorted(records)],
    }


def _withheld(
    state: Reader, agency: str, person_id: str, at: datetime, candidates: Sequence[str]
) -> list[dict[str, str]]:
    """Of ``candidates``, the categories the views hold facts of for ``agency``'s eyes that
    ``decide`` does not allow it now, each with ``decide``'s reason; never their content."""
    held = {
        fact["category"]
        for fact in facts_of(state, person_id)
        if fact["category"] in candidates and visible_to(agency, fact)
    }
    if not held:
        return []
    record = record_from(state, person_id)
    allowed = allowed_categories(agency, record, at)
    viewer = disclosure.Viewer(agency=agency, staff_id=POLICY_VIEWER)
    withheld = []
    for category in candidates:
        if category in held and category not in allowed:
            decision = disclosure.decide(viewer, record, category, VIEW_PURPOSES[0], at)
            assert isinstance(decision, disclosure.Deny)
            withheld.append({"category": category, "reason": decision.reason})
    return withheld


def standing_view_shape_1(state: Reader, agency: str, person_id: str, at: datetime) -> Disclosure:
    """The person view as served before shape 2, for replaying the entries that recorded it."""
    rows = decided_view(state, agency, person_id, at)
    categories: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = categories.setdefault(
            row["category"],
            {
                "basis": row["basis"],
                "basis_id": row["basis_id"],
                "valid_until": row["valid_until"],
                "fields": {},
            },
        )
        entry["fields"][row["field"]] = row["value"]
    shown = {c: (e["basis"], e["basis_id"]) for c, e in categories.items()}
    document = {"person_id": person_id, "agency": agency, "categories": categories}
    return Disclosure(document, shown)


def _timeline_order(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["at"], row["recorded_at"], row["row_id"])


def _basis_of(bases: FactBases) -> Callable[[dict[str, Any]], Allowed | None]:
    """The basis ``bases``' agency may see a timeline row on, if any; asked once per (category,
    recording agency, audience): a case's rows share a handful."""
    answers: dict[tuple[str, str, str | None], Allowed | None] = {}

    def check(row: dict[str, Any]) -> Allowed | None:
        key = (row["category"], row["agency"], row.get("audience"))
        if key not in answers:
            seen = visible_to(bases.agency, row) and row["category"] in bases.categories
            answers[key] = bases.of(row) if seen else None
        return answers[key]

    return check


def case_as_of(
    state: Reader,
    viewer_agency: str,
    person_id: str,
    at: datetime,
    now: datetime,
    *,
    back_entered: bool = False,
    agency: str | None = None,
) -> Disclosure:
    """The case as of ``at``, filtered by what the viewer may see ``now``; and, with
    ``agency``, what that agency was able to see at ``at``.

    Only what was recorded by ``at`` counts, unless ``back_entered`` also admits events
    entered later with an earlier business time (a contact written up afterwards).
    """
    state = united(state, person_id)
    known_at = None if back_entered else at
    # Stored times are ``utc`` text: one text bound per instant compares every row.
    until = utc(at)
    known = utc(known_at) if known_at is not None else None
    viewer_basis = _basis_of(FactBases(viewer_agency, record_from(state, person_id), now))
    rows = sorted(
        (
            row
            for row in state.rows("timeline", {"person_id": person_id})
            if row["at"] <= until and (known is None or row["recorded_at"] <= known)
        ),
        key=_timeline_order,
    )
    # Basis events (consents, declarations) carry scopes, not the person's data.
    shown_rows = [row for row in rows if row["category"] is None or viewer_basis(row)]
    # Every summary shown, parsed by one call as one JSON array: hundreds of ``json.loads``
    # calls cost more in their Python wrapper than in parsing.
    summaries: list[dict[str, Any]] = json.loads(
        "[" + ",".join(row["summary"] for row in shown_rows) + "]"
    )

    timeline: list[dict[str, Any]] = []
    status: dict[str, dict[str, Any]] = {}
    shown: Shown = {}
    disclosed_by: set[str] = set()
    for row, summary in zip(shown_rows, summaries, strict=True):
        timeline.append(
            {
                "at": row["at"],
                "recorded_at": row["recorded_at"],
                "event": row["event"],
                "agency": row["agency"],
                "category": row["category"],
                "event_id": row["event_id"],
                "summary": summary,
                # Recorded under a duplicate merged into the person since: which one.
                **({"recorded_under": row["recorded_under"]} if "recorded_under" in row else {}),
            }
        )
        if row["category"] is not None:
            status.setdefault(row["category"], {}).update(summary)
            _note(shown, row["category"], viewer_basis(row))
            disclosed_by.add(row["agency"])
    document: dict[str, Any] = {
        "person_id": person_id,
        "as_of": at.isoformat(),
        "back_entered": back_entered,
        "timeline": timeline,
        "state": status,
    }
    _note_erasure(document, state, person_id)
    _note_merged(document, state)
    if agency is not None:
        then = record_from(state, person_id, as_of=at, known_at=known_at)
        agency_basis = _basis_of(FactBases(agency, then, at))
        # The fields of the rows the viewer may see now, as the timeline shows them.
        fields_of = {
            row["row_id"]: summary for row, summary in zip(shown_rows, summaries, strict=True)
        }
        seen: dict[str, dict[str, Any]] = {}
        for row in rows:
            category = row["category"]
            could = agency_basis(row) if category is not None else None
            if could is None:
                continue
            fields = fields_of.get(row["row_id"])
            # What the agency saw, shown only where the viewer may see it now.
            entry = seen.setdefault(
                category,
                {
                    "basis": could.basis,
                    "basis_id": could.basis_id,
                    "fields": {} if fields is not None else None,
                },
            )
            if entry["fields"] is not None and fields is not None:
                entry["fields"].update(fields)
                _note(shown, category, viewer_basis(row))
        document["agency_view"] = {"agency": agency, "categories": seen}
    return Disclosure(document, shown, disclosed_by=frozenset(disclosed_by))


def _note_erasure(document: dict[str, Any], state: Reader, person_id: str) -> None:
    """Say when and why the person was erased, if they were: their sealed values then read
    消去済み. Only then, so that a document served before reads back the same."""
    erased = erasure(state, person_id)
    if erased is not None:
        document["erased"] = erased


def _note_merged(document: dict[str, Any], state: United) -> None:
    """Name the records merged into the person, if any: only then, as ``_note_erasure``."""
    if state.members:
        document["merged_from"] = list(state.members)


def _note(shown: Shown, category: str, grant: Allowed | None) -> None:
    """Record the basis a row of ``category`` was shown on; a basis other than the viewer's
    own record wins, since that is the disclosure the audit must name."""
    if grant is not None and (category not in shown or shown[category][0] == OWN_RECORD):
        shown[category] = (grant.basis, grant.basis_id)


def view_request(view: str, **params: Any) -> dict[str, Any]:
    """What an audit entry keeps of the request, enough to ``render`` the response again."""
    return {"view": view, **params}


def render(
    request: dict[str, Any], state: Reader, viewer_agency: str, person_id: str, now: datetime
) -> Disclosure:
    """The response a recorded ``view_request`` was answered with, built again from ``state``."""
    if request["view"] == "person":
        if request.get("shape") == PERSON_VIEW_SHAPE:
            return person_view(state, viewer_agency, person_id, now)
        return standing_view_shape_1(state, viewer_agency, person_id, now)
    if request["view"] == "person_summary":
        return person_view(state, viewer_agency, person_id, now, SUMMARY)
    if request["view"] == "as_of":
        return case_as_of(
            state,
            viewer_agency,
            person_id,
            datetime.fromisoformat(request["at"]),
            now,
            back_entered=bool(request["back_entered"]),
            agency=request["agency"],
        )
    raise ValueError(f"no view {request['view']!r} to render")
