"""The garbage collector, told what lives as long as the process and when to stand aside."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def freeze_long_lived() -> None:
    """Leave what is loaded and built by now (modules, models, apps) out of every collection.

    Otherwise each full collection walks all of it: a request that triggers one waited tens of
    milliseconds, and a catch-up spent a sixth of its time there. Garbage is collected first so
    that none is kept for good; objects frozen by an earlier call are not walked again.
    """
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collection while the block runs; collections resume, as they were, after it.

    A batch of the views allocates hundreds of thousands of objects that live until it commits
    and are then freed by their reference counts, not by the collector: each collection the
    allocations set off walked all of them for nothing (a fifth of a catch-up's CPU). Cycles
    made meanwhile wait for the next collection after the block.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
