"""The views' HTTP adapter. Every route needs a token; an agency reads only its own view.

The consultation list shows the agency's own records, each line a read of its person (audited
through ``Disclosures``); the statistics are counts for the caller's municipality only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from contracts.errors import Forbidden, Invalid
from contracts.fields import Day
from contracts.identity import Staff
from contracts.reference import OVERSIGHT_ROLES, reference
from services.feeds.store import ViewStore
from services.platform.auth import authenticated_staff
from services.platform.disclose import OWN_RECORD, Disclosure, Disclosures, Reader
from services.platform.pagination import Page, link_of, page, respond
from services.platform.settings import Settings
from services.platform.times import MUNICIPAL_OFFSET, municipal, municipal_or_none
from services.projection import queries, statistics


class Triage(BaseModel):
    outcome: str
    target_agency: str | None
    target_system: str | None
    follow_up_on: date | None
    at: str | None


class ConsultationView(BaseModel):
    """A line of the agency's consultation list; every time at the municipality's offset."""

    consultation_id: UUID
    municipality: str | None
    # The person as merged now (the survivor), and the duplicate's id it was recorded under.
    person_id: UUID | None
    recorded_under: UUID | None
    opened_at: str
    channel: str | None
    route_in: str | None
    caller_kind: str | None
    main_complaint: str | None
    notes: str | None
    triage: Triage | None
    application_received: bool
    application_at: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ConsultationView:
        triage = None
        if row["triage_outcome"] is not None:
            triage = Triage(
                outcome=row["triage_outcome"],
                target_agency=row["triage_target_agency"],
                target_system=row["triage_target_system"],
                follow_up_on=row["follow_up_on"],
                at=municipal_or_none(row["triaged_at"]),
            )
        return cls(
            **{name: row[name] for name in _AS_STORED},
            opened_at=municipal(row["opened_at"]),
            triage=triage,
            application_received=row["application_at"] is not None,
            application_at=municipal_or_none(row["application_at"]),
        )


_AS_STORED = (
    "consultation_id",
    "municipality",
    "person_id",
    "recorded_under",
    "channel",
    "route_in",
    "caller_kind",
    "main_complaint",
    "notes",
)


MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
MONTH = Path(pattern=MONTH_PATTERN, description="YYYY-MM")
MAX_MONTHS = 24
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# How an exported month becomes a file's bytes.
Rendering = Callable[[dict[str, Any]], bytes]


def _statistics_reader(staff: Staff) -> None:
    """The self-reliance support office's staff, and the holders of an oversight role the
    reference data grants over the whole municipality."""
    agency = reference().agency(staff.agency)
    if not (
        (agency is not None and agency.role == "self_reliance_office")
        or staff.oversees_municipality(*OVERSIGHT_ROLES)
    ):
        # In words, not role codes: the desk shows this reason to the person refused.
        raise Forbidden(
            "the monthly figures are for the support office's staff and for the municipality's "
            "privacy officers, meeting organisers, supervisors and approvers"
        )


def build_router(views: ViewStore, settings: Settings, disclosures: Disclosures) -> APIRouter:
    router = APIRouter(tags=["views"])
    Reading = disclosures.dependency()

    @router.get("/statistics")
    def monthly_range(
        first: str = Query(alias="from", pattern=MONTH_PATTERN, description="YYYY-MM"),
        last: str = Query(alias="to", pattern=MONTH_PATTERN, description="YYYY-MM"),
        staff: Staff = Depends(authenticated_staff),
    ) -> Any:
        """Each month from ``from`` to ``to`` (at most 24), as ``/statistics/{month}`` answers
        it: for charts of a year, in one call."""
        _statistics_reader(staff)
        if last < first:
            raise Invalid("to", "before_from", f"{last} is before {first}")
        if len(statistics.months(first, last)) > MAX_MONTHS:
            raise Invalid("from", "range_too_long", f"at most {MAX_MONTHS} months at a time")
        with views.database.transaction() as tx:
            found = statistics.monthly_range(tx, staff.municipality, first, last)
        return {
            "municipality": staff.municipality,
            "from": first,
            "to": last,
            "months": [
                statistics.month_answer(staff.municipality, month, figures)
                for month, figures in found.items()
            ],
        }

    @router.get("/statistics/{month}")
    def monthly(month: str = MONTH, staff: Staff = Depends(authenticated_staff)) -> Any:
        """The month's figures for the caller's municipality, exact (not for export): by metric
        (``figures``) and in the national form's fixed layout (``report``)."""
        _statistics_reader(staff)
        with views.database.transaction() as tx:
            figures = statistics.monthly(tx, staff.municipality, month)
        return statistics.month_answer(staff.municipality, month, figures)

    @router.get("/statistics/{month}/export.json")
    def export_json(month: str = MONTH, staff: Staff = Depends(authenticated_staff)) -> Any:
        """For files that leave the office: small counts suppressed."""
        _statistics_reader(staff)
        with views.database.transaction() as tx:
            return statistics.export(tx, staff.municipality, month, settings.small_cell_threshold)

    def _file(
        month: str, staff: Staff, extension: str, media_type: str, body: Rendering
    ) -> Response:
        _statistics_reader(staff)
        with views.database.transaction() as tx:
            exported = statistics.export(
                tx, staff.municipality, month, settings.small_cell_threshold
            )
        disposition = statistics.content_disposition(staff.municipality, month, extension)
        return Response(
            body(exported), media_type=media_type, headers={"Content-Disposition": disposition}
        )

    @router.get("/statistics/{month}/export.csv", response_class=PlainTextResponse)
    def export_csv(
        month: str = MONTH,
        encoding: str = Query(
            "utf-8", pattern="^(utf-8|cp932)$", description="cp932 for Excel before 2016"
        ),
        staff: Staff = Depends(authenticated_staff),
    ) -> Response:
        """The month as one CSV header line and row, the same columns every month, Japanese
        headings, small counts suppressed; UTF-8 with a BOM, or CP932."""
        charset = "utf-8" if encoding == "utf-8" else "shift_jis"
        return _file(
            month,
            staff,
            "csv",
            f"text/csv; charset={charset}",
            lambda exported: statistics.as_csv(exported, encoding),
        )

    @router.get("/statistics/{month}/export.xlsx")
    def export_xlsx(month: str = MONTH, staff: Staff = Depends(authenticated_staff)) -> Response:
        """The CSV's header and row as an Excel workbook, with the notes on a second sheet."""
        return _file(month, staff, "xlsx", XLSX, statistics.as_xlsx)

    @router.get("/consultations", response_model=list[ConsultationView])
    def consultations(
        response: Response,
        agency: str | None = None,
        follow_up_due_by: Day | None = Query(
            None, description="only connect_elsewhere triages due on or before this day"
        ),
        opened_since: Day | None = Query(
            None, description="only consultations opened on or after this day (JST)"
        ),
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """The caller's own agency's consultations, oldest first, a page at a time; each line
        its own record, and a read of its person."""
        staff = reader.staff
        if agency is not None and agency != staff.agency:
            raise Forbidden(
                f"staff of {staff.agency!r} may read only their own agency's view, not {agency!r}"
            )
        since = datetime.combine(opened_since, time(), MUNICIPAL_OFFSET) if opened_since else None
        with views.database.transaction() as tx:
            rows = queries.consultations(
                tx, staff.agency, asked, follow_up_due_by=follow_up_due_by, opened_since=since
            )
        shown = respond(rows, queries.consultation_key, asked, reader.request, response)
        lines = [
            Disclosure(
                ConsultationView.of(row).model_dump(mode="json"),
                {"consultation": (OWN_RECORD, None)},
                person_id=row["person_id"],
                disclosed_by=frozenset({staff.agency}),
            )
            for row in shown
        ]
        return reader.answer(lines, headers=link_of(response))

    return router
