"""Intake's HTTP adapter: thin translation between JSON and the intake application."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from contracts.errors import Forbidden
from contracts.identity import Staff
from services.intake.application import IntakeApplication, OpenConsultation
from services.intake.consultation import Consultation
from services.platform.auth import authenticated_staff


class ConsultationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="How the contact came: reference.yaml `channels`.")
    route_in: str = Field(description="相談経路: reference.yaml `routes_in`.")
    caller_kind: str = Field(description="Who called: reference.yaml `caller_kinds`.")
    person_id: UUID | None = Field(None, description="A registered person, when known.")
    main_complaint: str | None = Field(None, max_length=2000, description="主訴, if any.")
    notes: str | None = Field(None, max_length=20000)
    opened_at: datetime | None = Field(None, description="When the contact began; default now.")


class ConsultationResponse(BaseModel):
    id: UUID
    municipality: str
    agency: str
    opened_at: datetime
    channel: str
    route_in: str
    caller_kind: str
    person_id: UUID | None
    main_complaint: str | None
    notes: str | None

    @classmethod
    def of(cls, c: Consultation) -> ConsultationResponse:
        return cls(
            id=c.id,
            municipality=c.municipality,
            agency=c.agency,
            opened_at=c.opened_at,
            channel=c.channel,
            route_in=c.route_in,
            caller_kind=c.caller_kind,
            person_id=c.person_id,
            main_complaint=c.main_complaint,
            notes=c.notes,
        )


def build_router(intake: IntakeApplication, after_command: Callable[[], object]) -> APIRouter:
    """``after_command`` runs after each stored command (embedded mode relays at once)."""
    router = APIRouter(tags=["intake"])

    @router.post("/consultations", status_code=201, response_model=ConsultationResponse)
    def open_consultation(
        body: ConsultationRequest, staff: Staff = Depends(authenticated_staff)
    ) -> ConsultationResponse:
        consultation_id = intake.open_consultation(staff, OpenConsultation(**body.model_dump()))
        after_command()
        return ConsultationResponse.of(intake.consultation(consultation_id))

    @router.get("/consultations/{consultation_id}", response_model=ConsultationResponse)
    def get_consultation(
        consultation_id: UUID, staff: Staff = Depends(authenticated_staff)
    ) -> ConsultationResponse:
        consultation = intake.consultation(consultation_id)
        if consultation.agency != staff.agency:
            raise Forbidden(f"consultation {consultation_id} belongs to another agency's record")
        return ConsultationResponse.of(consultation)

    return router
