"""The piecewise-linear MILP for caps that cross (a cell in two caps that do not nest, such
as one cap per segment and one per mechanic), where the knapsack DP does not apply.

Data: per cell i the grid intervals [a_ij, b_ij] of grid.py with upper values F_ij(lam_i)
(lam_i >= 0 a price of spend for cell i), caps c with their cells, the budget B.

Variables: y_ij in {0, 1} (cell i spends within interval j), d_ij >= 0 (spend above a_ij).

    max  sum_ij F_ij y_ij + lam_i d_ij
    s.t. (1) sum_j y_ij = 1                              every cell
         (2) d_ij <= (b_ij - a_ij) y_ij                   every interval
         (3) sum_ij a_ij y_ij + d_ij <= B                 budget
         (4) sum_{i in c, j} a_ij y_ij + d_ij <= cap_c     every cap

Since g_i(a_ij + d) <= F_ij(lam_i) + lam_i d on the interval, the optimum (and the solver's
bound) bounds the true problem from above, while any solution gives the feasible plan
x_i = a_ij + d_ij, valued exactly by g. For min_spend the objective is the spend, (3)
bounds it, and users >= target is the row sum F y + lam d >= T for the bound and
sum g(a_ij) y_ij >= T (grid points only, d = 0) for a plan. The LP relaxation of this
multiple-choice form is the concave envelope of each cell's table, so branching is light.

Refinement: the first model has 24 intervals per cell; the intervals the optimum picks (the
bound relies on them) and those around the best plan are cut into 6 and the model is solved
again, with lam_i the polished plan's slopes, until the gap closes or 80% of the time limit
(10 s without one) is spent. Each round's bound is valid; the best is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from models.incentive_budget import IncentiveBudget
from optimizers.backends import solve_linear
from optimizers.incentive_budget import local
from optimizers.incentive_budget.exact import answer, better
from optimizers.incentive_budget.grid import CellTerms, Grid, grid_from_points, upper_values
from optimizers.linear import LinearModel
from optimizers.registry import MethodOutput, remaining
from optimizers.result import SolverOptions, Status, relative_gap
from optimizers.stopping import now

DEFAULT_BACKEND = "highs"
COARSE = 24  # intervals per cell in the first model
SPLIT = 6  # an interval the bound relies on is cut into this many
MAX_ROUNDS = 40
EFFORT_S = 10.0  # refinement time when no time limit is given


def run(inst: IncentiveBudget, t: CellTerms, options: SolverOptions, *, backend: str | None = None) -> MethodOutput:
    """Solve on a coarse grid, then cut finer exactly the intervals the bound relies on
    (and those around the best plan) until the gap closes or time runs out."""
    start = time.perf_counter()
    options = replace(options, time_limit_s=options.time_limit_s or EFFORT_S)
    limit = float(options.time_limit_s or EFFORT_S)
    backend = backend or DEFAULT_BACKEND
    n = len(inst.cells)
    minimizing = inst.objective == "min_spend"
    points = [np.linspace(t.lo[i], t.hi[i], COARSE + 1) for i in range(n)]
    finest = (t.hi - t.lo) / (COARSE * SPLIT**4)
    best_x = _start_plan(inst, t)
    lam = _prices(inst, t, best_x) if best_x is not None else np.zeros(n)
    bound = -math.inf if minimizing else math.inf
    message, rounds = "", 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        grids = [grid_from_points(inst, t, i, points[i]) for i in range(n)]
        x, b, chosen, msg = _solve(inst, t, grids, lam, backend, remaining(options, start))
        message = msg or message
        if b is not None:
            bound = max(bound, b) if minimizing else min(bound, b)
        if x is not None:
            if inst.step is None:  # polish within the chosen intervals' neighbourhood
                width = np.array([g.h for g in grids])
                x = local.improve(inst, t, x, np.maximum(t.lo, x - width), np.minimum(t.hi, x + width), inst.budget)
            if best_x is None or better(inst, local.objective(inst, t, x), local.objective(inst, t, best_x)):
                best_x = x
        if best_x is None and b is None:
            break
        gap = relative_gap(None if best_x is None else local.objective(inst, t, best_x), bound)
        if gap is not None and gap <= options.gap:
            break
        if now() - start > 0.8 * limit or chosen is None:
            break
        added = False
        for i, (a, b_end) in enumerate(chosen):
            if b_end - a > finest[i]:
                points[i] = np.union1d(points[i], np.linspace(a, b_end, SPLIT + 1))
                added = True
            if best_x is not None:
                near = np.searchsorted(points[i], best_x[i])
                lo_p, hi_p = points[i][max(0, near - 1)], points[i][min(len(points[i]) - 1, near)]
                if hi_p - lo_p > finest[i]:
                    points[i] = np.union1d(points[i], np.linspace(lo_p, hi_p, SPLIT + 1))
                    added = True
        if not added:
            break
        if best_x is not None:
            lam = _prices(inst, t, best_x)
    meta = {"milp_rounds": rounds, "grid_points": int(sum(len(p) for p in points))}
    marginal = None if best_x is None else local.marginal(inst, t, best_x, inst.budget)
    return answer(inst, t, best_x, bound, marginal, options, meta, message)


def _start_plan(inst: IncentiveBudget, t: CellTerms) -> np.ndarray | None:
    """A feasible continuous local optimum from a uniform start, to price spend per cell."""
    from optimizers.incentive_budget import slsqp

    out = slsqp.run(inst, None, SolverOptions())
    if out.solution is None:
        return None
    return np.array([out.solution["spend"][c.id] for c in inst.cells])


def _prices(inst: IncentiveBudget, t: CellTerms, x: np.ndarray) -> np.ndarray:
    """lam_i: the cell's own slope where it is strictly inside its range, else the plan's
    marginal value (users per spend for min_spend)."""
    slopes = local.gradient(inst, t, x)  # for min_spend (p = 0): users per spend
    m = local.marginal(inst, t, x, inst.budget)
    common = (1.0 / m if m else 0.0) if inst.objective == "min_spend" else (m or 0.0)
    inside = (x > t.lo + 1e-9 * np.maximum(1, t.hi)) & (x < t.hi - 1e-9 * np.maximum(1, t.hi))
    return np.maximum(0.0, np.where(inside, slopes, common))


def _solve(inst: IncentiveBudget, t: CellTerms, grids: list[Grid], lam: np.ndarray, backend: str,
           options: SolverOptions) -> tuple[np.ndarray | None, float | None, list[tuple[float, float]] | None, str]:
    """One round: the relaxed model gives the bound, the intervals it relies on and, for max
    objectives, the plan; for min_spend the grid-point model gives a plan reaching the target."""
    upper = [upper_values(inst, t, i, g, float(lam[i])) for i, g in enumerate(grids)]
    starts = [g.starts for g in grids]
    widths = [g.ends - g.starts for g in grids]
    model, y, d = _model(inst, starts, upper, widths, lam, relaxed=True)
    out = solve_linear(model, backend, replace(options, gap=min(options.gap, 1e-7)))
    if out.status is Status.INFEASIBLE:
        return None, (math.inf if inst.objective == "min_spend" else None), None, "the relaxed model is infeasible"
    chosen = None
    if out.x is not None:
        picks = [int(np.argmax(out.x[y[i]])) for i in range(len(grids))]
        chosen = [(float(g.starts[j]), float(g.ends[j])) for g, j in zip(grids, picks)]
    if inst.objective != "min_spend":
        x = None if out.x is None else _read(inst, t, grids, starts, out.x, y, d)
        return x, out.bound, chosen, out.message
    points = [g.points for g in grids]
    lower = [g.lower for g in grids]
    model2, y2, _ = _model(inst, points, lower, None, lam, relaxed=False)
    out2 = solve_linear(model2, backend, options)
    x = None if out2.x is None else _read(inst, t, grids, points, out2.x, y2, None)
    return x, out.bound, chosen, out2.message


def _model(inst: IncentiveBudget, spends: list[np.ndarray], values: list[np.ndarray], widths: list[np.ndarray] | None,
           lam: np.ndarray, *, relaxed: bool) -> tuple[LinearModel, list[np.ndarray], list[np.ndarray] | None]:
    minimizing = inst.objective == "min_spend"
    model = LinearModel(name=f"incentive_budget-{inst.name}", maximize=not minimizing)
    sizes = [len(s) for s in spends]
    cell_of = np.repeat(np.arange(len(sizes)), sizes)
    spend = np.concatenate(spends)
    value = np.concatenate(values)
    total = len(spend)
    y_cols = model.add_variables("y", total, lb=0, ub=1, integer=True, cost=spend if minimizing else value)
    d_cols = None
    if widths is not None:
        width = np.concatenate(widths)
        integer = inst.step is not None
        scale = inst.step or 1.0  # with a step, d counts steps
        d_cols = model.add_variables("d", total, lb=0, ub=width / scale, integer=integer,
                                     cost=scale * (np.ones(total) if minimizing else lam[cell_of]))
        # (2) d_ij <= width_ij y_ij
        model.add_constraints("interval", total, np.r_[np.arange(total), np.arange(total)], np.r_[d_cols, y_cols],
                              np.r_[np.ones(total), -width / scale], hi=0.0)
    # (1) one interval per cell
    model.add_constraints("choose", len(sizes), cell_of, y_cols, 1.0, lo=1.0, hi=1.0)
    spend_cols = np.r_[y_cols, d_cols] if d_cols is not None else y_cols
    spend_vals = np.r_[spend, np.full(total, inst.step or 1.0)] if d_cols is not None else spend
    cells_of_col = np.r_[cell_of, cell_of] if d_cols is not None else cell_of
    # (3) budget, (4) caps
    model.add_constraints("budget", 1, np.zeros(len(spend_cols), np.int64), spend_cols, spend_vals, hi=inst.budget)
    index = {c.id: i for i, c in enumerate(inst.cells)}
    for cap in inst.caps:
        inside = np.isin(cells_of_col, [index[c] for c in cap.cells])
        model.add_constraints(f"cap[{cap.id}]", 1, np.zeros(int(inside.sum()), np.int64), spend_cols[inside], spend_vals[inside], hi=cap.max_spend)
    if minimizing:
        cols = np.r_[y_cols, d_cols] if d_cols is not None else y_cols
        vals = np.r_[value, (inst.step or 1.0) * lam[cell_of]] if d_cols is not None else value
        model.add_constraints("target", 1, np.zeros(len(cols), np.int64), cols, vals, lo=inst.target_users or 0.0)
    ys = np.split(y_cols, np.cumsum(sizes)[:-1])
    ds = np.split(d_cols, np.cumsum(sizes)[:-1]) if d_cols is not None else None
    return model, ys, ds


def _read(inst: IncentiveBudget, t: CellTerms, grids: list[Grid], spends: list[np.ndarray], sol: np.ndarray,
          y: list[np.ndarray], d: list[np.ndarray] | None) -> np.ndarray | None:
    """The plan of a MILP solution; solver tolerances may overshoot a limit by a hair, so the
    spend above the chosen points is scaled back until the plan is exactly feasible."""
    chosen = np.array([int(np.argmax(sol[y[i]])) for i in range(len(grids))])
    base = np.array([spends[i][j] for i, j in enumerate(chosen)])
    if d is None:
        return base if local.feasible(inst, t, base, inst.budget) else None
    unit = inst.step or 1.0
    extra = np.array([max(0.0, float(sol[d[i][j]])) for i, j in enumerate(chosen)])
    if inst.step is not None:
        extra = np.round(extra)
    x = np.minimum(base + unit * extra, [g.hi for g in grids])
    if local.feasible(inst, t, x, inst.budget):
        return x
    if not local.feasible(inst, t, base, inst.budget):
        return None
    return local.shrink_towards(inst, t, base, x, inst.budget)
