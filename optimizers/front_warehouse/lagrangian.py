r"""The location core by Lagrangian relaxation, reduced-cost fixing and a reduced MILP.

Location core: one SKU, one scenario, every zone served by the sites (no depot, lost sales
or promise), multi-source. With Q_i the capacity in units and arcs a = (i, j) of cost c_a:

    min  sum_i f_i y_i + sum_a c_a x_a
    s.t. sum_{a into j} x_a = d_j                 (relaxed with multipliers u_j)
         sum_{a out of i} x_a <= Q_i y_i,  0 <= x_a <= d_j y_i,  y binary
         sum_i Q_i y_i >= D = sum_j d_j           (a valid row kept in the subproblem)

For fixed u the problem splits by site: v_i = f_i + K_i(u) with K_i the continuous knapsack
min sum_a (c_a - u_j) x_a, sum x_a <= Q_i, 0 <= x_a <= d_j (most negative reduced cost
first), and L(u) = sum_j u_j d_j + min { sum_i v_i y_i : sum_i Q_i y_i >= D } (the cheapest
sites, exact when capacities are equal, else its LP relaxation). Every L(u) is a lower bound;
u follows subgradient steps (Polyak, towards the incumbent). Incumbents: the subproblem's
sites (topped up to the demand), flows by a transportation LP, unused sites dropped.
Fixing: a site whose opposite state raises L above the incumbent keeps its state; the rest
is a much smaller MILP (the strong formulation, any backend) that closes the gap.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.front_warehouse import Flow, FrontWarehouse, FrontWarehouseSolution, Stock, network
from optimizers.backends.lp import solve_lp
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status, relative_gap

log = logging.getLogger(__name__)
STEPS = 600  # subgradient steps at most
PATIENCE = 25  # steps without a better bound before the step size halves
LP_EVERY = 4  # steps between transport LPs for incumbents
FLIP_EVERY = 5  # steps between updates of the per-site bounds used for fixing
COVER_GRID = 20_000  # capacity steps of the covering knapsack
FIX_ROUNDS = 6  # rounds of bounding with the fixed sites held
FIX_STEPS = 150  # subgradient steps per round
SWAPS = 60  # swap moves tried per pass of the local search
TRANSPORT_ARCS_PER_ZONE = 6  # arcs into each zone that a transportation LP starts with


def unsupported(inst: FrontWarehouse) -> str | None:
    extras = {
        "several SKUs": len(inst.skus) > 1,
        "scenarios": bool(inst.scenarios and len(inst.scenarios) > 1),
        "a depot": inst.depot is not None,
        "lost sales": bool(inst.lost_sale_cost),
        "a promise share": inst.service is not None and inst.service.min_share_within_promise > 0,
        "max_open_sites": inst.max_open_sites is not None,
        "single sourcing": bool(inst.single_source),
    }
    found = [name for name, present in extras.items() if present]
    return f"covers the multi-source location core only; this instance has {', '.join(found)} (use --method milp)" if found else None


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


@dataclass
class Relaxation:
    value: float
    site_value: np.ndarray  # v_i
    open: np.ndarray  # bool, the subproblem's sites
    slope: np.ndarray  # d_j - what the subproblem ships to j


def _knapsacks(core: Core, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v_i = f_i + K_i(u), and each arc's flow in its site's knapsack."""
    I = len(core.fixed)
    reduced = core.cost - u[core.zone]
    neg = np.flatnonzero(reduced < 0)
    order = neg[np.lexsort((reduced[neg], core.site[neg]))]
    s = core.site[order]
    d = core.demand[core.zone[order]]
    cum = np.cumsum(d)
    start = np.searchsorted(s, np.arange(I))  # first position of each site in the order
    before = cum - d - np.concatenate([[0.0], cum])[start[s]]
    take = np.clip(core.units[s] - before, 0.0, d)
    flow = np.zeros(len(core.cost))
    flow[order] = take
    K = np.bincount(s, weights=reduced[order] * take, minlength=I)
    return core.fixed + K, flow


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
    """min v'y, y binary, q'y >= short (v >= 0), by dynamic programming over at most
    COVER_GRID capacity steps. Capacities are rounded up and the need down on that grid, so
    every feasible y stays feasible: the value is a lower bound, exact on integer data that
    fits the grid."""
    scale = min(1.0, COVER_GRID / short)
    steps = np.maximum(1, np.ceil(q * scale - 1e-9)).astype(np.int64)
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


def relax(core: Core, u: np.ndarray) -> Relaxation:
    v, flow = _knapsacks(core, u)
    value, y = _cover(core, v, exact=True)
    shipped = np.bincount(core.zone, weights=flow * y[core.site], minlength=len(core.demand))
    return Relaxation(float(u @ core.demand) + value, v, y, core.demand - shipped)


def transport(core: Core, sites: np.ndarray) -> tuple[float, np.ndarray] | None:
    """Cheapest flows from the open ``sites``: (cost incl. fixed costs, flow per arc), or None.

    Column generation: the LP starts with the few cheapest arcs into each zone; arcs whose
    reduced cost at the LP's duals is negative are added until none is (then the flows are
    optimal over every arc from the open sites)."""
    if core.units[sites].sum() < core.total * (1 - 1e-12):
        return None
    usable = np.flatnonzero(sites[core.site])
    order = usable[np.lexsort((core.cost[usable], core.zone[usable]))]
    zone = core.zone[order]
    rank = np.arange(len(order)) - np.searchsorted(zone, zone)  # position among the zone's arcs
    per_zone = TRANSPORT_ARCS_PER_ZONE
    active = np.zeros(len(core.cost), bool)
    active[order[rank < per_zone]] = True
    scale = max(1.0, float(np.abs(core.cost[usable]).max(initial=0.0)))
    while True:
        arcs = np.flatnonzero(active)
        out = _transport_lp(core, sites, arcs)
        if out is None:  # the cheapest arcs cannot carry the demand: widen
            if active[usable].all():
                return None
            per_zone *= 4
            active[order[rank < per_zone]] = True
            continue
        x, zone_dual, site_dual = out
        reduced = core.cost[usable] - zone_dual[core.zone[usable]] - site_dual[core.site[usable]]
        priced = usable[(reduced < -1e-9 * scale) & ~active[usable]]
        if not len(priced):
            break
        active[priced] = True
    flow = np.zeros(len(core.cost))
    flow[arcs] = x
    used = sites & ((np.bincount(core.site, weights=flow, minlength=len(core.fixed)) > 1e-9) | core.must)
    return float(core.fixed[used].sum() + core.cost @ flow), flow


def _transport_lp(core: Core, sites: np.ndarray, arcs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The transportation LP over ``arcs``: (flows, zone duals, site duals), or None if infeasible."""
    J, I = len(core.demand), len(core.fixed)
    A = sp.csr_matrix((np.ones(2 * len(arcs)), (np.concatenate([core.zone[arcs], J + core.site[arcs]]), np.tile(np.arange(len(arcs)), 2))),
                      shape=(J + I, len(arcs)))
    lo = np.concatenate([core.demand, np.full(I, -np.inf)])
    hi = np.concatenate([core.demand, np.where(sites, core.units, 0.0)])
    out = solve_lp(core.cost[arcs], A, lo, hi, np.zeros(len(arcs)), np.full(len(arcs), np.inf), method="highs-ds")
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
    tried: set[bytes] | None = None


def subgradient(core: Core, deadline: float, search: Search, *, base: Core | None = None, start: np.ndarray | None = None,
                theta: float = 2.0, steps: int = STEPS) -> Search:
    """Raise the bound on ``core`` by subgradient steps from ``start``; incumbents are priced
    on ``base`` (the unrestricted core, when ``core`` has sites fixed)."""
    base = base or core
    if start is None:
        per_unit_fixed = np.min(np.where(np.isfinite(core.fixed), core.fixed, np.inf) / np.maximum(core.units, 1e-12))
        u = np.full(len(core.demand), np.inf)
        np.minimum.at(u, core.zone, core.cost)
        u = np.where(np.isfinite(u), u, 0.0) + per_unit_fixed
    else:
        u = start.copy()
    since, last_lp = 0, -LP_EVERY
    search.tried = search.tried or set()
    for step in range(steps):
        r = relax(core, u)
        if step % FLIP_EVERY == 0:
            _flip_bounds(core, u, r, search)
        if search.best_u is None or r.value > search.best_bound + 1e-9 * abs(search.best_bound):
            search.best_bound, search.best_u, search.best_relaxation, since = r.value, u.copy(), r, 0
            if step >= last_lp + LP_EVERY:  # incumbents from improving points, not every step: each is an LP
                _incumbent(core, base, r, search)
                last_lp = step
        else:
            since += 1
            if since >= PATIENCE:
                theta, since = theta / 2, 0
        gap = search.upper - search.best_bound
        if gap <= 1e-7 * max(1.0, abs(search.upper)) or theta < 1e-4 or time.perf_counter() > deadline:
            break
        norm = float(r.slope @ r.slope)
        if norm <= 1e-12:
            break
        target = search.upper if math.isfinite(search.upper) else r.value * 1.05 + 1.0
        u = u + theta * max(target - r.value, 1e-9 * abs(target)) / norm * r.slope
        if step % 50 == 0:
            log.info("lagrangian step %d: bound %.10g, incumbent %.10g", step, search.best_bound, search.upper)
    return search


def _incumbent(core: Core, base: Core, r: Relaxation, search: Search) -> None:
    sites = r.open.copy()
    short = core.total - core.units[sites].sum()
    if short > 0:  # top up with the cheapest capacity
        for i in np.argsort(np.where(sites | ~np.isfinite(core.fixed), np.inf, r.site_value / np.maximum(core.units, 1e-12))):
            if short <= 0 or not np.isfinite(core.fixed[i]) or sites[i]:
                break
            sites[i] = True
            short -= core.units[i]
    key = np.packbits(sites).tobytes()
    assert search.tried is not None
    if key in search.tried:
        return
    search.tried.add(key)
    found = transport(base, sites)
    if found is not None and found[0] < search.upper:
        search.upper, search.flow = found


def _flip_bounds(core: Core, u: np.ndarray, r: Relaxation, search: Search) -> None:
    """Raise each site's bounds with it forced open and forced closed, at multipliers u."""
    I = len(core.fixed)
    if search.if_open is None or search.if_closed is None:
        search.if_open, search.if_closed = np.full(I, -math.inf), np.full(I, -math.inf)
    base = float(u @ core.demand)
    for i in range(I):
        if core.must[i] or not np.isfinite(core.fixed[i]):
            continue
        flipped = base + _cover(core, r.site_value, {i: not bool(r.open[i])})[0]
        if r.open[i]:
            search.if_open[i] = max(search.if_open[i], r.value)
            search.if_closed[i] = max(search.if_closed[i], flipped)
        else:
            search.if_closed[i] = max(search.if_closed[i], r.value)
            search.if_open[i] = max(search.if_open[i], flipped)


def local_search(core: Core, search: Search, deadline: float) -> None:
    """Improve the incumbent by closing a site, opening one, or swapping an open site for a
    closed one (first improvement), each move priced by a transportation LP. Moves are tried
    in the order of the relaxation's site values v_i (drops of the dearest, adds of the
    cheapest, swaps by v_closed - v_open, the SWAPS most promising)."""
    assert search.flow is not None and search.best_relaxation is not None
    v = search.best_relaxation.site_value
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        open_now = (np.bincount(core.site, weights=search.flow, minlength=len(core.fixed)) > 1e-9) | core.must
        opened = np.flatnonzero(open_now & ~core.must)
        closed = np.flatnonzero(~open_now & np.isfinite(core.fixed))
        moves: list[tuple[int, ...]] = [(i,) for i in opened[np.argsort(-v[opened])]] + [(k,) for k in closed[np.argsort(v[closed])]]
        if len(opened) and len(closed):
            estimate = v[closed][None, :] - v[opened][:, None]
            best = np.argsort(estimate, axis=None)[:SWAPS]
            moves += [(int(opened[a]), int(closed[b])) for a, b in zip(*np.unravel_index(best, estimate.shape), strict=True)]
        for move in moves:
            if time.perf_counter() > deadline:
                return
            trial = open_now.copy()
            trial[list(move)] = ~trial[list(move)]
            key = np.packbits(trial).tobytes()
            if search.tried is not None and key in search.tried:
                continue
            if search.tried is not None:
                search.tried.add(key)
            found = transport(core, trial)
            if found is not None and found[0] < search.upper * (1 - 1e-12):
                search.upper, search.flow = found
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
    return replace(core, fixed=fixed_cost, must=must)


def fixings(core: Core, search: Search) -> dict[int, bool]:
    """Sites whose opposite state provably costs at least the incumbent (at any multipliers met)."""
    assert search.best_relaxation is not None and search.best_u is not None
    _flip_bounds(core, search.best_u, search.best_relaxation, search)
    assert search.if_open is not None and search.if_closed is not None
    out = {}
    cut = search.upper * (1 - 1e-12)
    for i in range(len(core.fixed)):
        if core.must[i] or not np.isfinite(core.fixed[i]):
            continue
        if search.if_open[i] >= cut:
            out[i] = False
        elif search.if_closed[i] >= cut:
            out[i] = True
    return out


def run(inst: FrontWarehouse, backend: str | None, options: SolverOptions) -> MethodOutput:
    started = time.perf_counter()
    limit = options.time_limit_s
    end = math.inf if limit is None else started + limit
    core, net = Core.of(inst)
    search = subgradient(core, started + (0.3 * limit if limit else 60.0), Search())
    log.info("subgradient: %.2f s, %d transport LPs", time.perf_counter() - started, len(search.tried or ()))
    if search.flow is not None:
        before = search.upper
        local_search(core, search, started + (0.4 * limit if limit else 90.0))
        log.info("local search: incumbent %.10g -> %.10g after %.2f s", before, search.upper, time.perf_counter() - started)
    bound = search.best_bound
    meta: dict[str, Any] = {"lagrangian_bound": bound}
    fixed = fixings(core, search) if math.isfinite(search.upper) else {}
    bound = _fix_rounds(core, search, fixed, bound, started + (0.5 * limit if limit else 120.0))
    meta.update(heuristic_upper=search.upper, restricted_bound=bound)
    solution = _solution(inst, net, core, search.flow) if search.flow is not None else None
    objective = search.upper if solution is not None else None
    early = relative_gap(objective, bound)
    if objective is not None and early is not None and early <= options.gap:
        return MethodOutput(Status.OPTIMAL, objective, min(bound, objective), solution, meta=meta)
    meta["fixed_open"] = sum(1 for s in fixed.values() if s)
    meta["fixed_closed"] = sum(1 for s in fixed.values() if not s)
    sites = [s.model_copy(update={"status": ("open" if fixed[i] else "closed")}) if i in fixed else s for i, s in enumerate(inst.sites)]
    reduced = inst.model_copy(update={"sites": sites})
    left = None if limit is None else max(0.05, end - time.perf_counter())
    log.info("lagrangian: bound %.10g, incumbent %.10g; %d sites fixed of %d; reduced MILP", bound, search.upper, len(fixed), len(sites))
    out = _reduced_milp(reduced, core, backend or "highs", replace(options, time_limit_s=left))
    if out.objective is not None and (objective is None or out.objective < objective):
        objective, solution = out.objective, out.solution
    if out.status is Status.INFEASIBLE:  # nothing better than the incumbent in the reduced space
        reduced_bound = search.upper
    else:
        reduced_bound = out.bound if out.bound is not None else -math.inf
    bound = max(bound, min(search.upper, reduced_bound))
    if objective is None:
        return MethodOutput(Status.NO_SOLUTION, bound=bound if math.isfinite(bound) else None, message=out.message, meta=meta)
    bound = min(bound, objective)
    gap = relative_gap(objective, bound)
    status = Status.OPTIMAL if gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12 else Status.FEASIBLE
    return MethodOutput(status, objective, bound, solution, message=out.message if status is not Status.OPTIMAL else "", meta=meta)


def _fix_rounds(core: Core, search: Search, fixed: dict[int, bool], bound: float, deadline: float) -> float:
    """Bound the sites left free again with the fixed ones held (fewer sites, a higher bound,
    more fixing), until nothing new is fixed. Any plan cheaper than the incumbent has the fixed
    sites in their states, so min(incumbent, the restricted bound) bounds the optimum; returns
    the best such bound. ``fixed`` grows in place."""
    assert search.best_u is not None or not fixed
    for _ in range(FIX_ROUNDS):
        if not fixed or time.perf_counter() > deadline or not math.isfinite(search.upper):
            break
        sub = restrict(core, fixed)
        inner = subgradient(sub, deadline, Search(upper=search.upper, flow=search.flow, tried=search.tried),
                            base=core, start=search.best_u, theta=0.5, steps=FIX_STEPS)
        search.upper, search.flow = inner.upper, inner.flow
        bound = max(bound, min(search.upper, inner.best_bound))
        more = fixings(sub, inner)
        log.info("fixing round: %d sites fixed, restricted bound %.10g, incumbent %.10g, %d more fixed", len(fixed), inner.best_bound,
                 search.upper, len(more))
        if not more:
            break
        fixed.update(more)
    return bound


def _reduced_milp(reduced: FrontWarehouse, core: Core, backend: str, options: SolverOptions) -> MethodOutput:
    """The strong formulation of the reduced instance, with the capacity cover row
    sum_i Q_i y_i >= D that the relaxation uses (HiGHS does not find it by itself)."""
    from optimizers.backends import solve_linear
    from optimizers.front_warehouse import milp

    f = milp.build(reduced)
    f.model.add_constraints("capacity_cover", 1, np.zeros(len(f.y)), f.y, core.units[: len(f.y)], lo=core.total * (1 - 1e-9))
    out = solve_linear(f.model, backend, options)
    solution = None if out.x is None else milp.read_solution(f, out.x).to_dict()
    return MethodOutput(out.status or Status.ERROR, out.objective, out.bound, solution, out.message)


def _solution(inst: FrontWarehouse, net: Any, core: Core, flow: np.ndarray) -> dict[str, Any]:
    sku = net.sku_ids[0]
    scenario = net.scenario_ids[0] if len(net.scenario_ids) else "base"
    on = np.flatnonzero(flow > 1e-9)
    flows = [Flow(net.site_ids[core.site[a]], net.zone_ids[core.zone[a]], sku, scenario, float(flow[a])) for a in on]
    per_site = np.bincount(core.site, weights=flow, minlength=len(core.fixed))
    used = (per_site > 1e-9) | core.must
    stock = [Stock(net.site_ids[i], sku, float(per_site[i])) for i in np.flatnonzero(per_site > 1e-9)]
    return FrontWarehouseSolution([net.site_ids[i] for i in np.flatnonzero(used)], flows, stock, []).to_dict()
