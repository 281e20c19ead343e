"""A lean HTTP/1.1 load client on asyncio: keep-alive connections and prebuilt requests.

The client shares the machine's cores with the server it measures, so it does as little as it
can per request: each request's bytes are built once, and a reply is read only as far as its
status line, its Content-Length and its body. That is all the HTTP Tsunagu's JSON API needs.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"


def post(path: str, body: dict[str, Any], token: str) -> bytes:
    """The bytes of a POST with a JSON body and a bearer token, ready to send again and again."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class Connection:
    """One keep-alive connection, used by one caller at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``; the reply's status and body."""
        self._writer.write(request)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


@dataclass
class Outcome:
    """What a load run did: replies by status, and their latencies."""

    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def count(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(latency)

    def succeeded(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def failures(self, expected: int) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if s != expected}


async def closed_loop(
    port: int,
    request: bytes,
    *,
    clients: int,
    seconds: float,
    warmup: float,
    window: Callable[[], None] = lambda: None,
) -> Outcome:
    """``clients`` connections, each sending its next request as soon as the last is answered.

    Replies to requests sent during the warm-up are not counted; the run then lasts
    ``seconds``. ``window`` is called as the counted part begins and as it ends.
    """
    connections = [await Connection.open(port) for _ in range(clients)]
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    stop = start + seconds
    loop.call_at(start, window)
    loop.call_at(stop, window)
    outcome = Outcome()

    async def client(connection: Connection) -> None:
        while (sent := loop.time()) < stop:
            status, _ = await connection.exchange(request)
            if sent >= start:
                outcome.count(status, loop.time() - sent)

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    outcome.seconds = loop.time() - start
    return outcome


async def paced(
    port: int,
    request: bytes,
    *,
    rate: float,
    seconds: float,
    accepted: Callable[[bytes, float], None],
) -> Outcome:
    """Requests at a steady ``rate`` per second, whatever the replies' pace (an open loop).

    ``accepted(body, at)`` is called with each 201 reply and the loop time it arrived. A request
    whose turn comes while every connection is busy opens another, so a slow reply delays no
    other request.
    """
    loop = asyncio.get_running_loop()
    # Oldest first, so that every connection stays in use and none idles into the server's
    # keep-alive timeout.
    idle: deque[Connection] = deque()
    outcome = Outcome()
    tasks: list[asyncio.Task[None]] = []

    async def send_one() -> None:
        connection = idle.popleft() if idle else await Connection.open(port)
        sent = loop.time()
        status, body = await connection.exchange(request)
        now = loop.time()
        outcome.count(status, now - sent)
        if status == 201:
            accepted(body, now)
        idle.append(connection)

    start = loop.time()
    total = int(rate * seconds)
    for number in range(total):
        # Sleep to each request's own slot, so that lateness never accumulates.
        await asyncio.sleep(max(0.0, start + number / rate - loop.time()))
        tasks.append(asyncio.create_task(send_one()))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    outcome.seconds = loop.time() - start
    return outcome
