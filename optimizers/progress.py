"""Progress of a running solve: phase, incumbent, bound and elapsed time.

Methods call :func:`update` where they learn something (a subgradient step, a branch-and-bound
node, a Benders iteration, a line of the HiGHS log); ``solve(..., on_progress=callback)`` hands
each :class:`Progress` to ``callback`` in the solving thread, at most every
``MIN_INTERVAL_S`` seconds unless the phase changes, and once more at the end (phase
``"done"``). Without a callback, :func:`update` costs one test. The CLI draws these on stderr;
a planning job can log them, or call :func:`optimizers.stopping.request_stop` from the callback
to stop early with the best plan so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from optimizers.result import relative_gap

#: least seconds between two calls of the callback for the same phase
MIN_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Progress:
    elapsed_s: float  # since the method started
    phase: str  # what the method is doing, e.g. "subgradient", "branch and bound", "HiGHS branch-and-cut"
    incumbent: float | None  # objective of the best plan so far
    bound: float | None  # the best proven bound so far
    detail: str = ""  # how far the phase is, e.g. "120 nodes, 14 open"

    @property
    def gap(self) -> float | None:
        return relative_gap(self.incumbent, self.bound)


class _Listener:
    def __init__(self, callback: Callable[[Progress], None]):
        self.callback = callback
        self.started = time.perf_counter()
        self.phase = ""
        self.detail = ""
        self.incumbent: float | None = None
        self.bound: float | None = None
        self.last_call = -float("inf")
        self.lock = threading.Lock()  # a caller may report from another thread

    def update(self, phase: str | None, detail: str | None, incumbent: float | None, bound: float | None, force: bool) -> None:
        with self.lock:
            changed = phase is not None and phase != self.phase
            if phase is not None:
                self.phase, self.detail = phase, detail or ""
            self.incumbent = incumbent if incumbent is not None else self.incumbent
            self.bound = bound if bound is not None else self.bound
            now = time.perf_counter()
            if not (changed or force or now - self.last_call >= MIN_INTERVAL_S):
                return
            self.last_call = now
            snapshot = Progress(now - self.started, self.phase, self.incumbent, self.bound, self.detail)
        self.callback(snapshot)


_listener: _Listener | None = None
_whole_model = False  # a solver's log reports the incumbent and bound of the problem itself
_sub_problems: list[str] = []  # the side problems being solved (their numbers are not the problem's)


@contextmanager
def whole_model() -> Iterator[None]:
    """Inside, the model a solver runs is the whole problem (the extensive form), so its own
    log's incumbent and bound are the problem's; elsewhere (a master problem, a probe) a
    solver reports its phase only."""
    global _whole_model
    outer, _whole_model = _whole_model, True
    try:
        yield
    finally:
        _whole_model = outer


@contextmanager
def sub_problem(name: str) -> Iterator[None]:
    """Inside, the method solves a side problem (e.g. the mean-demand plan for the value of the
    stochastic solution): updates show as ``name: phase`` and carry no incumbent or bound."""
    _sub_problems.append(name)
    update(name)
    try:
        yield
    finally:
        _sub_problems.pop()


def whole_model_active() -> bool:
    return _whole_model and not _sub_problems


def update(phase: str | None = None, *, detail: str | None = None, incumbent: float | None = None, bound: float | None = None,
           force: bool = False) -> None:
    """Report what the running method knows now (None: unchanged). A new ``phase`` is passed
    on at once; a new ``detail`` of the same phase, or new numbers, at most every MIN_INTERVAL_S."""
    listener = _listener
    if listener is None:
        return
    if _sub_problems:
        incumbent = bound = None
        phase = None if phase is None else phase if phase == _sub_problems[-1] else f"{_sub_problems[-1]}: {phase}"
    listener.update(phase, detail, incumbent, bound, force)


def active() -> bool:
    """Whether anyone listens (so a method may skip work done only to report)."""
    return _listener is not None


@contextmanager
def reporting(callback: Callable[[Progress], None] | None) -> Iterator[None]:
    """Send the updates made inside the block to ``callback``. Without one, an enclosing
    block's listener stays in place (a solve inside a solve reports to the outer caller)."""
    global _listener
    if callback is None:
        yield
        return
    outer, _listener = _listener, _Listener(callback)
    try:
        yield
    finally:
        _listener = outer
