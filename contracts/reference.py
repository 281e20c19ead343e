"""Reference data shared by every service: agencies of "Team Zama", codes and legal bases.

The YAML beside this module is a copy of ``shared/domain/reference.yaml`` plus what Tsunagu adds
(``TSUNAGU_KEYS``): the caller kinds, which the seeds use but do not list; the neighbouring
municipalities one deployment also serves, with their agencies; which agencies may hold each
oversight role, over what scope; and how long each municipality keeps a person's records after
their case closes. A test keeps the shared part in step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REFERENCE_FILE = Path(__file__).with_name("reference.yaml")
# The keys of reference.yaml that shared/domain/reference.yaml does not have.
TSUNAGU_KEYS = ("caller_kinds", "neighbours", "oversight_roles", "retention")
# An oversight role's reach: everything of the holder's municipality, or its own agency's only.
MUNICIPALITY, OWN_AGENCY = "municipality", "own_agency"
SCOPES = (MUNICIPALITY, OWN_AGENCY)
# The roles the reference data grants per agency; every agency's staff may be caseworkers.
OVERSIGHT_ROLES = ("privacy_officer", "meeting_organiser", "supervisor", "approver")


@dataclass(frozen=True)
class Agency:
    id: str
    kind: str
    name_ja: str
    role: str | None
    approves_plans: bool
    municipality: str


@dataclass(frozen=True)
class Municipality:
    code: str
    name_ja: str
    population: int | None
    # Whole years a person's records are kept after their support case is closed.
    retention_years: int = 5


@dataclass(frozen=True)
class Reference:
    # The deployment's first municipality (shared's ``municipality``).
    municipality_code: str
    municipalities: dict[str, Municipality]
    agencies: dict[str, Agency]
    # role -> agency -> scope (MUNICIPALITY or OWN_AGENCY)
    oversight: dict[str, dict[str, str]]
    channels: tuple[str, ...]
    routes_in: tuple[str, ...]
    caller_kinds: tuple[str, ...]
    issue_categories: tuple[str, ...]
    data_categories: tuple[str, ...]
    closure_reasons: tuple[str, ...]
    legal_bases: tuple[str, ...]
    programs: tuple[str, ...]
    service_classes: tuple[str, ...]
    meeting_kinds: dict[str, dict[str, Any]]
    raw: dict[str, Any]

    def agency(self, agency_id: str) -> Agency | None:
        return self.agencies.get(agency_id)

    def agencies_with_role(self, role: str, municipality: str | None = None) -> tuple[str, ...]:
        """Agencies of ``role`` (an agency's role, e.g. self_reliance_office), in
        ``municipality`` when given."""
        return tuple(
            a.id
            for a in self.agencies.values()
            if a.role == role and municipality in (None, a.municipality)
        )

    def scope(self, role: str, agency: str) -> str | None:
        """The reach of oversight ``role`` held in ``agency``; None if the agency may not hold
        it."""
        return self.oversight.get(role, {}).get(agency)

    def in_municipality(self, agency: str, municipality: str) -> bool:
        found = self.agencies.get(agency)
        return found is not None and found.municipality == municipality


def _agencies(listed: list[dict[str, Any]], municipality: str) -> list[Agency]:
    return [
        Agency(
            id=a["id"],
            kind=a["kind"],
            name_ja=a["name_ja"],
            role=a.get("role"),
            approves_plans=bool(a.get("approves_plans", False)),
            municipality=municipality,
        )
        for a in listed
    ]


def _oversight(raw: dict[str, Any], agencies: dict[str, Agency]) -> dict[str, dict[str, str]]:
    granted: dict[str, dict[str, str]] = {}
    for role, grants in raw.items():
        if role not in OVERSIGHT_ROLES:
            raise ValueError(f"oversight_roles: unknown role {role!r}; known: {OVERSIGHT_ROLES}")
        for grant in grants:
            if grant["scope"] not in SCOPES:
                raise ValueError(f"oversight_roles.{role}: scope must be one of {SCOPES}")
            for agency in grant["agencies"]:
                if agency not in agencies:
                    raise ValueError(f"oversight_roles.{role}: unknown agency {agency!r}")
                if agency in granted.setdefault(role, {}):
                    raise ValueError(f"oversight_roles.{role}: {agency!r} is granted twice")
                granted[role][agency] = grant["scope"]
    return granted


def _retention(raw: dict[str, Any], municipalities: dict[str, Municipality]) -> None:
    """Each municipality's retention years: its own where ``retention.years`` names it, else
    ``retention.default_years``."""
    default = raw.get("default_years", Municipality.retention_years)
    for code, years in {**dict.fromkeys(municipalities, default), **raw.get("years", {})}.items():
        if code not in municipalities:
            raise ValueError(f"retention.years: unknown municipality {code!r}")
        if not isinstance(years, int) or isinstance(years, bool) or years < 1:
            raise ValueError(f"retention.years: {code!r} must keep records a whole year or more")
        municipalities[code] = replace(municipalities[code], retention_years=years)


@cache
def reference() -> Reference:
    raw = yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8"))
    home = raw["municipality"]
    municipality = str(home["code"])
    municipalities = {municipality: Municipality(municipality, home["name_ja"], home["population"])}
    listed = _agencies(raw["agencies"], municipality)
    for neighbour in raw.get("neighbours", []):
        code = str(neighbour["code"])
        municipalities[code] = Municipality(code, neighbour["name_ja"], neighbour.get("population"))
        listed += _agencies(neighbour["agencies"], code)
    _retention(raw.get("retention", {}), municipalities)
    agencies = {a.id: a for a in listed}
    if len(agencies) != len(listed):
        raise ValueError("reference.yaml: an agency id is listed in two municipalities")
    return Reference(
        municipality_code=municipality,
        municipalities=municipalities,
        agencies=agencies,
        oversight=_oversight(raw.get("oversight_roles", {}), agencies),
        channels=tuple(raw["channels"]),
        routes_in=tuple(raw["routes_in"]),
        caller_kinds=tuple(raw["caller_kinds"]),
        issue_categories=tuple(c["code"] for c in raw["issue_categories"]),
        data_categories=tuple(raw["data_categories"]),
        closure_reasons=tuple(raw["closure_reasons"]),
        legal_bases=tuple(raw["legal_bases"]),
        programs=tuple(p["code"] for p in raw["programs"]),
        service_classes=tuple(raw["service_classes"]),
        meeting_kinds=dict(raw["meeting_kinds"]),
        raw=raw,
    )
