"""The views' HTTP adapter. Every route needs a token; an agency reads only its own view."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from contracts.errors import Forbidden
from contracts.identity import Staff
from services.platform.auth import authenticated_staff
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


def build_router(views: ViewStore) -> APIRouter:
    router = APIRouter(tags=["views"])

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
