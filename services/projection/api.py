"""The views' HTTP adapter. Every route needs a token; an agency reads only its own view."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from contracts.errors import Forbidden
from contracts.identity import Staff
from contracts.reference import reference
from services.platform.auth import authenticated_staff
from services.platform.settings import Settings
from services.projection import statistics
from services.projection.store import ViewStore


class ConsultationView(BaseModel):
    consultation_id: UUID
    municipality: str
    person_id: UUID | None
    opened_at: datetime
    channel: str
    route_in: str
    caller_kind: str
    main_complaint: str | None
    notes: str | None


# Who may read the municipality's figures: the support office's staff and these roles.
STATISTICS_ROLES = ("privacy_officer", "meeting_organiser", "supervisor")
MONTH = Path(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")


def _statistics_reader(staff: Staff) -> None:
    agency = reference().agency(staff.agency)
    if not (
        (agency is not None and agency.role == "self_reliance_office")
        or any(staff.has_role(role) for role in STATISTICS_ROLES)
    ):
        raise Forbidden(
            "the monthly figures are for the support office and for "
            f"{', '.join(STATISTICS_ROLES)} roles"
        )


def build_router(views: ViewStore, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["views"])

    @router.get("/statistics/{month}")
    def monthly(month: str = MONTH, staff: Staff = Depends(authenticated_staff)) -> Any:
        """The month's figures for the caller's municipality, exact (not for export)."""
        _statistics_reader(staff)
        with views.database.transaction() as tx:
            return {
                "municipality": staff.municipality,
                "month": month,
                "figures": statistics.monthly(tx, staff.municipality, month),
            }

    @router.get("/statistics/{month}/export.json")
    def export_json(month: str = MONTH, staff: Staff = Depends(authenticated_staff)) -> Any:
        """For files that leave the office: small counts suppressed."""
        _statistics_reader(staff)
        with views.database.transaction() as tx:
            return statistics.export(tx, staff.municipality, month, settings.small_cell_threshold)

    @router.get("/statistics/{month}/export.csv", response_class=PlainTextResponse)
    def export_csv(month: str = MONTH, staff: Staff = Depends(authenticated_staff)) -> Response:
        """CSV with Japanese column headings, small counts suppressed."""
        _statistics_reader(staff)
        with views.database.transaction() as tx:
            report = statistics.export(tx, staff.municipality, month, settings.small_cell_threshold)
        body = statistics.as_csv(staff.municipality, month, report["figures"])
        return Response(body, media_type="text/csv; charset=utf-8")

    @router.get("/consultations", response_model=list[ConsultationView])
    def consultations(
        agency: str | None = None, staff: Staff = Depends(authenticated_staff)
    ) -> list[ConsultationView]:
        if agency is not None and agency != staff.agency:
            raise Forbidden(
                f"staff of {staff.agency!r} may read only their own agency's view, not {agency!r}"
            )
        return [ConsultationView.model_validate(row) for row in views.consultations(staff.agency)]

    return router
