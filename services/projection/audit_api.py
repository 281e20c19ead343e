"""The privacy officer's questions over HTTP, and ``record_view`` for every view that discloses.

Every route needs role ``privacy_officer``; a refused call is itself appended to the audit chain
before the 403 goes back, so probing the audit leaves a trace in it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from opentelemetry import trace
from pydantic import BaseModel, Field

from contracts.errors import Forbidden, Invalid
from contracts.identity import Staff
from services.platform.auth import authenticated_staff
from services.platform.pagination import Page, page, respond
from services.projection.audit import (
    ACCESS_DENIED,
    RECORD_VIEWED,
    AuditEntry,
    AuditLog,
    AuditRecord,
    Review,
    audit_key,
)
from services.projection.checkpoint import AnchoredVerification, Anchoring, Checkpoint
from services.projection.replay import Replay, replay_disclosure
from services.projection.revocation import RevocationImpact, impact_of
from services.projection.store import ViewStore

PRIVACY_OFFICER = "privacy_officer"


def request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or str(uuid.uuid4())


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def record_view(
    log: AuditLog,
    request: Request,
    staff: Staff,
    person_id: str,
    shown: Mapping[str, tuple[str, str | None]],
    body: bytes,
    *,
    at: datetime,
    state_position: int,
    view: Mapping[str, Any],
) -> None:
    """Append a RecordViewed entry for a response about to show ``person_id``'s data.

    ``body`` is the exact response body, so the entry proves what was shown, not just that
    something was; ``at`` is the instant ``decide`` was asked for, ``state_position`` the
    journal position the response was built from and ``view`` the view and its parameters,
    so that a replay can build the body again.
    """
    log.append(
        AuditEntry(
            kind=RECORD_VIEWED,
            viewer_staff_id=staff.staff_id,
            viewer_agency=staff.agency,
            viewer_roles=tuple(staff.roles),
            recorded_at=at,
            person_id=person_id,
            shown=shown,
            request_id=request_id(request),
            trace_id=current_trace_id(),
            view_request=view,
            state_position=state_position,
            response_hash=hashlib.sha256(body).hexdigest(),
        )
    )


class ReviewRequest(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(name, "timezone_required", "give the time with its UTC offset (+09:00)")
    return value


@dataclass(frozen=True)
class PurgeRecord:
    """A ViewPurged record: categories removed from an agency's view when their basis ended."""

    purge_id: str
    agency: str
    person_id: str
    categories: dict[str, dict[str, str | None]]
    reason: str
    at: str
    published: bool


def purges_of(views: ViewStore, person_id: str) -> list[PurgeRecord]:
    with views.database.transaction() as tx:
        rows = tx.fetchall(
            "SELECT * FROM view_purge WHERE person_id = ? ORDER BY at, purge_id", (person_id,)
        )
    return [
        PurgeRecord(
            **{
                **row,
                "categories": json.loads(row["categories"]),
                "published": bool(row["published"]),
            }
        )
        for row in rows
    ]


def build_router(log: AuditLog, views: ViewStore, anchoring: Anchoring) -> APIRouter:
    router = APIRouter(prefix="/audit", tags=["audit"])

    def privacy_officer(request: Request, staff: Staff = Depends(authenticated_staff)) -> Staff:
        if staff.has_role(PRIVACY_OFFICER):
            return staff
        reason = f"{request.method} {request.url.path} needs role {PRIVACY_OFFICER!r}"
        log.append(
            AuditEntry(
                kind=ACCESS_DENIED,
                viewer_staff_id=staff.staff_id,
                viewer_agency=staff.agency,
                viewer_roles=tuple(staff.roles),
                recorded_at=datetime.now(UTC),
                person_id=request.path_params.get("person_id"),
                request_id=request_id(request),
                trace_id=current_trace_id(),
                reason=reason,
            )
        )
        raise Forbidden(reason)

    @router.get("/persons/{person_id}", response_model=list[AuditRecord])
    def seen_person(
        person_id: str,
        request: Request,
        response: Response,
        since: datetime | None = None,
        until: datetime | None = None,
        agency: str | None = Query(None, max_length=100, description="only this agency's staff"),
        asked: Page = Depends(page),
        _: Staff = Depends(privacy_officer),
    ) -> list[AuditRecord]:
        """In chain order, a page at a time."""
        rows = log.seen_person(
            person_id, _aware("since", since), _aware("until", until), agency=agency, page=asked
        )
        return respond(rows, audit_key, asked, request, response)

    @router.get("/agencies/{agency}", response_model=list[AuditRecord])
    def seen_by_agency(
        agency: str,
        request: Request,
        response: Response,
        since: datetime | None = None,
        until: datetime | None = None,
        asked: Page = Depends(page),
        _: Staff = Depends(privacy_officer),
    ) -> list[AuditRecord]:
        """In chain order, a page at a time."""
        rows = log.seen_by_agency(
            agency, _aware("since", since), _aware("until", until), page=asked
        )
        return respond(rows, audit_key, asked, request, response)

    @router.get("/consents/{consent_id}", response_model=list[AuditRecord])
    def under_consent(consent_id: str, _: Staff = Depends(privacy_officer)) -> list[AuditRecord]:
        return log.under_consent(consent_id)

    @router.get("/vital-interest/pending", response_model=list[AuditRecord])
    def vital_interest_pending(_: Staff = Depends(privacy_officer)) -> list[AuditRecord]:
        return log.vital_interest_pending()

    @router.post("/vital-interest/{position}/review", response_model=Review)
    def review(
        position: int, body: ReviewRequest, staff: Staff = Depends(privacy_officer)
    ) -> Review:
        return log.review(position, staff.staff_id, body.note)

    @router.get("/consents/{consent_id}/impact", response_model=RevocationImpact)
    def revocation_impact(consent_id: str, _: Staff = Depends(privacy_officer)) -> RevocationImpact:
        """What left under this consent that its withdrawal cannot call back: the disclosures
        before the withdrawal (and any after), the purges of its basis, and the referral slips
        and 支援会議 shares that carried categories under it."""
        return impact_of(log, views, consent_id)

    @router.get("/entries/{position}", response_model=AuditRecord)
    def entry(position: int, _: Staff = Depends(privacy_officer)) -> AuditRecord:
        """One entry as the chain holds it: who, when, each category's basis, its hashes."""
        return log.entry(position)

    @router.get("/entries/{position}/replay", response_model=Replay)
    def replay(position: int, _: Staff = Depends(privacy_officer)) -> Replay:
        """Build the disclosure recorded at ``position`` again from the journalled events: the
        hash of the rebuilt body against the one served, and the basis of each category."""
        return replay_disclosure(views, log.entry(position))

    @router.get("/persons/{person_id}/purges", response_model=list[PurgeRecord])
    def purges(person_id: str, _: Staff = Depends(privacy_officer)) -> list[PurgeRecord]:
        """What was purged from which agency's view of the person, when and why (ViewPurged)."""
        return purges_of(views, person_id)

    @router.get("/verify", response_model=AnchoredVerification)
    def verify(_: Staff = Depends(privacy_officer)) -> AnchoredVerification:
        """The chain checked link by link and against every signed checkpoint: each tampering
        named in ``findings``; entries after the last checkpoint counted as not yet anchored."""
        return anchoring.verify(log)

    @router.post("/checkpoints", status_code=201, response_model=Checkpoint)
    def checkpoint(_: Staff = Depends(privacy_officer)) -> Checkpoint:
        """Sign the chain's length and head now, and keep it outside the database."""
        return anchoring.checkpoint(log)

    return router
