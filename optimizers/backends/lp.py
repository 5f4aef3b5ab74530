"""Linear programs with their duals, through HiGHS (``scipy.optimize.linprog``).

Decompositions need more than a MILP backend gives: the sensitivity of the optimal value to
each row's right-hand side and to each column's bounds, which is what a Benders cut is made of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class LPSolution:
    status: str  # "optimal", "infeasible", "unbounded" or "error"
    x: np.ndarray | None = None
    objective: float | None = None
    row_dual: np.ndarray | None = None  # d value / d (shift of a row's lo and hi together)
    lower_dual: np.ndarray | None = None  # d value / d (a column's lower bound)
    upper_dual: np.ndarray | None = None  # d value / d (a column's upper bound)
    message: str = ""


def solve_lp(
    c: np.ndarray, A: sp.csr_matrix, row_lo: np.ndarray, row_hi: np.ndarray, lb: np.ndarray, ub: np.ndarray, *, method: str = "highs-ipm",
    time_limit: float | None = None,
) -> LPSolution:
    """min c'x s.t. row_lo <= A x <= row_hi, lb <= x <= ub (status "error" if ``time_limit``
    seconds pass first)."""
    from scipy.optimize import linprog

    A = sp.csr_matrix(A)
    eq = np.isfinite(row_lo) & (row_lo == row_hi)
    up = np.isfinite(row_hi) & ~eq
    down = np.isfinite(row_lo) & ~eq
    A_ub = sp.vstack([A[up], -A[down]]).tocsr() if (up.any() or down.any()) else None
    b_ub = np.concatenate([row_hi[up], -row_lo[down]]) if A_ub is not None else None
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A[eq] if eq.any() else None,
        b_eq=row_lo[eq] if eq.any() else None,
        bounds=np.column_stack([np.where(np.isfinite(lb), lb, -np.inf), np.where(np.isfinite(ub), ub, np.inf)]),
        method=method,
        options={} if time_limit is None else {"time_limit": max(0.01, time_limit)},
    )
    if res.status == 2:
        return LPSolution("infeasible", message=res.message)
    if res.status == 3:
        return LPSolution("unbounded", message=res.message)
    if res.status != 0:
        if method != "highs-ds" and time_limit is None:  # the interior point method gave up: try the simplex
            return solve_lp(c, A, row_lo, row_hi, lb, ub, method="highs-ds")
        return LPSolution("error", message=res.message)
    dual = np.zeros(A.shape[0])
    n_up = int(up.sum())
    if A_ub is not None:  # a row with two finite sides is in both parts: its duals add up
        dual[up] += res.ineqlin.marginals[:n_up]
        dual[down] -= res.ineqlin.marginals[n_up:]
    if eq.any():
        dual[eq] = res.eqlin.marginals
    return LPSolution("optimal", np.asarray(res.x), float(res.fun), dual, np.asarray(res.lower.marginals), np.asarray(res.upper.marginals))


def solve_lp_stoppable(
    c: np.ndarray, A: sp.csr_matrix, row_lo: np.ndarray, row_hi: np.ndarray, lb: np.ndarray, ub: np.ndarray, *, method: str = "highs-ipm",
    time_limit: float | None = None,
) -> LPSolution:
    """:func:`solve_lp` in a forked child where possible, so that a stop request (Ctrl-C) or
    an overrun of ``time_limit`` ends it at once (status "error")."""
    from optimizers.backends.base import call_in_child, can_fork, child_deadline

    if not can_fork():
        return solve_lp(c, A, row_lo, row_hi, lb, ub, method=method, time_limit=time_limit)
    out = call_in_child(_solve_packed, (c, A, row_lo, row_hi, lb, ub, method, time_limit), child_deadline(time_limit),
                        failure=lambda message: LPSolution("error", message=message))
    return out if out is not None else LPSolution("error", message="stopped before the LP was solved")


def _solve_packed(args: tuple) -> LPSolution:
    c, A, row_lo, row_hi, lb, ub, method, time_limit = args
    return solve_lp(c, A, row_lo, row_hi, lb, ub, method=method, time_limit=time_limit)
