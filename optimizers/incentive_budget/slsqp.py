"""Baseline: SLSQP from a uniform start, as marketing-mix budget optimizers do.

Every cell starts at an equal share of the budget (clipped to its range, scaled to fit the
caps), then SLSQP climbs to the nearest local optimum of the continuous problem. No bound is
proven: on S-curves the nearest optimum is often not the best one.
"""

from __future__ import annotations

import numpy as np

from models.incentive_budget import IncentiveBudget, plan
from optimizers.incentive_budget import local
from optimizers.incentive_budget.grid import terms
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status


def run(inst: IncentiveBudget, backend: str | None, options: SolverOptions) -> MethodOutput:
    t = terms(inst)
    n = len(inst.cells)
    x0 = np.clip(np.full(n, inst.budget / n), t.lo, t.hi)
    if inst.objective == "min_spend":
        x0 = t.hi.copy()  # the uniform share may miss the target; start from everything allowed
    x0 = _fit_limits(inst, t.lo, x0)
    if not local.feasible(inst, t, x0, inst.budget):
        return MethodOutput(Status.NO_SOLUTION, message="the uniform start is infeasible and SLSQP needs a feasible start")
    x = local.improve(inst, t, x0, t.lo, t.hi, inst.budget, max_iter=100, ftol=1e-6, spend_all=inst.objective == "users" and not inst.caps, finish=False)
    if inst.step is not None:  # round down to the step, which keeps every limit
        x = np.maximum(t.lo, np.floor(x / inst.step + 1e-9) * inst.step)
        if not local.feasible(inst, t, x, inst.budget):
            return MethodOutput(Status.NO_SOLUTION, message="rounding the SLSQP plan to the step misses the target")
    solution = plan(inst, dict(zip([c.id for c in inst.cells], x.tolist())), local.marginal(inst, t, x, inst.budget))
    return MethodOutput(Status.FEASIBLE, local.objective(inst, t, x), None, solution, "a local optimum; no bound is proven")


def _fit_limits(inst: IncentiveBudget, lo: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Scale the spend above ``lo`` down until the budget and every cap hold."""
    index = {c.id: i for i, c in enumerate(inst.cells)}
    groups = [(np.arange(len(x)), inst.budget)] + [(np.array([index[c] for c in cap.cells]), cap.max_spend) for cap in inst.caps]
    for _ in range(len(groups) + 1):
        for members, limit in groups:
            above = x[members] - lo[members]
            excess = x[members].sum() - limit
            if excess > 0 and above.sum() > 0:
                x[members] = lo[members] + above * max(0.0, 1 - excess / above.sum()) * (1 - 1e-12)
    return x
