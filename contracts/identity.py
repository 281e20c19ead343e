"""Who is acting: a staff member of one agency, with roles, in one municipality."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.reference import MUNICIPALITY, reference

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

    def scope(self, role: str) -> str | None:
        """How far this staff member's oversight ``role`` reaches: ``municipality`` or
        ``own_agency`` as the reference data grants it to the agency; None without the role."""
        return reference().scope(role, self.agency) if self.has_role(role) else None

    def oversees_municipality(self, *roles: str) -> bool:
        """Whether one of ``roles`` reaches across the staff member's whole municipality."""
        return any(self.scope(role) == MUNICIPALITY for role in roles)
