"""Stopping a solve early and keeping what it found.

A stop request (Ctrl-C inside :func:`stop_on_sigint`, which the CLI wraps around loading and
solving, or :func:`request_stop` from any thread) gives the running method ``GRACE_S`` more
seconds of its own time: a request that arrives while the instance is still loading counts
from the moment the method starts. Methods test their deadlines with :func:`expired` (and
compute time left with :func:`now`); once the grace has run out every deadline has passed, so
each method ends its loop at the next check and returns its incumbent and bound (status
``feasible``), exactly as at a time limit. A second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: seconds a method keeps after a stop request, to turn what it has into a plan
GRACE_S = 0.5

_stop_at = math.inf  # perf_counter() time at which every deadline has passed


def now() -> float:
    """``time.perf_counter()``, or +inf once a requested stop is due."""
    t = time.perf_counter()
    return math.inf if t >= _stop_at else t


def expired(deadline: float | None) -> bool:
    """Whether ``deadline`` (a ``time.perf_counter()`` value; None: no limit) has passed or a
    requested stop is due."""
    t = time.perf_counter()
    return t >= _stop_at or (deadline is not None and t > deadline)


def request_stop() -> None:
    """Ask the running solve to return its best plan within ``GRACE_S`` (safe from any thread)."""
    global _stop_at
    _stop_at = min(_stop_at, time.perf_counter() + GRACE_S)


def stop_requested() -> bool:
    return _stop_at < math.inf


def method_starting() -> None:
    """Called as a method starts: a stop requested before (while loading) gets its grace now."""
    global _stop_at
    if _stop_at < math.inf:
        _stop_at = max(_stop_at, time.perf_counter() + GRACE_S)


def clear() -> None:
    global _stop_at
    _stop_at = math.inf


@contextmanager
def stop_on_sigint() -> Iterator[None]:
    """The first Ctrl-C inside the block requests a stop; a second raises KeyboardInterrupt.
    Outside the main thread (where signals cannot be caught) it only clears requests."""
    clear()
    if threading.current_thread() is not threading.main_thread():
        try:
            yield
        finally:
            clear()
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop_requested():
            raise KeyboardInterrupt
        request_stop()
        sys.stderr.write("\nstopping: returning the best plan found so far (Ctrl-C again to abort)\n")
        sys.stderr.flush()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        clear()
