"""Local continuous search (SLSQP) around a plan, and the plan's marginal value.

Used twice: to polish the exact method's grid plan (within two grid units of it, so it stays
in the basin the global search chose) and, from a uniform start over the whole range, as the
`slsqp` baseline that marketing-mix tools use. A polished plan is kept only when it is
feasible and strictly better; a plan is never made worse.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from models.incentive_budget import IncentiveBudget, direct_users, slope
from optimizers.incentive_budget.grid import CellTerms

MAX_SLOPE = 1e12  # stands in for the infinite slope of a Hill curve with shape < 1 at 0


def objective(inst: IncentiveBudget, t: CellTerms, x: np.ndarray) -> float:
    """Users, value, or spend of plan ``x`` (the instance's objective)."""
    if inst.objective == "min_spend":
        return float(x.sum())
    return float(sum(t.w[i] * direct_users(c.response, x[i]) - t.p[i] * x[i] for i, c in enumerate(inst.cells)))


def total_users(inst: IncentiveBudget, x: np.ndarray) -> float:
    return float(sum(c.multiplier * direct_users(c.response, x[i]) for i, c in enumerate(inst.cells)))


def gradient(inst: IncentiveBudget, t: CellTerms, x: np.ndarray) -> np.ndarray:
    """d objective / d x per cell (users per spend for min_spend's users constraint)."""
    g = np.array([slope(c.response, x[i]) for i, c in enumerate(inst.cells)], dtype=float)
    return np.nan_to_num(t.w * g, posinf=MAX_SLOPE) - t.p


def feasible(inst: IncentiveBudget, t: CellTerms, x: np.ndarray, budget: float) -> bool:
    if (x < t.lo).any() or (x > t.hi).any() or x.sum() > budget:
        return False
    index = {c.id: i for i, c in enumerate(inst.cells)}
    if any(sum(x[index[c]] for c in cap.cells) > cap.max_spend for cap in inst.caps):
        return False
    return inst.objective != "min_spend" or total_users(inst, x) >= (inst.target_users or 0.0)


def improve(inst: IncentiveBudget, t: CellTerms, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, budget: float,
            *, max_iter: int = 200, spend_all: bool = False) -> np.ndarray:
    """SLSQP from ``x0`` within [lower, upper]; returns a feasible plan at least as good as
    ``x0`` (``x0`` itself when nothing better is found). ``x0`` must be feasible.
    ``spend_all`` makes the budget an equality, as marketing-mix optimizers state it."""
    n = len(x0)
    money = max(budget, 1.0)
    scale = 1.0  # spends as they are: what marketing-mix tools hand to SLSQP
    top = (upper - lower) / scale
    to_x = lambda z: lower + scale * np.clip(z, 0.0, top)  # noqa: E731
    index = {c.id: i for i, c in enumerate(inst.cells)}
    rows = [np.ones(n)] + [np.isin(np.arange(n), [index[c] for c in cap.cells]).astype(float) for cap in inst.caps]
    limits = [budget] + [cap.max_spend for cap in inst.caps]
    constraints = [
        {"type": "eq" if spend_all and row == 0 else "ineq", "fun": (lambda z, r=r, L=L: (L - r @ to_x(z)) / money), "jac": (lambda z, r=r: -(r * scale) / money)}
        for row, (r, L) in enumerate(zip(rows, limits))
    ]
    minimizing = inst.objective == "min_spend"
    if minimizing:
        target = inst.target_users or 0.0
        mult = np.array([c.multiplier for c in inst.cells])
        reach = max(target, 1.0)

        def users_gap(z: np.ndarray) -> float:
            return (total_users(inst, to_x(z)) - target) / reach

        def users_jac(z: np.ndarray) -> np.ndarray:
            x = to_x(z)
            g = np.array([slope(c.response, x[i]) for i, c in enumerate(inst.cells)])
            return np.nan_to_num(mult * g, posinf=MAX_SLOPE) * scale / reach

        constraints.append({"type": "ineq", "fun": users_gap, "jac": users_jac})
        fun = lambda z: float(to_x(z).sum()) / money  # noqa: E731
        jac = lambda z: scale / money  # noqa: E731
    else:
        norm = 1.0
        fun = lambda z: -objective(inst, t, to_x(z)) / norm  # noqa: E731
        jac = lambda z: -gradient(inst, t, to_x(z)) * scale / norm  # noqa: E731
    z0 = np.clip((x0 - lower) / scale, 0.0, top)
    with np.errstate(all="ignore"):
        res = minimize(fun, z0, jac=jac, bounds=list(zip(np.zeros(n), top)), constraints=constraints, method="SLSQP",
                       options={"maxiter": max_iter, "ftol": 1e-12})
    candidate = to_x(res.x) if np.all(np.isfinite(res.x)) else x0
    return _keep_better(inst, t, x0, candidate, budget)


def shrink_towards(inst: IncentiveBudget, t: CellTerms, x0: np.ndarray, x1: np.ndarray, budget: float) -> np.ndarray:
    """The feasible point of the segment x0 -> x1 closest to x1 (bisection; x0 feasible)."""
    if feasible(inst, t, x1, budget):
        return x1
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if feasible(inst, t, x0 + mid * (x1 - x0), budget):
            lo = mid
        else:
            hi = mid
    x = x0 + lo * (x1 - x0)
    return x if feasible(inst, t, x, budget) else x0


def _keep_better(inst: IncentiveBudget, t: CellTerms, x0: np.ndarray, x1: np.ndarray, budget: float) -> np.ndarray:
    """The feasible point nearest x1 on the segment x0 -> x1, if it is better than x0."""
    x1 = shrink_towards(inst, t, x0, x1, budget)
    better = objective(inst, t, x1) < objective(inst, t, x0) if inst.objective == "min_spend" else objective(inst, t, x1) > objective(inst, t, x0)
    return x1 if better else x0


def marginal(inst: IncentiveBudget, t: CellTerms, x: np.ndarray, budget: float) -> float | None:
    """Objective gained per extra unit of budget at ``x``: the best slope among cells that can
    still grow (below their upper bound, in no full cap), and never below 0.
    For ``min_spend``: the spend one more target user costs (None when no cell can grow)."""
    index = {c.id: i for i, c in enumerate(inst.cells)}
    own = np.array([np.inf if c.max_spend is None else c.max_spend for c in inst.cells])  # the budget is what we price
    room = x < own - 1e-9 * np.maximum(1.0, x)
    for cap in inst.caps:
        members = [index[c] for c in cap.cells]
        if x[members].sum() >= cap.max_spend - 1e-9 * max(1.0, cap.max_spend):
            room[members] = False
    if inst.objective == "min_spend":
        g = np.array([c.multiplier * slope(c.response, x[i]) for i, c in enumerate(inst.cells)], dtype=float)
        best = float(np.nan_to_num(g, posinf=MAX_SLOPE)[room].max()) if room.any() else 0.0
        return 1.0 / best if best > 0 else None
    if not room.any():
        return 0.0
    return max(0.0, float(gradient(inst, t, x)[room].max()))
