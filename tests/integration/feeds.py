"""Waiting for facts that reach a service over Kafka before a request that relies on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from services.scenarios import Response
from tests.infrastructure import Process, wait_for

Ready = Callable[[str, Any], bool]


class AfterTheFeed:
    """A service's client that, before each POST, waits until ``ready(url, body)`` holds.

    Services are separate processes joined by Kafka: a caseworker acting the instant another
    service saved a fact may be a moment ahead of the feed (and would be refused), so waits.
    """

    def __init__(self, client: TestClient, ready: Ready, feed: Process) -> None:
        self._client, self._ready, self._feed = client, ready, feed

    def post(self, url: str, *, json: Any, headers: dict[str, str]) -> Response:
        wait_for(
            lambda: self._ready(url, json), 90, f"the feed before {url}\n{self._feed.output()}"
        )
        return self._client.post(url, json=json, headers=headers)

    def get(self, url: str, *, headers: dict[str, str]) -> Response:
        return self._client.get(url, headers=headers)
