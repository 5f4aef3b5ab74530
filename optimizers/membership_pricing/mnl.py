r"""Membership tier pricing under logit choice (``choice.model = "mnl"``).

Data
    segments s (size N_s), tiers t with fee bounds [L_t, U_t], optional grid step d_t, fixed
    cost F_t, must_offer; willingness to pay v_st; price sensitivity b > 0; lifetime weight
    w_st = (1+d)/(1+d-r_st); a_st = N_s w_st (lifetime money per unit of yearly margin);
    k_st = benefit_cost_st - margin_uplift_st (the break-even fee). The lifetime weight
    multiplies the whole yearly margin fee - benefit_cost + uplift = p_t - k_st.
Variables
    M      the menu: the offered tiers (must_offer tiers included)
    p_t    fee of t in M, L_t <= p_t <= U_t (on the grid when d_t > 0)
Shares
    P_st(p) = exp(b (v_st - p_t)) / (1 + sum_{u in M} exp(b (v_su - p_u))),  P_s0 = 1 - sum_t P_st
Objective (expected lifetime profit)
    max  sum_s sum_{t in M} a_st (p_t - k_st) P_st(p) - sum_{t in M} F_t
Constraints
    (1) fee bounds and grid   L_t <= p_t <= U_t, p_t in L_t + d_t Z
    (2) fee order             p_j - p_i >= g for consecutive tiers i, j of fee_order in M

A. One segment, continuous fees: exact. (Segment index dropped.) For a fixed menu M, with
   pi = sum_u a_u (p_u - k_u) P_u, dP_t/dp_t = -b P_t (1 - P_t), dP_u/dp_t = b P_u P_t:
       d pi / d p_t = P_t [a_t (1 - b (p_t - k_t)) + b pi]
   so at a stationary point  a_t (p_t - k_t - 1/b) = pi  for every t in M: the lifetime-weighted
   markup above 1/b is the same in every tier (the equal adjusted markup; with equal weights it
   is the classical equal markup p_t - k_t = 1/(b P_0)). Putting p_t - k_t = 1/b + pi/a_t into
   pi = sum_t a_t (p_t - k_t) P_t gives pi (1 + sum e_t) = sum_t (a_t/b + pi) e_t, i.e. the fixed point
       x = (1/b) sum_t a_t exp(b (v_t - k_t) - 1 - b x / a_t),      p_t = k_t + 1/b + x / a_t,  pi = x,
   whose right side falls strictly in x: exactly one root (bisection on log x).
   Why it is the global maximum: in share space (p_t = v_t - (ln P_t - ln P_0) / b)
       pi(P) = sum_t a_t P_t (v_t - k_t) - (1/b) sum_t a_t P_t ln P_t + (1/b) A ln P_0,   A = sum_t a_t P_t,
   is concave for every a > 0 (its Hessian is -(1/b) H with
   z'Hz = Q + 2 (a'z)(1'z)/P_0 + A (1'z)^2/P_0^2 >= (sqrt(Q) - sqrt(A) |1'z| / P_0)^2 >= 0,
   Q = sum a_t z_t^2 / P_t, by Cauchy-Schwarz), so a stationary point is the maximum.
   When the stationary fees break (1) or (2), note that both are linear in shares:
       p_t <= U_t <=> P_t >= e^{b (v_t - U_t)} P_0,   p_t >= L_t <=> P_t <= e^{b (v_t - L_t)} P_0,
       p_j - p_i >= g <=> P_j <= e^{b (v_j - v_i - g)} P_i,
   so the menu's problem is a concave program over a polytope. SLSQP (in fee space, where the
   constraints are bounds and differences) finds its maximiser P*, and the Frank-Wolfe bound
       pi(P*) + max_{P in polytope} grad pi(P*) . (P - P*),   d pi/d P_t = a_t (p_t - k_t) - a_t/b - A/(b P_0),
   an LP solved on the backend, certifies it (a concave function lies under its tangent).
   Menus: every M between the must_offer tiers and all tiers (2^T of them, T <= 12); the
   answer is the best menu, the bound the largest menu bound.

B. Several segments, or fee grids: branch and bound over boxes of grid fees (the tier's
   ``fee_step`` grid, else ``grid.DEFAULT_POINTS`` fees over [L_t, U_t]; index K_t is "not
   offered" for tiers that are not must_offer). For a box prod_t [lo_t, hi_t] shares are
   monotone (P_st falls with p_t and rises with every other fee; an unoffered tier is an
   infinite fee), so with E^hi_st = exp(b (v_st - lowest fee of t)) (0 if t is surely off)
   and E^lo_st = exp(b (v_st - highest fee of t)) (0 if t may be off):
       Pmax_st = E^hi_st / (1 + E^hi_st + sum_{u != t} E^lo_su),
       Pmin_st = E^lo_st / (1 + E^lo_st + sum_{u != t} E^hi_su),
       sum_t P_st <= cap_s = 1 - 1 / (1 + sum_t E^hi_st),
   and a member's margin is at most mu_st = a_st (highest fee of t - k_st). Then
       profit_s <= max { sum_t mu_st P_t : Pmin_s <= P <= Pmax_s, sum_t P_t <= cap_s }
   (a fractional knapsack, solved greedily), minus the fixed cost of tiers on throughout the
   box: a valid upper bound that is exact on a single fee vector. Boxes where two tiers on
   throughout cannot meet fee_order are dropped. Best-first search, a box split in halves
   along its widest tier, a batch of boxes bounded at once; incumbents from a coordinate
   ascent and each box's centre. It stops when no open box can beat the incumbent by more
   than options.gap: the answer is optimal on the fee grid (exact when every tier has a
   ``fee_step``; with continuous fees, fees between grid points are not searched).
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

import numpy as np
from scipy.optimize import minimize

from models.membership_pricing import Market, MembershipPricing, market, mnl_probabilities, mnl_solution_document
from optimizers.backends import BACKENDS, solve_linear
from optimizers.linear import LinearModel
from optimizers.membership_pricing.bestfirst import BestFirst
from optimizers.membership_pricing.grid import describe_grids, grids, mnl_profit, order_ok
from optimizers.registry import MethodOutput, remaining
from optimizers.result import SolverOptions, Status, relative_gap
from optimizers.stopping import expired

#: One segment with continuous fees is solved exactly over every menu up to this many tiers.
MAX_MENU_TIERS = 12
#: Boxes taken from the heap per round of the branch and bound.
BATCH = 256


def unsupported(inst: MembershipPricing) -> str | None:
    if inst.choice.model != "mnl":
        return f"the mnl method covers choice model 'mnl' (got '{inst.choice.model}'); use --method milp"
    return None


def run(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    mk = market(inst)
    if len(mk.segment_ids) == 1 and not (mk.step > 0).any() and len(mk.tier_ids) <= MAX_MENU_TIERS:
        lp_backend = backend if backend and not BACKENDS[backend].pure_integer_only else "highs"
        return single_segment(mk, lp_backend, options)
    return branch_and_bound(mk, options)


# ----------------------------------------------------------------------------- A. one segment


def stationary_fees(mk: Market, menu: list[int]) -> tuple[float, np.ndarray]:
    """(pi, fees) at the unique stationary point of one segment's profit over ``menu``."""
    b = mk.price_sensitivity
    a = mk.per_fee[0, menu]
    k = (mk.benefit_cost - mk.uplift)[0, menu]
    c = np.log(a / b) + b * (mk.wtp[0, menu] - k) - 1.0

    def h(y: float) -> float:  # log x - log RHS(x) at x = e^y: increasing in y
        z = c - b * math.exp(y) / a
        top = float(z.max())
        return y - (top + math.log(float(np.exp(z - top).sum())))

    lo, hi = -50.0, 50.0
    while h(lo) > 0:
        lo -= 50.0
    while h(hi) < 0:
        hi += 50.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if h(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15 * max(1.0, abs(hi)):
            break
    x = math.exp(0.5 * (lo + hi))
    return x, k + 1.0 / b + x / a


def single_segment(mk: Market, backend: str, options: SolverOptions) -> MethodOutput:
    start = time.perf_counter()
    T = len(mk.tier_ids)
    forced = [t for t in range(T) if mk.must_offer[t]]
    free = [t for t in range(T) if not mk.must_offer[t]]
    best: tuple[float, np.ndarray] | None = None
    bound: float | None = -math.inf
    interior = constrained = uncertified = infeasible = 0
    for r in range(len(free) + 1):
        for extra in itertools.combinations(free, r):
            menu = sorted(forced + list(extra))
            fee = np.full(T, np.nan)
            if not menu:
                value, menu_bound = 0.0, 0.0
            else:
                x, p = stationary_fees(mk, menu)
                fee[menu] = p
                tol = 1e-9 * np.maximum(1.0, np.abs(p))
                inside = bool(np.all(p >= mk.min_fee[menu] - tol) and np.all(p <= mk.max_fee[menu] + tol))
                fee[menu] = np.clip(p, mk.min_fee[menu], mk.max_fee[menu])
                if inside and order_ok(mk, fee[None], ~np.isnan(fee)[None])[0]:
                    interior += 1
                    value = float(mnl_profit(mk, fee[None])[0])
                    menu_bound = x - float(mk.fixed_cost[menu].sum())  # the stationary point of a concave program
                else:
                    found = constrained_menu(mk, menu, backend, remaining(options, start))
                    if found is None:
                        infeasible += 1
                        continue
                    constrained += 1
                    fee, value, certified = found
                    if certified is None:
                        uncertified += 1
                        menu_bound = math.inf
                    else:
                        menu_bound = certified - float(mk.fixed_cost[menu].sum())
            if best is None or value > best[0]:
                best = (value, fee)
            bound = max(bound, menu_bound) if bound is not None else None
    meta: dict[str, Any] = {"algorithm": "one segment: equal adjusted markup per menu", "menus_interior": interior,
                            "menus_constrained": constrained, "menus_infeasible": infeasible}
    if best is None:
        return MethodOutput(Status.INFEASIBLE, message="no menu has fees within the bounds and fee_order", meta=meta)
    solution = mnl_solution_document(mk, best[1])
    objective = float(solution["profit"])
    if bound is not None and math.isfinite(bound):
        bound = max(bound, objective)
    else:
        bound = None
    gap = relative_gap(objective, bound)
    how = (f"one segment, continuous fees: stationary point of the equal adjusted markup on {interior} menu(s), "
           f"concave share-space program with a Frank-Wolfe LP bound on {constrained} menu(s) where bounds or fee_order bind")
    if gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12:
        return MethodOutput(Status.OPTIMAL, objective, bound, solution, how, meta)
    return MethodOutput(Status.FEASIBLE, objective, bound, solution, how + f"; not proven within gap {options.gap} (gap {gap})", meta)


def constrained_menu(mk: Market, menu: list[int], backend: str, options: SolverOptions) -> tuple[np.ndarray, float, float | None] | None:
    """Best fees for ``menu`` under bounds and fee_order: (fees, profit with fixed costs, bound
    on the profit without fixed costs or None), or None when the menu has no feasible fees."""
    T = len(mk.tier_ids)
    n = len(menu)
    where = {t: i for i, t in enumerate(menu)}
    chain = [where[t] for t in mk.order if t in where]
    pairs = list(zip(chain, chain[1:]))
    L, U = mk.min_fee[menu], mk.max_fee[menu]
    low = L.copy()
    for i, j in pairs:
        low[j] = max(low[j], low[i] + mk.gap)
    if np.any(low > U + 1e-9 * np.maximum(1.0, U)):
        return None
    b = mk.price_sensitivity
    a = mk.per_fee[0, menu]
    k = (mk.benefit_cost - mk.uplift)[0, menu]
    v = mk.wtp[0, menu]

    def shares(p: np.ndarray) -> np.ndarray:
        fee = np.full(T, np.nan)
        fee[menu] = p
        return mnl_probabilities(mk, fee)[0, menu]

    def profit(p: np.ndarray) -> float:
        return float(np.sum(a * (p - k) * shares(p)))

    def grad(p: np.ndarray) -> np.ndarray:
        P = shares(p)
        return P * (a * (1.0 - b * (p - k)) + b * float(np.sum(a * (p - k) * P)))

    D = np.zeros((len(pairs), n))
    for r, (i, j) in enumerate(pairs):
        D[r, j], D[r, i] = 1.0, -1.0
    constraints = [{"type": "ineq", "fun": lambda p: D @ p - mk.gap, "jac": lambda p: D}] if pairs else []
    _, p_star = stationary_fees(mk, menu)
    guess = np.clip(p_star, low, U)
    for i, j in pairs:
        guess[j] = max(guess[j], guess[i] + mk.gap)
    starts = [low, guess] if np.all(guess <= U) else [low]
    scale = max(1.0, abs(profit(low)), float(np.abs(a).max()))
    best: tuple[float, np.ndarray] | None = None
    for x0 in starts:
        res = minimize(lambda p: -profit(p) / scale, x0, jac=lambda p: -grad(p) / scale, method="SLSQP",
                       bounds=list(zip(L, U)), constraints=constraints, options={"ftol": 1e-15, "maxiter": 500})
        p = np.clip(res.x, L, U)
        for i, j in pairs:  # undo rounding noise in the differences
            if p[j] - p[i] < mk.gap:
                p[j] = min(U[j], p[i] + mk.gap)
        if pairs and np.any(D @ p < mk.gap - 1e-9 * max(1.0, float(np.abs(p).max()))):
            continue
        if best is None or profit(p) > best[0]:
            best = (profit(p), p)
    if best is None:
        best = (profit(low), low)
    p = best[1]
    fee = np.full(T, np.nan)
    fee[menu] = p
    value = float(mnl_profit(mk, fee[None])[0])
    return fee, value, share_space_bound(mk, menu, pairs, p, a, k, v, backend, options)


def _expit(z: np.ndarray) -> np.ndarray:
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def share_space_bound(mk: Market, menu: list[int], pairs: list[tuple[int, int]], p: np.ndarray, a: np.ndarray, k: np.ndarray,
                      v: np.ndarray, backend: str, options: SolverOptions) -> float | None:
    """pi(P*) + max over the share polytope of grad pi(P*) . (P - P*): an upper bound on the
    menu's profit (fixed costs excluded) because pi is concave in shares."""
    b = mk.price_sensitivity
    n = len(menu)
    fee = np.full(len(mk.tier_ids), np.nan)
    fee[menu] = p
    P = mnl_probabilities(mk, fee)[0, menu]
    P0 = 1.0 - float(P.sum())
    A = float(np.sum(a * P))
    pi = float(np.sum(a * (p - k) * P))
    g = a * (p - k) - a / b - A / (b * P0)
    m = LinearModel(name="mnl-share-bound", maximize=True)
    x = m.add_variables("share", n, lb=0.0, ub=1.0, cost=g)
    idx = np.arange(n)
    # p_t <= U_t: expit(-z) P_t + expit(z) sum P >= expit(z), z = b (v_t - U_t); p_t >= L_t likewise with <=
    for name, z, sense in (("fee_max", b * (v - mk.max_fee[menu]), "lo"), ("fee_min", b * (v - mk.min_fee[menu]), "hi")):
        rows = np.concatenate([idx, np.repeat(idx, n)])
        cols = np.concatenate([x, np.tile(x, n)])
        vals = np.concatenate([_expit(-z), np.repeat(_expit(z), n)])
        if sense == "lo":
            m.add_constraints(name, n, rows, cols, vals, lo=_expit(z))
        else:
            m.add_constraints(name, n, rows, cols, vals, hi=_expit(z))
    if pairs:  # P_j <= e^w P_i, w = b (v_j - v_i - g)
        w = np.array([b * (v[j] - v[i] - mk.gap) for i, j in pairs])
        r = np.arange(len(pairs))
        m.add_constraints("fee_order", len(pairs), np.concatenate([r, r]), np.concatenate([x[[j for _, j in pairs]], x[[i for i, _ in pairs]]]),
                          np.concatenate([_expit(-w), -_expit(w)]), hi=0.0)
    m.add_constraints("shares_sum", 1, np.zeros(n, np.int64), x, 1.0, hi=1.0)
    out = solve_linear(m, backend, options)
    if out.status is not Status.OPTIMAL or out.objective is None:
        return None
    safety = 1e-9 * (float(np.abs(g).sum()) + abs(pi))
    return pi + float(out.objective) - float(g @ P) + safety


# ----------------------------------------------------------------------------- B. fee grids


class GridBoxes:
    """Fee grids as index ranges, and the box bound of the module docstring."""

    def __init__(self, mk: Market, grid: list[np.ndarray]) -> None:
        self.mk = mk
        T = len(grid)
        self.K = np.array([len(g) for g in grid])
        self.can_off = ~mk.must_offer
        self.top = self.K - 1 + self.can_off  # largest index per tier
        self.fee = np.full((T, int(self.K.max()) + 1), np.nan)
        for t, g in enumerate(grid):
            self.fee[t, : len(g)] = g
        self.k = mk.benefit_cost - mk.uplift
        self.pairs = [(i, j) for n, i in enumerate(mk.order) for j in mk.order[n + 1 :]]

    def fees(self, idx: np.ndarray) -> np.ndarray:
        """(B, T) fee vectors of index vectors (NaN: not offered)."""
        f = self.fee[np.arange(idx.shape[1])[None, :], np.minimum(idx, self.K - 1)]
        return np.where(idx >= self.K, np.nan, f)

    def bounds(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        mk = self.mk
        T = lo.shape[1]
        ar = np.arange(T)[None, :]
        sure_off = lo >= self.K
        may_off = hi >= self.K
        plo = self.fee[ar, np.minimum(lo, self.K - 1)]
        phi = self.fee[ar, np.minimum(hi, self.K - 1)]
        b = mk.price_sensitivity
        uhi = np.where(sure_off[:, None, :], -np.inf, b * (mk.wtp[None] - plo[:, None, :]))
        ulo = np.where(may_off[:, None, :], -np.inf, b * (mk.wtp[None] - phi[:, None, :]))
        top = np.maximum(uhi.max(axis=2), 0.0)
        one = np.exp(-top)
        ehi = np.exp(uhi - top[..., None])
        elo = np.exp(ulo - top[..., None])
        shi, slo = ehi.sum(axis=2), elo.sum(axis=2)
        pmax = ehi / (one[..., None] + ehi + np.maximum(slo[..., None] - elo, 0.0))
        pmin = elo / (one[..., None] + elo + np.maximum(shi[..., None] - ehi, 0.0))
        pmin = np.minimum(pmin, pmax)
        cap = shi / (one + shi)
        mu = np.where(sure_off[:, None, :], 0.0, mk.per_fee[None] * (phi[:, None, :] - self.k[None]))
        base = (mu * pmin).sum(axis=2)
        extra = np.where(mu > 0, pmax - pmin, 0.0)
        room = np.maximum(cap - pmin.sum(axis=2), 0.0)
        order = np.argsort(-mu, axis=2)
        mu_s = np.take_along_axis(mu, order, axis=2)
        ex_s = np.take_along_axis(extra, order, axis=2)
        take = np.clip(room[..., None] - (np.cumsum(ex_s, axis=2) - ex_s), 0.0, ex_s)
        seg = base + (np.maximum(mu_s, 0.0) * take).sum(axis=2)
        ub = seg.sum(axis=1) - (~may_off * mk.fixed_cost[None]).sum(axis=1)
        ub = ub + 1e-12 * np.abs(ub)  # rounding in the sums
        on = ~may_off
        for i, j in self.pairs:  # two tiers on throughout the box must leave room for the gap
            bad = on[:, i] & on[:, j] & (phi[:, j] - plo[:, i] < mk.gap - 1e-9 * np.maximum(1.0, np.abs(phi[:, j])))
            ub = np.where(bad, -np.inf, ub)
        return np.asarray(ub)

    def exact(self, idx: np.ndarray) -> np.ndarray:
        return mnl_profit(self.mk, self.fees(idx))


def ascent(gb: GridBoxes, start: np.ndarray, deadline: float | None) -> tuple[float, np.ndarray]:
    """Coordinate ascent over the grid from ``start``: each tier in turn moved to its best index."""
    idx = start.copy()
    value = float(gb.exact(idx[None])[0])
    for _ in range(50):
        improved = False
        for t in range(len(idx)):
            trial = np.repeat(idx[None], int(gb.top[t]) + 1, axis=0)
            trial[:, t] = np.arange(int(gb.top[t]) + 1)
            vals = gb.exact(trial)
            j = int(np.argmax(vals))
            if vals[j] > value + 1e-12 * max(1.0, abs(value)):
                value, idx = float(vals[j]), trial[j].copy()
                improved = True
        if not improved or expired(deadline):
            break
    return value, idx


def branch_and_bound(mk: Market, options: SolverOptions) -> MethodOutput:
    start = time.perf_counter()
    deadline = None if options.time_limit_s is None else start + options.time_limit_s
    grid = grids(mk)
    gb = GridBoxes(mk, grid)
    T = len(grid)
    lo0 = np.zeros(T, np.int64)
    hi0 = gb.top.astype(np.int64)
    best_value, best_idx = -math.inf, None
    for first in (np.minimum((gb.K - 1) // 2, hi0), np.zeros(T, np.int64), gb.K - 1):
        value, idx = ascent(gb, first.astype(np.int64), deadline)
        if value > best_value:
            best_value, best_idx = value, idx
    root = float(gb.bounds(lo0[None], hi0[None])[0])
    queue = BestFirst(options.gap)
    queue.best = best_value
    if root > -math.inf:
        queue.push(root, lo0, hi0)
    boxes = 1
    stopped = False

    while not queue.done():
        if expired(deadline):
            stopped = True
            break
        batch = queue.pop(BATCH)
        lo = np.array([e[0] for e in batch])
        hi = np.array([e[1] for e in batch])
        width = hi - lo
        tier = np.argmax(width, axis=1)
        rows = np.arange(len(batch))
        mid = (lo[rows, tier] + hi[rows, tier]) // 2
        lo_a, hi_a = lo.copy(), hi.copy()
        hi_a[rows, tier] = mid
        lo_b, hi_b = lo.copy(), hi.copy()
        lo_b[rows, tier] = mid + 1
        clo, chi = np.concatenate([lo_a, lo_b]), np.concatenate([hi_a, hi_b])
        boxes += len(clo)
        ub = gb.bounds(clo, chi)
        centre = (clo + chi) // 2
        vals = gb.exact(centre)
        j = int(np.argmax(vals))
        if vals[j] > best_value:
            best_value, best_idx = float(vals[j]), centre[j].copy()
        queue.best = best_value
        leaf = np.all(clo == chi, axis=1)
        for c in np.flatnonzero(~leaf & (ub > -np.inf)):
            queue.push(float(ub[c]), clo[c], chi[c])
    open_bound, dropped = queue.open_bound, queue.dropped
    meta: dict[str, Any] = {"algorithm": "branch and bound over fee-grid boxes", "boxes": boxes, "grid": describe_grids(mk, grid)}
    on_grid = "every tier has a fee_step: the grid is the whole domain" if (mk.step > 0).all() else (
        "optimality is relative to the fee grid (fees between grid points are not searched)")
    if best_idx is None or best_value == -math.inf:
        if stopped:
            return MethodOutput(Status.NO_SOLUTION, bound=open_bound if open_bound > -math.inf else None,
                                message="time limit reached before a feasible fee vector was found", meta=meta)
        return MethodOutput(Status.INFEASIBLE, message="no fee vector on the grid meets the fee bounds and fee_order", meta=meta)
    solution = mnl_solution_document(mk, gb.fees(best_idx[None])[0])
    objective = float(solution["profit"])
    bound = max(objective, best_value, open_bound, dropped)
    gap = relative_gap(objective, bound)
    if not stopped and gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12:
        return MethodOutput(Status.OPTIMAL, objective, bound, solution, f"optimal on the fee grid ({on_grid})", meta)
    return MethodOutput(Status.FEASIBLE, objective, bound, solution,
                        f"time limit reached: best fee vector on the grid with bound {bound:.10g} ({on_grid})", meta)
