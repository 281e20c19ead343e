"""ホーム: the caller's agency's worklist, oldest first, each part paginated."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.web import formatting
from services.web.desk import Desk, desk

router = APIRouter()
PAGE = 20
RECENT_DAYS = 14


@router.get("/")
async def home(
    new_cursor: str | None = None,
    declined_cursor: str | None = None,
    due_cursor: str | None = None,
    recent_cursor: str | None = None,
    d: Desk = Depends(desk),
) -> Response:
    today = formatting.today()
    new = await d.get("views", "/inbox", state="sent", limit=PAGE, cursor=new_cursor)
    declined = await d.get("views", "/outbox", state="declined", limit=PAGE, cursor=declined_cursor)
    due = await d.get(
        "views",
        "/consultations",
        follow_up_due_by=today.isoformat(),
        limit=PAGE,
        cursor=due_cursor,
    )
    recent = await d.get(
        "views",
        "/consultations",
        opened_since=(today - timedelta(days=RECENT_DAYS)).isoformat(),
        limit=PAGE,
        cursor=recent_cursor,
    )
    slips = new.body if new.ok else []
    return d.render(
        "home.html",
        today=today,
        new=slips,
        overdue=[s for s in slips if s.get("acknowledgement_overdue")],
        declined=[s for s in (declined.body if declined.ok else []) if s["follow_up_overdue"]],
        due=due.body if due.ok else [],
        recent=recent.body if recent.ok else [],
        cursors={
            "new_cursor": new.next_cursor,
            "declined_cursor": declined.next_cursor,
            "due_cursor": due.next_cursor,
            "recent_cursor": recent.next_cursor,
        },
    )
