"""Reference data shared by every service: agencies of "Team Zama", codes and legal bases.

The YAML beside this module is a copy of ``shared/domain/reference.yaml`` (plus the caller
kinds, which the seeds use but do not list); a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REFERENCE_FILE = Path(__file__).with_name("reference.yaml")


@dataclass(frozen=True)
class Agency:
    id: str
    kind: str
    name_ja: str
    role: str | None
    approves_plans: bool
    municipality: str


@dataclass(frozen=True)
class Reference:
    municipality_code: str
    agencies: dict[str, Agency]
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

    def agencies_with_role(self, role: str) -> tuple[str, ...]:
        return tuple(a.id for a in self.agencies.values() if a.role == role)


@cache
def reference() -> Reference:
    raw = yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8"))
    municipality = str(raw["municipality"]["code"])
    agencies = {
        a["id"]: Agency(
            id=a["id"],
            kind=a["kind"],
            name_ja=a["name_ja"],
            role=a.get("role"),
            approves_plans=bool(a.get("approves_plans", False)),
            municipality=municipality,
        )
        for a in raw["agencies"]
    }
    return Reference(
        municipality_code=municipality,
        agencies=agencies,
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
