"""Every read of a person's data is a disclosure, answered and recorded one way by every service.

A route that shows a person's data builds ``Disclosure``s: the document, each category shown with
its basis, and whose records it shows. Where the route holds a person's facts by category,
``disclose_parts`` builds it by asking ``decide_fact`` category by category, so that each field
is shown only under a basis for its own category and "own record" means the caller's agency
recorded that very fact. The route answers through its ``Reader`` (the ``Disclosures.reading``
dependency): the exact body sent is hashed into one RecordViewed per person shown, and the
entries are recorded before the body leaves. A 403 raised on the way is recorded too, as an
access_denied entry naming the person and the reason.

Where the entries go is the composition root's choice (``Sink``): the views append them to the
audit chain they keep; every other service writes them to an outbox in its own database, from
which they reach the chain over the bus (``disclosure_outbox``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from opentelemetry import trace

from contracts import disclosure
from contracts.errors import Forbidden
from contracts.events.audit import RecordViewed, ShownBasis
from contracts.identity import Staff
from services.platform.auth import authenticated_staff

JSON = "application/json"
RECORD_VIEWED, ACCESS_DENIED = "record_viewed", "access_denied"
OWN_RECORD = "own_record"
# category -> (basis, basis id): what an audit entry records of a disclosure
Shown = dict[str, tuple[str, str | None]]


@dataclass(frozen=True)
class Disclosure:
    """What one answer shows of one person (or of none: a consultation not yet tied to one)."""

    document: Any
    shown: Shown
    person_id: str | None = None
    # The agencies whose records the document shows: those that made the disclosure.
    disclosed_by: frozenset[str] = frozenset()
    # category -> why it was withheld: kept in the entry, never its content
    withheld: Mapping[str, str] = field(default_factory=dict)
    # Which view answered, with its parameters: what a disclosure replay renders again.
    view: Mapping[str, Any] | None = None
    state_position: int | None = None
    # A record about the person that belongs to no data category (a consent, a declaration,
    # which agencies may see what): recorded although ``shown`` is empty.
    about_person: bool = False
    # Further persons the same document shows (a regular meeting reviews several): an entry
    # each, hashing the same body. Their own ``document`` is unused.
    also: tuple[Disclosure, ...] = ()

    def served(self, opener: Opening) -> bytes:
        """The exact bytes served, and hashed into the audit entry: the document's JSON with
        its sealed values opened."""
        [body] = served(opener, [self])
        return body

    def opened(self, opener: Opening) -> Disclosure:
        """This disclosure with its sealed values opened: the document ``served`` serves."""
        return dataclasses.replace(self, document=json.loads(self.served(opener)))

    def body(self) -> bytes:
        """The document's JSON as it stands (once opened: what was served)."""
        return self.json_text().encode()

    def json_text(self) -> str:
        return json.dumps(self.document, ensure_ascii=False, sort_keys=True)

    @property
    def shows(self) -> bool:
        return bool(self.shown) or self.about_person

    def echoes(self, agency: str) -> bool:
        """Whether it shows ``agency`` nothing but its own record: what a command's answer
        repeats back of what the agency itself just recorded is no disclosure."""
        if self.shown:
            return all(basis == OWN_RECORD for basis, _ in self.shown.values())
        return self.disclosed_by <= {agency}


@dataclass(frozen=True)
class Part:
    """Fields of one data category, recorded by ``recorded_by`` (both ends, for a referral's
    status): they are shown together or not at all."""

    category: str
    recorded_by: frozenset[str]
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Decided:
    """The parts ``decide_fact`` allows, their fields merged, with each category's basis."""

    fields: dict[str, Any]
    shown: Shown
    withheld: dict[str, str]
    disclosed_by: frozenset[str]


def decide_parts(
    viewer: disclosure.Viewer,
    person: disclosure.PersonRecord,
    parts: Sequence[Part],
    purposes: Sequence[str],
    at: datetime,
) -> Decided:
    """Each part, shown only where ``decide_fact`` allows its category for one of ``purposes``
    (the first purpose that allows it names the basis). Where a category is shown both on the
    agency's own record and on another basis, the entry names the other: that is the
    disclosure."""
    fields: dict[str, Any] = {}
    shown: Shown = {}
    withheld: dict[str, str] = {}
    disclosed_by: set[str] = set()
    for part in parts:
        decision = _first_allowed(viewer, person, part, purposes, at)
        if isinstance(decision, disclosure.Deny):
            withheld.setdefault(part.category, decision.reason)
            continue
        fields.update(part.fields)
        if part.category not in shown or shown[part.category][0] == OWN_RECORD:
            shown[part.category] = (decision.basis, decision.basis_id)
        disclosed_by.update(part.recorded_by)
    for category in shown:
        withheld.pop(category, None)
    return Decided(fields, shown, withheld, frozenset(disclosed_by))


def _first_allowed(
    viewer: disclosure.Viewer,
    person: disclosure.PersonRecord,
    part: Part,
    purposes: Sequence[str],
    at: datetime,
) -> disclosure.Decision:
    denied: disclosure.Decision | None = None
    for purpose in purposes:
        decision = disclosure.decide_fact(
            viewer, person, part.category, part.recorded_by, purpose, at
        )
        if isinstance(decision, disclosure.Allow):
            return decision
        denied = denied or decision
    assert denied is not None, "no purpose to decide for"
    return denied


def withheld_list(withheld: Mapping[str, str]) -> list[dict[str, str]]:
    """How a document names what it leaves out: each category with ``decide``'s reason."""
    return [{"category": c, "reason": r} for c, r in withheld.items()]


def bases_map(shown: Mapping[str, tuple[str, str | None]]) -> dict[str, dict[str, str | None]]:
    """How a document names each category's basis."""
    return {c: {"basis": b, "basis_id": i} for c, (b, i) in shown.items()}


class Sink(Protocol):
    """Where a service's RecordViewed entries go; durable before ``record`` returns."""

    def record(self, municipality: str, entries: Sequence[RecordViewed]) -> None: ...


def served(opener: Opening, disclosures: Sequence[Disclosure]) -> list[bytes]:
    """Each disclosure's ``served`` bytes, their sealed values opened with one look-up of the
    keys of them all."""
    return [text.encode() for text in opener.open_json([d.json_text() for d in disclosures])]


class Opening(Protocol):
    """Opens the sealed values in a document (``services.platform.sealing.Opener``): an
    answer shows personal data in clear, or that it was erased, and nothing is opened
    anywhere else."""

    def open(self, document: Any) -> Any: ...

    def open_json(self, texts: Sequence[str]) -> list[str]: ...


def request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or str(uuid.uuid4())


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class Reader:
    """One request's reads of personal data, answered and recorded the same way."""

    def __init__(
        self,
        request: Request,
        staff: Staff,
        sink: Sink,
        clock: Callable[[], datetime],
        opener: Opening,
    ) -> None:
        self.request, self.staff = request, staff
        self._sink, self._clock, self._opener = sink, clock, opener
        # The person a refusal on the way would be about, once the route knows it.
        self.person_id: str | None = request.path_params.get("person_id")

    def about(self, person_id: object) -> None:
        """Name the person the request reads, so that a refusal records whom it was about."""
        self.person_id = str(person_id) if person_id is not None else None

    def answer(
        self,
        disclosures: Disclosure | Sequence[Disclosure],
        *,
        at: datetime | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        command: bool = False,
    ) -> Response:
        """The body (one document, or a JSON list of them), recorded first: one entry per
        disclosure that shows anything, each hashing the exact bytes of its own document.
        ``command``: the answer to a command, recorded where it shows more than the caller's
        own record (a slip's content, another agency's facts)."""
        listed = not isinstance(disclosures, Disclosure)
        each = list(disclosures) if not isinstance(disclosures, Disclosure) else [disclosures]
        bodies = served(self._opener, each)
        moment = at or self._clock()
        entries = [
            self._entry(part, RECORD_VIEWED, moment, response_hash=hashlib.sha256(b).hexdigest())
            for d, b in zip(each, bodies, strict=True)
            for part in (d, *d.also)
            if part.shows and not (command and part.echoes(self.staff.agency))
        ]
        if entries:
            self._sink.record(self.staff.municipality, entries)
        body = b"[" + b",".join(bodies) + b"]" if listed else bodies[0]
        return Response(body, status_code, headers=dict(headers or {}), media_type=JSON)

    def refused(self, refusal: Forbidden) -> None:
        """Record a refusal: who asked what about whom, and why not."""
        refused = Disclosure(None, {}, person_id=self.person_id, about_person=True)
        entry = self._entry(refused, ACCESS_DENIED, self._clock(), reason=refusal.message)
        self._sink.record(self.staff.municipality, [entry])

    def _entry(
        self,
        shown: Disclosure,
        kind: str,
        at: datetime,
        *,
        response_hash: str | None = None,
        reason: str | None = None,
    ) -> RecordViewed:
        request = self.request
        view = dict(shown.view) if shown.view is not None else _asked(request)
        withheld = "; ".join(f"{c}: {r}" for c, r in shown.withheld.items())
        return RecordViewed(
            disclosure_id=uuid.uuid4(),
            kind=kind,  # type: ignore[arg-type]
            agency=self.staff.agency,
            staff_id=self.staff.staff_id,
            roles=sorted(self.staff.roles),
            at=at,
            person_id=shown.person_id,
            shown={c: ShownBasis(basis=b, basis_id=i) for c, (b, i) in shown.shown.items()},
            disclosed_by=sorted(shown.disclosed_by),
            request_id=request_id(request),
            trace_id=current_trace_id(),
            view=view,
            state_position=shown.state_position,
            response_hash=response_hash,
            reason=reason or (f"withheld: {withheld}" if withheld else None),
        )


def _asked(request: Request) -> dict[str, Any]:
    """A route with no view of its own to replay is recorded as the request it answered: its
    route and the names of the parameters given. Their values may be personal (a name searched
    for, a local id), and an audit entry is kept for ever: no erasure could reach them there."""
    asked: dict[str, Any] = {"route": f"{request.method} {request.url.path}"}
    if request.query_params:
        asked["query"] = sorted(request.query_params.keys())
    return asked


def _now() -> datetime:
    return datetime.now(UTC)


class Disclosures:
    """A service's way to answer reads of personal data: ``reading`` is its routes' dependency,
    and ``sink`` where their entries go (chosen by the composition root)."""

    def __init__(self, sink: Sink, opener: Opening, clock: Callable[[], datetime] = _now) -> None:
        self.sink, self.opener, self._clock = sink, opener, clock

    async def reading(
        self, request: Request, staff: Staff = Depends(authenticated_staff)
    ) -> AsyncIterator[Reader]:
        # On the event loop: a generator dependency in the thread pool costs two hops (in and
        # out) for every read, and making a Reader does no I/O. A refusal's entry is written
        # to the database, so that goes to the thread pool.
        reader = Reader(request, staff, self.sink, self._clock, self.opener)
        try:
            yield reader
        except Forbidden as refusal:
            await run_in_threadpool(reader.refused, refusal)
            raise

    def dependency(self) -> Any:
        """``Depends`` on ``reading``, ended before the response is sent: a refusal is
        recorded before the 403 leaves."""
        return Depends(self.reading, scope="function")
