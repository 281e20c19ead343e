"""Who is acting: a staff member of one agency, with roles, in one municipality."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = (
    "caseworker",  # 相談支援員 and desk staff who record and refer
    "supervisor",  # may declare a vital-interest emergency
    "approver",  # 支援決定: approves plans, only in an agency that approves plans
    "meeting_organiser",  # 主任相談支援員: runs meetings, replays cases
    "privacy_officer",  # audits who saw what
)


@dataclass(frozen=True)
class Staff:
    staff_id: str
    agency: str
    roles: frozenset[str]
    municipality: str

    def has_role(self, role: str) -> bool:
        return role in self.roles
