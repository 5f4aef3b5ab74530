"""Local continuous search (SLSQP) around a plan, and the plan's marginal value.

Used twice: to polish the exact method's grid plan (within two grid units of it, so it stays
in the basin the global search chose) and, from a uniform start over the whole range, as the
`slsqp` baseline that marketing-mix tools use. A polished plan is kept only when it is
feasible and strictly better; a plan is never made worse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize

from models.incentive_budget import IncentiveBudget
from optimizers.incentive_budget.grid import CellTerms

MAX_SLOPE = 1e12  # stands in for the infinite slope of a Hill curve with shape < 1 at 0


def objective(inst: IncentiveBudget, t: CellTerms, x: np.ndarray) -> float:
    """Users, value, or spend of plan ``x`` (the instance's objective)."""
    if inst.objective == "min_spend":
        return float(x.sum())
    return float(np.sum(t.w * t.curves.users(x) - t.p * x))


def total_users(t: CellTerms, x: np.ndarray) -> float:
    return float(np.sum(t.multiplier * t.curves.users(x)))


def gradient(inst: IncentiveBudget, t: CellTerms, x: np.ndarray) -> np.ndarray:
    """d objective / d x per cell (users per spend for min_spend's users constraint)."""
    with np.errstate(invalid="ignore"):  # w = 0 times an infinite slope at 0
        return np.nan_to_num(t.w * t.curves.slope(x), nan=0.0, posinf=MAX_SLOPE) - t.p


def feasible(inst: IncentiveBudget, t: CellTerms, x: np.ndarray, budget: float) -> bool:
    """Within every limit up to rounding (1e-10 relative; evaluate() allows 1e-6)."""
    eps = 1e-10 * max(1.0, budget)
    if (x < t.lo - eps).any() or (x > t.hi + eps).any() or x.sum() > budget + eps:
        return False
    index = {c.id: i for i, c in enumerate(inst.cells)}
    if any(sum(x[index[c]] for c in cap.cells) > cap.max_spend + eps for cap in inst.caps):
        return False
    return inst.objective != "min_spend" or total_users(t, x) >= (inst.target_users or 0.0)


def improve(inst: IncentiveBudget, t: CellTerms, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, budget: float,
            *, max_iter: int = 200, ftol: float = 1e-12, spend_all: bool = False, finish: bool = True) -> np.ndarray:
    """SLSQP from ``x0`` within [lower, upper]; returns a feasible plan at least as good as
    ``x0`` (``x0`` itself when nothing better is found). ``x0`` must be feasible.
    ``spend_all`` makes the budget an equality, as marketing-mix optimizers state it;
    ``finish`` moves money SLSQP left on the table (see ``_fill``)."""
    n = len(x0)
    money = max(budget, 1.0)
    index = {c.id: i for i, c in enumerate(inst.cells)}
    rows = [np.ones(n)] + [np.isin(np.arange(n), [index[c] for c in cap.cells]).astype(float) for cap in inst.caps]
    limits = [budget] + [cap.max_spend for cap in inst.caps]
    constraints: list[dict[str, Any]] = [
        {"type": "eq" if spend_all and row == 0 else "ineq", "fun": _room(r, limit, money), "jac": _constant(-r / money)}
        for row, (r, limit) in enumerate(zip(rows, limits))
    ]
    minimizing = inst.objective == "min_spend"
    if minimizing:
        target = inst.target_users or 0.0
        reach = max(target, 1.0)
        constraints.append({
            "type": "ineq",
            "fun": lambda x: (total_users(t, x) - target) / reach,
            "jac": lambda x: np.nan_to_num(t.multiplier * t.curves.slope(x), posinf=MAX_SLOPE) / reach,
        })
        fun: Callable[[np.ndarray], float] = lambda x: float(x.sum()) / money  # noqa: E731
        jac: Callable[[np.ndarray], np.ndarray] = _constant(np.full(n, 1.0 / money))
    else:
        fun = lambda x: -objective(inst, t, x)  # noqa: E731
        jac = lambda x: -gradient(inst, t, x)  # noqa: E731
    with np.errstate(all="ignore"):
        res = minimize(fun, np.clip(x0, lower, upper), jac=jac, bounds=list(zip(lower, upper)), constraints=constraints,
                       method="SLSQP", options={"maxiter": max_iter, "ftol": ftol})
    candidate = np.clip(res.x, lower, upper) if np.all(np.isfinite(res.x)) else x0
    dust = candidate - t.lo < 1e-9 * money  # SLSQP leaves 1e-17 where it means nothing
    if dust.any() and feasible(inst, t, np.where(dust, t.lo, candidate), budget):
        candidate = np.where(dust, t.lo, candidate)
    best = _keep_better(inst, t, x0, candidate, budget)
    return best if minimizing or not finish else _fill(inst, t, best, budget)


def _room(row: np.ndarray, limit: float, money: float) -> Callable[[np.ndarray], float]:
    return lambda x: float(limit - row @ x) / money


def _constant(value: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: value


def _fill(inst: IncentiveBudget, t: CellTerms, x: np.ndarray, budget: float) -> np.ndarray:
    """Finish what SLSQP stops short of: money left in the budget or in a cap goes to the cell
    with the best slope that can take it, taken if need be from the funded cell with the
    worst slope; each move is kept only if it improves the objective."""
    index = {c.id: i for i, c in enumerate(inst.cells)}
    caps = [([index[c] for c in cap.cells], cap.max_spend) for cap in inst.caps]
    for _ in range(2 * len(x)):
        room = t.hi - x
        for members, limit in caps:
            room[members] = np.minimum(room[members], limit - x[members].sum())
        slopes = gradient(inst, t, x)
        takers = np.where(room > 1e-12 * max(1.0, budget), slopes, -np.inf)
        i = int(np.argmax(takers))
        if not takers[i] > 0:
            return x
        trial = x.copy()
        amount = min(room[i], budget - x.sum())
        if amount <= 1e-12 * max(1.0, budget):  # the budget is spent: move money from the worst funded cell
            donors = np.where((x > t.lo) & (np.arange(len(x)) != i), slopes, np.inf)
            d = int(np.argmin(donors))
            if not donors[d] < takers[i]:
                return x
            amount = min(room[i], x[d] - t.lo[d])
            trial[d] -= amount
        trial[i] += amount * (1 - 1e-12)
        trial = _keep_better(inst, t, x, trial, budget)
        if trial is x:
            return x
        x = trial
    return x


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
        if x[members].sum() >= cap.max_spend - 1e-7 * max(1.0, cap.max_spend):
            room[members] = False
    if inst.objective == "min_spend":
        g = t.multiplier * t.curves.slope(x)
        best = float(np.nan_to_num(g, posinf=MAX_SLOPE)[room].max()) if room.any() else 0.0
        return 1.0 / best if best > 0 else None
    if not room.any():
        return 0.0
    return max(0.0, float(gradient(inst, t, x)[room].max()))


def cap_prices(inst: IncentiveBudget, t: CellTerms, x: np.ndarray, price: float) -> np.ndarray:
    """Extra price of spend inside each full cap, above the price of the budget (or of the
    smallest full cap around it): the best slope of its cells that could still grow, less
    the outer price. 0 for caps with room. Used only to tighten bounds; any value is valid."""
    index = {c.id: i for i, c in enumerate(inst.cells)}
    members = [np.array([index[c] for c in cap.cells]) for cap in inst.caps]
    full = [x[m].sum() >= cap.max_spend - 1e-7 * max(1.0, cap.max_spend) for m, cap in zip(members, inst.caps)]
    own = np.array([np.inf if c.max_spend is None else c.max_spend for c in inst.cells])
    slopes = gradient(inst, t, x)
    mu = np.zeros(len(inst.caps))
    total = np.full(len(inst.caps), price)  # price inside each cap
    for c in sorted(range(len(inst.caps)), key=lambda c: -len(members[c])):  # outer caps first
        if not full[c]:
            continue
        outer = [d for d in range(len(inst.caps)) if d != c and full[d] and set(members[c]) < set(members[d])]
        around = max((total[d] for d in outer), default=price)
        inner = set().union(*(set(members[d].tolist()) for d in range(len(inst.caps))
                              if d != c and full[d] and set(members[d]) < set(members[c])))
        free = [i for i in members[c] if i not in inner and x[i] < own[i] - 1e-9 * max(1.0, x[i])]
        best = max((float(slopes[i]) for i in free), default=around)
        mu[c] = max(0.0, best - around)
        total[c] = around + mu[c]
    return mu
