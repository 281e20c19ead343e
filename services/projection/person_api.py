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
from services.projection.agency_view import READ_CAUSE, refresh
from services.projection.audit_api import record_view
from services.projection.person_documents import (
    Disclosure,
    case_as_of,
    standing_view,
    view_request,
)
from services.projection.person_facts import TxReader
from services.projection.store import ViewStore, journal_position

REPLAY_ROLES = ("meeting_organiser", "privacy_officer")
JSON = "application/json"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise Invalid(name, "timezone_required", "give the time with its UTC offset (+09:00)")
    return value


def _own_agency(staff: Staff, agency: str | None) -> None:
    if agency is not None and agency != staff.agency:
        raise Forbidden(
            f"staff of {staff.agency!r} may read only their own agency's view, not {agency!r}"
        )


def _disclose(
    request: Request,
    staff: Staff,
    person_id: str,
    disclosure: Disclosure,
    view: dict[str, Any],
    at: datetime,
    state_position: int,
) -> Response:
    """The response, recorded in the audit log first when it shows any of the person's data."""
    body = disclosure.body()
    if disclosure.shown:
        record_view(
            request.app.state.audit,
            request,
            staff,
            person_id,
            disclosure.shown,
            body,
            at=at,
            state_position=state_position,
            view=view,
        )
    return Response(content=body, media_type=JSON)


def build_router(
    views: ViewStore,
    *,
    acknowledgement_hours: int = 72,
    decline_follow_up_days: int = 7,
    clock: Callable[[], datetime] = _now,
) -> APIRouter:
    router = APIRouter(tags=["views"])

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
        now = clock()
        # The person's rows are made what ``decide`` allows at this instant first: a basis
        # may have started or ended since the last event (the sweeper may not have run).
        refresh(views, person_id, now, READ_CAUSE)
        with views.database.transaction(snapshot=True) as tx:
            position = journal_position(tx)
            disclosure = standing_view(TxReader(tx), staff.agency, person_id)
        view = view_request("person")
        return _disclose(request, staff, person_id, disclosure, view, now, position)

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
        now = clock()
        with views.database.transaction(snapshot=True) as tx:
            position = journal_position(tx)
            disclosure = case_as_of(
                TxReader(tx),
                staff.agency,
                person_id,
                at,
                now,
                back_entered=back_entered,
                agency=agency,
            )
        view = view_request("as_of", at=at.isoformat(), back_entered=back_entered, agency=agency)
        return _disclose(request, staff, person_id, disclosure, view, now, position)

    return router
