"""Each agency's view of a person over HTTP, its referral boxes, and the replay as of an instant.

An agency reads only its own view: ``agency=`` naming another agency is 403. Every answer that
shows a person's data is a disclosure (``services/platform/disclose.py``): recorded in the audit
log (RecordViewed) with the exact body sent, refusals too. A person of another municipality is
not known here (404), whoever asks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Response

from contracts.errors import Conflict, Forbidden, Invalid, NotFound
from contracts.fields import Day, Moment
from contracts.identity import Staff
from contracts.names import fold
from contracts.reference import reference
from services.feeds.store import ViewStore, journal_position
from services.platform.disclose import OWN_RECORD, Disclosure, Disclosures, Reader
from services.platform.pagination import Page, link_of, page, respond
from services.platform.sql import Row, Transaction
from services.platform.times import municipal, municipal_or_none
from services.projection import person_search, queries
from services.projection.merges import survivor_of
from services.projection.person_documents import (
    PERSON_VIEW_SHAPE,
    SUMMARY,
    case_as_of,
    person_view,
    view_request,
)
from services.projection.person_facts import TxReader
from services.projection.person_search import Candidate, Criteria, PersonIndex, full_key
from services.referral.referral import acknowledgement_overdue, follow_up_overdue

REPLAY_ROLES = ("meeting_organiser", "privacy_officer")
# Who checks for duplicates before registering a person: intake's desk.
CANDIDATES_ROLE = "self_reliance_office"
NAME_LENGTH = 200


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


def _oversees(staff: Staff, agency: str) -> None:
    """Another agency's view is asked only by an oversight role the reference data grants
    over the whole municipality, and only of an agency of that municipality."""
    if not staff.oversees_municipality(*REPLAY_ROLES):
        raise Forbidden(
            f"{staff.agency!r} holds its oversight roles over its own agency only (reference "
            f"data): what {agency!r} could see is not its to ask"
        )
    if not reference().in_municipality(agency, staff.municipality):
        raise Invalid("agency", "reference_code", f"no agency {agency!r} in {staff.municipality}")


def _known_here(tx: Transaction, person_id: str, municipality: str) -> TxReader:
    """404 for a person the views know of no event about, or who is another municipality's;
    409 naming the survivor for a duplicate merged into another, which has no picture of its
    own while merged (the survivor's shows what was recorded under it). Else the reader of the
    transaction the answer is built in: asked in it, not in one of their own, so a read costs
    one transaction and sees one state."""
    if queries.municipality_of(tx, person_id) != municipality:
        raise NotFound(f"the views know of no person {person_id} in {municipality}")
    reader = TxReader(tx)
    survivor = survivor_of(reader, person_id)
    if survivor != person_id:
        raise Conflict(
            f"person {person_id} is merged into {survivor}: read that person",
            survivor_id=survivor,
        )
    return reader


def build_router(
    views: ViewStore,
    disclosures: Disclosures,
    index: PersonIndex,
    *,
    acknowledgement_hours: int = 72,
    decline_follow_up_days: int = 7,
    clock: Callable[[], datetime] = _now,
) -> APIRouter:
    router = APIRouter(tags=["views"])
    Reading = disclosures.dependency()

    def box(
        reader: Reader,
        direction: str,
        state: str | None,
        asked: Page,
        response: Response,
    ) -> Response:
        """Each line is the referral's status, both ends' own record: a read of its person."""
        now = clock()
        agency = reader.staff.agency
        with views.database.transaction() as tx:
            rows = queries.referral_box(tx, agency, direction, asked, state)
        lines = [
            Disclosure(
                {
                    "referral_id": row["referral_id"],
                    "counterpart": row["counterpart"],
                    "person_id": row["person_id"],
                    "recorded_under": row["recorded_under"],
                    "kind": row["kind"],
                    "categories": json.loads(row["categories"]) if row["categories"] else [],
                    "state": row["state"],
                    "sent_at": municipal_or_none(row["sent_at"]),
                    "changed_at": municipal(row["changed_at"]),
                    "acknowledgement_overdue": acknowledgement_overdue(
                        row["state"],
                        datetime.fromisoformat(row["sent_at"])
                        if row["sent_at"] is not None
                        else None,
                        now,
                        acknowledgement_hours,
                    ),
                    # A line keeps no instant of its decline: its last change stands in (the
                    # person identified after the decline starts the days again).
                    "follow_up_overdue": follow_up_overdue(
                        row["state"],
                        bool(row["decline_followed_up"]),
                        datetime.fromisoformat(row["changed_at"]),
                        now,
                        decline_follow_up_days,
                    ),
                },
                {"referral_status": (OWN_RECORD, None)},
                person_id=row["person_id"],
                disclosed_by=frozenset({agency, row["counterpart"]}),
                view=view_request(f"{direction}box", referral_id=row["referral_id"]),
            )
            for row in respond(rows, queries.box_key, asked, reader.request, response)
        ]
        return reader.answer(lines, at=now, headers=link_of(response))

    @router.get("/inbox")
    def inbox(
        response: Response,
        state: str | None = Query(None, max_length=40, description="only slips in this state"),
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """Referrals received by the caller's agency, oldest first, with overdue flags."""
        return box(reader, "in", state, asked, response)

    @router.get("/outbox")
    def outbox(
        response: Response,
        state: str | None = Query(None, max_length=40, description="only slips in this state"),
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """Referrals the caller's agency sent, oldest first, with overdue flags."""
        return box(reader, "out", state, asked, response)

    def summaries(
        reader: Reader, rows: list[Row], asked_for: str, now: datetime
    ) -> list[Disclosure]:
        """Each person's summary (their identity, as the caller's view shows it), decided at
        ``now``; each that shows anything is a read of that person."""
        with views.database.transaction(snapshot=True) as tx:
            position = journal_position(tx)
            state = TxReader(tx)
            # A duplicate found (by its own name, as a candidate) stands for its survivor, once.
            persons = list(dict.fromkeys(survivor_of(state, row["person_id"]) for row in rows))
            found = [person_view(state, reader.staff.agency, p, now, SUMMARY) for p in persons]
        view = view_request("person_summary", asked=asked_for)
        return [
            replace(d, person_id=p, view=view, state_position=position)
            for p, d in zip(persons, found, strict=True)
        ]

    @router.get("/persons/by-local-id")
    def by_local_id(local_id: str, reader: Reader = Reading) -> Response:
        """The person the caller's own agency filed under ``local_id``; never another's ids."""
        agency = reader.staff.agency
        with views.database.transaction() as tx:
            person = person_search.by_local_id(tx, index, agency, local_id)
        if person is None:
            raise NotFound(f"{agency} has filed no person under that local id")
        found = Disclosure(
            {"person_id": person},
            {"identity": (OWN_RECORD, None)},
            person_id=person,
            disclosed_by=frozenset({agency}),
        )
        return reader.answer(found)

    @router.get("/persons/search")
    def search(
        response: Response,
        q: str | None = Query(
            None,
            max_length=NAME_LENGTH,
            description="the start of the name or kana, family name first",
        ),
        birth_date: Day | None = None,
        local_id: str | None = Query(None, max_length=100, description="the caller's own id"),
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """Persons of the caller's municipality whose identity its agency may see, matching
        every criterion given, in kana order. Each result is the person's identity as the
        caller's view shows it, and is recorded in the audit log as a read of that person."""
        name = fold(q) if q is not None else None
        if q is not None and not name:
            raise Invalid("q", "not_empty", "give some of the name or kana to look for")
        wanted = local_id.strip() if local_id is not None else None
        if not (name or birth_date or wanted):
            raise Invalid("q", "one_required", "give q, birth_date or local_id")
        criteria = Criteria(name=name, birth_date=birth_date, local_id=wanted)
        staff = reader.staff
        now = clock()
        with views.database.transaction() as tx:
            rows = person_search.search(
                tx, index, staff.agency, staff.municipality, criteria, asked, now
            )
        shown = respond(rows, person_search.result_key, asked, reader.request, response)
        found = summaries(reader, shown, "search", now)
        # Decided once more when the summaries are read: a basis may end in between.
        return reader.answer([d for d in found if d.shown], headers=link_of(response))

    @router.get("/persons/candidates")
    def candidates(
        response: Response,
        family_name_kana: str | None = Query(None, max_length=NAME_LENGTH),
        given_name_kana: str | None = Query(None, max_length=NAME_LENGTH),
        family_name: str | None = Query(None, max_length=NAME_LENGTH),
        given_name: str | None = Query(None, max_length=NAME_LENGTH),
        birth_date: Day | None = None,
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """Before registering a person: those of the caller's municipality already registered
        with the same folded kana or name (and birth date, when given), intake's duplicate
        rule. Each candidate shows what the caller's view may (its identity, or why it is
        withheld); audited as a read."""
        staff = reader.staff
        agency = reference().agency(staff.agency)
        if agency is None or agency.role != CANDIDATES_ROLE:
            raise Forbidden("only a self-reliance support office checks for duplicate persons")
        kana, name = full_key(family_name_kana, given_name_kana), full_key(family_name, given_name)
        if not (kana or name):
            raise Invalid(
                "family_name_kana",
                "one_required",
                "give the kana or the name (family and given) of the person to register",
            )
        candidate = Candidate(name_key=name or None, kana_key=kana or None, birth_date=birth_date)
        with views.database.transaction() as tx:
            rows = person_search.candidates(tx, index, staff.municipality, candidate, asked)
        shown = respond(rows, person_search.result_key, asked, reader.request, response)
        found = summaries(reader, shown, "candidates", clock())
        return reader.answer(found, headers=link_of(response))

    @router.get("/persons/{person_id}")
    def person(person_id: str, agency: str | None = None, reader: Reader = Reading) -> Response:
        """The caller's agency's view of the person: each allowed category with its basis
        and its fields under readable names, and the withheld categories with the reason."""
        staff = reader.staff
        _own_agency(staff, agency)
        now = clock()
        with views.database.transaction(snapshot=True) as tx:
            known = _known_here(tx, person_id, staff.municipality)
            position = journal_position(tx)
            disclosure = person_view(known, staff.agency, person_id, now)
        view = view_request("person", shape=PERSON_VIEW_SHAPE)
        return reader.answer(
            replace(disclosure, person_id=person_id, view=view, state_position=position), at=now
        )

    @router.get("/persons/{person_id}/as-of")
    def as_of(
        person_id: str,
        at: Moment,
        agency: str | None = None,
        back_entered: bool = False,
        reader: Reader = Reading,
    ) -> Response:
        """The case as of ``at``, filtered by what the viewer may see now; and, with ``agency``,
        what that agency was able to see at ``at``.

        Only what was recorded by ``at`` counts, unless ``back_entered`` also admits events
        entered later with an earlier business time (a contact written up afterwards).
        """
        staff = reader.staff
        if not any(staff.has_role(r) for r in REPLAY_ROLES):
            raise Forbidden(f"replaying a case needs one of the roles {list(REPLAY_ROLES)}")
        if agency is not None and agency != staff.agency:
            _oversees(staff, agency)
        at = _aware("at", at)
        now = clock()
        with views.database.transaction(snapshot=True) as tx:
            known = _known_here(tx, person_id, staff.municipality)
            position = journal_position(tx)
            disclosure = case_as_of(
                known,
                staff.agency,
                person_id,
                at,
                now,
                back_entered=back_entered,
                agency=agency,
            )
        view = view_request("as_of", at=at.isoformat(), back_entered=back_entered, agency=agency)
        return reader.answer(
            replace(disclosure, person_id=person_id, view=view, state_position=position), at=now
        )

    return router
