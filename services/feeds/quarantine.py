"""A feed's batch applied whatever one of its events does: a poison event is quarantined.

Failures come in two kinds. A transient one (PostgreSQL or Kafka away, a deadlock, a
serialisation failure) is waited out with backoff, however long it lasts: the batch is applied
as soon as the servers allow. A deterministic one (an event the views cannot hold, such as a
NUL byte PostgreSQL refuses in a text column) would fail the same way for ever; it would stop
the feed and every view behind it. So the batch is then applied one event at a time: each
event is tried ``ATTEMPTS`` times alone, and one that fails every time goes to the dead-letter
topic with the reason (``FeedRunner.quarantine``), while the rest of the batch, and of
its partition, carries on. ``tsunagu deadletter replay`` applies it again after a fix.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import tenacity

from services.platform.bus import Message
from services.platform.lifecycle import (
    MustRestart,
    Stopped,
    describe,
    is_transient,
    until_available,
)

log = logging.getLogger(__name__)

# Tries of one event alone before it is quarantined: a failure that was not the event's own
# (another replica's deadlock is already transient) gets a second and a third chance.
ATTEMPTS = 3
AWAITING = "PostgreSQL and Kafka"


class Consumer(Protocol):
    """What a batch is applied to: a feed's runner, or the audit ingest."""

    def consume_batch(self, messages: Sequence[Message]) -> Any: ...

    def quarantine(self, message: Message, reason: str) -> None: ...


def _reason(error: BaseException) -> str:
    """What goes with the dead letter (into Kafka, beside the event itself; never to the
    logs): the error's kind and its first line."""
    first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def apply_or_quarantine(
    runner: Consumer, messages: Sequence[Message], stop: threading.Event | None = None
) -> None:
    """Apply ``messages`` in order; quarantine those that fail deterministically each time.

    Returns once all are applied or quarantined; ``Stopped`` if ``stop`` is set meanwhile.
    """
    if len(messages) > 1:
        try:
            until_available(AWAITING, lambda: runner.consume_batch(messages), stop)
            return
        except Stopped:
            raise
        except Exception as error:
            log.warning(
                "a batch failed; applying its messages one at a time",
                extra={"messages": len(messages), "error": describe(error)},
            )
    for message in messages:
        _alone(runner, message, stop)


def _deterministic(error: BaseException) -> bool:
    return not is_transient(error) and not isinstance(error, Stopped | MustRestart)


def _alone(runner: Consumer, message: Message, stop: threading.Event | None) -> None:
    tries = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_deterministic),
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        wait=tenacity.wait_fixed(0.2),
        reraise=True,
    )
    try:
        # Transient failures never reach ``tries``: each attempt waits them out.
        tries(until_available, AWAITING, lambda: runner.consume_batch([message]), stop)
    except Exception as error:
        if not _deterministic(error):
            raise
        log.error(
            "quarantined an event that failed every time it was applied",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "attempts": ATTEMPTS,
                "error": describe(error),
            },
        )
        reason = _reason(error)
        until_available(AWAITING, lambda: runner.quarantine(message, reason), stop)
