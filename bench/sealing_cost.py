"""What crypto-shredding costs a benchmark's commands and events, measured in the same run.

Sealing and opening are timed in the benchmark's own process, with the services' ``Sealer``
and ``Opener`` over the key store of the benchmark's own deployment (the ``keys`` schema of its
database, where its servers keep theirs), so that making a data key pays the same database. A
subject's first sealing makes its key: in a transaction of its own, or, for a subject its save
creates, in memory only, the key's row then going in with the event's (B1's); later ones find it
in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from services.platform.keys import KeyStore
from services.platform.sealing import Opener, Sealer


@dataclass(frozen=True)
class Cost:
    """Time spent per item (a command, an event): this process's CPU, and the wall clock."""

    cpu_us: float
    wall_us: float

    def minus(self, other: Cost) -> Cost:
        return Cost(self.cpu_us - other.cpu_us, self.wall_us - other.wall_us)

    def facts(self) -> dict[str, float]:
        return {"cpu_us": round(self.cpu_us, 1), "wall_us": round(self.wall_us, 1)}


def timed(work: Callable[[], int]) -> Cost:
    """The cost of ``work`` per item it reports having done."""
    cpu, wall = time.process_time(), time.perf_counter()
    items = work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Cost(cpu / items * 1e6, wall / items * 1e6)


class TimedSealer(Sealer):
    """The services' ``Sealer``, keeping the time its seals took and how many keys it made."""

    def __init__(self, keys: KeyStore) -> None:
        super().__init__(keys)
        self.cpu = self.wall = 0.0
        self.subjects: set[UUID] = set()

    def seal(self, subject: UUID, value: Any, at: datetime) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        sealed = super().seal(subject, value, at)
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall
        if value is not None:
            self.subjects.add(subject)
        return sealed

    def per(self, items: int) -> Cost:
        return Cost(self.cpu / items * 1e6, self.wall / items * 1e6)


def opening(keys: KeyStore, documents: Sequence[Any], batch: int) -> Cost:
    """Opening every sealed value of ``documents``, ``batch`` at a time, each batch's keys
    looked up at once (as a consumer opens what a batch of messages holds), per document."""

    def work() -> int:
        opener = Opener(keys)
        for start in range(0, len(documents), batch):
            opener.open(list(documents[start : start + batch]))
        return len(documents)

    return timed(work)
