"""The backend contract: a backend solves a :class:`LinearModel` under :class:`SolverOptions`
and reports honestly what it found and what it proved."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from optimizers import progress
from optimizers.linear import LinearModel
from optimizers.result import SolverOptions, Status
from optimizers.stopping import expired


@dataclass
class Outcome:
    """A backend's answer. ``status`` is one of :class:`Status`, or None when the solver
    could only say "infeasible or unbounded" (the caller settles which)."""

    status: Status | None
    x: np.ndarray | None = None
    objective: float | None = None
    bound: float | None = None
    message: str = ""
    ignored_options: list[str] = field(default_factory=list)


class Backend:
    """Subclasses set ``name`` and ``package`` and implement ``version`` and ``solve``."""

    name: str = ""
    package: str = ""
    description: str = ""
    pure_integer_only: bool = False

    def version(self) -> str:
        """The installed solver package's version; raises ImportError when absent."""
        raise NotImplementedError

    def unsupported(self, model: LinearModel) -> str | None:
        """Why this backend cannot solve ``model`` exactly, or None when it can."""
        return None

    def solve(self, model: LinearModel, options: SolverOptions) -> Outcome:
        raise NotImplementedError


@contextmanager
def native_output_to_stderr() -> Iterator[None]:
    """Send what native solver code prints on file descriptor 1 to stderr for the duration,
    so stdout carries only results (one JSON document with ``--format json``)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (embedded interpreters, some test runners)
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        except ValueError:
            pass
        os.dup2(saved, 1)
        os.close(saved)


#: a solver's child process is stopped this long after the solver's own time limit
GRACE_FACTOR, GRACE_S = 0.05, 0.2


def child_deadline(time_limit_s: float | None) -> float:
    """Seconds a child running a solver with ``time_limit_s`` gets before it is killed."""
    return math.inf if time_limit_s is None else time_limit_s * (1 + GRACE_FACTOR) + GRACE_S


class _Lines:
    """Reads a child's stdout pipe without blocking and hands on whole lines."""

    def __init__(self, fd: int, on_line: Callable[[str], None]):
        self.fd: int | None = fd
        self.on_line = on_line
        self.pending = b""

    def read(self) -> None:
        assert self.fd is not None
        chunk = os.read(self.fd, 65536)
        if not chunk:  # the child closed it
            self.close()
            return
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        for line in lines:
            self.on_line(line.decode("utf-8", "replace"))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def can_fork() -> bool:
    """Whether a solve may run in a forked child: forking a process with other threads running
    can deadlock the child, and daemonic processes (Dask workers) may not have children."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon
    )


def _child(conn: Any, fn: Callable[[Any], Any], arg: Any, failure: Callable[[str], Any], output: int | None) -> None:
    os.setpgrp()  # its own process group: a solver binary it starts is stopped with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the child
    if output is not None:
        os.dup2(output, 1)  # what the solver prints goes to the parent's on_output
    try:
        conn.send(fn(arg))
    except BaseException as exc:  # the parent reports it
        conn.send(failure(f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def call_in_child(fn: Callable[[Any], Any], arg: Any, seconds: float, *, failure: Callable[[str], Any],
                  on_output: Callable[[str], None] | None = None) -> Any | None:
    """``fn(arg)`` in a forked child, for solvers that overrun their own time limits; None when
    it has not answered within ``seconds`` or a stop was requested (the child and whatever it
    started are then killed). ``failure(message)`` is returned when the child fails.
    ``on_output`` gets each line the child prints on stdout (a solver's log), as it comes."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    log_read, log_write = os.pipe() if on_output is not None else (None, None)
    child = ctx.Process(target=_child, args=(sender, fn, arg, failure, log_write), daemon=True)
    child.start()
    sender.close()
    log = _Lines(log_read, on_output) if log_read is not None and on_output is not None else None
    if log_write is not None:
        os.close(log_write)
    until = time.perf_counter() + seconds
    try:
        while not expired(until):
            ready = wait([receiver, *([log.fd] if log and log.fd is not None else [])], min(0.1, max(0.0, until - time.perf_counter())))
            progress.update()  # the elapsed time moves on even when the solver says nothing
            if log and log.fd in ready:
                log.read()
            if receiver in ready:
                try:
                    return receiver.recv()
                except EOFError:
                    return failure("the solver process ended without an answer")
        return None
    finally:
        if log:
            log.close()
        receiver.close()
        if child.is_alive() and child.pid is not None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                child.kill()
        child.join()
