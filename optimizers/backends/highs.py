"""HiGHS through ``scipy.optimize.milp``.

HiGHS checks its time limit between phases; on large models one phase (the root LP) can
run seconds past it, and scipy offers no way to interrupt it. With a time limit, a large
model is therefore solved in a forked child process that is stopped at the limit (plus a
small grace), so the limit holds. Small models, whose phases are short, run in this process
(a child costs about 20 ms), as does everything where forking is unsafe.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import numpy as np

from optimizers import progress
from optimizers.backends.base import Backend, Outcome, call_in_child, can_fork, child_deadline
from optimizers.linear import LinearModel
from optimizers.result import SolverOptions, Status

#: Models with at least this many nonzeros are solved in a child (stopped at the time limit, or on Ctrl-C).
CHILD_FROM_NONZEROS = 100_000
#: ... and from this many when someone follows the progress (the child's log gives the incumbent and bound as they come)
CHILD_FOR_PROGRESS_FROM_NONZEROS = 10_000


class HighsBackend(Backend):
    name = "highs"
    package = "scipy"
    description = "HiGHS via scipy.optimize.milp (branch-and-cut, single thread)"

    def version(self) -> str:
        import scipy

        return f"scipy {scipy.__version__}"

    def solve(self, model: LinearModel, options: SolverOptions) -> Outcome:
        from scipy.optimize import Bounds, LinearConstraint

        sign = -1.0 if model.maximize else 1.0
        solver_options: dict[str, Any] = {"disp": options.verbose, "mip_rel_gap": options.gap, "presolve": True}
        if options.time_limit_s is not None:
            solver_options["time_limit"] = options.time_limit_s
        A = model.matrix()
        constraints = [LinearConstraint(A, model.row_lo, model.row_hi)] if model.num_rows else []
        problem = {
            "c": sign * model.cost,
            "integrality": model.integer.astype(np.uint8),
            "bounds": Bounds(model.lb, model.ub),
            "constraints": constraints,
            "options": solver_options,
        }
        ignored = [o for o, v in (("threads", options.threads > 1), ("seed", options.seed != 0)) if v]
        child_from = CHILD_FOR_PROGRESS_FROM_NONZEROS if progress.active() else CHILD_FROM_NONZEROS
        if A.nnz >= child_from and can_fork():
            log = None
            if progress.active():  # the child's log tells its incumbent and bound as it goes
                solver_options["disp"] = True
                log = HighsLog(sign, model.offset, echo=options.verbose)
            res = call_in_child(_milp, problem, child_deadline(options.time_limit_s), failure=_failure, on_output=log)
            if res is None:
                message = ("HiGHS was stopped on request" if options.time_limit_s is None
                           else f"HiGHS did not return within its time limit ({options.time_limit_s:.3g} s); stopped")
                return Outcome(Status.NO_SOLUTION, message=message, ignored_options=ignored)
        else:
            res = _milp(problem)

        x = None if res["x"] is None else np.asarray(res["x"])
        objective = None if x is None else model.objective_value(x)
        bound = res["dual_bound"]
        if bound is not None and np.isfinite(bound):
            bound = sign * float(bound) + model.offset
        elif res["status"] == 0 and objective is not None and not model.integer.any():
            bound = objective  # an LP solved to optimality: the objective is the bound
        else:
            bound = None
        code, message = res["status"], res["message"]
        if code == 0:
            status: Status | None = Status.OPTIMAL
        elif code == 1:
            status = Status.FEASIBLE if x is not None else Status.NO_SOLUTION
        elif code == 2:
            status = Status.INFEASIBLE
        elif code == 3:
            status = Status.UNBOUNDED
        elif "infeasible or unbounded" in message.lower():
            status = None
        else:
            status = Status.FEASIBLE if x is not None else Status.ERROR
        return Outcome(status, x, objective, bound, message, ignored)


class HighsLog:
    """Reads the HiGHS log line by line and reports its phase, best solution and best bound.

    A branch-and-bound line ends with the time (``0.0s``); after the explored share
    (``12.50%``) come BestBound and BestSol, in HiGHS's own sense (minimisation of ``c``)."""

    TIME = re.compile(r"^\d+(\.\d+)?s$")
    SHARE = re.compile(r"^\d+(\.\d+)?%$")
    REDUCED = re.compile(r"^\d+ rows, \d+ cols, \d+ nonzeros")

    def __init__(self, sign: float, offset: float, echo: bool = False):
        self.sign, self.offset, self.echo = sign, offset, echo

    def __call__(self, line: str) -> None:
        if self.echo:
            sys.stderr.write(line + "\n")
        if line.startswith("Presolving model"):
            progress.update("HiGHS presolve")
        elif self.REDUCED.match(line):  # a presolve round: the model's size now
            progress.update("HiGHS presolve", detail=line.strip())
        elif line.startswith("Solving MIP model") or line.startswith("Solving LP"):
            progress.update("HiGHS root LP")
        elif (found := self.bounds(line)) is not None:
            if progress.whole_model_active():
                progress.update("HiGHS branch-and-cut", bound=found[0], incumbent=found[1])
            else:
                progress.update("HiGHS branch-and-cut")

    def bounds(self, line: str) -> tuple[float | None, float | None] | None:
        words = line.split()
        if len(words) < 8 or not self.TIME.match(words[-1]):
            return None
        at = next((k for k, w in enumerate(words) if self.SHARE.match(w)), None)
        if at is None or at + 2 >= len(words):
            return None
        return self.value(words[at + 1]), self.value(words[at + 2])

    def value(self, word: str) -> float | None:
        try:
            v = float(word)
        except ValueError:
            return None
        return self.sign * v + self.offset if math.isfinite(v) else None


def _milp(problem: dict[str, Any]) -> dict[str, Any]:
    from scipy.optimize import milp

    res = milp(**problem)
    return {"status": res.status, "message": str(res.message), "x": res.x, "dual_bound": getattr(res, "mip_dual_bound", None)}


def _failure(message: str) -> dict[str, Any]:
    """A child's answer when HiGHS itself could not give one (scipy's status 4: other)."""
    return {"status": 4, "message": message, "x": None, "dual_bound": None}


