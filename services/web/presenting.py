"""How a person view's field values read on a page: codes as words, times as forms write them.

The API names each field (``family_name``, ``route_in``, ``valid_until``); which fields hold
codes of which kind, or times, is presentation and lives here, once. A value whose key was
destroyed comes as an erasure notice, and reads 消去済み with the date and the reason.
"""

from __future__ import annotations

from typing import Any

from services.platform.sealing import is_erased
from services.web import formatting
from services.web.catalogue import Translator

# field -> the catalogue kind its codes are labelled under
CODE_FIELDS = {
    "channel": "channel",
    "route_in": "route_in",
    "caller_kind": "caller_kind",
    "sex": "sex",
    "categories": "category",
    "issues": "issue",
    "triage_outcome": "outcome",
    "method": "method",
    "purposes": "purpose",
    "recipients": "agency",
    "target_agency": "agency",
    "triage_target_agency": "agency",
    "provider": "agency",
    "attendees": "agency",
    "members": "agency",
    "rerouted_to": "agency",
    "basis": "basis",
    "program": "program",
    "role": "role",
    "state": "state",
    "service_class": "service_class",
}
# Fields whose codes depend on the record they belong to.
RECORD_CODE_FIELDS = {("referral", "kind"): "kind", ("meeting", "kind"): "meeting_kind"}
DATE_FIELDS = frozenset({"birth_date", "follow_up_on", "follow_up_until", "scheduled_for"})


def _is_time(field: str) -> bool:
    return field.endswith("_at") or field in ("valid_from", "valid_until", "period_from")


def erased(t: Translator, notice: Any) -> str:
    """An erasure notice as words: 消去済み（令和8年12月3日・本人からの消去請求）."""
    reason = t.code("erasure_reason", str(notice["reason"]))
    if notice["erased_at"] is None:
        return t("value.erased_undated").format(reason=reason)
    return t("value.erased").format(on=formatting.wareki(notice["erased_at"]), reason=reason)


def show(t: Translator, field: str, value: Any, record: str | None = None) -> str:
    """One field's value as words (``record``: the kind of record it belongs to, if any)."""
    if value is None or value == "" or value == []:
        return "—"
    if is_erased(value):
        return erased(t, value)
    if isinstance(value, bool):
        return t("value.yes" if value else "value.no")
    if isinstance(value, list):
        return "、".join(show(t, field, item, record) for item in value)
    if isinstance(value, dict):
        return "、".join(f"{t('field.' + k)}：{show(t, k, v)}" for k, v in value.items())
    kind = RECORD_CODE_FIELDS.get((record or "", field)) or CODE_FIELDS.get(field)
    if kind is not None:
        return t.code(kind, str(value))
    if field in DATE_FIELDS:
        return formatting.wareki(str(value))
    if _is_time(field) or field == "period_until":
        return formatting.jst_time(str(value))
    return str(value)
