"""How a long-running process (a relay, a feed, the sweeper, the checkpointer) lives with its
servers: it waits for PostgreSQL or Kafka while either is away, at start or mid-run, and it
stops promptly when told to.

Waiting is tenacity's: exponential backoff with jitter up to ``MAX_WAIT_SECONDS``, a log line
before each wait naming what is awaited and the kind of error (never its data), and one when it
is back. Where ``TSUNAGU_HEALTH_FILE`` names a file, the process keeps its state there for its
container's health check (``tsunagu health``): ``ok`` once ready, ``waiting for …`` meanwhile.

Stopping: SIGTERM or SIGINT sets an event that the loops look at between batches; the
batch under way has ``GRACE_SECONDS`` to finish. A batch still blocked on an absent server then
is abandoned and the process exits by itself: every process here records what it has done only
once it is done (the relay's position, a feed's offsets and processed ids), so an abandoned
batch is done again at the next start, and its repeats are dropped by event id.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

import tenacity

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_WAIT_SECONDS = 10.0
GRACE_SECONDS = 5.0
HEALTH_FILE = "TSUNAGU_HEALTH_FILE"
READY = "ok"


def report(state: str) -> None:
    """Keep ``state`` in the health file, if there is one (replaced whole: a reader never sees
    half of it)."""
    path = os.environ.get(HEALTH_FILE)
    if not path:
        return
    partial = f"{path}.{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as file:
        file.write(state + "\n")
    os.replace(partial, path)


def health() -> str | None:
    """The state the health file holds; None where there is none."""
    path = os.environ.get(HEALTH_FILE)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    except FileNotFoundError:
        return None


class Stopped(Exception):
    """Told to stop while waiting for a server."""


class MustRestart(RuntimeError):
    """This process can go on neither now nor later as it was started (its key-encryption key
    was rotated under it): not an event's fault, nor one that passes. A feed stops, with
    nothing quarantined and its positions where they were, rather than fail every event."""


def is_transient(error: BaseException) -> bool:
    """A failure that goes away by itself: a server away or restarting, a connection lost, a
    deadlock or serialisation failure (the transaction rolled back, whole), an embedded
    database another process holds locked."""
    import sqlite3

    import eventsourcing.persistence
    import psycopg
    from kafka.errors import KafkaError

    if isinstance(error, KafkaError):
        return bool(error.retriable)
    if isinstance(error, sqlite3.OperationalError):
        return "locked" in str(error)
    return isinstance(
        error,
        psycopg.OperationalError
        | psycopg.InterfaceError
        | eventsourcing.persistence.OperationalError
        | eventsourcing.persistence.InterfaceError
        | ConnectionError
        | TimeoutError,
    )


def describe(error: BaseException) -> str:
    """The error's kind, for a log line. A transient error's first line names a server, a port
    or a lock; any other error's message may quote the data it choked on, so only where it was
    raised is given."""
    kind = type(error).__name__
    if is_transient(error):
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return f"{kind}: {first}" if first else kind
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return kind
    where = frames[-1]
    return f"{kind} at {os.path.basename(where.filename)}:{where.lineno} ({where.name})"


class _Wait:
    """One ``until_available``: a log line and the health state while it waits, a line and the
    state it found when it is over."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._before: str | None = None

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        error = state.outcome.exception()
        assert error is not None
        if state.attempt_number == 1:
            self._before = health()
        report(f"waiting for {self.what}")
        log.warning(
            "waiting for %s",
            self.what,
            extra={
                "awaiting": self.what,
                "error": describe(error),
                "attempt": state.attempt_number,
                "retry_in_seconds": round(state.next_action.sleep, 1),
            },
        )

    def over(self, state: tenacity.RetryCallState) -> None:
        if state.attempt_number > 1:
            # A process not yet ready says so itself once it is (``report(READY)``).
            report(self._before or "starting")
            log.info("%s is back", self.what, extra={"attempts": state.attempt_number})


def _retry_on(any_error: bool) -> tenacity.retry_base:
    return tenacity.retry_if_exception(
        (lambda error: isinstance(error, Exception)) if any_error else is_transient
    )


def _backoff() -> tenacity.wait.wait_base:
    return tenacity.wait_exponential_jitter(initial=0.5, max=MAX_WAIT_SECONDS, jitter=0.5)


def until_available(
    what: str,
    action: Callable[[], T],
    stop: threading.Event | None = None,
    *,
    any_error: bool = False,
) -> T:
    """``action()``, tried again after each transient failure (``any_error``: after any), with
    backoff, until it succeeds; ``Stopped`` if ``stop`` is set meanwhile."""

    def sleep(seconds: float) -> None:
        if stop is None:
            time.sleep(seconds)
        elif stop.wait(seconds):
            raise Stopped(what)

    wait = _Wait(what)
    retrying = tenacity.Retrying(
        retry=_retry_on(any_error),
        wait=_backoff(),
        sleep=sleep,
        before_sleep=wait.before_sleep,
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            result = action()
    wait.over(attempt.retry_state)
    return result


class Stopping:
    """Set by SIGTERM or SIGINT; from the first signal on, the process has ``grace`` seconds
    left before it exits whatever it is doing (see the module's docstring)."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.event = threading.Event()
        self._grace = grace

    def install(self) -> Stopping:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.request(signal.Signals(signum).name)

    def request(self, reason: str) -> None:
        """Stop: the loops see the event between batches; a deadline is set for the rest."""
        if self.event.is_set():
            return
        self.event.set()
        log.info("stopping", extra={"reason": reason, "grace_seconds": self._grace})
        deadline = threading.Timer(self._grace, self._exit_now)
        deadline.daemon = True
        deadline.start()

    def _exit_now(self) -> None:
        log.warning(
            "the batch under way did not finish within the grace period; exiting without it "
            "(it is done again at the next start)",
            extra={"grace_seconds": self._grace},
        )
        logging.shutdown()
        os._exit(0)
