"""Keyset pagination, the same for every list a desk reads.

A list route takes ``limit`` (1..200, default 50) and an opaque ``cursor``; it answers a page as
the same JSON list as before, and names the next page in an RFC 8288 ``Link: <...>; rel="next"``
header, absent on the last page. The cursor is the last row's sort key (base64url of a JSON
array of strings): a page starts strictly after it, so rows added meanwhile neither repeat nor
shift a page, as an offset would make them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from fastapi import Query, Request, Response

from contracts.errors import Invalid
from contracts.fields import MAX_POSITION

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Key = tuple[str, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    """One page asked for: how many rows, and the sort key of the row before them (if any)."""

    limit: int = DEFAULT_LIMIT
    after: Key | None = None

    def after_key(self, width: int) -> Key | None:
        """The cursor's key for a list sorted by ``width`` columns; 422 if it is not one."""
        if self.after is not None and len(self.after) != width:
            raise _bad_cursor()
        return self.after

    def keyset(self, columns: Sequence[str], by_id: str | None = None) -> tuple[str, list[str]]:
        """SQL: the condition for rows after the cursor, sorted ascending by ``columns``.

        ``by_id``: a query that finds the sort key from the row's id, for a cursor that holds
        only the id, where the sort key must not travel in URLs (a person's name).
        """
        after = self.after_key(1 if by_id else len(columns))
        if after is None:
            return "1 = 1", []
        marks = by_id or ", ".join("?" for _ in columns)
        return f"({', '.join(columns)}) > ({marks})", list(after)

    def after_number(self) -> int | None:
        """The cursor of a list in the order of one whole number (an audit chain's positions),
        as that number, so the database compares numbers; 422 if it is not one."""
        after = self.after_key(1)
        if after is None:
            return None
        digits = after[0]
        # Past the stores' largest whole number, a cursor is none this list gave (and the
        # length first: Python refuses to read a number of thousands of digits).
        if (
            not (digits.isascii() and digits.isdigit())
            or len(digits) > len(str(MAX_POSITION))
            or int(digits) > MAX_POSITION
        ):
            raise _bad_cursor()
        return int(digits)

    @property
    def fetch(self) -> int:
        """Rows to read: one more than shown tells whether a next page exists."""
        return self.limit + 1


def _bad_cursor() -> Invalid:
    return Invalid("cursor", "cursor", "not a cursor this list gave; start again without one")


def encode_cursor(key: Key) -> str:
    raw = json.dumps(list(key), ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    if not isinstance(key, list) or not key or not all(isinstance(v, str) for v in key):
        raise _bad_cursor()
    return tuple(key)


async def page(
    limit: int = Query(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"rows per page, 1..{MAX_LIMIT}"
    ),
    cursor: str | None = Query(
        None, max_length=2000, description='from the previous page\'s Link rel="next"'
    ),
) -> Page:
    """The page a list route is asked for (a FastAPI dependency, on the event loop: it only
    reads the query)."""
    return Page(limit, decode_cursor(cursor) if cursor else None)


def after_cursor(
    items: Iterable[T], key: Callable[[T], Key], asked: Page, *, descending: bool = False
) -> list[T]:
    """A page of rows already in ``key`` order in memory (an event store's lists), read as a
    query would: the rows after the cursor, one more than the limit. ``descending``: the rows
    are in falling ``key`` order (the latest first)."""
    found: list[T] = []
    for item in items:
        at = key(item)
        after = asked.after_key(len(at))
        if after is None or (at < after if descending else at > after):
            found.append(item)
            if len(found) == asked.fetch:
                break
    return found


def respond(
    rows: Sequence[T],
    key: Callable[[T], Key],
    asked: Page,
    request: Request,
    response: Response,
) -> list[T]:
    """The page shown of ``rows`` (read with ``Page.fetch``), with the next page's Link."""
    shown = list(rows[: asked.limit])
    if len(rows) > asked.limit:
        response.headers["Link"] = f'<{next_page(request, key(shown[-1]))}>; rel="next"'
    return shown


def link_of(response: Response) -> dict[str, str]:
    """The ``Link`` header ``respond`` set on ``response``, for an answer built apart from it."""
    link = response.headers.get("link")
    return {"Link": link} if link else {}


def next_page(request: Request, last: Key) -> str:
    """The request's own path and query, with the cursor after ``last``."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    query.append(("cursor", encode_cursor(last)))
    return f"{request.url.path}?{urlencode(query)}"
