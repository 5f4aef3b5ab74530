"""The result contract: why a solve stopped (:class:`Status`), what it found (objective,
solution), what it proved (bound, gap), and the independent re-check (evaluation)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from models.errors import EcomoptError, UsageError


class Status(str, Enum):
    OPTIMAL = "optimal"  # proven within the relative gap tolerance in effect
    FEASIBLE = "feasible"  # a solution, not proven optimal (a limit was hit)
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"  # a limit was hit before any solution was found
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE)

    @property
    def exit_code(self) -> int:
        if self.has_solution:
            return 0
        return 1 if self is Status.ERROR else 3


@dataclass(frozen=True)
class SolverOptions:
    """Options every backend maps to its native names.

    ``gap`` is the relative optimality tolerance: ``optimal`` means proven within it.
    ``time_limit_s`` None means no limit. ``threads`` 0 lets the backend choose.
    """

    time_limit_s: float | None = None
    gap: float = 1e-6
    threads: int = 1
    seed: int = 0
    verbose: bool = False
    scheduler: str | None = None  # a Dask scheduler address for methods that scale out (incentive_assignment)

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not (self.time_limit_s > 0 and math.isfinite(self.time_limit_s)):
            raise UsageError(f"time_limit_s: must be a positive number of seconds (got {self.time_limit_s})")
        if not (0 <= self.gap < 1):
            raise UsageError(f"gap: must be in [0, 1) (got {self.gap})")
        if self.threads < 0:
            raise UsageError(f"threads: must be >= 0 (got {self.threads})")
        if self.seed < 0:
            raise UsageError(f"seed: must be >= 0 (got {self.seed})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """``|objective - bound| / max(1, |objective|)``, or None when either is unknown."""
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(1.0, abs(objective))


class SolveFailed(EcomoptError):
    """Raised by :meth:`Result.raise_for_status` when a result has no solution."""


@dataclass
class Result:
    """What ``solve()`` returns. ``solution`` and ``evaluation`` are plain dicts (JSON)."""

    problem: str
    instance: str
    status: Status
    objective: float | None
    bound: float | None
    gap: float | None
    runtime_s: float
    method: str
    backend: str | None
    options: SolverOptions
    solution: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    message: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, Any] = field(default_factory=dict)  # kept out of to_dict(): e.g. "choice", the per-user plan

    def raise_for_status(self) -> Result:
        if not self.status.has_solution:
            raise SolveFailed(f"{self.instance}: {self.status.value}{': ' + self.message if self.message else ''}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "problem": self.problem,
            "instance": self.instance,
            "status": self.status.value,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "runtime_s": self.runtime_s,
            "method": self.method,
            "backend": self.backend,
            "options": self.options.to_dict(),
            "message": self.message,
            "solution": self.solution,
            "evaluation": self.evaluation,
            "meta": self.meta,
        }
