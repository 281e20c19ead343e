"""Fixtures shared by the integration tests on PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from services.platform.relay import Relay
from services.platform.settings import Settings
from services.platform.sql import PostgresDatabase
from services.projection.audit import AuditLog
from services.projection.store import ViewStore

Connection = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def log(distributed_settings: Settings) -> Iterator[AuditLog]:
    assert distributed_settings.database_url
    database = PostgresDatabase(distributed_settings.database_url, "projection")
    yield AuditLog(database)
    database.close()


@pytest.fixture
def raw(distributed_settings: Settings) -> Iterator[Connection]:
    """A direct connection, as someone with write access to the database would have."""
    assert distributed_settings.database_url
    with psycopg.connect(
        distributed_settings.database_url,
        autocommit=True,
        row_factory=dict_row,
        options="-c search_path=projection",
    ) as connection:
        yield connection


class Cleanup:
    """What a test opens on PostgreSQL, closed at its end whatever happens. Pools left open
    keep their connections for the rest of the run: the suite once met "too many clients"."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack

    def client(self, app: FastAPI) -> TestClient:
        """A client of ``app``, entered so that the app's shutdown closes its pools."""
        return self._stack.enter_context(TestClient(app))

    def store(self, store: ViewStore) -> ViewStore:
        self._stack.callback(store.database.close)
        return store

    def relay(self, relay: Relay) -> Relay:
        self._stack.callback(relay.close)
        return relay


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    with contextlib.ExitStack() as stack:
        yield Cleanup(stack)
