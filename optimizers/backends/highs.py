"""HiGHS through ``scipy.optimize.milp``."""

from __future__ import annotations

import numpy as np

from optimizers.backends.base import Backend, Outcome
from optimizers.linear import LinearModel
from optimizers.result import SolverOptions, Status


class HighsBackend(Backend):
    name = "highs"
    package = "scipy"
    description = "HiGHS via scipy.optimize.milp (branch-and-cut, single thread)"

    def version(self) -> str:
        import scipy

        return f"scipy {scipy.__version__}"

    def solve(self, model: LinearModel, options: SolverOptions) -> Outcome:
        from scipy.optimize import Bounds, LinearConstraint, milp

        sign = -1.0 if model.maximize else 1.0
        cost = sign * model.cost
        solver_options = {"disp": options.verbose, "mip_rel_gap": options.gap, "presolve": True}
        if options.time_limit_s is not None:
            solver_options["time_limit"] = options.time_limit_s
        constraints = []
        if model.num_rows:
            constraints.append(LinearConstraint(model.matrix(), model.row_lo, model.row_hi))
        res = milp(
            cost,
            integrality=model.integer.astype(np.uint8),
            bounds=Bounds(model.lb, model.ub),
            constraints=constraints,
            options=solver_options,
        )
        ignored = [o for o, v in (("threads", options.threads > 1), ("seed", options.seed != 0)) if v]
        x = None if res.x is None else np.asarray(res.x)
        objective = None if x is None else model.objective_value(x)
        bound = getattr(res, "mip_dual_bound", None)
        if bound is not None and np.isfinite(bound):
            bound = sign * float(bound) + model.offset
        elif res.status == 0 and objective is not None and not model.integer.any():
            bound = objective  # an LP solved to optimality: the objective is the bound
        else:
            bound = None
        if res.status == 0:
            status: Status | None = Status.OPTIMAL
        elif res.status == 1:
            status = Status.FEASIBLE if x is not None else Status.NO_SOLUTION
        elif res.status == 2:
            status = Status.INFEASIBLE
        elif res.status == 3:
            status = Status.UNBOUNDED
        elif "infeasible or unbounded" in str(res.message).lower():
            status = None
        else:
            status = Status.FEASIBLE if x is not None else Status.ERROR
        return Outcome(status, x, objective, bound, str(res.message), ignored)
