r"""The location core by Lagrangian relaxation and branch and bound on the sites.

Location core: one SKU, one scenario, every zone served by the sites (no depot, lost sales
or promise), multi-source. With Q_i the capacity in units and arcs a = (i, j) of cost c_a:

    min  sum_i f_i y_i + sum_a c_a x_a
    s.t. sum_{a into j} x_a = d_j                 (relaxed with multipliers u_j)
         sum_{a out of i} x_a <= Q_i y_i,  0 <= x_a <= d_j y_i,  y binary
         sum_i Q_i y_i >= D = sum_j d_j           (a valid row kept in the subproblem)

For fixed u the problem splits by site: v_i = f_i + K_i(u) with K_i the continuous knapsack
min sum_a (c_a - u_j) x_a, sum x_a <= Q_i, 0 <= x_a <= d_j (most negative reduced cost
first), and L(u) = sum_j u_j d_j + min { sum_i v_i y_i : sum_i Q_i y_i >= D } (a covering
knapsack: greedy when capacities are equal, else dynamic programming on a capacity grid).
Every L(u) is a lower bound; u follows subgradient steps (Polyak, towards the incumbent).
Incumbents: the least-value cover of the demand at the subproblem's site values (capacities
rounded down, so it does cover) and, after the root, the rounding of the running average of
the subproblems' sites (y_mean >= 1/2), each made to reach every zone and topped up to the
demand; flows by a min-cost flow (the exact transportation LP for final prices); then add /
drop / swap local search over the sites that do open in the subproblems, most promising by
y_mean first. Fixing: a site whose other state raises L above the cutoff (incumbent less the
gap) keeps its state. Branch and bound on the sites closes the gap: each node re-bounds the
restricted core from its parent's multipliers, fixes what it can, and branches on the site
most often half open in the subproblems of its steps (their running average is a fractional
primal estimate, as in Görtz & Klose's branch and bound for this problem), diving into the
better child while its bound is low; the local search polishes each new incumbent. Single
sourcing keeps this bound (a relaxation) and assigns the plan's sites one per zone.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.front_warehouse import Flow, FrontWarehouse, FrontWarehouseSolution, Stock, beyond_location_core, network
from optimizers import progress
from optimizers.backends.lp import solve_lp
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status, relative_gap
from optimizers.stopping import expired, now

log = logging.getLogger(__name__)
STEPS = 600  # subgradient steps at most at the root
PATIENCE = 25  # steps without a better bound before the step size halves
LP_EVERY = 4  # steps between transport LPs for incumbents
LP_SHARE = 0.5  # of the subgradient time, at most, in those LPs
FLIP_EVERY = 5  # steps between updates of the per-site bounds used for fixing
COVER_GRID = 20_000  # capacity steps of the covering knapsack
NODE_STEPS = 40  # subgradient steps per branch-and-bound node
NODE_THETA = 1.5  # their first step size factor
NODE_PATIENCE = 8  # steps without a better bound before it halves
Y_CANDIDATE = 0.01  # sites open less often than this in the subproblems are not opened by the local search
TRANSPORT_ARCS_PER_ZONE = 6  # arcs into each zone that a transportation LP starts with
NEAREST_ARCS = 8  # arcs into each zone, from the open sites, of the min-cost flows that price incumbents
Y_MEAN_WEIGHT = 0.1  # of each step's sites in the running average that guides branching
POLISH_SHARE = 0.1  # of the time left (no limit: of the time spent), for the local search from each new incumbent of branch and bound
PLUNGE = 0.5  # branch and bound dives while the child's bound is this far from the least bound towards the cutoff


def unsupported(inst: FrontWarehouse) -> str | None:
    found = beyond_location_core(inst)
    return f"covers the location core only; this instance has {', '.join(found)} (use --method milp)" if found else None


@dataclass
class Core:
    """The location core as arrays: sites i (closed ones dropped by the network), zones j, arcs a."""

    fixed: np.ndarray  # (I,)
    units: np.ndarray  # (I,) capacity in units
    must: np.ndarray  # (I,) bool
    demand: np.ndarray  # (J,)
    site: np.ndarray  # (A,)
    zone: np.ndarray  # (A,)
    cost: np.ndarray  # (A,) per unit, holding included
    unit_scale: float | None = None  # 10^k making demand and capacities whole (min-cost flows), if any
    by_zone: np.ndarray | None = None  # (A,) the arcs ordered by zone, then cost

    def __post_init__(self) -> None:
        if self.unit_scale is None:
            self.unit_scale = _whole_scale(self.demand, self.units)
        if self.by_zone is None:
            self.by_zone = np.lexsort((self.cost, self.zone))
        J = len(self.demand)
        zone_sorted = self.zone[self.by_zone]
        self._zone_start = np.searchsorted(zone_sorted, np.arange(J + 1))
        self._cost_scale = 2.0 * max(1.0, float(np.abs(self.cost).max(initial=0.0)))
        self._key = zone_sorted + (self.cost[self.by_zone] / self._cost_scale + 0.5)  # zone + a fraction rising with cost

    @classmethod
    def of(cls, inst: FrontWarehouse) -> tuple[Core, Any]:
        net = network(inst)
        demand = net.scen_demand[0][:, 0]
        volume = float(net.volume[0])
        fixed = np.where(net.closed, np.inf, net.fixed_cost)
        return cls(fixed, net.capacity / volume, net.must_open.copy(), demand.astype(float), net.arc_site.astype(np.int64),
                   net.arc_zone.astype(np.int64), net.arc_cost + float(net.holding[0])), net

    @property
    def total(self) -> float:
        return float(self.demand.sum())

    def cheaper_than(self, u: np.ndarray) -> np.ndarray:
        """The arcs a = (i, j) with c_a < u_j, found per zone in the cost order."""
        J = len(self.demand)
        frac = np.clip(u / self._cost_scale + 0.5, 0.0, 1.0) + 1e-9  # a hair above: ties are settled exactly below
        ends = np.minimum(np.searchsorted(self._key, np.arange(J) + frac), self._zone_start[1:])
        count = np.maximum(ends - self._zone_start[:-1], 0)
        total = int(count.sum())
        offsets = np.cumsum(count) - count
        picked = np.arange(total) - np.repeat(offsets - self._zone_start[:-1], count)
        assert self.by_zone is not None
        arcs = self.by_zone[picked]
        return arcs[self.cost[arcs] < u[self.zone[arcs]]]

    def ranked_arcs(self, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The arcs from the open ``sites`` by zone, then cost, and each one's position among
        its zone's arcs (0: the cheapest)."""
        assert self.by_zone is not None
        arcs = self.by_zone[sites[self.site[self.by_zone]]]
        zone = self.zone[arcs]
        return arcs, np.arange(len(arcs)) - np.searchsorted(zone, zone)


def _whole_scale(demand: np.ndarray, units: np.ndarray) -> float | None:
    """The least 10^k (k <= 3) at which every demand is whole, if demand and capacities stay
    below 2^50 there (capacities are rounded down: a feasible flow stays feasible)."""
    for k in range(4):
        scaled = demand * 10.0**k
        if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-6) and max(float(units.sum()), float(demand.sum())) * 10.0**k < 2.0**50:
            return 10.0**k
    return None


@dataclass
class Relaxation:
    value: float
    site_value: np.ndarray  # v_i
    open: np.ndarray  # bool, the subproblem's sites
    slope: np.ndarray  # d_j - what the subproblem ships to j
    critical: np.ndarray  # per site, the reduced cost of the last arc its knapsack takes (0: it takes every negative one)


def _knapsacks(core: Core, u: np.ndarray, cut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """v_i = f_i + K_i(u), the arcs of negative reduced cost with their flows in the
    knapsacks, and each site's critical reduced cost (of the last arc it takes; 0 when it takes
    all). A site whose such arcs fit in its capacity takes them all; only the others are
    sorted, and of those only the arcs at most ``cut_i`` when they alone fill the site (a
    guess from the last step: the result is the same, only faster)."""
    I = len(core.fixed)
    neg = core.cheaper_than(u)
    reduced = core.cost[neg] - u[core.zone[neg]]
    site = core.site[neg]
    d_neg = core.demand[core.zone[neg]]
    full = np.bincount(site, weights=d_neg, minlength=I) > core.units
    flow = d_neg.copy()
    critical = np.zeros(I)
    hard = np.flatnonzero(full[site])
    if len(hard) and cut is not None:
        near = reduced[hard] <= cut[site[hard]]
        filled = np.bincount(site[hard[near]], weights=d_neg[hard[near]], minlength=I) >= core.units
        beyond = ~near & filled[site[hard]]  # past a cut that fills the site: not taken
        flow[hard[beyond]] = 0.0
        hard = hard[~beyond]
    if len(hard):
        r = reduced[hard]
        low = float(r.min())
        order = hard[np.argsort(site[hard] + 0.5 * (r - low) / -low)]  # by site, then reduced cost
        s = site[order]
        d = d_neg[order]
        cum = np.cumsum(d)
        first = np.r_[True, s[1:] != s[:-1]]
        before = cum - d - np.maximum.accumulate(np.where(first, cum - d, 0.0))  # demand ahead within the site
        flow[order] = np.clip(core.units[s] - before, 0.0, d)
        taken = order[flow[order] > 0]
        last = np.r_[site[taken][1:] != site[taken][:-1], True]
        critical[site[taken[last]]] = reduced[taken[last]]
    K = np.bincount(site, weights=reduced * flow, minlength=I)
    return core.fixed + K, neg, flow, critical


def _cover(core: Core, v: np.ndarray, force: dict[int, bool] | None = None, exact: bool = False) -> tuple[float, np.ndarray]:
    """min sum v_i y_i with sum Q_i y_i >= D (must-open and ``force`` respected): a lower
    bound on the value and the sites. Sites of negative value are always taken; the rest is a
    covering knapsack, solved by its greedy when capacities are equal (exact), else by dynamic
    programming on a capacity grid (``exact``: a relaxation, so still a bound) or by its LP
    relaxation (the sites rounded up)."""
    y = core.must | (v < 0)
    fixed = np.zeros(len(v), bool)
    fixed[core.must] = True
    for i, state in (force or {}).items():
        y[i], fixed[i] = state, True
    y &= np.isfinite(v)
    value = float(v[y].sum())
    tol = 1e-9 * max(1.0, core.total)
    short = core.total - float(core.units[y].sum())
    if short <= tol:
        return value, y
    free = np.flatnonzero(~y & ~fixed & np.isfinite(v))
    if not len(free) or core.units[free].sum() < short - tol:
        return math.inf, y
    equal = np.ptp(core.units[free]) <= 1e-9 * core.units[free].max()
    if exact and not equal:
        cost, chosen = _knapsack_cover(v[free], core.units[free], short)
        y[free[chosen]] = True
        return value + cost, y
    key = v[free] if equal else v[free] / core.units[free]
    for i in free[np.argsort(key, kind="stable")]:
        if short <= tol:
            break
        share = 1.0 if equal else min(1.0, short / core.units[i])
        value += share * v[i]
        y[i] = True
        short -= core.units[i]
    return value, y


def _knapsack_cover(v: np.ndarray, q: np.ndarray, short: float) -> tuple[float, np.ndarray]:
    """min v'y, y binary, q'y >= short (v >= 0): a lower bound, exact on integer data that
    fits the grid below. Its LP (the greedy by v/q, critical ratio lam) settles most items: one
    with v - lam q above the gap between the rounded-up greedy and the LP value is in no better
    cover, one with lam q - v above it in every better cover. The rest goes to dynamic
    programming over at most COVER_GRID capacity steps, with capacities rounded up and the need
    down on that grid (so every feasible y stays feasible)."""
    useful = np.flatnonzero(q > 0)
    order = useful[np.argsort(v[useful] / q[useful], kind="stable")]
    ends = np.cumsum(q[order])
    k = min(int(np.searchsorted(ends, short)), len(order) - 1)  # the critical item's position
    lam = v[order[k]] / q[order[k]]
    greedy = np.zeros(len(v), bool)
    greedy[order[: k + 1]] = True
    rest = order[k:]  # or the items ahead of the critical one and the cheapest that completes them
    completes = rest[q[rest] >= short - (ends[k - 1] if k else 0.0)]
    if len(completes):
        greedy[order[k]] = False
        greedy[completes[np.argmin(v[completes])]] = True
    for i in order[:k][::-1]:  # then drop what is not needed, dearest per unit first
        if q[greedy].sum() - q[i] >= short:
            greedy[i] = False
    upper = float(v[greedy].sum())
    lower = float(v[order[:k]].sum()) + (short - (ends[k - 1] if k else 0.0)) * lam
    slack = upper - lower
    reduced = np.where(q > 0, v - lam * q, math.inf)
    margin = slack * (1 + 1e-9) + 1e-12
    take = reduced < -margin
    open_ = np.flatnonzero(np.abs(reduced) <= margin)
    need_left = short - float(q[take].sum())
    if need_left <= 0:
        return (float(v[take].sum()), take) if float(v[take].sum()) < upper else (upper, greedy)
    if not len(open_):
        return upper, greedy
    cost, chosen = _cover_by_dp(v[open_], q[open_], need_left)
    if cost + float(v[take].sum()) >= upper:
        return upper, greedy
    y = take.copy()
    y[open_[chosen]] = True
    return cost + float(v[take].sum()), y


def _cover_by_dp(v: np.ndarray, q: np.ndarray, short: float, feasible: bool = False) -> tuple[float, np.ndarray]:
    """min v'y, y binary, q'y >= short on a grid of at most COVER_GRID steps: capacities
    rounded up (a relaxation), or down with ``feasible`` (every cover found does cover)."""
    scale = min(1.0, COVER_GRID / short)
    steps = (np.floor(q * scale + 1e-9) if feasible else np.maximum(1, np.ceil(q * scale - 1e-9))).astype(np.int64)
    need = int(math.ceil(short * scale - 1e-6))
    best = np.full(need + 1, math.inf)  # best[c]: least value covering at least c steps
    best[0] = 0.0
    took = np.zeros((len(v), need + 1), bool)
    for k in range(len(v)):
        shifted = np.concatenate([np.zeros(min(steps[k], need + 1)), best[: max(0, need + 1 - steps[k])]]) + v[k]
        took[k] = shifted < best
        np.minimum(best, shifted, out=best)
    chosen = np.zeros(len(v), bool)
    c = need
    for k in range(len(v) - 1, -1, -1):
        if c > 0 and took[k, c]:
            chosen[k] = True
            c = max(0, c - int(steps[k]))
    return float(best[need]), chosen


def relax(core: Core, u: np.ndarray, cut: np.ndarray | None = None) -> Relaxation:
    """L(u) and its subproblem's solution; ``cut``: see :func:`_knapsacks`."""
    v, arcs, flow, critical = _knapsacks(core, u, cut)
    value, y = _cover(core, v, exact=True)
    shipped = np.bincount(core.zone[arcs], weights=flow * y[core.site[arcs]], minlength=len(core.demand))
    return Relaxation(float(u @ core.demand) + value, v, y, core.demand - shipped, critical)


def transport(core: Core, sites: np.ndarray, deadline: float = math.inf, exact: bool = False) -> tuple[float, np.ndarray] | None:
    """Flows from the open ``sites``: (cost incl. fixed costs, flow per arc), or None if they
    cannot serve the demand. A min-cost flow on integer data (network simplex, OR-Tools) when
    demand and capacities are whole at some decimal scale: optimal for costs rounded to ~1e-9
    of the largest, so good enough for incumbents; ``exact`` (or other data): the LP."""
    if core.units[sites].sum() < core.total * (1 - 1e-12):
        return None
    if not exact and core.unit_scale is not None:
        return _min_cost_flow(core, sites, NEAREST_ARCS) or _min_cost_flow(core, sites)
    return _transport_by_lp(core, sites, deadline)


def _min_cost_flow(core: Core, sites: np.ndarray, nearest: int | None = None) -> tuple[float, np.ndarray] | None:
    """Over every arc from the open ``sites``, or only the ``nearest`` cheapest into each zone
    (a feasible flow if one exists there, several times faster)."""
    from ortools.graph.python import min_cost_flow

    assert core.unit_scale is not None
    I, J = len(core.fixed), len(core.demand)
    if nearest is None:
        arcs = np.flatnonzero(sites[core.site])
    else:
        ordered, rank = core.ranked_arcs(sites)
        arcs = ordered[rank < nearest]
    demand = np.rint(core.demand * core.unit_scale).astype(np.int64)
    capacity = np.floor(core.units * core.unit_scale * (1 + 1e-12)).astype(np.int64)
    top = float(np.abs(core.cost[arcs]).max(initial=1.0)) or 1.0
    cost = np.rint(core.cost[arcs] * (1e9 / top)).astype(np.int64)
    open_sites = np.flatnonzero(sites)
    source = I + J  # nodes: sites 0..I-1, zones I..I+J-1, the source
    flow_net = min_cost_flow.SimpleMinCostFlow()
    flow_net.add_arcs_with_capacity_and_unit_cost(
        np.concatenate([np.full(len(open_sites), source), core.site[arcs]]),
        np.concatenate([open_sites, I + core.zone[arcs]]),
        np.concatenate([capacity[open_sites], demand[core.zone[arcs]]]),
        np.concatenate([np.zeros(len(open_sites), np.int64), cost]),
    )
    flow_net.set_nodes_supplies(np.concatenate([I + np.arange(J), [source]]), np.concatenate([-demand, [demand.sum()]]))
    if flow_net.solve() != flow_net.OPTIMAL:
        return None
    flow = np.zeros(len(core.cost))
    flow[arcs] = flow_net.flows(np.arange(len(open_sites), len(open_sites) + len(arcs))) / core.unit_scale
    return _priced(core, flow), flow


def _in_use(core: Core, flow: np.ndarray) -> np.ndarray:
    """The sites a flow opens: those shipping anything, and the must-open ones."""
    return (np.bincount(core.site, weights=flow, minlength=len(core.fixed)) > 1e-9) | core.must


def _priced(core: Core, flow: np.ndarray) -> float:
    """A flow's cost: fixed costs of the sites it opens plus transport."""
    return float(core.fixed[_in_use(core, flow)].sum() + core.cost @ flow)


def _transport_by_lp(core: Core, sites: np.ndarray, deadline: float) -> tuple[float, np.ndarray] | None:
    """The transportation LP by column generation: it starts with the few cheapest arcs into
    each zone; arcs whose reduced cost at the LP's duals is negative are added until none is
    (then the flows are optimal over every arc from the open sites) or the deadline passes
    (then they are feasible)."""
    usable = np.flatnonzero(sites[core.site])
    order, rank = core.ranked_arcs(sites)
    per_zone = TRANSPORT_ARCS_PER_ZONE
    active = np.zeros(len(core.cost), bool)
    active[order[rank < per_zone]] = True
    scale = max(1.0, float(np.abs(core.cost[usable]).max(initial=0.0)))
    while True:
        arcs = np.flatnonzero(active)
        out = _transport_lp(core, sites, arcs, deadline)
        if out is None:  # the cheapest arcs cannot carry the demand: widen
            if active[usable].all() or expired(deadline):
                return None
            per_zone *= 4
            active[order[rank < per_zone]] = True
            continue
        x, zone_dual, site_dual = out
        if expired(deadline):
            break
        reduced = core.cost[usable] - zone_dual[core.zone[usable]] - site_dual[core.site[usable]]
        priced = usable[(reduced < -1e-9 * scale) & ~active[usable]]
        if not len(priced):
            break
        active[priced] = True
    flow = np.zeros(len(core.cost))
    flow[arcs] = x
    return _priced(core, flow), flow


def _transport_lp(core: Core, sites: np.ndarray, arcs: np.ndarray, deadline: float = math.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The transportation LP over ``arcs``: (flows, zone duals, site duals), or None if
    infeasible or out of time."""
    J, I = len(core.demand), len(core.fixed)
    A = sp.csr_matrix((np.ones(2 * len(arcs)), (np.concatenate([core.zone[arcs], J + core.site[arcs]]), np.tile(np.arange(len(arcs)), 2))),
                      shape=(J + I, len(arcs)))
    lo = np.concatenate([core.demand, np.full(I, -np.inf)])
    hi = np.concatenate([core.demand, np.where(sites, core.units, 0.0)])
    left = None if deadline == math.inf else deadline - now()
    out = solve_lp(core.cost[arcs], A, lo, hi, np.zeros(len(arcs)), np.full(len(arcs), np.inf), method="highs-ds", time_limit=left)
    if out.status != "optimal" or out.x is None or out.row_dual is None:
        return None
    return out.x, out.row_dual[:J], out.row_dual[J:]


@dataclass
class Search:
    best_bound: float = -math.inf
    if_open: np.ndarray | None = None  # per site: the best lower bound met with the site forced open
    if_closed: np.ndarray | None = None  # ... forced closed
    best_u: np.ndarray | None = None
    best_relaxation: Relaxation | None = None
    upper: float = math.inf
    flow: np.ndarray | None = None
    tried: set[bytes] = field(default_factory=set)  # site sets priced already (shared with the nodes)
    y_mean: np.ndarray | None = None  # the subproblem's sites averaged over the steps: a fractional primal estimate
    plans_count: bool = True  # False when this search is a relaxation: its plans are no incumbents of the problem solved

    def report(self, phase: str, bound: float | None = None, detail: str | None = None) -> None:
        """Progress: the bound (``best_bound`` unless given) and the incumbent."""
        bound = self.best_bound if bound is None else bound
        progress.update(phase, detail=detail, incumbent=self.upper if self.plans_count and math.isfinite(self.upper) else None,
                        bound=bound if math.isfinite(bound) else None)


def subgradient(core: Core, deadline: float, search: Search, *, base: Core | None = None, start: np.ndarray | None = None,
                theta: float = 2.0, steps: int = STEPS, lp_every: int | None = LP_EVERY, patience: int = PATIENCE) -> Search:
    """Raise the bound on ``core`` by subgradient steps from ``start``; incumbents are priced
    on ``base`` (the unrestricted core, when ``core`` has sites fixed), every ``lp_every``
    improving steps at most (None: never)."""
    base = base or core
    if start is None:
        per_unit_fixed = np.min(np.where(np.isfinite(core.fixed), core.fixed, np.inf) / np.maximum(core.units, 1e-12))
        u = np.full(len(core.demand), np.inf)
        np.minimum.at(u, core.zone, core.cost)
        u = np.where(np.isfinite(u), u, 0.0) + per_unit_fixed
    else:
        u = start.copy()
    since, last_lp = 0, -(lp_every or 0)
    began, lp_time = time.perf_counter(), 0.0
    cut = None  # per site, a reduced cost its knapsack stops below at the next u
    for step in range(steps):
        r = relax(core, u, cut)
        search.y_mean = r.open.astype(float) if search.y_mean is None else (1 - Y_MEAN_WEIGHT) * search.y_mean + Y_MEAN_WEIGHT * r.open
        if step % FLIP_EVERY == 0:
            _flip_bounds(core, u, r, search)
        if search.best_u is None or r.value > search.best_bound + 1e-9 * abs(search.best_bound):
            search.best_bound, search.best_u, search.best_relaxation, since = r.value, u.copy(), r, 0
            # incumbents from improving points, not every step: each is an LP (at most LP_SHARE of the time)
            if lp_every is not None and step >= last_lp + lp_every and lp_time <= LP_SHARE * (time.perf_counter() - began):
                lp_began = time.perf_counter()
                _incumbent(core, base, r, search, deadline)
                last_lp, lp_time = step, lp_time + time.perf_counter() - lp_began
        else:
            since += 1
            if since >= patience:
                theta, since = theta / 2, 0
        closed = math.isfinite(search.upper) and search.upper - search.best_bound <= 1e-7 * max(1.0, abs(search.upper))
        if closed or theta < 1e-4 or expired(deadline):
            break
        norm = float(r.slope @ r.slope)
        if norm <= 1e-12:
            break
        target = search.upper if math.isfinite(search.upper) else r.value * 1.05 + 1.0
        move = theta * max(target - r.value, 1e-9 * abs(target)) / norm * r.slope
        u = u + move
        cut = r.critical + float(np.abs(move).max()) * (1 + 1e-9)  # the arcs each site took stay below it, so they still fill it
        if steps == STEPS:  # the root (nodes report through branch and bound)
            search.report("subgradient")
            if step % 50 == 0:
                log.info("lagrangian step %d: bound %.10g, incumbent %.10g", step, search.best_bound, search.upper)
    return search


def _incumbent(core: Core, base: Core, r: Relaxation, search: Search, deadline: float = math.inf) -> None:
    """The cover of least value at the subproblem's site values (:func:`_feasible_cover`), made
    to reach every zone (cheapest v_i per unit of capacity first), priced on ``base``."""
    sites = _feasible_cover(core, r.site_value)
    _try_sites(base, search, _made_feasible(core, sites, r.site_value / np.maximum(core.units, 1e-12)), deadline)


def _feasible_cover(core: Core, v: np.ndarray) -> np.ndarray:
    """The sites of min sum v_i y_i with sum Q_i y_i >= D (must-open and negative sites taken)
    with capacities rounded down on the grid, so that they do cover the demand. The
    subproblem's own sites (capacities rounded up: a relaxation) often fall short, and topping
    them up costs more: on four 200 x 2,000 instances at ratio 3, 60 s, these covers ended with
    plans 0.19% and 0.03% cheaper on two and the same on two."""
    usable = np.isfinite(v)
    y = (core.must | (v < 0)) & usable
    short = core.total - float(core.units[y].sum())
    free = np.flatnonzero(~y & usable & (core.units > 0))
    if short > 0 and len(free) and core.units[free].sum() >= short:
        cost, chosen = _cover_by_dp(v[free], core.units[free], short, feasible=True)
        if math.isfinite(cost):
            y[free[chosen]] = True
    return y


def _rounded(core: Core, search: Search, deadline: float) -> None:
    """The sites open in at least half of the subproblems (y_mean >= 1/2), made feasible (most
    often open first): the rounding of the relaxation's fractional estimate, often a few
    swaps from the optimum."""
    assert search.y_mean is not None
    _try_sites(core, search, _made_feasible(core, search.y_mean >= 0.5, -search.y_mean), deadline)


def _made_feasible(core: Core, sites: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """``sites`` (and the must-open ones) with sites added, least ``rank`` first: one into each
    zone no open site reaches, then enough for the capacity to reach the demand."""
    usable = np.isfinite(core.fixed)
    sites = (sites & usable) | core.must
    reach = np.zeros(len(core.demand), bool)
    reach[core.zone[sites[core.site]]] = True
    if not reach.all():
        into = np.flatnonzero(~reach[core.zone])
        into = into[np.lexsort((rank[core.site[into]], core.zone[into]))]
        first = into[np.r_[True, core.zone[into][1:] != core.zone[into][:-1]]]
        sites[core.site[first]] = True
    short = core.total - core.units[sites].sum()
    for i in np.argsort(np.where(sites | ~usable, np.inf, rank), kind="stable"):
        if short <= 0 or sites[i] or not usable[i]:
            break
        sites[i] = True
        short -= core.units[i]
    return sites


def _try_sites(core: Core, search: Search, sites: np.ndarray, deadline: float) -> None:
    """Price ``sites`` (unless tried before) and keep them if they beat the incumbent."""
    key = np.packbits(sites).tobytes()
    if key in search.tried:
        return
    search.tried.add(key)
    found = transport(core, sites, deadline)
    if found is None and expired(deadline):
        search.tried.discard(key)  # cut short by the deadline: no verdict on these sites
    if found is not None and found[0] < search.upper:
        search.upper, search.flow = found


def _flip_bounds(core: Core, u: np.ndarray, r: Relaxation, search: Search) -> None:
    """Raise each site's bounds with it forced open and forced closed, at multipliers u."""
    I = len(core.fixed)
    if search.if_open is None or search.if_closed is None:
        search.if_open, search.if_closed = np.full(I, -math.inf), np.full(I, -math.inf)
    flippable = ~core.must & np.isfinite(core.fixed)
    flipped = float(u @ core.demand) + _flipped_covers(core, r.site_value, r.open)
    on, off = flippable & r.open, flippable & ~r.open
    search.if_open[on] = np.maximum(search.if_open[on], r.value)
    search.if_closed[on] = np.maximum(search.if_closed[on], flipped[on])
    search.if_closed[off] = np.maximum(search.if_closed[off], r.value)
    search.if_open[off] = np.maximum(search.if_open[off], flipped[off])


def _flipped_covers(core: Core, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For every site i, the greedy cover's value (as ``_cover``) with i forced to the state
    opposite to ``y[i]``, all sites at once: with G(s) the greedy's value for a need s over the
    free sites in their order, leaving out a free site i at position p changes G(s) only if
    the greedy reaches p, and then to G(s + Q_i) - v_i."""
    usable = np.isfinite(v)
    taken = (core.must | (v < 0)) & usable
    value0 = float(v[taken].sum())
    short0 = core.total - float(core.units[taken].sum())
    tol = 1e-9 * max(1.0, core.total)
    free = np.flatnonzero(~taken & usable & (core.units > 0))
    q_free = core.units[free]
    equal = len(free) > 0 and np.ptp(q_free) <= 1e-9 * q_free.max()
    order = free[np.argsort(v[free] if equal else v[free] / q_free, kind="stable")]
    q, w = core.units[order], v[order]
    ends, values = np.cumsum(q), np.cumsum(w)
    position = np.full(len(v), -1)
    position[order] = np.arange(len(order))
    before = np.r_[0.0, ends][np.maximum(position, 0)]  # capacity ahead of i in the order

    def greedy(need: np.ndarray) -> np.ndarray:
        if not len(order):
            return np.where(need <= tol, 0.0, math.inf)
        k = np.searchsorted(ends, need - tol)
        inside = np.minimum(k, len(order) - 1)
        ahead_value = np.where(k > 0, values[np.maximum(k - 1, 0)], 0.0)
        ahead = np.where(k > 0, ends[np.maximum(k - 1, 0)], 0.0)
        last = w[inside] if equal else np.minimum(1.0, (need - ahead) / q[inside]) * w[inside]
        return np.where(need <= tol, 0.0, np.where(k < len(order), ahead_value + last, math.inf))

    def greedy_without(sites: np.ndarray, need: np.ndarray) -> np.ndarray:  # each site left out of the free sites
        skip = (position[sites] >= 0) & (need > before[sites] + tol)
        return np.where(skip, greedy(need + np.where(skip, core.units[sites], 0.0)) - np.where(skip, v[sites], 0.0), greedy(need))

    out = np.full(len(v), math.inf)
    closing = np.flatnonzero(taken & y)  # v_i < 0: closing it frees its value and its capacity
    out[closing] = value0 - v[closing] + greedy(short0 + core.units[closing])
    closing = np.flatnonzero(~taken & y & usable)
    out[closing] = value0 + greedy_without(closing, np.full(len(closing), short0))
    opening = np.flatnonzero(~y & usable)
    out[opening] = value0 + v[opening] + greedy_without(opening, short0 - core.units[opening])
    return out


def local_search(core: Core, search: Search, deadline: float) -> None:
    """Improve the incumbent by closing a site, opening one, or swapping an open site for a
    closed one (first improvement), each move priced by a min-cost flow. Not tried: moves of
    a site that provably keeps its state in any cheaper plan (its flipped bound if_open /
    if_closed is at least the incumbent), and openings of sites (almost) never open in the
    subproblems (y_mean <= Y_CANDIDATE). The rest go by y_mean: drops of the least often open
    sites, adds of the most often open, swaps by y_mean(added) - y_mean(dropped), ties by the
    site values v_i."""
    assert search.flow is not None and search.best_relaxation is not None  # set by subgradient(), as are the next three
    assert search.y_mean is not None and search.if_open is not None and search.if_closed is not None
    v, often, if_open, if_closed = search.best_relaxation.site_value, search.y_mean, search.if_open, search.if_closed
    improved = True
    while improved and not expired(deadline):
        improved = False
        open_now = _in_use(core, search.flow)
        opened = np.flatnonzero(open_now & ~core.must & (if_closed < search.upper))
        closed = np.flatnonzero(~open_now & np.isfinite(core.fixed) & (if_open < search.upper) & (often > Y_CANDIDATE))
        moves: list[tuple[int, ...]] = [(i,) for i in opened[np.lexsort((-v[opened], often[opened]))]]
        moves += [(k,) for k in closed[np.lexsort((v[closed], -often[closed]))]]
        if len(opened) and len(closed):
            gain = (often[closed][None, :] - often[opened][:, None]).ravel()
            saving = (v[closed][None, :] - v[opened][:, None]).ravel()
            pairs = np.unravel_index(np.lexsort((saving, -gain)), (len(opened), len(closed)))
            moves += [(int(opened[a]), int(closed[b])) for a, b in zip(*pairs, strict=True)]
        for move in moves:
            if expired(deadline):
                return
            trial = open_now.copy()
            trial[list(move)] = ~trial[list(move)]
            before = search.upper
            _try_sites(core, search, trial, deadline)
            if search.upper < before * (1 - 1e-12):
                improved = True
                break


def restrict(core: Core, fixed: dict[int, bool]) -> Core:
    """The core with ``fixed`` sites held open (must) or closed (unavailable)."""
    fixed_cost, must = core.fixed.copy(), core.must.copy()
    for i, state in fixed.items():
        if state:
            must[i] = True
        else:
            fixed_cost[i] = math.inf
    keep = np.isfinite(fixed_cost)[core.site]
    assert core.by_zone is not None
    renumbered = np.cumsum(keep) - 1
    by_zone = renumbered[core.by_zone[keep[core.by_zone]]]
    return replace(core, fixed=fixed_cost, must=must, site=core.site[keep], zone=core.zone[keep], cost=core.cost[keep], by_zone=by_zone)


def fixings(core: Core, search: Search, cut: float) -> dict[int, bool]:
    """Sites whose opposite state provably costs at least ``cut`` (at any multipliers met)."""
    assert search.best_relaxation is not None and search.best_u is not None
    _flip_bounds(core, search.best_u, search.best_relaxation, search)
    assert search.if_open is not None and search.if_closed is not None
    out = {}
    for i in range(len(core.fixed)):
        if core.must[i] or not np.isfinite(core.fixed[i]):
            continue
        if search.if_open[i] >= cut:
            out[i] = False
        elif search.if_closed[i] >= cut:
            out[i] = True
    return out


def run(inst: FrontWarehouse, backend: str | None, options: SolverOptions, warm_start: Any = None) -> MethodOutput:
    """``warm_start`` (an :class:`optimizers.warm_start.Start`): its flow on the core, priced
    there already, is the first incumbent."""
    if inst.single_source:
        return _single_source(inst, backend or "highs", options)
    return _multi_source(inst, options, warm_flow=None if warm_start is None else warm_start.core_flow)[0]


def _multi_source(inst: FrontWarehouse, options: SolverOptions, relaxation: bool = False,
                  warm_flow: tuple[float, np.ndarray] | None = None) -> tuple[MethodOutput, Core, Search]:
    """The multi-source problem; ``relaxation``: solved as the relaxation of a single-source one
    (its plans are not reported as incumbents); ``warm_flow``: (cost, flow) of a first incumbent."""
    started = time.perf_counter()
    limit = options.time_limit_s
    end = math.inf if limit is None else started + limit - 0.05
    core, net = Core.of(inst)
    search = Search(plans_count=not relaxation)
    if warm_flow is not None:
        search.upper, search.flow = warm_flow
    search = subgradient(core, min(end, started + (0.3 * limit if limit else 60.0)), search)
    log.info("subgradient: %.2f s, %d transport LPs", time.perf_counter() - started, len(search.tried))
    if search.y_mean is not None:
        _rounded(core, search, end)
    if search.flow is None and search.best_relaxation is not None:  # no plan yet: what is left goes into one
        _incumbent(core, core, search.best_relaxation, search, end)
    if search.flow is None and not expired(end):  # every usable site open serves the demand if anything does
        found = transport(core, np.isfinite(core.fixed), end)
        if found is not None:
            search.upper, search.flow = found
    if search.flow is not None:
        before = search.upper
        search.report("local search")
        local_search(core, search, min(end, started + (0.6 * limit if limit else 90.0)))
        log.info("local search: incumbent %.10g -> %.10g after %.2f s", before, search.upper, time.perf_counter() - started)
    _exact_flows(core, search, min(end, time.perf_counter() + (0.1 * limit if limit else math.inf)))
    meta: dict[str, Any] = {"lagrangian_bound": search.best_bound, "heuristic_upper": search.upper}
    if search.flow is None:
        bound = search.best_bound
        message = "no plan found within the time limit" if expired(end) else "no plan found"
        return MethodOutput(Status.NO_SOLUTION, bound=bound if math.isfinite(bound) else None, message=message, meta=meta), core, search
    tree = BranchAndBound(core, search, options.gap)
    bound = tree.run(end)
    _exact_flows(core, search, end + 0.05)
    meta.update(nodes=tree.nodes, open_nodes=len(tree.heap), fixed_at_root=tree.fixed_at_root)
    solution = plan_document(inst, net, core, search.flow)
    objective = search.upper
    bound = min(bound, objective)
    gap = relative_gap(objective, bound)
    status = Status.OPTIMAL if gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12 else Status.FEASIBLE
    message = "" if status is Status.OPTIMAL else f"time limit: {len(tree.heap)} open nodes after {tree.nodes}"
    return MethodOutput(status, objective, bound, solution, message=message, meta=meta), core, search


def _exact_flows(core: Core, search: Search, deadline: float) -> None:
    """Re-price the incumbent's sites by the exact transportation LP (min-cost flows round
    capacities down to the data's decimals)."""
    if search.flow is None or expired(deadline):
        return
    found = transport(core, _in_use(core, search.flow), deadline, exact=True)
    if found is not None and found[0] < search.upper:
        search.upper, search.flow = found


def _single_source(inst: FrontWarehouse, backend: str, options: SolverOptions) -> MethodOutput:
    """Single sourcing: the multi-source optimum is a relaxation, so its bound holds (on
    OR-Library capa/b/c the two optima differ by under 0.01%). The plan: its open sites serve
    the zones one site each (a generalised assignment MILP on ``backend``); if they cannot, the
    cheapest closed sites by Lagrangian site value join as candidates, a few more each time.
    If the gap is still above ``options.gap``, the whole single-source MILP runs in the time
    left (on small instances it proves the optimum; at the scale of capa/b/c it rarely beats
    the assignment plan, so give a ``gap`` such as 5e-3 or a time limit there)."""
    started = time.perf_counter()
    limit = options.time_limit_s
    # the bound and the plan are each solved tighter than the gap asked for, which is between them
    tight = min(options.gap, 1e-6)
    relaxed, core, search = _multi_source(inst.model_copy(update={"single_source": False}),
                                          replace(options, gap=tight, time_limit_s=None if limit is None else 0.5 * limit), relaxation=True)
    meta = {"multi_source_" + k: v for k, v in relaxed.meta.items()}
    meta.update(multi_source_objective=relaxed.objective, multi_source_status=relaxed.status.value)
    if relaxed.solution is None or search.best_relaxation is None:
        return MethodOutput(relaxed.status, bound=relaxed.bound, message=relaxed.message, meta=meta)
    bound = relaxed.bound if relaxed.bound is not None else -math.inf
    site_pos = {s.id: i for i, s in enumerate(inst.sites)}
    chosen = np.zeros(len(inst.sites), bool)
    chosen[[site_pos[s] for s in relaxed.solution["open_sites"]]] = True
    spare = np.flatnonzero(~chosen & np.isfinite(core.fixed))
    spare = spare[np.argsort(search.best_relaxation.site_value[spare])]  # cheapest first
    out = MethodOutput(Status.NO_SOLUTION)
    for widen in (0, 2, 8, len(inst.sites)):
        extra = np.zeros(len(inst.sites), bool)
        extra[spare[:widen]] = True
        states = ["open" if chosen[i] or core.must[i] else "candidate" if extra[i] else "closed" for i in range(len(inst.sites))]
        reduced = inst.model_copy(update={"sites": [s.model_copy(update={"status": st}) for s, st in zip(inst.sites, states, strict=True)]})
        left = None if limit is None else max(0.05, started + limit - 0.05 - now())
        progress.update("single-source assignment MILP", detail=f"{int(chosen.sum() + widen)} sites", bound=bound if math.isfinite(bound) else None)
        out = _assignment_milp(reduced, backend, replace(options, gap=tight, time_limit_s=left))
        meta.update(assignment_status=out.status.value, assignment_candidates=int(widen))
        if out.objective is not None or expired(None if limit is None else started + limit - 0.1):
            break
    if out.objective is None or out.solution is None:
        message = out.message or "the open sites of the multi-source plan cannot serve every zone from one site"
        return MethodOutput(Status.NO_SOLUTION, bound=bound if math.isfinite(bound) else None, message=message, meta=meta)
    objective, solution = out.objective, out.solution
    gap = relative_gap(objective, bound)
    left = None if limit is None else started + limit - 0.05 - now()
    if (gap is None or gap > options.gap) and not expired(None) and (left is None or left > 0.5):  # close the rest with the whole single-source MILP
        whole = _assignment_milp(inst, backend, replace(options, time_limit_s=left))
        meta["single_source_milp_status"] = whole.status.value
        if whole.objective is not None and whole.solution is not None and whole.objective < objective:
            objective, solution = whole.objective, whole.solution
        if whole.status is Status.OPTIMAL and whole.objective is not None:
            bound = max(bound, whole.bound if whole.bound is not None else whole.objective)
        elif whole.bound is not None:
            bound = max(bound, whole.bound)
    bound = min(bound, objective)
    gap = relative_gap(objective, bound)
    status = Status.OPTIMAL if gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12 else Status.FEASIBLE
    message = "" if status is Status.OPTIMAL else "time limit: the single-source plan is not proven optimal"
    return MethodOutput(status, objective, bound, solution, message=message, meta=meta)


def _assignment_milp(reduced: FrontWarehouse, backend: str, options: SolverOptions) -> MethodOutput:
    from optimizers.backends import solve_linear
    from optimizers.front_warehouse import milp

    f = milp.build(reduced)
    out = solve_linear(f.model, backend, options)
    solution = None if out.x is None else milp.read_solution(f, out.x).to_dict()
    return MethodOutput(out.status or Status.ERROR, out.objective, out.bound, solution, out.message)


@dataclass(order=True)
class Node:
    bound: float
    serial: int
    forced: dict[int, bool] = field(compare=False)  # site -> held open (True) or closed
    start: np.ndarray | None = field(compare=False)  # the parent's best multipliers
    y_mean: np.ndarray | None = field(default=None, compare=False)  # ... and its averaged sites


class BranchAndBound:
    """Best-first branch and bound on the sites with Lagrangian bounds.

    A node holds some sites open or closed. It is bounded by subgradient steps from its
    parent's multipliers on the restricted core; the sites whose other state would cost at
    least the cutoff (incumbent x (1 - gap)) are fixed; then it branches on the free site
    whose running average of the steps' subproblem sites is nearest 1/2 (ties: the highest
    weaker child bound, forced open / forced closed at the same multipliers), and each child
    starts with its bound. The better child is expanded next while its bound is in the lower
    half between the least open bound and the cutoff (a dive finds plans early). A node with
    every site decided is priced exactly by its transportation LP. Each new incumbent is
    polished by the local search (for POLISH_SHARE of the time left). The bound is the least
    of the open nodes' bounds and of the thresholds used to discard anything."""

    def __init__(self, core: Core, search: Search, gap: float) -> None:
        self.core, self.search, self.gap = core, search, gap
        self.heap: list[Node] = []
        self.children: list[Node] = []  # of the node expanded last
        self.plunge: Node | None = None  # the child expanded next
        self.serial = 1
        self.nodes = 0
        self.floor = math.inf  # the least bound of anything discarded
        root = Node(search.best_bound, 0, fixings(core, search, self.cutoff), search.best_u, search.y_mean)
        self.fixed_at_root = len(root.forced)
        self._discard_below(self.cutoff if root.forced else math.inf)
        heapq.heappush(self.heap, root)

    @property
    def cutoff(self) -> float:
        return self.search.upper - self.gap * (1 - 1e-9) * max(1.0, abs(self.search.upper))  # a hair inside the gap asked

    def _discard_below(self, value: float) -> None:
        self.floor = min(self.floor, value)

    def bound(self) -> float:
        return min(self.floor, self.search.upper, self.heap[0].bound if self.heap else math.inf, self.plunge.bound if self.plunge else math.inf)

    def run(self, deadline: float) -> float:
        started = last_log = time.perf_counter()
        node_s = 0.0  # how long the last expansion took: a node that cannot finish in time is not started
        while (self.heap or self.plunge) and not expired(deadline - node_s):
            node = self.plunge or heapq.heappop(self.heap)
            self.plunge = None
            if node.bound >= self.cutoff:
                self._discard_below(node.bound)
                continue
            began = time.perf_counter()
            before = self.search.upper
            self._expand(node, deadline)
            self._dive_or_queue()
            node_s = time.perf_counter() - began
            if self.search.upper < before:  # a new incumbent: polish it
                found = self.search.upper
                t = time.perf_counter()
                left = deadline - t if math.isfinite(deadline) else t - started + 1.0
                local_search(self.core, self.search, min(deadline, t + POLISH_SHARE * left))
                if self.search.upper < found:
                    log.info("branch and bound: local search %.10g -> %.10g", found, self.search.upper)
            self.search.report("branch and bound", self.bound(), detail=f"{self.nodes} nodes, {len(self.heap)} open")
            if time.perf_counter() - last_log > 5:
                log.info("branch and bound: %d nodes, %d open, bound %.10g, incumbent %.10g", self.nodes, len(self.heap), self.bound(), self.search.upper)
                last_log = time.perf_counter()
        if self.plunge:
            heapq.heappush(self.heap, self.plunge)
            self.plunge = None
        return self.bound()

    def _dive_or_queue(self) -> None:
        """Go on with the better child (a dive finds plans early) while its bound is in the
        lower half between the least open bound and the cutoff; queue the rest."""
        children, self.children = sorted(self.children), []
        if children:
            lower = min(children[0].bound, self.heap[0].bound if self.heap else math.inf)
            if children[0].bound <= lower + PLUNGE * (self.cutoff - lower):
                self.plunge = children.pop(0)
        for child in children:
            heapq.heappush(self.heap, child)

    def _push(self, bound: float, forced: dict[int, bool], start: np.ndarray | None, y_mean: np.ndarray | None) -> None:
        if bound >= self.cutoff:
            self._discard_below(bound)
        else:
            self.children.append(Node(bound, self.serial, forced, start, y_mean))
            self.serial += 1

    def _expand(self, node: Node, deadline: float) -> None:
        self.nodes += 1
        sub = restrict(self.core, node.forced)
        available = np.isfinite(sub.fixed)
        free = np.flatnonzero(available & ~sub.must)
        if sub.units[available].sum() < sub.total * (1 - 1e-12) or np.any(np.bincount(sub.zone, minlength=len(sub.demand)) == 0):
            return  # no plan in this node
        if not len(free):  # every site decided: the node's value is its transportation LP
            found = transport(self.core, sub.must, deadline, exact=True)
            if expired(deadline):  # the LP may have stopped short of its optimum: keep the node open
                heapq.heappush(self.heap, node)
            elif found is not None:
                self._offer(found)
                self._discard_below(found[0])
            return
        search = self.search
        y_mean = None if node.y_mean is None else node.y_mean.copy()
        if y_mean is not None:
            for i, state in node.forced.items():
                y_mean[i] = float(state)
        inner = subgradient(sub, deadline, Search(upper=search.upper, flow=search.flow, tried=search.tried, y_mean=y_mean), base=self.core,
                            start=node.start, theta=NODE_THETA, steps=NODE_STEPS, lp_every=None, patience=NODE_PATIENCE)
        assert inner.best_relaxation is not None
        _incumbent(sub, self.core, inner.best_relaxation, inner, deadline)
        if inner.upper < search.upper:
            self._offer((inner.upper, inner.flow))
        bound = max(node.bound, inner.best_bound)
        if bound >= self.cutoff or expired(deadline):
            self._push(bound, node.forced, inner.best_u, inner.y_mean)
            return
        more = fixings(sub, inner, self.cutoff)
        if more:
            self._discard_below(self.cutoff)
        forced = {**node.forced, **more}
        assert inner.if_open is not None and inner.if_closed is not None
        candidates = [i for i in free if i not in more]
        if not candidates:
            self._push(bound, forced, inner.best_u, inner.y_mean)
            return
        assert inner.y_mean is not None
        fractional = np.minimum(inner.y_mean[candidates], 1 - inner.y_mean[candidates])
        weaker = np.minimum(inner.if_open[candidates], inner.if_closed[candidates])
        i = int(candidates[int(np.lexsort((-weaker, -fractional))[0])])  # the most fractional; ties by the weaker child
        self._push(max(bound, float(inner.if_open[i])), {**forced, i: True}, inner.best_u, inner.y_mean)
        self._push(max(bound, float(inner.if_closed[i])), {**forced, i: False}, inner.best_u, inner.y_mean)

    def _offer(self, found: tuple[float, np.ndarray | None]) -> None:
        if found[1] is not None and found[0] < self.search.upper:
            self.search.upper, self.search.flow = found[0], found[1]
            log.info("branch and bound: incumbent %.10g at node %d", found[0], self.nodes)


def plan_document(inst: FrontWarehouse, net: Any, core: Core, flow: np.ndarray) -> dict[str, Any]:
    """The family's solution document of a flow on the core (open sites, flows, stock)."""
    sku = net.sku_ids[0]
    scenario = net.scenario_ids[0] if len(net.scenario_ids) else "base"
    on = np.flatnonzero(flow > 1e-9)
    flows = [Flow(net.site_ids[core.site[a]], net.zone_ids[core.zone[a]], sku, scenario, float(flow[a])) for a in on]
    per_site = np.bincount(core.site, weights=flow, minlength=len(core.fixed))
    used = (per_site > 1e-9) | core.must
    stock = [Stock(net.site_ids[i], sku, float(per_site[i])) for i in np.flatnonzero(per_site > 1e-9)]
    return FrontWarehouseSolution([net.site_ids[i] for i in np.flatnonzero(used)], flows, stock, []).to_dict()
