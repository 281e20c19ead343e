"""Projectors: plain functions ``(state, event) -> changes``.

The faust agent (distributed) and the in-process bus (embedded) both call these, through the
projection runner; they do no I/O of their own, so they are tested without any server.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.envelope import CloudEvent
from contracts.events import ConsultationOpened, IntegrationEvent
from services.projection.changes import Change, Upsert, ViewState


def consultations(_: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
    """The opening agency's list of consultations (its own record, so no disclosure check)."""
    if not isinstance(data, ConsultationOpened):
        return []
    return [
        Upsert(
            "consultation_view",
            key={"agency": data.agency, "consultation_id": str(data.consultation_id)},
            values={
                "municipality": event.municipality,
                "person_id": str(data.person_id) if data.person_id else None,
                "opened_at": data.at.isoformat(),
                "channel": data.channel,
                "route_in": data.route_in,
                "caller_kind": data.caller_kind,
                "main_complaint": data.main_complaint,
                "notes": data.notes,
                "event_id": event.id,
            },
        )
    ]
