"""Retention over HTTP: what the sweeper will erase soon, one person's retention, an extension.

Each answer names persons, so each is a disclosure answered and recorded through
``Disclosures``: one audit entry per person listed, the refusals too.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from contracts.fields import Day, Reason, RequestModel
from services.intake.application import IntakeApplication
from services.intake.retention import Retention, RetentionBook
from services.platform.disclose import Disclosure, Disclosures, Reader
from services.platform.pagination import Page, after_cursor, link_of, page, respond

# How far ahead the report looks by default; a year at most.
DUE_WITHIN_DAYS = 90


class ExtensionRequest(RequestModel):
    until: Day = Field(
        description="The last day the records are kept (保存期限): after today, and after the "
        "retention's current end."
    )
    reason: Reason = Field(
        min_length=1, description="Why they are kept longer: recorded with the extension."
    )


class ExtensionShown(BaseModel):
    until: date
    reason: str
    extended_at: datetime
    extended_by: str


class RetentionResponse(BaseModel):
    """A person's retention: the latest closure of their case (null while one is open), how
    many years the municipality keeps records, the last day they are kept (保存期限, an
    extension included) and the day the sweeper erases them (消去予定日)."""

    person_id: UUID
    closed_on: date | None
    retention_years: int
    retained_until: date | None
    erasure_on: date | None
    extension: ExtensionShown | None


def shown(retention: Retention) -> Disclosure:
    """A person's retention: a record about them in no data category, recorded when read."""
    return Disclosure(
        retention.document(), {}, person_id=str(retention.person_id), about_person=True
    )


def build_router(
    intake: IntakeApplication, book: RetentionBook, disclosures: Disclosures
) -> APIRouter:
    router = APIRouter(tags=["retention"])
    Reading = disclosures.dependency()

    @router.get("/retention/due", response_model=list[RetentionResponse])
    def due(
        response: Response,
        within_days: int = Query(
            DUE_WITHIN_DAYS, ge=0, le=365, description="erased within this many days from today"
        ),
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """Whose records the retention sweep erases within ``within_days`` (and any it has yet
        to erase), soonest first, a page at a time: for the self-reliance office or a privacy
        officer over the municipality, to extend a retention where the records must stay."""
        found = intake.retention_due(reader.staff, book, within_days)
        rows = after_cursor(found, Retention.order, asked)
        listed = [shown(r) for r in respond(rows, Retention.order, asked, reader.request, response)]
        return reader.answer(listed, headers=link_of(response))

    @router.get("/persons/{person_id}/retention", response_model=RetentionResponse)
    def retention(person_id: UUID, reader: Reader = Reading) -> Response:
        return reader.answer(shown(intake.retention(reader.staff, book, person_id)))

    @router.post(
        "/persons/{person_id}/retention-extension",
        status_code=201,
        response_model=RetentionResponse,
    )
    def extend(person_id: UUID, body: ExtensionRequest, reader: Reader = Reading) -> Response:
        """Keep the person's records until ``until``, for the reason given (recorded as
        RetentionExtended, the reason sealed as the person's data)."""
        extended = intake.extend_retention(reader.staff, book, person_id, body.until, body.reason)
        return reader.answer(shown(extended), status_code=201, command=True)

    return router
