"""CBC through PuLP.

PuLP reports "Optimal" when CBC stops on a time limit with a solution, so the status is
taken from PuLP's *solution* status, and the bound from CBC's own log.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings

import numpy as np

from optimizers.backends.base import Backend, Outcome, call_in_child, can_fork, child_deadline
from optimizers.linear import LinearModel
from optimizers.result import SolverOptions, Status


class CbcBackend(Backend):
    name = "cbc"
    package = "pulp"
    description = "CBC via PuLP (branch-and-cut; threads supported)"

    def version(self) -> str:
        import pulp

        return f"pulp {pulp.__version__}"

    def solve(self, model: LinearModel, options: SolverOptions) -> Outcome:
        """Under a time limit in a child process stopped at the limit: CBC overruns its own
        limit by minutes in the root of large models."""
        if options.time_limit_s is None or not can_fork():
            return self._solve(model, options)
        out = call_in_child(lambda _: self._solve(model, options), None, child_deadline(options.time_limit_s),
                            failure=lambda message: Outcome(Status.ERROR, message=message))
        if out is None:
            return Outcome(Status.NO_SOLUTION, message=f"CBC did not return within its time limit ({options.time_limit_s:.3g} s); stopped")
        return out  # type: ignore[no-any-return]

    def _solve(self, model: LinearModel, options: SolverOptions) -> Outcome:
        import pulp

        started = time.perf_counter()

        sense = pulp.LpMaximize if model.maximize else pulp.LpMinimize
        prob = pulp.LpProblem(_safe(model.name), sense)
        lb, ub, integer = model.lb, model.ub, model.integer
        cat = {True: pulp.LpInteger, False: pulp.LpContinuous}
        variables = [prob.add_variable(f"x{j}", _none(lb[j]), _none(ub[j]), cat[bool(integer[j])]) for j in range(model.num_vars)]
        prob += pulp.LpAffineExpression([(variables[j], float(c)) for j, c in enumerate(model.cost) if c], constant=model.offset)
        A = model.matrix()
        lo, hi = model.row_lo, model.row_hi
        for r in range(model.num_rows):
            terms = [(variables[A.indices[k]], float(A.data[k])) for k in range(A.indptr[r], A.indptr[r + 1])]
            expr = pulp.LpAffineExpression(terms)
            if lo[r] == hi[r]:
                prob += pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{r}", float(lo[r]))
                continue
            if np.isfinite(lo[r]):
                prob += pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{r}_lo", float(lo[r]))
            if np.isfinite(hi[r]):
                prob += pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{r}_hi", float(hi[r]))

        fd, log_path = tempfile.mkstemp(prefix="ecomopt-cbc-", suffix=".log")
        os.close(fd)
        try:
            with warnings.catch_warnings():  # PuLP 3 announces its 4.0 API; we pin pulp<4
                warnings.simplefilter("ignore", DeprecationWarning)
                cmd = pulp.PULP_CBC_CMD(
                    msg=options.verbose,
                    timeLimit=None if options.time_limit_s is None else max(1.0, options.time_limit_s - (time.perf_counter() - started)),
                    gapRel=options.gap,
                    gapAbs=0.0,
                    threads=options.threads or None,
                    logPath=log_path,
                    options=[f"randomCbcSeed {options.seed + 1}", f"randomSeed {options.seed + 1}"],
                )
            prob.solve(cmd)
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                log = fh.read()
        finally:
            os.unlink(log_path)

        code = prob.sol_status
        has_x = code in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        x = np.array([v.varValue or 0.0 for v in variables]) if has_x else None
        obj = model.objective_value(x) if x is not None else None
        bound = _logged_bound(log)
        if code == pulp.LpSolutionOptimal:
            status: Status | None = Status.OPTIMAL
            if bound is None and obj is not None:
                # CBC stopped because the gap closed to within gapRel; that proves this bound.
                slack = 0.0 if not model.integer.any() else options.gap * max(1.0, abs(obj))
                bound = obj + slack if model.maximize else obj - slack
        elif code == pulp.LpSolutionIntegerFeasible:
            status = Status.FEASIBLE
        elif code == pulp.LpSolutionInfeasible:
            status = Status.INFEASIBLE if "unbounded" not in log.lower() else None
        elif code == pulp.LpSolutionUnbounded:
            status = Status.UNBOUNDED
        elif "stopped on" not in log.lower() and pulp.LpStatus.get(prob.status) == "Infeasible":
            status = Status.INFEASIBLE
        else:  # stopped by a limit before any solution
            status = Status.NO_SOLUTION
        return Outcome(status, x, obj, bound, f"pulp status {pulp.LpStatus.get(prob.status)}, solution status {code}")


def _logged_bound(log: str) -> float | None:
    """CBC's closing summary states the best possible value when it stops early."""
    for pattern in (r"Lower bound:\s*([-+0-9.eE]+)", r"Upper bound:\s*([-+0-9.eE]+)"):
        found = re.findall(pattern, log)
        if found:
            try:
                value = float(found[-1])
            except ValueError:
                continue
            if np.isfinite(value) and abs(value) < 1e40:
                return value
    return None


def _none(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"
