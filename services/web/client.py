"""The desk's only way to data: the services' public HTTP APIs, called with the user's token.

Embedded mode calls the same process's app in-process (ASGI); distributed mode calls each
service's URL. Either way the desk can show no more than the API answers the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

SERVICES = ("intake", "referral", "meeting", "views")


@dataclass(frozen=True)
class Answer:
    """One API answer, as the desk needs it."""

    status: int
    body: Any
    headers: Mapping[str, str]
    links: Mapping[str, Mapping[str, str]]
    # The body's bytes as sent: a file (CSV in CP932, .xlsx) passed on to the user unchanged.
    content: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def next_cursor(self) -> str | None:
        """The ``cursor`` of the RFC 8288 ``rel="next"`` link, if there is a next page."""
        url = self.links.get("next", {}).get("url")
        if not url:
            return None
        values = parse_qs(urlparse(url).query).get("cursor")
        return values[0] if values else None

    @property
    def survivor(self) -> str | None:
        """The person a merged duplicate's id points to, where the API answered so (409
        naming ``survivor_id``): the desk takes the page to theirs."""
        body = self.body if isinstance(self.body, dict) else {}
        survivor = body.get("survivor_id")
        return str(survivor) if self.status == 409 and survivor else None

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""

    def problems(self) -> dict[str, str]:
        """422 ``problems`` by field: the rule each field broke (first one per field)."""
        found: dict[str, str] = {}
        if self.status == 422 and isinstance(self.body, dict):
            for problem in self.body.get("problems", []):
                field = str(problem.get("field", "body"))
                found.setdefault(field, str(problem.get("rule", "invalid")))
        return found


class ServiceUnavailable(Exception):
    """A service did not answer: the page says so rather than failing."""


class Services:
    """Base URLs per service; ``transport`` is the in-process app in embedded mode."""

    def __init__(
        self, base_urls: Mapping[str, str], transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        missing = [s for s in SERVICES if s not in base_urls]
        if missing:
            raise ValueError(f"no URL for the services {missing}")
        self._base = {s: base_urls[s].rstrip("/") for s in SERVICES}
        self._http = httpx.AsyncClient(transport=transport, timeout=10.0)

    async def close(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        token: str,
        method: str,
        service: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Answer:
        url = f"{self._base[service]}{path}"
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self._http.request(
                method,
                url,
                params=query,
                json=json,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        except httpx.HTTPError as error:
            raise ServiceUnavailable(service) from error
        if response.status_code >= 500:
            raise ServiceUnavailable(service)
        is_json = response.headers.get("content-type", "").startswith("application/json")
        body: Any = response.json() if is_json and response.content else response.text
        links = {str(rel): link for rel, link in response.links.items()}
        return Answer(response.status_code, body, response.headers, links, response.content)


def embedded_urls(origin: str = "http://tsunagu.embedded") -> dict[str, str]:
    """Where each service's routes sit inside the embedded app."""
    return {service: f"{origin}/{service}" for service in SERVICES}
