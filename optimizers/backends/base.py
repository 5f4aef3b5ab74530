"""The backend contract: a backend solves a :class:`LinearModel` under :class:`SolverOptions`
and reports honestly what it found and what it proved."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from optimizers.linear import LinearModel
from optimizers.result import SolverOptions, Status


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
