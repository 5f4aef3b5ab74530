r"""Stock plans over scenarios by Lagrangian relaxation of the demand rows (no extensive form).

The model of ``milp.py`` without transfers, ``max_skus`` or single sourcing, with pre-sale in
at most one scenario w*. Arc-SKU pairs (a, k), a = (i, j); scenario w has probability p_w.
Relax the demand rows (multipliers u_jkw, free), the pre-sale order caps of w*
(rho_jk >= 0) and each scenario's promise row sum_{k, a in A_P} (x + q)_akw >= alpha_w D_w
(mu_w >= 0; the per-SKU promised units P_kw drop out). What is left splits by site:

    L(u, rho, mu) = sum u_jkw d_jkw - sum rho_jk pi d_jkw* + sum mu_w alpha_w D_w
                    + sum_jkw d_jkw min(0, p_w c0_k - u_jkw, p_w l_k - u_jkw)     (depot, lost)
                    + min { sum_i (f_i + S_i) y_i : y binary, must-open, closed, sum y <= P }

with S_i the site's LP when open: stock s_ik >= 0 at holding h_k ships in each scenario w up
to s_ik units over its arcs at reduced cost r_akw = p_w c_a - u_jkw - mu_w [a in A_P]
(0 <= x <= d_jkw, the strong rows with y_i = 1), pre-sale units q_ak at
p_w* (c_a + h_k) - u_jkw* + rho_jk - mu_w* [a in A_P] (0 <= q <= pi d_jkw*), and
sum_k v_k (s_ik + sum_a q_ak) <= Q_i. Shipping the most negative arcs first makes the value
of stock phi_ik(s) = h_k s + sum_w g_ikw(s) convex piecewise linear, so S_i is a continuous
knapsack over the segments of every phi_ik and every pre-sale arc, taken by slope per unit
of volume. Each L is a lower bound on the optimum, and its best value is at least the strong
LP relaxation's. The multipliers follow a proximal bundle method (a cutting-plane model of L
from the subgradients met, steps kept near the best multipliers).

Plans: the k largest openings of the weak LP relaxation (no strong rows, a few cheapest arcs
per zone), k searched around the number at least 1/2, each with its best stock and flows by
the extensive form of those open sites on the cheapest arcs into each zone (an LP once the
openings are fixed, by the dual simplex; a plan of the full instance). That LP's duals on the
relaxed rows are multipliers too: the bundle method starts from the best of them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.front_warehouse import FrontWarehouse, network
from optimizers import progress
from optimizers.backends.lp import LPSolution, solve_lp_stoppable
from optimizers.front_warehouse import milp
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status, relative_gap
from optimizers.stopping import expired

log = logging.getLogger(__name__)
STEPS = 5000  # bundle steps at most
BUNDLE_SIZE = 25  # cuts kept: the active ones and their aggregate
CONVERGED = 1e-6  # of the bound: the bundle stops when its model predicts no larger gain
NULL_PATIENCE = 30  # null steps that show the model far off before t halves (1: stalls 0.15% below the LP on 6 x 30 x 3)
SERIOUS = 0.1  # share of its predicted gain a step must realise to move the centre
FIRST_GAIN = 0.02  # of the first bound: the gain the first step aims at (from first_multipliers)
BOUND_SHARE = 0.3  # of the time limit for the bound before plans from the relaxation are priced
PLAN_ARCS_PER_ZONE = 6  # arcs into each zone from the open sites in a plan's LP (60x1000: 4 cost 0.5% more, 10 0.1% less)
LP_ARCS_PER_ZONE = 4  # arcs into each zone in the LP whose openings are rounded into the first plans
COUNT_STEP = 2  # sites added or dropped per probe of the search over how many of the LP's largest openings open
PLAN_SHARE = 0.5  # of the time limit, at most, for that LP and its rounded plans
DUAL_GAIN = 0.002  # of the bound: the gain the first step from a plan's LP duals aims at


def unsupported(inst: FrontWarehouse) -> str | None:
    net = network(inst)
    found = {
        "transfers": any(len(f) for f in net.transfer_from),
        "max_skus": bool(net.max_skus.any()),
        "single sourcing": bool(inst.single_source),
        "pre-sale in more than one scenario": int((net.presale > 0).sum()) > 1,
    }
    extras = [name for name, present in found.items() if present]
    return f"does not cover {', '.join(extras)} (use --method benders or milp)" if extras else None


@dataclass
class Split:
    """The instance as arrays over the arc-SKU pairs n that some scenario demands."""

    net: Any
    max_open: int | None
    site: np.ndarray  # (n,)
    zone: np.ndarray
    sku: np.ndarray
    cost: np.ndarray  # c_a
    within: np.ndarray  # bool, arc within the promise
    demand: np.ndarray  # (W, n) d_jkw of the pair's zone and SKU
    presale_w: int | None  # w*, the scenario with pre-sale, if any
    order: list[np.ndarray]  # per scenario, the pairs it demands by (site, SKU) then reduced cost at the last multipliers
    group: np.ndarray  # (n,) site * K + SKU
    jk: np.ndarray  # (n,) zone * K + SKU
    fallback: np.ndarray  # (W, J, K) p_w times the cheaper of the depot and a lost sale (inf: neither)
    total: np.ndarray  # (W,) demand D_w

    @classmethod
    def of(cls, inst: FrontWarehouse) -> Split:
        net = network(inst)
        wanted = net.scen_demand.max(axis=0) > 0
        arc, sku = np.nonzero(wanted[net.arc_zone])
        zone = net.arc_zone[arc]
        pre = np.flatnonzero(net.presale > 0)
        per_unit = np.broadcast_to(net.fallback_cost, net.scen_demand.shape)
        fallback = np.where(np.isfinite(per_unit), net.probability[:, None, None] * per_unit, np.inf)
        return cls(net, inst.max_open_sites, net.arc_site[arc], zone, sku, net.arc_cost[arc], net.within_promise[arc],
                   net.scen_demand[:, zone, sku], int(pre[0]) if len(pre) else None,
                   [np.flatnonzero(net.scen_demand[w, zone, sku] > 0) for w in range(len(net.scenario_ids))],
                   net.arc_site[arc] * len(net.sku_ids) + sku, zone * len(net.sku_ids) + sku, fallback, net.scen_demand.sum(axis=(1, 2)))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        net = self.net
        return len(net.site_ids), len(net.zone_ids), len(net.sku_ids), len(net.scenario_ids)


@dataclass
class Multipliers:
    u: np.ndarray  # (W, J, K)
    rho: np.ndarray  # (J, K), >= 0
    mu: np.ndarray  # (W,), >= 0

    def flat(self) -> np.ndarray:
        """u, rho, mu as one vector (the signed multipliers first)."""
        return np.concatenate([self.u.ravel(), self.rho.ravel(), self.mu.ravel()])

    def like(self, v: np.ndarray) -> Multipliers:
        """A vector from :meth:`flat` back in this shape (rho and mu at least 0)."""
        nu, nr = self.u.size, self.rho.size
        return Multipliers(v[:nu].reshape(self.u.shape), np.maximum(0.0, v[nu:nu + nr]).reshape(self.rho.shape), np.maximum(0.0, v[nu + nr:]))


@dataclass
class Relaxation:
    value: float
    open: np.ndarray  # (I,) bool
    slope: Multipliers  # the subgradient


def _segmented_before(group: np.ndarray, length: np.ndarray) -> np.ndarray:
    """For items sorted by group: the total length ahead of each item within its group."""
    cum = np.cumsum(length)
    first = np.r_[True, group[1:] != group[:-1]] if len(group) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, cum - length, 0.0)) if len(group) else cum
    return cum - length - start


def _sorted_within(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The order by group, then key (both as one float: group + key scaled into [0, 1/2]).
    Timsort, so input that is nearly in this order already (last step's) sorts in about
    linear time."""
    if not len(key):
        return np.zeros(0, np.int64)
    finite = np.isfinite(key)
    low = float(key[finite].min(initial=0.0))
    span = float(key[finite].max(initial=0.0)) - low
    scaled = np.where(finite, (key - low) / (2.0 * span) if span > 0 else 0.0, np.where(key < 0, 0.0, 0.5))
    return np.argsort(group + scaled, kind="stable")


def relax(sp: Split, m: Multipliers) -> Relaxation:
    """L(u, rho, mu), the subproblem's sites and the subgradient."""
    net = sp.net
    I, J, K, W = sp.shape
    vol, hold, prob = net.volume, net.holding, net.probability
    group, jk = sp.group, sp.jk
    u_flat = m.u.reshape(W, J * K)
    # per scenario: the pairs of negative reduced cost, by (site, SKU) then reduced cost
    ships = []
    events_g, events_pos, events_jump = [], [], []
    start_slope = hold[np.arange(I * K) % K].astype(float)  # phi_ik's first slope: h_k + each scenario's best arc
    for w in range(W):
        r = prob[w] * sp.cost - u_flat[w][jk] - m.mu[w] * sp.within
        previous = sp.order[w]
        r_prev = r[previous]
        again = _sorted_within(group[previous], r_prev)
        sp.order[w] = previous[again]
        order = sp.order[w][r_prev[again] < 0]
        g, d, rr = group[order], sp.demand[w][order], r[order]
        before = _segmented_before(g, d)
        last = np.r_[g[1:] != g[:-1], True] if len(g) else np.zeros(0, bool)
        following = np.where(last, 0.0, np.r_[rr[1:], 0.0])
        first = np.r_[True, last[:-1]] if len(g) else np.zeros(0, bool)
        start_slope += np.bincount(g[first], weights=rr[first], minlength=I * K)
        events_g.append(g)
        events_pos.append(before + d)
        events_jump.append(following - rr)
        ships.append((order, before, d))
    # phi_ik: its slope starts at h_k + the first reduced costs and rises at each breakpoint
    eg, epos, ejump = np.concatenate(events_g), np.concatenate(events_pos), np.concatenate(events_jump)
    o = _sorted_within(eg, epos)  # runs sorted by group and position, merged
    eg, epos, ejump = eg[o], epos[o], ejump[o]
    first = np.r_[True, eg[1:] != eg[:-1]] if len(eg) else np.zeros(0, bool)
    risen = _segmented_before(eg, ejump)  # jumps ahead within the group
    seg_slope = start_slope[eg] + risen
    seg_len = epos - np.where(first, 0.0, np.r_[0.0, epos[:-1]])
    keep = (seg_slope < 0) & (seg_len > 0)
    s_group, s_len, s_slope = eg[keep], seg_len[keep], seg_slope[keep]
    # pre-sale arcs of w*
    if sp.presale_w is not None:
        w = sp.presale_w
        pi = net.presale[w]
        rq = prob[w] * (sp.cost + hold[sp.sku]) - u_flat[w][jk] + m.rho.ravel()[jk] - m.mu[w] * sp.within
        q_pairs = np.flatnonzero((rq < 0) & (sp.demand[w] > 0))
        q_len, q_slope = pi * sp.demand[w][q_pairs], rq[q_pairs]
    else:
        q_pairs, q_len, q_slope = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    # each site's knapsack over its segments, best slope per unit of volume first
    seg_site = np.concatenate([s_group // K, sp.site[q_pairs]])
    seg_sku = np.concatenate([s_group % K, sp.sku[q_pairs]])
    length = np.concatenate([s_len, q_len])
    slope = np.concatenate([s_slope, q_slope])
    per_volume = np.where(vol[seg_sku] > 0, slope / np.maximum(vol[seg_sku], 1e-300), -np.inf)
    o = _sorted_within(seg_site, per_volume)  # each (site, SKU) is a run already
    volume_len = length[o] * vol[seg_sku[o]]
    ahead = _segmented_before(seg_site[o], volume_len)
    room = np.clip(net.capacity[seg_site[o]] - ahead, 0.0, volume_len)
    taken = np.zeros(len(length))
    taken[o] = np.where(volume_len > 0, room / np.maximum(vol[seg_sku[o]], 1e-300), length[o])
    site_value = net.fixed_cost + np.bincount(seg_site, weights=taken * slope, minlength=I)
    y = _choose_sites(sp, site_value)
    n_s = len(s_group)
    stock = np.bincount(s_group, weights=taken[:n_s], minlength=I * K) * np.repeat(y, K)
    q = np.zeros(len(sp.site))
    q[q_pairs] = taken[n_s:] * y[sp.site[q_pairs]]
    # what the subproblem serves, and the subgradient
    fallback_gain = np.minimum(0.0, sp.fallback - m.u)
    served = np.where(fallback_gain < 0, net.scen_demand, 0.0).reshape(W, J * K)
    promised = np.zeros(W)
    for w, (order, before, d) in enumerate(ships):
        x = np.clip(stock[group[order]] - before, 0.0, d)
        served[w] += np.bincount(jk[order], weights=x, minlength=J * K)
        promised[w] += float(x[sp.within[order]].sum())
    grho = np.zeros((J, K))
    if sp.presale_w is not None:
        w = sp.presale_w
        q_by_zone = np.bincount(jk, weights=q, minlength=J * K)
        served[w] += q_by_zone
        promised[w] += float(q[sp.within].sum())
        q_by_zone = q_by_zone.reshape(J, K)
        grho = q_by_zone - net.presale[w] * net.scen_demand[w]
    total = sp.total
    value = (float((m.u * net.scen_demand).sum()) + float((m.mu * net.promise_share * total).sum())
             + float((net.scen_demand * fallback_gain).sum()) + float(site_value[y].sum()))
    if sp.presale_w is not None:
        value -= float((m.rho * net.presale[sp.presale_w] * net.scen_demand[sp.presale_w]).sum())
    gmu = np.where(net.promise_share > 0, net.promise_share * total - promised, 0.0)
    return Relaxation(value, y, Multipliers(net.scen_demand - served.reshape(W, J, K), grho, gmu))


def _choose_sites(sp: Split, site_value: np.ndarray) -> np.ndarray:
    """min sum v_i y_i over the open-site rules: must-open sites, then the most negative
    values (at most max_open in all)."""
    net = sp.net
    y = net.must_open.copy()
    free = np.flatnonzero(~net.must_open & ~net.closed & (site_value < 0))
    free = free[np.argsort(site_value[free], kind="stable")]
    if sp.max_open is not None:
        free = free[: max(0, sp.max_open - int(y.sum()))]
    y[free] = True
    return y


def first_multipliers(sp: Split) -> Multipliers:
    """u: each unit's cheapest way in: the cheapest arc plus holding and the median rent of
    its volume (stock serves every scenario, so each pays its probability's share), or the
    depot / a lost sale when that is cheaper."""
    net = sp.net
    I, J, K, W = sp.shape
    usable = ~net.closed & (net.capacity > 0)
    rent = float(np.median(net.fixed_cost[usable] / net.capacity[usable])) if usable.any() else 0.0
    cheapest = np.full((J, K), np.inf)
    np.minimum.at(cheapest, (sp.zone, sp.sku), sp.cost + net.holding[sp.sku] + rent * net.volume[sp.sku])
    fallback = net.fallback_cost
    per_unit = np.minimum(cheapest, fallback[None, :])
    per_unit = np.where(np.isfinite(per_unit), per_unit, 0.0)
    return Multipliers(net.probability[:, None, None] * per_unit[None], np.zeros((J, K)), np.zeros(W))


@dataclass
class Plan:
    cost: float
    solution: dict[str, Any]
    duals: Multipliers | None = None  # its LP's duals: multipliers for the bound


def cheapest_arcs(net: Any, sites: np.ndarray, per_zone: int) -> np.ndarray:
    """A mask of the ``per_zone`` cheapest arcs into each zone from ``sites``."""
    arcs = np.flatnonzero(sites[net.arc_site])
    order = arcs[np.lexsort((net.arc_cost[arcs], net.arc_zone[arcs]))]
    zone = net.arc_zone[order]
    rank = np.arange(len(order)) - np.searchsorted(zone, zone)
    keep = np.zeros(len(net.arc_site), bool)
    keep[order[rank < per_zone]] = True
    return keep


def _solve(f: milp.Formulation, deadline: float, method: str) -> LPSolution:
    m = f.model
    left = None if not math.isfinite(deadline) else max(0.01, deadline - time.perf_counter())
    return solve_lp_stoppable(m.cost, m.matrix(), m.row_lo, m.row_hi, m.lb, m.ub, method=method, time_limit=left)


def duals_as_multipliers(f: milp.Formulation, dual: np.ndarray) -> Multipliers:
    """The multipliers of the rows this relaxation relaxes, read off an LP's duals: demand
    (u), pre-sale order caps (rho >= 0) and each scenario's promise total (mu >= 0)."""
    net, rows = f.net, f.model.row_blocks
    J, K, W = len(net.zone_ids), len(net.sku_ids), len(net.scenario_ids)
    u, rho, mu = np.zeros((W, J, K)), np.zeros((J, K)), np.zeros(W)
    for w in range(W):
        u[w][f.jk_zone, f.jk_sku] = dual[rows[f"demand[{w}]"]]
        if f"presale_orders[{w}]" in rows:
            rho[f.jk_zone, f.jk_sku] = np.maximum(0.0, -dual[rows[f"presale_orders[{w}]"]])
        if f"promise[{w}]" in rows:
            mu[w] = max(0.0, float(dual[rows[f"promise[{w}]"]][0]))
    return Multipliers(u, rho, mu)


def price_plan(inst: FrontWarehouse, sp: Split, sites: np.ndarray, deadline: float) -> Plan | None:
    """The best stock and flows for these open sites, on the cheapest PLAN_ARCS_PER_ZONE arcs
    into each zone from them: the extensive form with the openings fixed, an LP (HiGHS), whose
    duals are multipliers for the bound."""
    f = milp.build(inst, stock_columns=True, arcs=cheapest_arcs(sp.net, sites, PLAN_ARCS_PER_ZONE), open_sites=sites)
    out = _solve(f, deadline, "highs-ds")
    if out.status != "optimal" or out.x is None or out.row_dual is None:
        return None
    return Plan(f.model.objective_value(out.x), milp.read_solution(f, out.x).to_dict(), duals_as_multipliers(f, out.row_dual))


def lp_openings(inst: FrontWarehouse, sp: Split, deadline: float) -> np.ndarray | None:
    """The openings of the weak LP relaxation (``milp.build(strong=False)``) on the
    LP_ARCS_PER_ZONE cheapest arcs into each zone: a guide for rounding (the arcs left out
    make its value no bound), or None if it is not solved by ``deadline``."""
    net = sp.net
    f = milp.build(inst, stock_columns=True, arcs=cheapest_arcs(net, ~net.closed, LP_ARCS_PER_ZONE), strong=False)
    out = _solve(f, deadline, "highs-ipm")
    return None if out.status != "optimal" or out.x is None else np.asarray(out.x[f.y])


def largest(sp: Split, y: np.ndarray, count: int) -> np.ndarray:
    """The must-open sites and the ``count`` free ones with the largest y (within max_open_sites)."""
    net = sp.net
    sites = net.must_open.copy()
    free = np.flatnonzero(~net.must_open & ~net.closed)
    if sp.max_open is not None:
        count = min(count, max(0, sp.max_open - int(sites.sum())))
    sites[free[np.argsort(-y[free], kind="stable")][:max(0, count)]] = True
    return sites


def rounded(sp: Split, y: np.ndarray, threshold: float) -> np.ndarray:
    """The must-open sites and those with y >= threshold (the largest y under max_open_sites)."""
    free = ~sp.net.must_open & ~sp.net.closed
    return largest(sp, y, int((y[free] >= threshold).sum()))


@dataclass
class Cut:
    """L(m) <= L(centre) + error + slope . (m - centre): a subgradient cut (or an aggregate of
    them) with its linearisation error at the centre (>= 0) and its subproblems' sites."""

    slope: np.ndarray
    error: float
    open: np.ndarray  # float: 0/1, or an average for an aggregate


@dataclass
class Search:
    """The best bound and its multipliers (the bundle's centre), the bundle, and the best plan."""

    bound: float = -math.inf
    best: Multipliers | None = None
    best_open: np.ndarray | None = None  # the sites of the relaxation at ``best``
    y_mean: np.ndarray | None = None  # the sites averaged by the last step's cut weights: a fractional primal estimate
    plan: Plan | None = None
    tried: dict[bytes, float] = field(default_factory=dict)  # site sets priced already: their cost (inf: no plan)
    cuts: list[Cut] = field(default_factory=list)
    t: float = 1.0  # the proximal step: the bundle's model is trusted about t * |slope| from the centre

    @property
    def upper(self) -> float:
        return self.plan.cost if self.plan is not None else math.inf


def adopt(sp: Split, search: Search, m: Multipliers, gain_share: float, force: bool = False) -> None:
    """Restart the bundle at ``m`` if its bound beats the best so far (or ``force``); the
    first step aims to gain ``gain_share`` of the bound."""
    r = relax(sp, m)
    if search.best is None or r.value > search.bound or force:
        slope = r.slope.flat()
        search.bound, search.best, search.best_open = r.value, m, r.open
        search.cuts = [Cut(slope, 0.0, r.open.astype(float))]
        search.t = gain_share * max(1.0, abs(r.value)) / max(float(slope @ slope), 1e-300)
        if search.y_mean is None:
            search.y_mean = r.open.astype(float)


def _model_step(cuts: list[Cut], lower: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The proximal step d = argmax min_b (e_b + g_b . d) - |d|^2 / 2t with d >= ``lower``,
    through its dual over the cut weights lam on the simplex: phi(lam) = e . lam +
    sum_i h_i(g(lam)_i), g(lam) = sum_b lam_b g_b, h_i(x) = t x^2 / 2 where t x >= lower_i,
    else x lower_i - lower_i^2 / 2t (the bound binds: d_i = lower_i); grad phi = e + G d.
    Returns (lam, d, the model's predicted gain at d)."""
    G = np.array([c.slope for c in cuts])
    e = np.array([c.error for c in cuts])
    bounded = np.isfinite(lower)

    def phi(lam: np.ndarray) -> tuple[float, np.ndarray]:
        g = lam @ G
        d = np.maximum(t * g, lower)
        at = bounded & (t * g < lower)
        value = float(e @ lam) + 0.5 * t * float((g[~at] ** 2).sum()) + float((g[at] * lower[at] - lower[at] ** 2 / (2 * t)).sum())
        return value, e + G @ d

    from scipy.optimize import minimize

    B = len(cuts)
    start = np.full(B, 1.0 / B)
    scale = max(1e-12, abs(phi(start)[0]))
    res = minimize(lambda lam: tuple(part / scale for part in phi(lam)), start, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * B,
                   constraints=[{"type": "eq", "fun": lambda lam: lam.sum() - 1.0, "jac": lambda lam: np.ones(B)}],
                   options={"maxiter": 200, "ftol": 1e-12})
    lam = np.maximum(res.x, 0.0)
    lam = lam / lam.sum() if lam.sum() > 0 else start
    d = np.maximum(t * (lam @ G), lower)
    return lam, d, float((e + G @ d).min())


def bundle(sp: Split, search: Search, deadline: float, steps: int = STEPS) -> None:
    """Raise the bound by a proximal bundle method (Kiwiel; Frangioni): each step maximises
    the bundle's cutting-plane model of L less |d|^2 / 2t (rho, mu kept >= 0); the centre
    moves when L gains at least SERIOUS of the model's prediction (t doubles when it gains
    half), else the new cut refines the model (t halves when the cut shows the model was far
    off). At most BUNDLE_SIZE cuts: the active ones and their aggregate. On 60 x 1,000 x 20 x 3,
    from a plan's LP duals (1.80 M), it reaches 2.07 M in 35 s and 2.137 M in 200 s, where the
    volume algorithm reached 1.95 M in 300 s."""
    if search.best is None:
        adopt(sp, search, first_multipliers(sp), FIRST_GAIN)
    assert search.best is not None
    nu = search.best.u.size
    restarted_at = -math.inf  # the bound at the last restart
    nulls = 0  # null steps since the last serious one or the last cut in t
    for step in range(steps):
        centre = search.best.flat()
        lower = np.full(len(centre), -np.inf)
        lower[nu:] = -centre[nu:]
        lam, d, predicted = _model_step(search.cuts, lower, search.t)
        gap = search.upper - search.bound
        if (search.plan is not None and gap <= 1e-7 * max(1.0, abs(search.upper))) or expired(deadline):
            break
        if predicted <= CONVERGED * max(1.0, abs(search.bound)):  # converged, or t too small: restart once at the centre
            if restarted_at == search.bound:
                break
            restarted_at = search.bound
            adopt(sp, search, search.best, DUAL_GAIN, force=True)
            continue
        search.y_mean = lam @ np.array([c.open for c in search.cuts])
        if len(search.cuts) >= BUNDLE_SIZE:  # the active cuts and their aggregate
            active = [search.cuts[b] for b in np.argsort(-lam)[: BUNDLE_SIZE - 2] if lam[b] > 1e-12]
            aggregate = Cut(lam @ np.array([c.slope for c in search.cuts]), float(lam @ np.array([c.error for c in search.cuts])), search.y_mean)
            search.cuts = [*active, aggregate]
        m = search.best.like(centre + d)
        r = relax(sp, m)
        slope = r.slope.flat()
        moved = m.flat() - centre
        gain = r.value - search.bound
        if gain >= SERIOUS * predicted:  # serious step: the errors move with the centre
            for c in search.cuts:
                c.error = max(0.0, c.error + float(c.slope @ moved) - gain)
            search.cuts.append(Cut(slope, 0.0, r.open.astype(float)))
            search.bound, search.best, search.best_open = r.value, m, r.open
            nulls = 0
            if gain >= 0.5 * predicted:
                search.t *= 2.0
        else:  # null step
            error = max(0.0, gain - float(slope @ moved))  # the new cut's excess at the centre
            search.cuts.append(Cut(slope, error, r.open.astype(float)))
            nulls += 1
            if error > predicted and nulls >= NULL_PATIENCE:
                search.t, nulls = 0.5 * search.t, 0
        progress.update("bundle method", incumbent=search.upper if search.plan else None, bound=search.bound)
        if step % 50 == 0:
            log.info("scenario lagrangian step %d: bound %.10g, incumbent %.10g", step, search.bound, search.upper)


def _try(inst: FrontWarehouse, sp: Split, search: Search, sites: np.ndarray, deadline: float) -> float:
    """Price ``sites`` (once): the plan's cost, inf if it has none or time ran out first."""
    key = np.packbits(sites).tobytes()
    if key in search.tried:
        return search.tried[key]
    if expired(deadline):
        return math.inf
    progress.update("pricing a plan", detail=f"{int(sites.sum())} sites", incumbent=search.upper if search.plan else None,
                    bound=search.bound if math.isfinite(search.bound) else None)
    plan = price_plan(inst, sp, sites, deadline)
    if plan is None:
        if not expired(deadline):  # out of time says nothing about these sites
            search.tried[key] = math.inf
        return math.inf
    search.tried[key] = plan.cost
    if plan.duals is not None:
        adopt(sp, search, plan.duals, DUAL_GAIN)
    if plan.cost < search.upper:
        search.plan = plan
        log.info("scenario lagrangian: plan %.10g with %d sites", plan.cost, int(sites.sum()))
    return plan.cost


def count_search(price: Callable[[int], float], first: int, most: int, step: int = COUNT_STEP) -> int:
    """A count k in [0, most] of least price(k), by a walk from ``first`` in steps of ``step``
    (up, or down if up is no better) while the price falls, then one step of 1 either side of
    the best (from ``first`` up while it has no plan): the cost of opening the k largest LP
    openings is about unimodal in k (60 x 1,000: k = 28..33 cost 2.259, 2.233, 2.195, 2.198,
    2.214, 2.251 M). ``price`` returns inf when
    no plan is found (or time is out): the walk stops there."""
    costs: dict[int, float] = {}

    def cost(k: int) -> float:
        if k not in costs:
            costs[k] = price(k) if 0 <= k <= most else math.inf
        return costs[k]

    best = first
    while not math.isfinite(cost(best)) and best < most:  # no plan with so few sites: more
        best = min(most, best + step)
    if not math.isfinite(cost(best)):
        return best
    for direction in (step, -step):
        k = best + direction
        while cost(k) < cost(best):
            best, k = k, k + direction
        if best != first:
            break
    for k in (best - 1, best + 1):
        if cost(k) < cost(best):
            best = k
    return best


def _widest(sp: Split, y_mean: np.ndarray) -> np.ndarray:
    """Every site that may open, or under max_open_sites the must-open ones and then the most
    often open in the relaxation."""
    return largest(sp, y_mean, len(sp.net.site_ids))


def run(inst: FrontWarehouse, backend: str | None, options: SolverOptions) -> MethodOutput:
    """Plans first: the weak LP's k largest openings, k by :func:`count_search` from the
    number at least 1/2 (for PLAN_SHARE of the time at most), each priced by its LP, whose
    duals start the bundle method when they bound better than ``first_multipliers``. After
    BOUND_SHARE of the time left, the bundle's averaged sites rounded and the relaxation's
    sites are priced too; the rest of the time raises the bound. Without any plan by then: every site that may open."""
    started = time.perf_counter()
    limit = options.time_limit_s
    end = math.inf if limit is None else started + limit - 0.05
    sp = Split.of(inst)
    search = Search()
    adopt(sp, search, first_multipliers(sp), FIRST_GAIN)
    plans_until = min(end, started + PLAN_SHARE * limit) if limit else math.inf
    progress.update("weak LP relaxation (to round)", bound=search.bound)
    y = lp_openings(inst, sp, plans_until)
    if y is not None:
        free = ~sp.net.must_open & ~sp.net.closed
        pricing_s = 0.0  # how long the last plan took: none is started that would end past plans_until

        def price(count: int) -> float:
            nonlocal pricing_s
            if expired(plans_until - pricing_s):
                return math.inf
            began = time.perf_counter()
            found = _try(inst, sp, search, largest(sp, y, count), end)
            pricing_s = time.perf_counter() - began
            return found

        count_search(price, int((y[free] >= 0.5).sum()), int(free.sum()))
    if not expired(end):  # then plans from the relaxation: its sites, and its averaged sites rounded
        bundle(sp, search, min(end, time.perf_counter() + (BOUND_SHARE * (end - time.perf_counter()) if limit else 300.0)))
        assert search.best_open is not None and search.y_mean is not None
        for sites in (rounded(sp, search.y_mean, 0.5), search.best_open | sp.net.must_open):
            _try(inst, sp, search, sites, end)
    if not expired(end):
        bundle(sp, search, end)
    if search.plan is None:  # the relaxation's sites cannot serve every scenario: open all that may open
        assert search.y_mean is not None
        _try(inst, sp, search, _widest(sp, search.y_mean), end)
    meta = {"lagrangian_bound": search.bound, "plans_priced": len(search.tried), "lp_rounded": y is not None}
    if search.plan is None:
        return MethodOutput(Status.NO_SOLUTION, bound=search.bound if math.isfinite(search.bound) else None,
                            message="no plan found" + (" within the time limit" if expired(end) else ""), meta=meta)
    objective = search.plan.cost
    bound = min(search.bound, objective)
    gap = relative_gap(objective, bound)
    status = Status.OPTIMAL if gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12 else Status.FEASIBLE
    return MethodOutput(status, objective, bound, search.plan.solution, meta=meta)
