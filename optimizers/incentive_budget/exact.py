"""The exact method: a global search on a spend grid, a certified bound that accounts for
the grid, a local polish of the continuous spends, and refinement where the bound is loose.

    max  sum_i g_i(x_i)                      (users, or value - spend; min_spend: see below)
    s.t. sum_i x_i <= budget                 (1)
         sum_{i in c} x_i <= cap_c           (2)  for every cap c
         lo_i <= x_i <= hi_i                 (3)  (multiples of step when given)

1. Grid: spends x_i = lo_i + u h, a few thousand units h across the free budget. With nested
   caps the knapsack DP of dp.py is exact on the grid (all budgets at once); crossing caps go
   to the piecewise-linear MILP of milp.py.
2. Polish: SLSQP near the grid plan; kept only if better and feasible.
3. Bound: with lam the plan's marginal value (and mu_c the extra price inside each full cap),
   every feasible x satisfies g(x) <= sum_i F_i(floor_i; lam_i) + lam_i delta_i, floor_i the
   grid point below x_i and delta_i = x_i - floor_i (grid.py), so with D_F the DP over floors
   UB = max_k D_F(k) + lam * min(free - k h, Delta_max) (+ the caps' terms, dp.py).
   For min_spend (min sum x s.t. users(x) >= T) the same tables give the least spend any plan
   reaching T can have: sum lo + min_k [k h + (T - D_F(k)) / lam].
4. Refine: while the gap is above the tolerance and the next round fits in the time limit,
   halve h. Without a time limit the effort is counted in grid work (cells x units^2, about
   two rounds of the first size), not seconds, so the same instance gets the same answer on
   any machine. Both bounds stay valid; the best of each is kept.

With ``step`` the unit can reach the step itself: the grid is then the whole domain and the
answer exact. (The slack of the bound is second order in h where the plan's cells sit on
the concave part of their curves; near activation thresholds of S-curves it is first order,
which is what halving h pays for.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import UsageError
from models.incentive_budget import IncentiveBudget, plan
from optimizers import progress
from optimizers.incentive_budget import dp, local
from optimizers.incentive_budget.grid import CellTerms, Grid, cell_grid, terms, unit_for, upper_values
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status, relative_gap
from optimizers.stopping import expired, now

WORK_PER_PASS = 6e7  # cells x units x units of the first round (about 0.2 s here)
MAX_RESOLUTION = 64_000  # units across the free budget, at most
EFFORT_WORK = 5 * WORK_PER_PASS  # refinement without a time limit: rounds 1 and 2 of a first-size grid


def first_resolution(n_cells: int) -> int:
    return int(min(4000, max(200, math.sqrt(WORK_PER_PASS / max(1, n_cells)))))


def run(inst: IncentiveBudget, options: SolverOptions, *, backend: str | None = None) -> MethodOutput:
    start = time.perf_counter()
    t = terms(inst)
    if not dp.is_laminar([frozenset(s) for s in cap_members(inst)]):
        from optimizers.incentive_budget import milp

        return milp.run(inst, t, options, backend=backend)
    limit = options.time_limit_s
    minimizing = inst.objective == "min_spend"
    free = t_free(inst, t)
    resolution = first_resolution(len(inst.cells))
    best_x: np.ndarray | None = None
    best_marginal: float | None = None
    bound = -math.inf if minimizing else math.inf
    rounds = 0
    work = 0.0
    while True:
        rounds += 1
        round_start = time.perf_counter()
        h = unit_for(inst, free, resolution)
        p = grid_round(inst, t, build(inst, t, h))
        work += len(inst.cells) * resolution**2
        if p.x is not None and (best_x is None or better(inst, local.objective(inst, t, p.x), local.objective(inst, t, best_x))):
            best_x, best_marginal = p.x, p.marginal
        bound = max(bound, p.bound) if minimizing else min(bound, p.bound)
        progress.update("dynamic program", detail=f"round {rounds}, grid unit {h:,.4g}", incumbent=None if best_x is None else local.objective(inst, t, best_x),
                        bound=bound if math.isfinite(bound) else None)
        if not math.isfinite(bound):
            break  # min_spend: no plan can reach the target
        gap = relative_gap(None if best_x is None else local.objective(inst, t, best_x), bound)
        whole_domain = inst.step is not None and h <= inst.step
        if whole_domain or (gap is not None and gap <= options.gap) or 2 * resolution > MAX_RESOLUTION:
            break
        if limit is None:
            if work + len(inst.cells) * (2 * resolution) ** 2 > EFFORT_WORK or expired(None):
                break  # the next round is beyond the effort, or a stop was requested
        elif (now() - start) + 4.5 * (now() - round_start) > limit:
            break  # the next round costs about 4 times this one
        resolution *= 2
    meta = {"rounds": rounds, "grid_unit": h, "resolution": resolution}
    return answer(inst, t, best_x, bound, best_marginal, options, meta, no_plan="the grid found no plan reaching the target; a finer grid may")


def answer(inst: IncentiveBudget, t: CellTerms, x: np.ndarray | None, bound: float, marginal: float | None,
           options: SolverOptions, meta: dict[str, Any], message: str = "", no_plan: str = "no plan found") -> MethodOutput:
    """What a method returns from its best plan and its bound (infinite when none is known;
    for min_spend, +inf proves no plan reaches the target)."""
    if x is None:
        if inst.objective == "min_spend" and bound == math.inf:
            return MethodOutput(Status.INFEASIBLE, message=f"no plan reaches target_users {inst.target_users:,.6g} within the budget and caps", meta=meta)
        return MethodOutput(Status.NO_SOLUTION, bound=bound if math.isfinite(bound) else None, message=message or no_plan, meta=meta)
    objective = float(local.objective(inst, t, x))
    final = None
    if math.isfinite(bound):  # a bound is never worse than the plan it bounds
        final = min(bound, objective) if inst.objective == "min_spend" else max(bound, objective)
    gap = relative_gap(objective, final)
    status = Status.OPTIMAL if gap is not None and gap <= options.gap else Status.FEASIBLE
    solution = plan(inst, dict(zip([c.id for c in inst.cells], x.tolist())), marginal)
    return MethodOutput(status, objective, final, solution, message, meta)


def t_free(inst: IncentiveBudget, t: CellTerms, budget: float | None = None) -> float:
    return max(0.0, (inst.budget if budget is None else budget) - float(t.lo.sum()))


def cap_members(inst: IncentiveBudget) -> list[set[int]]:
    index = {c.id: i for i, c in enumerate(inst.cells)}
    return [{index[c] for c in cap.cells} for cap in inst.caps]


def better(inst: IncentiveBudget, a: float | None, b: float | None) -> bool:
    """Is objective a better than b (None: no plan) in the instance's direction?"""
    if a is None:
        return False
    if b is None:
        return True
    return a < b if inst.objective == "min_spend" else a > b


@dataclass
class Grids:
    """One round's grids (intervals between breakpoints) and the DP over their lower tables."""

    h: float
    grids: list[Grid]
    lower_units: list[np.ndarray]  # units charged for each grid point (hi rounded up)
    upper_units: list[np.ndarray]  # units of each interval's floor
    cap_units: list[tuple[frozenset[int], int]]
    budget_units: int
    free: float
    lower: dp.Table

    def plan_at(self, k: int) -> np.ndarray:
        """The grid plan spending at most k units."""
        chosen: dict[int, int] = {}
        self.lower.plan(k, chosen)
        out = []
        for i, g in enumerate(self.grids):
            j = int(np.searchsorted(self.lower_units[i], chosen.get(i, 0)))
            out.append(g.points[min(j, len(g.points) - 1)])
        return np.array(out)

    def upper_table(self, inst: IncentiveBudget, t: CellTerms, lam: float, mu: np.ndarray | None = None,
                    units: int | None = None) -> np.ndarray:
        """D_F(k) with price lam on the budget and mu[c] more inside each cap c: a cell's F uses
        lam plus the mu of its caps, and a cap's table adds mu[c] times the money its cells
        may spend above their floors, min(Delta_max_c, room_c - k h). Up to ``units`` (default:
        the grid's budget) units."""
        top = self.budget_units if units is None else min(units, self.budget_units)
        caps = [(members, min(limit, top)) for members, limit in self.cap_units]
        mu = np.zeros(len(inst.caps)) if mu is None else mu
        price = np.full(len(self.grids), lam)
        adjust: list = []
        for c, (members, _) in enumerate(self.cap_units):
            price[list(members)] += mu[c]
            room = inst.caps[c].max_spend - float(t.lo[list(members)].sum())
            adjust.append(self._cap_adjust(members, room, float(mu[c])) if mu[c] > 0 else None)
        leaves: list[dp.Leaf] = [(self.upper_units[i], upper_values(inst, t, i, g, float(price[i]))) for i, g in enumerate(self.grids)]
        return dp.solve_tree(leaves, caps, top, track=False, adjust=adjust).values

    def _cap_adjust(self, members: frozenset[int], room: float, mu: float) -> Callable[[np.ndarray], np.ndarray]:
        most = float(sum(self.grids[i].max_delta for i in members))

        def adjust(values: np.ndarray) -> np.ndarray:
            k = np.arange(len(values))
            return np.maximum.accumulate(values + mu * np.clip(room - k * self.h, 0.0, most))

        return adjust

    @property
    def max_delta(self) -> float:
        return float(sum(g.max_delta for g in self.grids))


def build(inst: IncentiveBudget, t: CellTerms, h: float, budget: float | None = None) -> Grids:
    """The grids of unit h and the DP over their lower tables."""
    free = t_free(inst, t, budget)
    grids = [cell_grid(inst, t, i, h) for i in range(len(inst.cells))]
    lower_units = [np.ceil((g.points - g.lo) / h - 1e-9).astype(np.int64) for g in grids]
    upper_units = [np.floor((g.starts - g.lo) / h + 1e-9).astype(np.int64) for g in grids]
    budget_units = int(math.floor(free / h + 1e-9))
    caps = []
    for cap, members in zip(inst.caps, cap_members(inst)):
        room = cap.max_spend - float(t.lo[list(members)].sum())
        caps.append((frozenset(members), min(budget_units, int(math.floor(room / h + 1e-9)))))  # a cap above the budget binds nothing
    leaves: list[dp.Leaf] = [(u, g.lower) for u, g in zip(lower_units, grids)]
    lower = dp.solve_tree(leaves, caps, budget_units)
    return Grids(h, grids, lower_units, upper_units, caps, budget_units, free, lower)


@dataclass
class Round:
    """One round: the best plan found and the bound proven."""

    x: np.ndarray | None
    bound: float
    marginal: float | None


def grid_round(inst: IncentiveBudget, t: CellTerms, g: Grids) -> Round:
    if inst.objective == "min_spend":
        return _min_spend_round(inst, t, g)
    x = polish(inst, t, g, g.plan_at(g.budget_units), inst.budget)
    lam = local.marginal(inst, t, x, inst.budget) or 0.0
    return Round(x, certify(inst, t, g, x, lam, g.free, local.objective(inst, t, x)), lam)


def certify(inst: IncentiveBudget, t: CellTerms, g: Grids, x: np.ndarray, lam: float, free: float, objective: float,
            tolerance: float = 1e-6) -> float:
    """The upper bound priced by the plan: its marginal value on the budget and the extra
    price inside full caps. When that leaves a gap (plans at a corner, in the convex part of
    S-curves), also with the slope of the grid optimum over the last 5% of the budget,
    keeping the smaller bound."""
    bound = upper_bound(inst, t, g, lam, free, local.cap_prices(inst, t, x, lam))
    if (relative_gap(objective, bound) or 0.0) > tolerance:
        k = int(math.floor(free / g.h + 1e-9))
        back = max(1, k // 20)
        if k - back >= 0:
            slope = max(0.0, float(g.lower.values[k] - g.lower.values[k - back]) / (back * g.h))
            bound = min(bound, upper_bound(inst, t, g, slope, free, local.cap_prices(inst, t, x, slope)))
    return bound


def upper_bound(inst: IncentiveBudget, t: CellTerms, g: Grids, lam: float, free: float,
                mu: np.ndarray | None = None) -> float:
    """max_k D_F(k) + lam * min(free - k h, Delta_max) over k with k h <= free."""
    values = g.upper_table(inst, t, lam, mu, units=int(math.floor(free / g.h + 1e-9)))
    k = np.arange(min(len(values), int(math.floor(free / g.h + 1e-9)) + 1))
    leftover = np.minimum(free - k * g.h, g.max_delta)
    return float(np.max(values[k] + lam * np.maximum(leftover, 0.0)))


def polish(inst: IncentiveBudget, t: CellTerms, g: Grids, x: np.ndarray, budget: float) -> np.ndarray:
    if inst.step is not None:
        return x
    return local.improve(inst, t, x, np.maximum(t.lo, x - 2 * g.h), np.minimum(t.hi, x + 2 * g.h), budget)


def _min_spend_round(inst: IncentiveBudget, t: CellTerms, g: Grids) -> Round:
    target = inst.target_users or 0.0
    reach = np.nonzero(g.lower.values >= target)[0]
    x = None
    lam_users = 0.0
    if len(reach):
        x = polish(inst, t, g, g.plan_at(int(reach[0])), inst.budget)
        cost = local.marginal(inst, t, x, inst.budget)
        lam_users = 1.0 / cost if cost else 0.0
    values = g.upper_table(inst, t, lam_users, None if x is None else local.cap_prices(inst, t, x, lam_users))
    k = np.arange(len(values))
    room = np.minimum(g.max_delta, g.free - k * g.h)
    short = np.maximum(target - values, 0.0)
    need = short / lam_users if lam_users > 0 else np.where(short > 0, np.inf, 0.0)
    ok = need <= room + 1e-9 * max(1.0, g.h)
    bound = float(t.lo.sum() + np.min(k[ok] * g.h + need[ok])) if ok.any() else math.inf
    return Round(x, bound, None if x is None else local.marginal(inst, t, x, inst.budget))


def frontier(inst: IncentiveBudget, budgets: list[float], options: SolverOptions | None = None,
             on_level: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """The best plan at every budget level, with its bound and marginal value.

    One DP gives the grid plans of all levels within a factor 2 of its top (the table holds
    every budget at once; a grid per octave keeps the unit fine relative to each level, which
    the bound needs); each level is then polished and certified with its own price. Crossing
    caps solve each level from scratch with the MILP.
    """
    from optimizers.registry import solve

    options = options or SolverOptions()
    if inst.objective == "min_spend":
        raise UsageError("frontier sweeps the budget for objective 'users' or 'value'; this instance minimises spend for a target")
    levels = sorted(set(float(b) for b in budgets))
    rows: list[dict[str, Any]] = []
    top = inst.model_copy(update={"budget": levels[-1]})
    t_top = terms(top)
    if not dp.is_laminar([frozenset(s) for s in cap_members(inst)]):
        for b in levels:
            result = solve(inst.model_copy(update={"budget": b}), options=options)
            rows.append(_level_row(inst.model_copy(update={"budget": b}), result.status, result.objective, result.bound, result.solution))
            if on_level:
                on_level(rows[-1])
        return rows
    low = float(t_top.lo.sum())
    grids: dict[float, Grids] = {}  # octave top -> its grids
    octave = levels[-1]
    for b in reversed(levels):
        if b - low < (octave - low) / 2:
            octave = b
        if octave not in grids:
            grids[octave] = build(top, t_top, unit_for(top, max(0.0, octave - low), first_resolution(len(inst.cells))), budget=octave)
    tops = sorted(grids)
    for b in levels:
        g = grids[next(o for o in tops if o >= b)]
        level = inst.model_copy(update={"budget": b})
        if b < low - 1e-9 * max(1.0, low):
            rows.append(_level_row(level, Status.INFEASIBLE, None, None, None))
        else:
            t = terms(level)
            free = max(0.0, b - low)
            x = g.plan_at(int(math.floor(free / g.h + 1e-9)))
            x = polish(level, t, g, np.minimum(x, t.hi), b)
            lam = local.marginal(level, t, x, b) or 0.0
            objective = local.objective(level, t, x)
            bound = max(objective, certify(level, t_top, g, x, lam, free, objective, options.gap))
            gap = relative_gap(objective, bound)
            status = Status.OPTIMAL if gap is not None and gap <= options.gap else Status.FEASIBLE
            solution = plan(level, dict(zip([c.id for c in inst.cells], x.tolist())), lam)
            rows.append(_level_row(level, status, objective, bound, solution))
        if on_level:
            on_level(rows[-1])
    return rows


def _level_row(inst: IncentiveBudget, status: Status, objective: float | None, bound: float | None,
               solution: dict[str, Any] | None) -> dict[str, Any]:
    from models.incentive_budget import evaluate

    row: dict[str, Any] = {"budget": inst.budget, "status": status.value, "objective": objective, "bound": bound,
                           "gap": relative_gap(objective, bound)}
    if solution is not None:
        check = evaluate(inst, solution)
        row.update(users=check.details["total_users"], value=check.details["total_value"], spend=check.details["total_spend"],
                   marginal_value=solution["marginal_value"], violations=check.violations, solution=solution)
    return row
