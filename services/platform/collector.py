"""The garbage collector, told what lives as long as the process."""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Leave what is loaded and built by now (modules, models, apps) out of every collection.

    Otherwise each full collection walks all of it: a request that triggers one waited tens of
    milliseconds, and a catch-up spent a sixth of its time there. Garbage is collected first so
    that none is kept for good; objects frozen by an earlier call are not walked again.
    """
    gc.collect()
    gc.freeze()
