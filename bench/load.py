"""A realistic load: whole case lifecycles for many persons, drawn from Zama's own figures.

One lifecycle model (consultation → consent → referrals → meetings → closure) and two
renderings of it:

- ``story``: the lifecycle in the scenario step format, for ``ScenarioPlayer`` to play over HTTP;
- ``event_stream``: the CloudEvents the services' relays would publish for the same lifecycles,
  already serialised (Kafka key, value and headers), fast enough to fill topics with a million.
  They are made by the relays' own functions, personal fields sealed by the services' ``Sealer``
  under data keys kept in the key store their consumers open them with (``Relaying``).

Every lifecycle also keeps the generator's own tally of what the monthly statistics should count
(``tally``), so a run can be checked against the views.

What is taken from ``contracts/reference.yaml`` and what is assumed is said where each figure is
defined; ``bench/SCALING.md`` sums it up. A lifecycle built ``playable`` uses only what the
scenario player can play (it has no verb for, e.g., emergency support, a reroute or a merge);
otherwise the stream-only branches join in, so that every integration event kind appears.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import heapq
import json
import math
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from bisect import bisect
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from itertools import accumulate, islice
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.domain import DomainEvent

from contracts.reference import reference
from services.intake import integration as intake_integration
from services.meeting import integration as meeting_integration
from services.meeting.support_case import SupportCase
from services.platform.keys import KEY_BYTES, KeyStore
from services.platform.publishing import Published, translation
from services.platform.relay import Translate, message, translator
from services.platform.sealed_events import Sealing
from services.platform.sealing import Sealer
from services.platform.settings import Settings
from services.platform.sql import SqliteDatabase
from services.referral import integration as referral_integration
from services.scenarios import Scenario
from services.wiring import key_store

JST = timezone(timedelta(hours=9))
REF = reference()
_RAW = REF.raw
OFFICE = REF.agencies_with_role("self_reliance_office")[0]
PUBLIC_ASSISTANCE = REF.agencies_with_role("public_assistance")[0]

# --- Figures from reference.yaml -------------------------------------------------------------

LATEST = max(_RAW["zama_yearly"], key=lambda year: year["year"])
NEW_PER_YEAR: int = LATEST["new_consultations"]
# The issue counts are Zama's FY2018 (H30) first assessments: 446 issues in 115 persons, 3.88
# each (the comment on ``issue_categories``). Only the top ten have counts; the other 103 issues
# are spread evenly over the categories without one.
ASSESSED_PERSONS = 115
ISSUES_FOUND = 446
ISSUES_PER_PERSON = ISSUES_FOUND / ASSESSED_PERSONS
# A consultation reaches a first assessment (and a case) as often as Zama's 115 assessments are
# to its 412 new consultations (FY2018 over FY2017, the nearest years the seeds give).
P_CASE = ASSESSED_PERSONS / NEW_PER_YEAR
# Connected to public assistance, per new consultation: Zama's "to_public_assistance".
P_PUBLIC_ASSISTANCE = LATEST["to_public_assistance"] / NEW_PER_YEAR
# The public-assistance desk's share of routes in: what is not "from outside public assistance".
PA_DESK_SHARE = 1 - LATEST["from_outside_public_assistance"] / NEW_PER_YEAR


def _issue_chances() -> tuple[tuple[str, float], ...]:
    """Each issue's chance of being found at a first assessment, drawn independently.

    Zama's count over its 115 persons is each issue's chance; an assessment names at least one
    issue, so the chances are scaled until the mean of the non-empty draws is 446 / 115.
    """
    counted = {c["code"]: c["zama_h30"] for c in _RAW["issue_categories"] if "zama_h30" in c}
    others = [code for code in REF.issue_categories if code not in counted]
    spread = (ISSUES_FOUND - sum(counted.values())) / len(others)
    base = [counted.get(code, spread) / ASSESSED_PERSONS for code in REF.issue_categories]
    low, high = 0.5, 1.0
    for _ in range(60):
        factor = (low + high) / 2
        chances = [factor * p for p in base]
        mean_when_any = sum(chances) / (1 - math.prod(1 - p for p in chances))
        low, high = (low, factor) if mean_when_any > ISSUES_PER_PERSON else (factor, high)
    return tuple(zip(REF.issue_categories, (low * p for p in base), strict=True))


ISSUE_CHANCES = _issue_chances()

# --- Assumptions (the seeds give no figure) ---------------------------------------------------

# 相談経路. Seed 003 names four ways in (another municipal desk, an outside agency, outreach, the
# person's own call or visit) but gives no shares: these relative weights are ours, and the
# public-assistance desk's share (Zama's) is added on top of them.
OTHER_ROUTES: dict[str, float] = {
    "self": 30,
    "public_relations_bulletin": 5,
    "family_or_acquaintance": 10,
    "tax_desk": 5,
    "insurance_desk": 3,
    "utility_desk": 2,
    "housing_desk": 2,
    "other_municipal_desk": 4,
    "shakyo": 6,
    "minsei_volunteer": 3,
    "community_care_center": 4,
    "medical_institution": 4,
    "hello_work": 4,
    "npo": 3,
    "real_estate_agent": 1,
    "food_bank": 2,
    "justice_system": 1,
    "other": 4,
    "outreach": 7,
}
ROUTE_SHARES: dict[str, float] = {
    "public_assistance_desk": PA_DESK_SHARE,
    **{r: (1 - PA_DESK_SHARE) * w / sum(OTHER_ROUTES.values()) for r, w in OTHER_ROUTES.items()},
}
_ROUTE_GROUP = {
    "self": "self",
    "public_relations_bulletin": "self",
    "family_or_acquaintance": "family",
    "minsei_volunteer": "volunteer",
    "outreach": "outreach",
    **{r: "desk" for r in REF.routes_in if r.endswith("_desk")},
}
# How a contact comes (channel) and who is on the line (caller kind), by route group.
CHANNELS: dict[str, dict[str, float]] = {
    "self": {"phone": 45, "visit": 40, "email": 8, "sns": 7},
    "family": {"phone": 60, "visit": 35, "email": 5},
    "desk": {"accompanied_by_staff": 55, "phone": 30, "visit": 15},
    "agency": {"accompanied_by_staff": 40, "phone": 40, "visit": 15, "home_visit": 5},
    "volunteer": {"home_visit": 50, "phone": 30, "accompanied_by_staff": 20},
    "outreach": {"home_visit": 100},
}
CALLERS: dict[str, dict[str, float]] = {
    "self": {"self": 85, "anonymous": 15},
    "family": {"family": 65, "acquaintance": 25, "neighbour": 10},
    "desk": {"agency_staff": 55, "self": 45},
    "agency": {"agency_staff": 60, "self": 35, "other": 5},
    "volunteer": {"minsei_volunteer": 80, "neighbour": 20},
    "outreach": {"self": 100},
}
# Who sends a slip to the office before the person comes, by route. The desks that know the
# person by a number of their own register them first and write a consent (story 03); the
# others send a provisional slip on a witnessed verbal consent (story 02) or, for a volunteer,
# a community concern (story 05).
SLIP_SENDERS = {
    "tax_desk": "zama-shuno",
    "insurance_desk": "zama-kokuho",
    "utility_desk": "zama-suido",
    "housing_desk": "zama-jutaku",
    "public_assistance_desk": PUBLIC_ASSISTANCE,
    "other_municipal_desk": "zama-kodomo",
    "shakyo": "zama-shakyo",
    "minsei_volunteer": "minsei",
    "community_care_center": "chiiki-houkatsu",
    "hello_work": "hellowork-atsugi",
    "npo": "seikatsuclub",
    "real_estate_agent": "oneaid",
    "food_bank": "oneaid",
}
LOCAL_ID_DESKS = {"zama-shuno": ("T", "tax"), "zama-kokuho": ("K", "finances")}
P_SLIP = 0.6
# Of the consultations that do not become a case: information only, or connected to public
# assistance at triage (Zama's figure less the cases closed into it), or continued without an
# application.
P_INFORMATION_ONLY = 0.30
CLOSURE_WEIGHTS: dict[str, float] = {
    "goals_achieved": 35,
    "major_issues_resolved": 20,
    "contact_lost": 15,
    "moved_away": 5,
    "transferred_to_public_assistance": 12,
    "transferred_to_other_system": 10,
    "deceased": 3,
}
P_PA_AT_TRIAGE = P_PUBLIC_ASSISTANCE - P_CASE * CLOSURE_WEIGHTS[
    "transferred_to_public_assistance"
] / sum(CLOSURE_WEIGHTS.values())
# Zama's 就労者数 (151) exceeds its assessments (115): it counts people helped into work without
# a plan too. At an evaluation the generator finds work this often (stream only: the player's
# evaluation step carries no work outcome).
P_INTO_WORK = 0.45
P_MORE_INCOME = 0.2
P_DECLINE = 0.12
P_ACKNOWLEDGE = 0.3
P_REPLAN = 0.2
# Of the people with a case, those who later ask for their data to be erased (stream only).
P_ERASED = 0.01
# Of the people whose case closed, those whose records the office later keeps past their
# retention (保存期間の延長, stream only), for this reason, this many years after the closure.
P_RETENTION_EXTENDED = 0.01
RETENTION_EXTENSION = ("関連する訴訟が係属中のため", 7)
# Who provides what the plan needs, by issue: (provider, programme, service class, categories
# the slip shares beyond identity, contact and consultation).
PROVIDERS: dict[str, tuple[str, str | None, str, tuple[str, ...]]] = {
    "household_finance": ("zama-shakyo", "household_finance", "A", ("finances", "debt")),
    "debt": ("bengoshikai", None, "B", ("finances", "debt")),
    "job_search_difficulty": ("hellowork-atsugi", None, "B", ("employment",)),
    "unstable_housing": ("oneaid", "housing_support", "A", ("housing",)),
    "homelessness": ("oneaid", "temporary_living", "A", ("housing",)),
    "food_shortage": ("oneaid", None, "C", ("finances",)),
    "mental_health": ("workscare", None, "B", ("mental_health",)),
    "illness": ("zama-kenko", None, "B", ("health",)),
    "problem_drinking": ("zama-kenko", None, "B", ("health",)),
    "disability_suspected": ("kiban-soudan", None, "B", ("health",)),
    "hikikomori": ("seikatsuclub", "work_preparation", "A", ("employment", "mental_health")),
    "social_isolation": ("seikatsuclub", None, "C", ("family",)),
    "no_kin": ("ashiato", None, "C", ("family",)),
    "child_learning": ("zama-shakyo", "child_learning", "A", ("family",)),
}
# Where a declined slip is rerouted (stream only).
REROUTE_TO = {
    "hellowork-atsugi": "chushinkai",
    "oneaid": "zama-jutaku",
    "seikatsuclub": "hibarigaoka",
    "workscare": "zama-kenko",
    "zama-kenko": "workscare",
    "kiban-soudan": "zama-shogai",
    "bengoshikai": "zama-shakyo",
    "zama-shakyo": "bengoshikai",
    "ashiato": "minsei",
}
BASE_CATEGORIES = ("identity", "contact", "consultation")
GOALS = ("生活の安定と就労による収入の確保", "見直し後の目標に沿った生活再建")
# A consent outlives the story's last step by this much: the platform checks consents on the
# real clock, and the player moves a story to end just before today.
CONSENT_MARGIN = timedelta(days=60)

FAMILY_NAMES = (
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
)
GIVEN_NAMES = {
    "male": (("一郎", "イチロウ"), ("健太", "ケンタ"), ("誠", "マコト"), ("浩", "ヒロシ")),
    "female": (("花子", "ハナコ"), ("陽子", "ヨウコ"), ("美咲", "ミサキ"), ("恵子", "ケイコ")),
}
COMPLAINTS = (
    "生活費が足りない",
    "仕事が見つからない",
    "家賃が払えない",
    "借金の返済が苦しい",
    "家族のことで困っている",
    None,
)


# --- The lifecycle ------------------------------------------------------------------------------

# (metric, amount, counted once per person and month)
Count = tuple[str, int, bool]


class Step(NamedTuple):
    """One thing that happens in a lifecycle: when, by which agency, what, and its details."""

    at: datetime
    kind: str
    by: str
    args: dict[str, Any]
    counts: tuple[Count, ...] = ()


@dataclass(frozen=True)
class Lifecycle:
    number: int
    municipality: str
    path: str  # case, public_assistance, information_only or continued
    person_id: str
    person: dict[str, Any]
    steps: tuple[Step, ...]

    @property
    def consent_until(self) -> date:
        """The last day the lifecycle's consents cover."""
        return (self.steps[-1].at + CONSENT_MARGIN).date()


class Rng(random.Random):
    """``random.Random`` with a cheaper ``randint``: a million events call it a million times."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))


def _uuid(rng: random.Random) -> str:
    """A version-4 shaped UUID from ``rng``, so that a seed gives the same ids every time."""
    bits = (rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (0x8 << 60)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Weighted:
    """Fast repeated choice from fixed weights."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.values = tuple(weights)
        self._cumulative = tuple(accumulate(weights.values()))

    def __call__(self, rng: random.Random) -> str:
        return self.values[bisect(self._cumulative, rng.random() * self._cumulative[-1])]


ROUTES = _Weighted(ROUTE_SHARES)
_CHANNELS = {group: _Weighted(w) for group, w in CHANNELS.items()}
_CALLERS = {group: _Weighted(w) for group, w in CALLERS.items()}
CLOSURES = _Weighted(CLOSURE_WEIGHTS)


def draw_issues(rng: random.Random) -> list[str]:
    """The issues a first assessment finds: at least one, 3.88 on average, Zama's mix."""
    while True:
        found = [code for code, chance in ISSUE_CHANCES if rng.random() < chance]
        if found:
            return found


def _next_day(rng: random.Random, after: datetime, low: int, high: int) -> datetime:
    """A working-hours moment ``low``–``high`` days after ``after`` (weekends moved to Monday)."""
    day = (after + timedelta(days=rng.randint(low, high))).date()
    day += timedelta(days=max(0, 7 - day.weekday()) if day.weekday() >= 5 else 0)
    moment = datetime(day.year, day.month, day.day, rng.randint(9, 16), 5 * rng.randint(0, 11))
    return max(moment.replace(tzinfo=JST), after + timedelta(minutes=10))


def _soon(rng: random.Random, after: datetime) -> datetime:
    return after + timedelta(minutes=5 * rng.randint(1, 6))


class _Builder:
    """Collects one person's steps; each branch of the model below adds to it."""

    def __init__(self, rng: random.Random, playable: bool) -> None:
        self.rng = rng
        self.playable = playable
        self.steps: list[Step] = []

    def add(
        self, at: datetime, kind: str, by: str, counts: Sequence[Count] = (), /, **args: Any
    ) -> datetime:
        self.steps.append(Step(at, kind, by, args, tuple(counts)))
        return at


def lifecycle(
    number: int, municipality: str, start: datetime, seed: int, playable: bool
) -> Lifecycle:
    """One person's way through the office, from the first contact to closure and after."""
    rng = Rng(seed * 1_000_003 + number)
    b = _Builder(rng, playable)
    sex = "male" if rng.random() < 0.55 else "female"
    family, given = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES[sex])
    person = {
        "family_name": family[0],
        "given_name": given[0],
        "family_name_kana": family[1],
        "given_name_kana": given[1],
        "birth_year": start.year - rng.randint(18, 85),
        "sex": sex,
    }
    person_id = _uuid(rng)
    route = ROUTES(rng)
    group = _ROUTE_GROUP.get(route, "agency")
    draw = rng.random()
    path = (
        "case"
        if draw < P_CASE
        else "public_assistance"
        if draw < P_CASE + P_PA_AT_TRIAGE
        else "information_only"
        if draw < P_CASE + P_PA_AT_TRIAGE + P_INFORMATION_ONLY
        else "continued"
    )
    at = start
    slip: _Slip | None = None
    sender = SLIP_SENDERS.get(route)
    if sender is not None and path != "information_only" and rng.random() < P_SLIP:
        slip = _slip_in(b, at, sender, person_id)
        at = slip.accepted
    channel = _CHANNELS[group](rng)
    at = b.add(
        _soon(rng, at) if b.steps else at,
        "open",
        OFFICE,
        [
            ("new_consultations", 1, False),
            (f"route_in.{route}", 1, False),
            (f"channel.{channel}", 1, False),
        ],
        consultation=_uuid(rng),
        route_in=route,
        channel=channel,
        caller=_CALLERS[group](rng),
        main_complaint=rng.choice(COMPLAINTS),
    )
    local_id = slip.local_id if slip is not None else None
    registered = local_id is not None
    if slip is not None and local_id is not None:
        at = b.add(_soon(rng, at), "link", OFFICE, desk=slip.sender, local_id=local_id)
    if path == "information_only":
        b.add(
            _soon(rng, at),
            "triage",
            OFFICE,
            [("triage.information_only", 1, False)],
            outcome="information_only",
        )
    elif path == "continued":
        at = b.add(_soon(rng, at), "triage", OFFICE, outcome="continue_here")
        if not registered and rng.random() < 0.5:
            at = b.add(_next_day(rng, at, 0, 14), "register", OFFICE, person=person_id)
            b.add(_soon(rng, at), "attach", OFFICE)
    elif path == "public_assistance":
        if not registered:
            at = b.add(_soon(rng, at), "register", OFFICE, person=person_id)
            at = b.add(_soon(rng, at), "attach", OFFICE)
        b.add(
            _soon(rng, at),
            "triage",
            OFFICE,
            [("triage.connect_elsewhere", 1, False), ("to_public_assistance", 1, True)],
            outcome="connect_elsewhere",
            target_agency=PUBLIC_ASSISTANCE,
            follow_up_on=(at + timedelta(days=14)).date(),
        )
    else:
        at = b.add(_soon(rng, at), "triage", OFFICE, outcome="continue_here")
        if not registered:
            at = b.add(_next_day(rng, at, 0, 14), "register", OFFICE, person=person_id)
        _case(b, at, person_id)
    if slip is not None and slip.local_id is None and not playable:
        # The office registered the person a provisional slip spoke of (stream only).
        office_registers = [s for s in b.steps if s.kind == "register" and s.by == OFFICE]
        if office_registers:
            b.add(
                _soon(rng, office_registers[0].at),
                "identify",
                OFFICE,
                referral=slip.referral,
            )
    if not playable and path == "case" and rng.random() < 0.02:
        _duplicate(b, person_id)
    closed = [step.at for step in b.steps if step.kind == "close"]
    if not playable and closed and rng.random() < P_RETENTION_EXTENDED:
        reason, years = RETENTION_EXTENSION
        until = (closed[-1] + timedelta(days=round(365.25 * years))).date()
        last = max(step.at for step in b.steps)
        b.add(_next_day(rng, last, 30, 365), "extend_retention", OFFICE, until=until, reason=reason)
    if not playable and path == "case" and rng.random() < P_ERASED:
        # 本人からの消去請求 once everything else is done: nothing is recorded after it.
        last = max(step.at for step in b.steps)
        b.add(_next_day(rng, last, 30, 365), "erase", OFFICE, reason="subject_request")
    return Lifecycle(number, municipality, path, person_id, person, _spaced(b.steps))


def _spaced(steps: list[Step]) -> tuple[Step, ...]:
    """The steps in time order, two minutes apart at least (a decline's follow-up is played one
    minute after the decline, before anything else happens)."""
    spaced: list[Step] = []
    for step in sorted(steps, key=lambda s: s.at):
        floor = spaced[-1].at + timedelta(minutes=2) if spaced else step.at
        spaced.append(
            step if step.at >= floor else Step(floor, step.kind, step.by, step.args, step.counts)
        )
    return tuple(spaced)


@dataclass(frozen=True)
class _Slip:
    referral: str
    sender: str
    local_id: str | None
    accepted: datetime


def _slip_in(b: _Builder, at: datetime, sender: str, person_id: str) -> _Slip:
    """A slip from the desk or agency the person came through; the office accepts it."""
    rng = b.rng
    referral = _uuid(rng)
    local_id: str | None = None
    kind, basis, categories = "connect_to_office", "verbal_consent", ["identity", "contact"]
    reason = "窓口で困りごとを把握。本人の了解を得て紹介"
    if sender in LOCAL_ID_DESKS:
        prefix, category = LOCAL_ID_DESKS[sender]
        local_id = f"{prefix}-{rng.getrandbits(40):013d}"
        kind, basis, categories = "use_recommendation", "consent", ["identity", "contact", category]
        reason = "滞納相談で生活の困りごとを把握（法8条 利用勧奨）"
        at = b.add(at, "register", sender, person=person_id, local_id=local_id)
        at = b.add(
            _soon(rng, at),
            "consent",
            sender,
            consent=_uuid(rng),
            recipients=[OFFICE],
            categories=categories,
            purpose="referral",
            method="written_tsunagu_sheet",
        )
        at = _soon(rng, at)
    elif sender == "minsei":
        kind, basis, categories = "concern_from_community", "community_concern", ["contact"]
        reason = "近隣住民の気づき。世帯が孤立している"
    at = b.add(
        at,
        "refer",
        sender,
        [(f"referrals.kind.{kind}", 1, False)],
        referral=referral,
        to=OFFICE,
        kind=kind,
        reason=reason,
        categories=categories,
        basis=basis,
    )
    accepted = b.add(
        _soon(rng, at),
        "accept",
        OFFICE,
        [("referrals.outcome.accepted", 1, False)],
        referral=referral,
    )
    return _Slip(referral, sender, local_id, accepted)


Service = tuple[str, str | None, str, tuple[str, ...]]


def _case(b: _Builder, at: datetime, person_id: str) -> None:
    """Application, consent, assessment, plan, meeting, decision, slips out, monitoring, close."""
    rng = b.rng
    at = b.add(_soon(rng, at), "apply", OFFICE, [("applications", 1, False)])
    issues = draw_issues(rng)
    services = _services(issues)
    outside = [s for s in services if s[0] != OFFICE]
    reroutes = {} if b.playable else {p: REROUTE_TO[p] for p, *_ in outside if p in REROUTE_TO}
    categories = {c for *_, cats in outside for c in cats} | {*BASE_CATEGORIES, "plan"}
    at = b.add(
        _soon(rng, at),
        "consent",
        OFFICE,
        consent=_uuid(rng),
        recipients=list(dict.fromkeys([OFFICE, *(p for p, *_ in outside), *reroutes.values()])),
        categories=[c for c in REF.data_categories if c in categories],
        purpose="support_coordination",
        method="written_application_form",
    )
    at = b.add(
        _next_day(rng, at, 0, 14),
        "assess",
        OFFICE,
        [
            ("first_assessments", 1, False),
            ("first_assessment_issues", len(issues), False),
            *((f"issue.{issue}", 1, False) for issue in issues),
        ],
        issues=issues,
        strengths=rng.sample(["毎日散歩している", "家族と連絡が取れる", "料理が得意"], k=1),
    )
    if "suicide_risk" in issues and rng.random() < 0.3:
        b.add(
            _soon(rng, at),
            "vital_interest",
            OFFICE,
            declaration=_uuid(rng),
            recipients=["zama-kenko"],
            categories=["health", "mental_health"],
            reason="自殺の危険が高く本人の同意を得る時間がない",
            hours=72,
        )
    if not b.playable and {"food_shortage", "homelessness"} & set(issues) and rng.random() < 0.5:
        kind = "food" if "food_shortage" in issues else "shelter"
        b.add(_soon(rng, at), "emergency", OFFICE, kind=kind)
    at = _plan_cycle(b, at, services, version=1, outside=outside, reroutes=reroutes)
    if len(issues) >= 5 and rng.random() < 0.3:
        at = _article9(b, at, [p for p, *_ in outside])
    at = _monitor(b, at)
    reason = CLOSURES(rng)
    if reason != "contact_lost":
        if rng.random() < P_REPLAN:
            at = _evaluate(b, at, "replan")
            at = _plan_cycle(b, at, services, version=2, outside=[], reroutes={})
            at = _monitor(b, at)
        at = _evaluate(b, at, "close")
    at = _close(b, at, reason)
    if reason not in ("deceased", "moved_away") and rng.random() < 0.5:
        b.add(_next_day(rng, at, 20, 90), "follow_up", OFFICE, note="近況確認。安定して生活")
    if outside and rng.random() < 0.05:
        b.add(
            _next_day(rng, at, 1, 30),
            "withdraw",
            OFFICE,
            withdrawal=_uuid(rng),
            recipients=[outside[0][0]],
        )
    if not b.playable and reason == "contact_lost" and rng.random() < 0.2:
        at = b.add(_next_day(rng, at, 30, 200), "reopen", OFFICE, reason="本人から再び連絡")
        _close(b, at, "goals_achieved")


def _duplicate(b: _Builder, person_id: str) -> None:
    """The same person registered twice, merged into the first, sometimes unmerged (stream)."""
    rng = b.rng
    duplicate = _uuid(rng)
    first = next(s for s in b.steps if s.kind == "register")
    at = b.add(_next_day(rng, first.at, 0, 3), "register", OFFICE, person=duplicate)
    at = b.add(_next_day(rng, at, 1, 10), "merge", OFFICE, duplicate=duplicate, survivor=person_id)
    if rng.random() < 0.2:
        b.add(_next_day(rng, at, 1, 10), "unmerge", OFFICE, duplicate=duplicate, survivor=person_id)


def _services(issues: list[str]) -> list[Service]:
    """The office's own support (class D), and up to three providers for the issues found."""
    own: Service = (
        OFFICE,
        "free_job_placement" if "job_search_difficulty" in issues else None,
        "D",
        (),
    )
    providers: dict[str, Service] = {}
    for issue in issues:
        if issue in PROVIDERS and PROVIDERS[issue][0] not in providers and len(providers) < 3:
            providers[PROVIDERS[issue][0]] = PROVIDERS[issue]
    return [own, *providers.values()]


def _plan_cycle(
    b: _Builder,
    at: datetime,
    services: list[Service],
    *,
    version: int,
    outside: list[Service],
    reroutes: dict[str, str],
) -> datetime:
    """Draft, discuss at a 支援調整会議, approve (支援決定); slips to the plan's providers."""
    rng = b.rng
    at = b.add(
        _next_day(rng, at, 5, 30),
        "draft",
        OFFICE,
        goal=GOALS[version > 1],
        services=[{"provider": p, "program": prog, "class": cls} for p, prog, cls, _ in services],
    )
    at = b.add(
        _next_day(rng, at, 3, 14),
        "hold",
        OFFICE,
        meeting=_uuid(rng),
        attendees=list(dict.fromkeys([OFFICE, *(p for p, *_ in outside)])),
    )
    at = b.add(_soon(rng, at), "approve", OFFICE, [("plans_approved", 1, False)])
    for provider, program, _, categories in outside:
        _referral_out(b, at, provider, program, categories, reroutes)
    return at


def _referral_out(
    b: _Builder,
    after: datetime,
    provider: str,
    program: str | None,
    categories: tuple[str, ...],
    reroutes: dict[str, str],
) -> None:
    """A slip to a provider and its loop closed: accepted (and mostly completed), or declined
    and followed up by a reroute, a return to the office or a resource gap; never a silent end."""
    rng = b.rng
    referral = _uuid(rng)
    shared = [c for c in REF.data_categories if c in {*BASE_CATEGORIES, *categories}]
    at = b.add(
        _next_day(rng, after, 0, 3),
        "refer",
        OFFICE,
        [("referrals.kind.service_request", 1, False)],
        referral=referral,
        to=provider,
        kind="service_request",
        reason=f"支援プランに基づく紹介（{program or '関係機関の支援'}）",
        categories=shared,
        basis="consent",
    )
    if not b.playable and rng.random() < 0.03:
        b.add(
            _next_day(rng, at, 0, 2),
            "move",
            OFFICE,
            [("referrals.outcome.withdrawn", 1, False)],
            referral=referral,
            move="withdraw",
            reason="本人の希望で取り下げ",
        )
        return
    if rng.random() < P_ACKNOWLEDGE:
        at = b.add(_next_day(rng, at, 0, 2), "acknowledge", provider, referral=referral)
    if rng.random() < P_DECLINE:
        _decline(b, at, referral, provider, shared, reroutes)
        return
    at = b.add(
        _next_day(rng, at, 1, 5),
        "accept",
        provider,
        [("referrals.outcome.accepted", 1, False)],
        referral=referral,
    )
    if not b.playable:
        if rng.random() < 0.6:
            at = b.add(_next_day(rng, at, 1, 10), "move", provider, referral=referral, move="start")
        if rng.random() < 0.05:
            at = b.add(
                _next_day(rng, at, 5, 20),
                "move",
                provider,
                referral=referral,
                move="hold",
                reason="本人の体調不良のため一時中断",
            )
        if rng.random() < 0.1:
            b.add(
                _next_day(rng, at, 20, 90),
                "move",
                provider,
                [("referrals.outcome.failed", 1, False)],
                referral=referral,
                move="fail",
                reason="支援の継続が難しくなった",
            )
            return
    if rng.random() < 0.9:
        b.add(
            _next_day(rng, at, 20, 120),
            "complete",
            provider,
            [("referrals.outcome.completed", 1, False)],
            referral=referral,
            outcome="予定した支援を終えた",
        )


def _decline(
    b: _Builder,
    at: datetime,
    referral: str,
    provider: str,
    shared: list[str],
    reroutes: dict[str, str],
) -> None:
    rng = b.rng
    follow = "resource_gap"
    if not b.playable:
        follow = rng.choice(["resource_gap", "return_to_sender", "reroute"])
        if follow == "reroute" and provider not in reroutes:
            follow = "return_to_sender"
    at = b.add(
        _next_day(rng, at, 1, 5),
        "decline",
        provider,
        [("referrals.outcome.declined", 1, False)],
        referral=referral,
        reason="受け入れ枠がない",
        follow=follow,
        gap=_uuid(rng),
        note="市内に受け皿となる社会資源がない",
    )
    if follow == "reroute":
        new = _uuid(rng)
        at = b.add(
            _soon(rng, at),
            "move",
            OFFICE,
            [
                ("referrals.outcome.rerouted", 1, False),
                ("referrals.kind.service_request", 1, False),
            ],
            referral=referral,
            move="reroute",
            reason="他の機関につなぎ直す",
            rerouted_to=new,
            receiver=reroutes[provider],
            categories=shared,
        )
        b.add(
            _next_day(rng, at, 1, 5),
            "accept",
            reroutes[provider],
            [("referrals.outcome.accepted", 1, False)],
            referral=new,
        )


def _article9(b: _Builder, at: datetime, providers: list[str]) -> datetime:
    """A 支援会議 (法9条) on the person, where the office shares what the members need."""
    rng = b.rng
    members = list(dict.fromkeys([OFFICE, *providers, "zama-shakyo"]))
    meeting = _uuid(rng)
    held = _next_day(rng, at, 7, 21)
    b.add(
        _next_day(rng, at, 1, 5),
        "schedule9",
        OFFICE,
        meeting=meeting,
        members=members,
        held=held,
    )
    at = b.add(held, "hold9", OFFICE, meeting=meeting, members=members)
    return b.add(
        _soon(rng, at),
        "share9",
        OFFICE,
        meeting=meeting,
        item=_uuid(rng),
        categories=["consultation", "family"],
        note="世帯の状況と支援の役割分担",
    )


def _monitor(b: _Builder, at: datetime) -> datetime:
    rng = b.rng
    for _ in range(rng.randint(1, 3)):
        at = b.add(_next_day(rng, at, 25, 60), "monitor", OFFICE, note="面談で状況を確認")
    return at


def _evaluate(b: _Builder, at: datetime, outcome: str) -> datetime:
    rng = b.rng
    found: list[str] = []
    if not b.playable and outcome == "close":
        chances = (("into_work", P_INTO_WORK), ("increased_income", P_MORE_INCOME))
        found = [metric for metric, chance in chances if rng.random() < chance]
    return b.add(
        _next_day(rng, at, 14, 60),
        "evaluate",
        OFFICE,
        [(metric, 1, True) for metric in found],
        outcome=outcome,
        work_outcomes=found,
    )


def _close(b: _Builder, at: datetime, reason: str) -> datetime:
    rng = b.rng
    counts: list[Count] = [(f"closures.{reason}", 1, False)]
    if reason == "transferred_to_public_assistance":
        counts.append(("to_public_assistance", 1, True))
    moment = _next_day(rng, at, 1, 14)
    follow = (moment + timedelta(days=180)).date() if rng.random() < 0.5 else None
    return b.add(moment, "close", OFFICE, counts, reason=reason, follow_up_until=follow)


# --- Stories (the scenario step format) -------------------------------------------------------

# Lifecycle steps the scenario player has verbs for; the rest are rendered in the stream only.
STORY_KINDS = frozenset(
    {
        "open",
        "triage",
        "register",
        "link",
        "attach",
        "apply",
        "consent",
        "assess",
        "vital_interest",
        "draft",
        "hold",
        "approve",
        "refer",
        "acknowledge",
        "accept",
        "decline",
        "complete",
        "schedule9",
        "hold9",
        "share9",
        "monitor",
        "evaluate",
        "close",
        "follow_up",
        "withdraw",
    }
)


def _when(moment: datetime) -> str:
    """A story's time: Japan's wall clock, to the minute, as the stories write it."""
    return moment.astimezone(JST).strftime("%Y-%m-%dT%H:%M")


def _story_steps(life: Lifecycle, step: Step) -> list[dict[str, Any]]:
    a = step.args
    entry: dict[str, Any] = {"at": _when(step.at), "by": step.by}
    match step.kind:
        case "open":
            entry |= {
                "do": "open_consultation",
                "channel": a["channel"],
                "route_in": a["route_in"],
                "caller": a["caller"],
                "main_complaint": a["main_complaint"],
            }
        case "triage":
            entry |= {"do": "triage", "outcome": a["outcome"]}
            if "target_agency" in a:
                entry |= {"target_agency": a["target_agency"], "follow_up_on": a["follow_up_on"]}
        case "register":
            entry["do"] = "register_person"
            if "local_id" in a:
                entry["local_id"] = {"agency": step.by, "id": a["local_id"]}
        case "link":
            entry |= {
                "do": "link_person",
                "to_local_id": {"agency": a["desk"], "id": a["local_id"]},
            }
        case "attach":
            entry |= {"do": "attach_consultations", "consultations": ["last"]}
        case "apply":
            entry["do"] = "receive_application"
        case "consent":
            entry |= {
                "do": "record_consent",
                "recipients": a["recipients"],
                "categories": a["categories"],
                "purpose": a["purpose"],
                "until": life.consent_until.isoformat(),
                "method": a["method"],
            }
        case "assess":
            entry |= {"do": "record_assessment", "issues": a["issues"], "strengths": a["strengths"]}
        case "vital_interest":
            entry |= {
                "do": "declare_vital_interest",
                "reason": a["reason"],
                "recipients": a["recipients"],
                "categories": a["categories"],
                "hours": a["hours"],
            }
        case "draft":
            entry |= {"do": "draft_plan", "goal": a["goal"], "services": a["services"]}
        case "hold":
            entry |= {
                "do": "hold_meeting",
                "kind": "individual_coordination",
                "attendees": a["attendees"],
                "person_attended": True,
            }
        case "approve":
            entry["do"] = "approve_plan"
        case "refer":
            entry |= {
                "do": "send_referral",
                "to": a["to"],
                "kind": a["kind"],
                "reason": a["reason"],
                "categories": a["categories"],
            }
            if a["basis"] == "verbal_consent":
                entry["basis"] = "consent_verbal_recorded_by_sender"
        case "acknowledge" | "accept":
            entry["do"] = step.kind
        case "decline":
            # The player closes the decline's loop with the resource gap noted right after it.
            gap = {"at": _when(step.at + timedelta(minutes=1)), "by": OFFICE}
            gap |= {"do": "note_resource_gap", "gap": a["note"]}
            return [entry | {"do": "decline", "reason": a["reason"]}, gap]
        case "complete":
            entry |= {"do": "complete", "outcome": a["outcome"]}
        case "schedule9":
            entry |= {
                "do": "schedule_meeting",
                "kind": "article9_support_meeting",
                "members": a["members"],
            }
        case "hold9":
            entry |= {"do": "hold_meeting", "kind": "article9_support_meeting"}
        case "share9":
            entry |= {"do": "share_in_meeting", "categories": a["categories"], "note": a["note"]}
        case "monitor":
            entry |= {"do": "record_monitoring", "note": a["note"]}
        case "evaluate":
            entry |= {"do": "evaluate_plan", "outcome": a["outcome"]}
        case "close":
            entry |= {"do": "close_case", "reason": a["reason"]}
            if a["follow_up_until"] is not None:
                entry["follow_up_until"] = a["follow_up_until"].isoformat()
        case "follow_up":
            entry |= {"do": "record_follow_up", "note": a["note"]}
        case "withdraw":
            entry |= {"do": "withdraw_consent", "recipients": a["recipients"]}
    return [entry]


def playable(step: Step) -> bool:
    """Whether the scenario player can play ``step`` as the lifecycle means it."""
    if step.kind == "decline":
        return bool(step.args["follow"] == "resource_gap")
    if step.kind == "evaluate":
        return not step.args["work_outcomes"]
    return step.kind in STORY_KINDS


def story(life: Lifecycle) -> Scenario:
    """The lifecycle as a story for ``ScenarioPlayer``; only lifecycles built playable."""
    unplayable = sorted({step.kind for step in life.steps if not playable(step)})
    if unplayable:
        raise ValueError(f"lifecycle {life.number} has steps no story can play: {unplayable}")
    person = {k: life.person[k] for k in ("family_name", "given_name", "birth_year", "sex")}
    steps = [entry for step in life.steps for entry in _story_steps(life, step)]
    return Scenario(f"load-{life.number:06d}", person, steps, [])


# --- Statistics the lifecycles should produce ---------------------------------------------------

Tally = dict[tuple[str, str], Counter[str]]


def tally(played: Iterable[tuple[Lifecycle, timedelta]]) -> Tally:
    """What the monthly statistics should count, by (municipality, month), from the generator's
    own bookkeeping; each lifecycle moved by the shift it was played with.

    Counts of people (to public assistance, into work) count a person once in a month.
    """
    totals: Tally = {}
    once: set[tuple[str, str, str, str]] = set()
    for life, shift in played:
        for step in life.steps:
            month = (step.at + shift).astimezone(JST).strftime("%Y-%m")
            for metric, amount, per_person in step.counts:
                if per_person:
                    key = (life.municipality, month, metric, life.person_id)
                    if key in once:
                        continue
                    once.add(key)
                totals.setdefault((life.municipality, month), Counter())[metric] += amount
    return totals


# --- The event stream -------------------------------------------------------------------------

PLAN_PERIOD = timedelta(days=182)
MEMBERSHIP_PERIOD = timedelta(days=365)


class Generated(NamedTuple):
    """One integration event as a relay would publish it: topic's service, key, value and
    headers."""

    service: str
    key: str
    value: bytes
    event_id: str
    name: str
    person: str | None
    at: float
    headers: tuple[tuple[str, bytes], ...] = ()


STAFF = tuple(f"s{number:03d}" for number in range(1, 13))
INTEGRATIONS = {
    "intake": intake_integration,
    "referral": referral_integration,
    "meeting": meeting_integration,
}


class Relaying:
    """Makes each generated event as its service's relay makes it, with the services' own code.

    The generator writes an event's data in the integration event's terms. That data stands in
    for the domain event it would come from: a ``DomainEvent`` of the aggregate it names, whose
    attributes are the data's fields, declared (``Published``) with the service's originator
    field and nothing renamed or derived. The service's ``Sealing`` then seals its personal
    fields with ``sealer`` (the key store the consumers open them with), and the relay's
    ``translator`` (``Published.data``, ``envelope``, ``event_id``) and ``message`` make the
    bytes. A unit test holds the result to what the relays publish from the services' real
    domain events. Subjects are not linked to their persons here: nothing erases them.
    """

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer
        self._kinds: dict[str, tuple[str, type[DomainEvent], Translate]] = {}
        stand_ins: list[Published] = []
        for service, integration in INTEGRATIONS.items():
            declared = []
            for published in integration.PUBLISHED:
                for contract in published.variants or (published.contract,):
                    kind = type(contract.name, (DomainEvent,), {})
                    declared.append(Published(kind, contract, published.originator))
            translate = translator(translation(declared), integration.SOURCE)
            for each in declared:
                self._kinds[each.contract.name] = (service, each.domain, translate)
            stand_ins += declared
        self._sealing = Sealing(stand_ins, sealer)

    def publish(
        self,
        name: str,
        originator: str,
        version: int,
        at: datetime,
        municipality: str,
        data: dict[str, Any],
        traceparent: str,
    ) -> Generated:
        """Event ``name`` of aggregate ``originator`` (at ``version``), recorded ``at``."""
        service, kind, translate = self._kinds[name]
        event = kind(originator_id=UUID(originator), originator_version=version, timestamp=at)
        event.__dict__.update(data, municipality=municipality)
        cloud_event = translate(self._sealing.seal(event))
        assert cloud_event is not None
        sent = message(service, cloud_event, {"traceparent": traceparent})
        return Generated(
            service,
            sent.key,
            sent.value,
            cloud_event.id,
            name,
            cloud_event.personid,
            at.timestamp(),
            sent.headers,
        )

    @classmethod
    @contextmanager
    def of(cls, deployment: Settings | None) -> Iterator[Relaying]:
        """Relaying whose data keys are kept in ``deployment``'s key store, closed at the end.

        None: in a key store of its own, in this process's memory, that no consumer can reach:
        they show each personal field as erased, as a consumer without the key does. For what
        reads no personal data (statistics, order, ids)."""
        keys = (
            key_store(deployment)
            if deployment is not None
            else KeyStore(SqliteDatabase(":memory:"), os.urandom(KEY_BYTES))
        )
        try:
            yield cls(Sealer(keys))
        finally:
            keys.close()


class _Events:
    """Renders one lifecycle's steps as the integration events the services would publish.

    Each aggregate's version is counted as the services count it (a plan discussed at a meeting
    is a case event that is not published, so it takes a version and publishes nothing), which
    makes the event ids the relays would give.
    """

    def __init__(self, life: Lifecycle, seed: int, relaying: Relaying) -> None:
        self.life = life
        self.relaying = relaying
        self.rng = Rng(seed * 7_919 + life.number)
        self.out: list[Generated] = []
        self.versions: dict[str, int] = {}
        self.consultation = ""
        self.opened_at = ""
        self.attached = False
        self.consent = ""
        self.case = str(SupportCase.create_id(UUID(life.person_id)))
        self.case_open = False
        self.plan = 0
        self.meeting = ""
        self.parties: dict[str, tuple[str, str, str | None]] = {}
        self._step: Step | None = None
        self._step_at = ""

    def emit(
        self, originator: str, name: str, data: dict[str, Any], person: str | None, at: datetime
    ) -> None:
        """``person``: whom the event names (its Kafka key), None while no one is known."""
        version = self.versions.get(originator, 0) + 1
        self.versions[originator] = version
        trace = self.rng.randbytes(24).hex()
        # A relay's events carry the UTC instant they were recorded at.
        generated = self.relaying.publish(
            name,
            originator,
            version,
            at.astimezone(UTC),
            self.life.municipality,
            data,
            f"00-{trace[:32]}-{trace[32:]}-01",
        )
        assert generated.person == person, (name, generated.person, person)
        self.out.append(generated)

    def act(self, step: Step) -> dict[str, Any]:
        if step is not self._step:
            self._step, self._step_at = step, step.at.isoformat()
        return {
            "agency": step.by,
            "staff_id": STAFF[int(self.rng.random() * len(STAFF))],
            "at": self._step_at,
        }

    def case_event(self, step: Step, name: str, fields: dict[str, Any]) -> None:
        data = self.act(step) | {"case_id": self.case, "person_id": self.life.person_id}
        self.emit(self.case, name, data | fields, self.life.person_id, step.at)

    def referral_event(self, step: Step, name: str, referral: str, fields: dict[str, Any]) -> None:
        sender, receiver, person = self.parties[referral]
        data = self.act(step) | {
            "referral_id": referral,
            "sender": sender,
            "receiver": receiver,
            "person_id": person,
        }
        self.emit(referral, name, data | fields, person, step.at)

    def attach(self, step: Step) -> None:
        if self.attached:
            return
        self.attached = True
        person = self.life.person_id
        data = self.act(step) | {
            "consultation_id": self.consultation,
            "person_id": person,
            "consultation_opened_at": self.opened_at,
        }
        self.emit(self.consultation, "ConsultationAttached", data, person, step.at)

    def send(
        self, step: Step, referral: str, sender: str, receiver: str, fields: dict[str, Any]
    ) -> None:
        person = None if fields["basis"] != "consent" else self.life.person_id
        self.parties[referral] = (sender, receiver, person)
        basis_id = self.consent if fields["basis"] == "consent" else None
        self.referral_event(
            step,
            "ReferralSent",
            referral,
            {
                "kind": fields["kind"],
                "reason": fields["reason"],
                "categories": fields["categories"],
                "basis": fields["basis"],
                "basis_id": basis_id,
                "provisional": person is None,
                "rerouted_from": fields.get("rerouted_from"),
            },
        )

    def render(self, step: Step) -> None:
        a = step.args
        person = self.life.person_id
        match step.kind:
            case "open":
                self.consultation, self.opened_at = a["consultation"], step.at.isoformat()
                data = self.act(step) | {
                    "consultation_id": self.consultation,
                    "channel": a["channel"],
                    "route_in": a["route_in"],
                    "caller_kind": a["caller"],
                    "person_id": None,
                    "main_complaint": a["main_complaint"],
                    "notes": None,
                }
                self.emit(self.consultation, "ConsultationOpened", data, None, step.at)
            case "triage":
                known = person if self.attached else None
                follow = a.get("follow_up_on")
                data = self.act(step) | {
                    "consultation_id": self.consultation,
                    "person_id": known,
                    "outcome": a["outcome"],
                    "target_agency": a.get("target_agency"),
                    "target_system": None,
                    "follow_up_on": follow.isoformat() if follow else None,
                    "note": None,
                }
                self.emit(self.consultation, "ConsultationTriaged", data, known, step.at)
            case "register":
                self.register(step, a["person"], a.get("local_id"))
            case "link" | "attach":
                self.attach(step)
            case "apply":
                self.attach(step)
                data = self.act(step) | {"consultation_id": self.consultation, "person_id": person}
                self.emit(self.consultation, "ApplicationReceived", data, person, step.at)
            case "consent":
                self.consent = a["consent"]
                day = self.life.consent_until + timedelta(days=1)
                until = datetime(day.year, day.month, day.day, tzinfo=JST)
                data = self.act(step) | {
                    "consent_id": self.consent,
                    "person_id": person,
                    "given_by": "person",
                    "representative_relationship": None,
                    "recipients": a["recipients"],
                    "categories": a["categories"],
                    "purposes": [a["purpose"]],
                    "valid_from": step.at.isoformat(),
                    "valid_until": until.isoformat(),
                    "method": a["method"],
                    "evidence_ref": None,
                }
                self.emit(self.consent, "ConsentRecorded", data, person, step.at)
            case "withdraw":
                data = self.act(step) | {
                    "consent_id": self.consent,
                    "person_id": person,
                    "withdrawal_id": a["withdrawal"],
                    "recipients": a["recipients"],
                    "categories": None,
                }
                self.emit(self.consent, "ConsentWithdrawn", data, person, step.at)
            case "merge" | "unmerge":
                name = "PersonsMerged" if step.kind == "merge" else "PersonsUnmerged"
                data = self.act(step) | {"person_id": a["duplicate"], "survivor_id": a["survivor"]}
                self.emit(a["duplicate"], name, data, a["duplicate"], step.at)
            case "erase":
                data = self.act(step) | {
                    "person_id": person,
                    "reason": a["reason"],
                    "erased_with": None,
                }
                self.emit(person, "PersonErased", data, person, step.at)
            case "extend_retention":
                data = self.act(step) | {
                    "person_id": person,
                    "until": a["until"].isoformat(),
                    "reason": a["reason"],
                }
                self.emit(person, "RetentionExtended", data, person, step.at)
            case "refer":
                self.send(step, a["referral"], step.by, a["to"], a)
            case "acknowledge" | "accept":
                name = "ReferralAcknowledged" if step.kind == "acknowledge" else "ReferralAccepted"
                self.referral_event(step, name, a["referral"], {"reason": None})
            case "complete":
                fields = {"reason": None, "outcome": a["outcome"]}
                self.referral_event(step, "ReferralCompleted", a["referral"], fields)
            case "decline":
                self.decline(step)
            case "move":
                self.move(step)
            case "identify":
                referral = a["referral"]
                sender, receiver, _ = self.parties[referral]
                self.parties[referral] = (sender, receiver, person)
                self.referral_event(step, "ReferralPersonIdentified", referral, {})
            case _:
                self.render_case(step)

    def register(self, step: Step, person: str, local_id: str | None) -> None:
        p = self.life.person
        data = self.act(step) | {
            "person_id": person,
            "family_name": p["family_name"],
            "given_name": p["given_name"],
            "family_name_kana": p["family_name_kana"],
            "given_name_kana": p["given_name_kana"],
            "birth_date": None,
            "birth_year": p["birth_year"],
            "sex": p["sex"],
            "address": f"市内{self.rng.randint(1, 9)}丁目{self.rng.randint(1, 30)}番",
            "phone": f"046-{self.rng.randint(200, 299)}-{self.rng.randint(0, 9999):04d}",
        }
        self.emit(person, "PersonRegistered", data, person, step.at)
        if local_id is not None:
            linked = self.act(step) | {"person_id": person, "local_id": local_id}
            self.emit(person, "PersonLinked", linked, person, step.at)

    def decline(self, step: Step) -> None:
        a = step.args
        referral = a["referral"]
        self.referral_event(step, "ReferralDeclined", referral, {"reason": a["reason"]})
        if a["follow"] == "reroute":
            return
        later = step.at + timedelta(minutes=1)
        sender = self.parties[referral][0]
        office = Step(later, "follow", sender, {})
        returned = a["follow"] == "return_to_sender"
        follow_up = (later + timedelta(days=14)).isoformat() if returned else None
        self.referral_event(
            office,
            "ReferralDeclineFollowedUp",
            referral,
            {"action": a["follow"], "note": a["note"], "follow_up_on": follow_up},
        )
        if a["follow"] == "resource_gap":
            fields = {"gap_id": a["gap"], "gap": a["note"], "meeting_id": None}
            self.case_event(office, "ResourceGapNoted", fields)

    def move(self, step: Step) -> None:
        a = step.args
        referral = a["referral"]
        name = {
            "start": "ReferralStarted",
            "hold": "ReferralPutOnHold",
            "fail": "ReferralFailed",
            "withdraw": "ReferralWithdrawn",
            "reroute": "ReferralRerouted",
        }[a["move"]]
        fields: dict[str, Any] = {"reason": a.get("reason")}
        if a["move"] == "reroute":
            fields["rerouted_to"] = a["rerouted_to"]
        self.referral_event(step, name, referral, fields)
        if a["move"] == "reroute":
            resend = {
                "kind": "service_request",
                "reason": a["reason"],
                "categories": a["categories"],
                "basis": "consent",
                "rerouted_from": referral,
            }
            self.send(step, a["rerouted_to"], step.by, a["receiver"], resend)

    def render_case(self, step: Step) -> None:
        a = step.args
        person = self.life.person_id
        if not self.case_open:
            self.case_open = True
            self.case_event(step, "CaseOpened", {"consultation_id": self.consultation})
        match step.kind:
            case "assess":
                fields = {
                    "assessment_number": 1,
                    "issues": a["issues"],
                    "strengths": a["strengths"],
                    "notes": None,
                }
                self.case_event(step, "AssessmentRecorded", fields)
            case "emergency":
                self.case_event(step, "EmergencySupportRecorded", {"kind": a["kind"], "note": None})
            case "vital_interest":
                until = step.at + timedelta(hours=a["hours"])
                data = self.act(step) | {
                    "declaration_id": a["declaration"],
                    "person_id": person,
                    "recipients": a["recipients"],
                    "categories": a["categories"],
                    "reason": a["reason"],
                    "valid_from": step.at.isoformat(),
                    "valid_until": until.isoformat(),
                    "flagged_for_review": True,
                }
                self.emit(a["declaration"], "VitalInterestDeclared", data, person, step.at)
            case "draft":
                self.plan += 1
                start = step.at.date()
                end = (step.at + PLAN_PERIOD).date()
                services = [
                    {
                        "provider": s["provider"],
                        "program": s["program"],
                        "service_class": s["class"],
                        "period_from": start.isoformat(),
                        "period_until": end.isoformat(),
                        "description": None,
                    }
                    for s in a["services"]
                ]
                fields = {
                    "plan_version": self.plan,
                    "goals": [a["goal"]],
                    "services": services,
                    "monitoring_dates": [],
                    "period_from": start.isoformat(),
                    "period_until": end.isoformat(),
                    "drafted_with_person": True,
                }
                self.case_event(step, "PlanDrafted", fields)
            case "hold" | "schedule9" | "hold9":
                self.meeting_event(step)
            case "share9":
                data = self.act(step) | {
                    "meeting_id": a["meeting"],
                    "item_id": a["item"],
                    "person_id": person,
                    "categories": a["categories"],
                    "note": a["note"],
                }
                self.emit(a["meeting"], "InformationShared", data, person, step.at)
            case "approve":
                fields = {"plan_version": self.plan, "meeting_id": self.meeting}
                self.case_event(step, "PlanApproved", fields)
            case "monitor":
                fields = {"plan_version": self.plan, "note": a["note"]}
                self.case_event(step, "MonitoringRecorded", fields)
            case "evaluate":
                fields = {
                    "plan_version": self.plan,
                    "outcome": a["outcome"],
                    "note": None,
                    "work_outcomes": a["work_outcomes"],
                }
                self.case_event(step, "PlanEvaluated", fields)
            case "close":
                follow = a["follow_up_until"]
                fields = {
                    "reason": a["reason"],
                    "follow_up_until": follow.isoformat() if follow else None,
                    "note": None,
                }
                self.case_event(step, "CaseClosed", fields)
            case "reopen":
                self.case_event(step, "CaseReopened", {"reason": a["reason"]})
            case "follow_up":
                self.case_event(step, "FollowUpRecorded", {"note": a["note"]})
            case other:
                raise ValueError(f"no event for a lifecycle step {other!r}")

    def meeting_event(self, step: Step) -> None:
        a = step.args
        person = self.life.person_id
        meeting = a["meeting"]
        article9 = step.kind != "hold"
        kind = "article9_support_meeting" if article9 else "individual_coordination"
        if step.kind in ("hold", "schedule9"):
            held = a.get("held", step.at)
            members = [
                {
                    "agency": agency,
                    "valid_from": held.isoformat(),
                    "valid_until": (held + MEMBERSHIP_PERIOD).isoformat(),
                }
                for agency in (a["members"] if article9 else [])
            ]
            data = self.act(step) | {
                "meeting_id": meeting,
                "kind": kind,
                "person_id": person,
                "scheduled_for": held.isoformat(),
                "case_ids": [] if article9 else [self.case],
                "members": members,
            }
            self.emit(meeting, "MeetingScheduled", data, person, step.at)
        if step.kind == "schedule9":
            return
        discussed = []
        if not article9:
            self.meeting = meeting
            # The plan discussed: a case event the meeting service keeps to itself.
            self.versions[self.case] += 1
            discussed = [{"case_id": self.case, "plan_version": self.plan}]
        agencies = a["members"] if article9 else a["attendees"]
        data = self.act(step) | {
            "meeting_id": meeting,
            "kind": kind,
            "person_id": person,
            "attendees": [
                {"agency": agency, "role": "organiser" if agency == step.by else "member"}
                for agency in agencies
            ],
            "person_attended": not article9,
            "conclusions": [],
            "plans_discussed": discussed,
            "resource_gaps": [],
        }
        self.emit(meeting, "MeetingHeld", data, person, step.at)


def render_events(life: Lifecycle, seed: int, relaying: Relaying) -> list[Generated]:
    """The integration events of one lifecycle, in the order the services would publish them."""
    events = _Events(life, seed, relaying)
    for step in life.steps:
        events.render(step)
    return events.out


# --- Many persons, several municipalities ---------------------------------------------------


def _with_check_digit(five: str) -> str:
    """A 全国地方公共団体コード: five digits and the check digit (weights 6 to 2, modulo 11)."""
    total = sum(int(digit) * weight for digit, weight in zip(five, (6, 5, 4, 3, 2), strict=True))
    return f"{five}{(11 - total % 11) % 10}"


def municipality_codes(count: int) -> tuple[str, ...]:
    """Zama, then codes shaped like real cities' (prefecture 01–47, city 201 on, check digit).

    The reference data holds Zama's agencies only: other municipalities' events name the same
    agency ids, so that a projection does the same work for them as for Zama.
    """
    codes = [REF.municipality_code]
    number = 0
    while len(codes) < count:
        code = _with_check_digit(f"{1 + number % 47:02d}{201 + number // 47:03d}")
        number += 1
        if code not in codes:
            codes.append(code)
    return tuple(codes)


@dataclass(frozen=True)
class LoadProfile:
    """Whose lifecycles, how many a year and from when; the same profile gives the same load."""

    seed: int = 20250401
    municipalities: int = 8
    # New consultations a year in each municipality: Zama's latest figure, times ``scale``.
    scale: float = 1.0
    start: datetime = field(default_factory=lambda: datetime(2024, 4, 1, 9, tzinfo=JST))
    playable: bool = False

    @property
    def per_year(self) -> float:
        return self.municipalities * NEW_PER_YEAR * self.scale


def _arrivals(profile: LoadProfile, persons: int) -> Iterator[tuple[int, str, datetime]]:
    """Who arrives when and where: a Poisson stream over the municipalities' office hours."""
    rng = random.Random(profile.seed)
    codes = municipality_codes(profile.municipalities)
    per_day = profile.per_year / 365
    moment = profile.start
    for number in range(persons):
        moment += timedelta(days=rng.expovariate(per_day))
        # The day's 24 hours folded into office hours 9–17, keeping arrivals in order.
        seconds = (moment.hour * 3600 + moment.minute * 60 + moment.second) // 3
        day = datetime(moment.year, moment.month, moment.day, 9, tzinfo=JST)
        yield number, rng.choice(codes), day + timedelta(minutes=seconds // 60)


def lifecycles(profile: LoadProfile, persons: int) -> Iterator[Lifecycle]:
    """``persons`` lifecycles, in the order their first contact arrives."""
    for number, municipality, start in _arrivals(profile, persons):
        yield lifecycle(number, municipality, start, profile.seed, profile.playable)


def stories(profile: LoadProfile, persons: int) -> list[tuple[Lifecycle, Scenario]]:
    """Playable lifecycles and their stories."""
    playable_profile = LoadProfile(
        profile.seed, profile.municipalities, profile.scale, profile.start, playable=True
    )
    return [(life, story(life)) for life in lifecycles(playable_profile, persons)]


def _render_chunk(
    relaying: Relaying, seed: int, playable: bool, arrivals: list[tuple[int, str, datetime]]
) -> list[list[Generated]]:
    return [
        render_events(lifecycle(number, municipality, start, seed, playable), seed, relaying)
        for number, municipality, start in arrivals
    ]


# A worker process's own relaying, made as it starts (its key store's connections its own) and
# kept until the pool ends the process.
_WORKER = contextlib.ExitStack()
_RELAYING: list[Relaying] = []


def _start_worker(deployment: Settings | None) -> None:
    _RELAYING.append(_WORKER.enter_context(Relaying.of(deployment)))


def _render_in_worker(
    seed: int, playable: bool, arrivals: list[tuple[int, str, datetime]]
) -> list[list[Generated]]:
    return _render_chunk(_RELAYING[0], seed, playable, arrivals)


def _rendered(
    profile: LoadProfile, persons: int, deployment: Settings | None, workers: int
) -> Iterator[list[Generated]]:
    """Each lifecycle's events, lifecycles in arrival order; rendered by ``workers`` processes.

    A lifecycle's randomness is its own (seeded by its number), so the workers change nothing
    but the speed. They work a bounded window ahead, so memory stays flat however long the run.
    """
    arrivals = _arrivals(profile, persons)
    # The key store's tables are made here once: workers making them at once would race.
    with Relaying.of(deployment) as relaying:
        if workers <= 1:
            for arrival in arrivals:
                yield from _render_chunk(relaying, profile.seed, profile.playable, [arrival])
            return
    render = partial(_render_in_worker, profile.seed, profile.playable)
    ahead: deque[AsyncResult[list[list[list[Generated]]]]] = deque()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_start_worker, initargs=(deployment,)) as pool:
        for window in batched(batched(arrivals, 200), 2 * workers):
            ahead.append(pool.map_async(render, window))
            if len(ahead) > 2:
                for rendered in ahead.popleft().get():
                    yield from rendered
        while ahead:
            for rendered in ahead.popleft().get():
                yield from rendered


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def event_stream(
    profile: LoadProfile, persons: int, deployment: Settings | None = None, workers: int = 1
) -> Iterator[Generated]:
    """Every integration event of ``persons`` lifecycles, merged in business-time order, their
    personal fields sealed under data keys kept in ``deployment``'s key store (``Relaying.of``).

    Lifecycles arrive in the order of their first event, so each joins the merge only when the
    stream reaches its start.
    """
    heap: list[tuple[float, int, int, list[Generated]]] = []
    rendered = _rendered(profile, persons, deployment, workers)
    upcoming = next(rendered, None)
    order = 0
    while heap or upcoming is not None:
        while upcoming is not None and (not heap or upcoming[0].at <= heap[0][0]):
            heapq.heappush(heap, (upcoming[0].at, order, 0, upcoming))
            order += 1
            upcoming = next(rendered, None)
        _, number, index, events = heapq.heappop(heap)
        yield events[index]
        if index + 1 < len(events):
            heapq.heappush(heap, (events[index + 1].at, number, index + 1, events))


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished workers."""
    mine, workers = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return mine.ru_utime + mine.ru_stime + workers.ru_utime + workers.ru_stime


def main(argv: Sequence[str] | None = None) -> None:
    """Generate a stream and report its speed and mix (``python -m bench.load``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--municipalities", type=int, default=900)
    parser.add_argument("--scale", type=float, default=1_000_000 / (900 * NEW_PER_YEAR))
    parser.add_argument("--seed", type=int, default=LoadProfile.seed)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    profile = LoadProfile(args.seed, args.municipalities, args.scale)
    # The stream makes no reference cycles; the collector would only rescan the live events.
    gc.disable()
    kinds: Counter[str] = Counter()
    size = 0
    # The data keys go to an embedded key store of its own, dropped afterwards.
    with tempfile.TemporaryDirectory(prefix="tsunagu-load-") as var:
        started, cpu = time.perf_counter(), _cpu_seconds()
        for event in event_stream(profile, args.persons, Settings(var_dir=Path(var)), args.workers):
            kinds[event.name] += 1
            size += len(event.value)
        seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu
    total = sum(kinds.values())
    report = {
        "persons": args.persons,
        "events": total,
        "events_per_person": round(total / args.persons, 2),
        "seconds": round(seconds, 2),
        "events_per_second": round(total / seconds),
        # On a shared machine the wall clock counts other processes' turns too.
        "events_per_cpu_second": round(total / cpu_seconds),
        "mean_bytes": round(size / total),
        "mix": dict(kinds.most_common()),
    }
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
