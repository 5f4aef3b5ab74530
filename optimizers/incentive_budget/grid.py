"""Spend grids and the interval bounds that make a grid answer certifiable.

Every cell contributes g(x) = w * f(x) - p * x to the objective, f its direct-users curve:
``users`` and ``min_spend`` use w = 1 / (1 - viral_k), p = 0; ``value`` uses
w = value_per_user / (1 - viral_k), p = 1.

A cell's spend range [lo, hi] is cut at the points a_j = lo + j h (j = 0..J), h a common unit
(a multiple of ``step`` when spend must be one). Two tables per cell:

- lower ``g(a_j)`` at the grid points (plus ``hi`` itself when it is off the grid, counted as
  one more unit): any choice of points is a feasible plan;
- upper ``F_j(lam) >= sup_{x in [a_j, b_j]} g(x) - lam (x - a_j)``, b_j the last spend before
  a_{j+1} (``hi`` at the end), for a price lam >= 0 of spend. For every feasible plan x,
  with j its grid floor and delta = x - a_j,  g(x) <= F_j(lam) + lam * delta: the plan's floors
  spend less than x, so a knapsack over floors with values F plus lam times the spend left over
  bounds every plan (see dp.py). The slack of F over g is second order in h near a plan
  where g' = lam, which is where optimal plans sit.

The sup is bounded without sampling: on a convex piece f lies under its chord, on a concave
piece under its tangents at both ends; Hill (shape > 1) and logistic curves are convex up to
their inflection and concave after it, exponential and Hill (shape <= 1) concave throughout,
and piecewise-linear curves are evaluated exactly at their breakpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.incentive_budget import (
    Curves,
    IncentiveBudget,
    direct_users,
    inflection,
    lowest_spend,
    pwl_points,
    saturation,
    slope,
    upper_spend,
)

SLACK = 1e-11  # relative slack added to upper values against rounding


@dataclass(frozen=True)
class CellTerms:
    """Per cell: objective weight w on direct users, price p of spend, spend range."""

    w: np.ndarray
    p: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    curves: Curves
    multiplier: np.ndarray


def terms(inst: IncentiveBudget, *, budget: float | None = None) -> CellTerms:
    budget = inst.budget if budget is None else budget
    n = len(inst.cells)
    mult = np.array([c.multiplier for c in inst.cells])
    if inst.objective == "value":
        w = mult * np.array([c.value_per_user for c in inst.cells])
        p = np.ones(n)
    else:
        w, p = mult, np.zeros(n)
    lo = np.array([lowest_spend(inst, c) for c in inst.cells])
    free = max(0.0, budget - float(lo.sum()))
    hi = np.array([min(upper_spend(inst, c), lo[i] + free) for i, c in enumerate(inst.cells)])
    if inst.objective == "value":  # beyond lo + w * saturation, spend costs more than all it can bring
        hi = np.minimum(hi, lo + w * np.array([saturation(c.response) for c in inst.cells]))
    if inst.step is not None:
        hi = np.maximum(lo, np.floor(hi / inst.step + 1e-9) * inst.step)
    return CellTerms(w=w, p=p, lo=lo, hi=np.maximum(hi, lo), curves=Curves(inst.cells), multiplier=mult)


def cell_value(inst: IncentiveBudget, t: CellTerms, i: int, x: np.ndarray | float) -> np.ndarray:
    return t.w[i] * direct_users(inst.cells[i].response, x) - t.p[i] * np.asarray(x, float)


def unit_for(inst: IncentiveBudget, free_budget: float, resolution: int) -> float:
    """The grid unit: ``resolution`` units across the free budget, a multiple of the step."""
    if free_budget <= 0:
        return inst.step or 1.0
    h = free_budget / resolution
    if inst.step is not None:
        h = inst.step * max(1, math.ceil(h / inst.step - 1e-9))
    return h


@dataclass(frozen=True)
class Grid:
    """One cell's grid: points a_j = lo + j h (and hi), exact-units tables for the knapsack."""

    lo: float
    hi: float
    h: float
    points: np.ndarray  # spends of the lower table, index = units (hi last if off the grid)
    lower: np.ndarray  # g at ``points``
    starts: np.ndarray  # a_j, index = units of the floor
    ends: np.ndarray  # b_j

    @property
    def max_delta(self) -> float:
        return float((self.ends - self.starts).max()) if len(self.starts) else 0.0


def cell_grid(inst: IncentiveBudget, t: CellTerms, i: int, h: float) -> Grid:
    """Cell i's grid of unit h: points lo + j h, and hi."""
    lo, hi = float(t.lo[i]), float(t.hi[i])
    return grid_from_points(inst, t, i, lo + h * np.arange(math.floor((hi - lo) / h + 1e-9) + 1))


def grid_from_points(inst: IncentiveBudget, t: CellTerms, i: int, points: np.ndarray) -> Grid:
    """A grid with intervals between the given spends (sorted, within [lo, hi], steps)."""
    lo, hi = float(t.lo[i]), float(t.hi[i])
    pts = np.unique(np.clip(np.append(points, [lo, hi]), lo, hi))
    if inst.step is not None:
        pts = np.unique(np.clip(np.round(pts / inst.step) * inst.step, lo, hi))
    starts = pts
    ends = np.append(pts[1:] - (inst.step or 0.0), hi)
    return Grid(lo, hi, float(np.diff(pts).max()) if len(pts) > 1 else 0.0, pts, cell_value(inst, t, i, pts), starts, np.maximum(ends, starts))


def upper_values(inst: IncentiveBudget, t: CellTerms, i: int, grid: Grid, lam: float) -> np.ndarray:
    """F_j(lam) for every interval of ``grid`` (see the module docstring)."""
    a, b = grid.starts, grid.ends
    w, p = float(t.w[i]), float(t.p[i])
    if w <= 0:
        return -p * a
    mu = np.full(a.shape, (lam + p) / w)  # per interval: the pieces below index it
    sup = _sup_minus_line(inst.cells[i].response, a, b, mu)
    return w * sup - p * a


def _sup_minus_line(response, a: np.ndarray, b: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """An upper bound on sup_{x in [a, b]} f(x) - mu (x - a), per interval."""
    if response.kind == "piecewise_linear":
        return _pwl_sup(response, a, b, mu)
    c = inflection(response)
    fa, fb = direct_users(response, a), direct_users(response, b)
    convex = np.maximum(fa, fb - mu * (b - a))  # f under its chord on [a, b]
    out = np.where(b <= c, convex, _concave_sup(response, a, b, mu, fa, fb))
    across = (a < c) & (c < b)
    if across.any():  # convex on [a, c], concave on [c, b]
        ac, bc = a[across], b[across]
        cc = np.full_like(ac, c)
        fc = direct_users(response, cc)
        mc = mu[across]
        left = np.maximum(fa[across], fc - mc * (cc - ac))
        right = _concave_sup(response, cc, bc, mc, fc, fb[across]) - mc * (cc - ac)
        out[across] = np.maximum(left, right)
    out = np.minimum(out, fb)  # the smooth curves never decrease
    return out + SLACK * (np.abs(fb) + 1.0)


def _concave_sup(response, a, b, mu, fa, fb) -> np.ndarray:
    """f concave on [a, b] lies under min(tangent at a, tangent at b)."""
    da, db = slope(response, a), slope(response, b)
    best = np.maximum(fa, fb - mu * (b - a))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        steep = ~np.isfinite(da)  # infinite slope at 0 (Hill with shape < 1): the tangent at b alone
        at_a = fb - db * (b - a)
        best = np.where(steep, np.maximum(best, at_a), best)
        cross = np.isfinite(da) & (da > db)
        xc = np.clip((fb - fa + da * a - db * b) / np.where(cross, da - db, 1.0), a, b)
        at_xc = fa + (da - mu) * (xc - a)
        best = np.where(cross, np.maximum(best, at_xc), best)
    return best


def _pwl_sup(response, a: np.ndarray, b: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Exact: a piecewise-linear function minus a line peaks at an end or a breakpoint."""
    xs, _ = pwl_points(response)
    best = np.maximum(direct_users(response, a), direct_users(response, b) - mu * (b - a))
    j = np.searchsorted(a, xs, side="right") - 1
    inside = (j >= 0) & (xs <= b[np.clip(j, 0, len(b) - 1)])
    j, bp = j[inside], xs[inside]
    np.maximum.at(best, j, direct_users(response, bp) - mu[j] * (bp - a[j]))
    return best + SLACK * (np.abs(best) + 1.0)
