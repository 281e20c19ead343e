"""Each agency's view of a person over HTTP, its referral boxes, and the replay as of an instant.

An agency reads only its own view: ``agency=`` naming another agency is 403. Every response that
shows a person's data is recorded in the audit log (RecordViewed) with the exact body sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from contracts.errors import Forbidden, Invalid, NotFound
from contracts.identity import Staff
from services.platform.auth import authenticated_staff
from services.projection.agency_view import allowed_categories, sweep, visible_to
from services.projection.audit_api import record_view
from services.projection.person_facts import TxReader, record_from, utc
from services.projection.store import ViewStore

REPLAY_ROLES = ("meeting_organiser", "privacy_officer")
JSON = "application/json"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise Invalid(name, "timezone_required", "give the time with its UTC offset (+09:00)")
    return value


def _body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()


def _own_agency(staff: Staff, agency: str | None) -> None:
    if agency is not None and agency != staff.agency:
        raise Forbidden(
            f"staff of {staff.agency!r} may read only their own agency's view, not {agency!r}"
        )


def _disclose(
    request: Request,
    staff: Staff,
    person_id: str,
    shown: dict[str, tuple[str, str | None]],
    document: dict[str, Any],
) -> Response:
    """The response, recorded in the audit log first when it shows any of the person's data."""
    body = _body(document)
    if shown:
        record_view(request.app.state.audit, request, staff, person_id, shown, None, body)
    return Response(content=body, media_type=JSON)


def build_router(
    views: ViewStore,
    *,
    sweep_before_read: bool = False,
    acknowledgement_hours: int = 72,
    decline_follow_up_days: int = 7,
    clock: Callable[[], datetime] = _now,
) -> APIRouter:
    """``sweep_before_read``: the embedded mode has no sweeper process, so each read sweeps."""
    router = APIRouter(tags=["views"])

    def fresh() -> datetime:
        now = clock()
        if sweep_before_read:
            sweep(views, now)
        return now

    def box(staff: Staff, direction: str) -> list[dict[str, Any]]:
        now = clock()
        with views.database.transaction() as tx:
            rows = tx.fetchall(
                "SELECT * FROM referral_box WHERE agency = ? AND direction = ? "
                "ORDER BY sent_at, referral_id",
                (staff.agency, direction),
            )
        return [
            {
                "referral_id": row["referral_id"],
                "counterpart": row["counterpart"],
                "person_id": row["person_id"],
                "kind": row["kind"],
                "categories": json.loads(row["categories"]) if row["categories"] else [],
                "state": row["state"],
                "sent_at": row["sent_at"],
                "changed_at": row["changed_at"],
                "acknowledgement_overdue": row["state"] == "sent"
                and row["sent_at"] is not None
                and now - datetime.fromisoformat(row["sent_at"])
                > timedelta(hours=acknowledgement_hours),
                "follow_up_overdue": row["state"] == "declined"
                and not row["decline_followed_up"]
                and now - datetime.fromisoformat(row["changed_at"])
                > timedelta(days=decline_follow_up_days),
            }
            for row in rows
        ]

    @router.get("/inbox")
    def inbox(staff: Staff = Depends(authenticated_staff)) -> list[dict[str, Any]]:
        """Referrals received by the caller's agency, with states and overdue flags."""
        return box(staff, "in")

    @router.get("/outbox")
    def outbox(staff: Staff = Depends(authenticated_staff)) -> list[dict[str, Any]]:
        """Referrals the caller's agency sent, with states and overdue flags."""
        return box(staff, "out")

    @router.get("/persons/by-local-id")
    def by_local_id(local_id: str, staff: Staff = Depends(authenticated_staff)) -> dict[str, str]:
        """The person the caller's own agency filed under ``local_id``; never another's ids."""
        with views.database.transaction() as tx:
            row = tx.fetchone(
                "SELECT person_id FROM local_id WHERE agency = ? AND local_id = ?",
                (staff.agency, local_id),
            )
        if row is None:
            raise NotFound(f"{staff.agency} has filed no person under that local id")
        return {"person_id": row["person_id"]}

    @router.get("/persons/{person_id}")
    def person(
        person_id: str,
        request: Request,
        agency: str | None = None,
        staff: Staff = Depends(authenticated_staff),
    ) -> Response:
        """The caller's agency's view of the person: allowed categories, fields and bases."""
        _own_agency(staff, agency)
        fresh()
        with views.database.transaction() as tx:
            rows = tx.fetchall(
                "SELECT * FROM agency_view WHERE agency = ? AND person_id = ? "
                "ORDER BY category, field",
                (staff.agency, person_id),
            )
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
            entry["fields"][row["field"]] = json.loads(row["value"])
        shown = {c: (e["basis"], e["basis_id"]) for c, e in categories.items()}
        document = {"person_id": person_id, "agency": staff.agency, "categories": categories}
        return _disclose(request, staff, person_id, shown, document)

    @router.get("/persons/{person_id}/as-of")
    def as_of(
        person_id: str,
        at: datetime,
        request: Request,
        agency: str | None = None,
        back_entered: bool = False,
        staff: Staff = Depends(authenticated_staff),
    ) -> Response:
        """The case as of ``at``, filtered by what the viewer may see now; and, with ``agency``,
        what that agency was able to see at ``at``.

        Only what was recorded by ``at`` counts, unless ``back_entered`` also admits events
        entered later with an earlier business time (a contact written up afterwards).
        """
        if not any(staff.has_role(r) for r in REPLAY_ROLES):
            raise Forbidden(f"replaying a case needs one of the roles {list(REPLAY_ROLES)}")
        at = _aware("at", at)
        known_at = None if back_entered else at
        now = fresh()
        with views.database.transaction() as tx:
            state = TxReader(tx)
            viewer_allows = allowed_categories(staff.agency, record_from(state, person_id), now)
            then = record_from(state, person_id, as_of=at, known_at=known_at)
            rows = [
                row
                for row in tx.fetchall(
                    "SELECT * FROM timeline WHERE person_id = ? AND at <= ? "
                    "ORDER BY at, recorded_at, row_id",
                    (person_id, utc(at)),
                )
                if known_at is None or row["recorded_at"] <= utc(known_at)
            ]

        def viewer_sees(row: dict[str, Any]) -> bool:
            return row["category"] in viewer_allows and visible_to(staff.agency, row)

        timeline: list[dict[str, Any]] = []
        status: dict[str, dict[str, Any]] = {}
        for row in rows:
            # Basis events (consents, declarations) carry scopes, not the person's data.
            if row["category"] is not None and not viewer_sees(row):
                continue
            timeline.append(
                {
                    key: row[key]
                    for key in ("at", "recorded_at", "event", "agency", "category", "event_id")
                }
                | {"summary": json.loads(row["summary"])}
            )
            if row["category"] is not None:
                status.setdefault(row["category"], {}).update(json.loads(row["summary"]))
        shown = {
            c: (viewer_allows[c].basis, viewer_allows[c].basis_id)
            for c in status
            if c in viewer_allows
        }
        document: dict[str, Any] = {
            "person_id": person_id,
            "as_of": at.isoformat(),
            "back_entered": back_entered,
            "timeline": timeline,
            "state": status,
        }
        if agency is not None:
            could = allowed_categories(agency, then, at)
            seen: dict[str, dict[str, Any]] = {}
            for row in rows:
                category = row["category"]
                if category is None or category not in could or not visible_to(agency, row):
                    continue
                entry = seen.setdefault(
                    category,
                    {
                        "basis": could[category].basis,
                        "basis_id": could[category].basis_id,
                        # What the agency saw, shown only where the viewer may see it now.
                        "fields": {} if viewer_sees(row) else None,
                    },
                )
                if entry["fields"] is not None and viewer_sees(row):
                    entry["fields"].update(json.loads(row["summary"]))
                    shown[category] = (
                        viewer_allows[category].basis,
                        viewer_allows[category].basis_id,
                    )
            document["agency_view"] = {"agency": agency, "categories": seen}
        return _disclose(request, staff, person_id, shown, document)

    return router
