r"""Front-warehouse location and stock placement: the strong extensive-form MILP.

Data
    sites i (fixed cost f_i, volume capacity Q_i, status), zones j, SKUs k (unit volume v_k,
    holding cost h_k), scenarios w (probability p_w, demand d_jkw = d_jk * factor_w),
    arcs a = (i, j) in A with cost c_a per unit, A_P = arcs within the promise,
    depot cost c0 (if a depot exists), lost-sale cost l_k (for SKUs that may be lost),
    promise share alpha, at most P open sites.
Variables
    y_i in {0, 1}     site i is open (fixed to 1 for status `open`, 0 for `closed`)
    x_akw >= 0        units of k on arc a in scenario w (only where d_jk > 0)
    u_jkw >= 0        units of k sent to zone j from the depot
    L_jkw >= 0        units of k lost at zone j
    s_ik >= 0         units of k stocked at site i (with one scenario, s_ik = sum_a x_ak)
    z_a in {0, 1}     zone j is assigned to site i (single-source only)
Objective
    min sum_i f_i y_i + sum_ik h_k s_ik
        + sum_w p_w (sum_akw c_a x_akw + sum_jk c0 u_jkw + sum_jk l_k L_jkw)
Constraints
    (1) demand      sum_{a into j} x_akw + u_jkw + L_jkw = d_jkw          for all j, k, w
    (2) strong      x_akw <= d_jkw y_i     (single-source: x_akw <= d_jkw z_a)
    (3) capacity    sum_k v_k s_ik <= Q_i y_i                             for all i
    (4) stock       sum_{a from i} x_akw <= s_ik                          for all i, k, w
    (5) promise     sum_{a in A_P, k} x_akw >= alpha sum_jk d_jkw         for all w
    (6) open sites  sum_i y_i <= P
    (7) single      sum_{a into j} z_a <= 1 for all j;  z_a <= y_i for all a
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.front_warehouse import DEPOT, LOST, Flow, FrontWarehouse, FrontWarehouseSolution, Network, Stock, network
from optimizers.linear import LinearModel


@dataclass
class Formulation:
    """The built model and the index maps needed to read a solution back by ids."""

    model: LinearModel
    net: Network
    y: np.ndarray  # (I,) columns
    x: np.ndarray  # (W, n_ak) columns
    ak_arc: np.ndarray  # (n_ak,) arc of each arc-SKU pair
    ak_sku: np.ndarray
    u: np.ndarray | None  # (W, n_jk)
    lost: np.ndarray | None  # (W, n_lost)
    jk_zone: np.ndarray
    jk_sku: np.ndarray
    lost_pairs: np.ndarray  # indices into jk pairs that may be lost
    s: np.ndarray | None  # (n_ik,) stock columns when several scenarios
    ik_site: np.ndarray
    ik_sku: np.ndarray


def integral_flows_exact(inst: FrontWarehouse) -> bool:
    """True when requiring integer flows loses nothing: with one scenario, unit volumes,
    integer demand and capacity and no promise row, every opening decision leaves a
    transportation problem with integer data, whose optimal vertices are integral."""
    net = network(inst)
    promise = inst.service is not None and inst.service.min_share_within_promise > 0
    scenario_demand = net.demand * net.factor[0] if len(net.factor) == 1 else None
    return (
        scenario_demand is not None
        and not promise
        and bool(np.all(net.volume == 1.0))
        and bool(np.all(np.mod(scenario_demand, 1.0) == 0.0))
        and bool(np.all(np.mod(net.capacity, 1.0) == 0.0))
    )


def build(inst: FrontWarehouse, *, integral_flows: bool = False) -> Formulation:
    net = network(inst)
    I, K, W = len(net.site_ids), len(net.sku_ids), len(net.scenario_ids)
    m = LinearModel(name=inst.name)

    # positive-demand (zone, sku) pairs and the arc-sku pairs that can serve them
    jk_zone, jk_sku = np.nonzero(net.demand > 0)
    n_jk = len(jk_zone)
    jk_row = np.full(net.demand.shape, -1, np.int64)
    jk_row[jk_zone, jk_sku] = np.arange(n_jk)
    ak_arc, ak_sku = np.nonzero(net.demand[net.arc_zone] > 0)
    n_ak = len(ak_arc)
    ak_site, ak_zone = net.arc_site[ak_arc], net.arc_zone[ak_arc]
    ak_demand = net.demand[ak_zone, ak_sku]
    many = W > 1

    y = m.add_variables("y", I, lb=net.must_open.astype(float), ub=(~net.closed).astype(float), cost=net.fixed_cost, integer=True)
    per_unit = net.arc_cost[ak_arc] + (0.0 if many else net.holding[ak_sku])
    x = np.stack([m.add_variables(f"x[{w}]", n_ak, cost=net.probability[w] * per_unit, integer=integral_flows) for w in range(W)]) if W else np.zeros((0, 0), np.int64)
    u = np.stack([m.add_variables(f"depot[{w}]", n_jk, cost=net.probability[w] * net.depot_cost) for w in range(W)]) if net.has_depot else None
    lost_pairs = np.flatnonzero(net.lost_allowed[jk_sku])
    lost = (
        np.stack([m.add_variables(f"lost[{w}]", len(lost_pairs), cost=net.probability[w] * net.lost_cost[jk_sku[lost_pairs]]) for w in range(W)])
        if len(lost_pairs)
        else None
    )
    ik = np.unique(ak_site * K + ak_sku)
    ik_site, ik_sku = ik // K, ik % K
    s = m.add_variables("stock", len(ik), cost=net.holding[ik_sku], integer=integral_flows) if many else None
    z = m.add_variables("assign", len(net.arc_site), ub=1.0, integer=True) if inst.single_source else None

    for w in range(W):
        d_w = net.demand * net.factor[w]
        # (1) demand
        rows = [jk_row[ak_zone, ak_sku]]
        cols = [x[w]]
        if u is not None:
            rows.append(np.arange(n_jk))
            cols.append(u[w])
        if lost is not None:
            rows.append(lost_pairs)
            cols.append(lost[w])
        m.add_constraints(f"demand[{w}]", n_jk, np.concatenate(rows), np.concatenate(cols), 1.0, lo=d_w[jk_zone, jk_sku], hi=d_w[jk_zone, jk_sku])
        # (2) strong linking x <= d y (or d z)
        link_col = y[ak_site] if z is None else z[ak_arc]
        pair = np.arange(n_ak)
        m.add_constraints(
            f"strong[{w}]", n_ak, np.concatenate([pair, pair]), np.concatenate([x[w], link_col]),
            np.concatenate([np.ones(n_ak), -ak_demand * net.factor[w]]), hi=0.0,
        )
        # (4) stock covers each scenario's shipments
        if s is not None:
            ik_row = np.searchsorted(ik, ak_site * K + ak_sku)
            m.add_constraints(
                f"stock[{w}]", len(ik), np.concatenate([ik_row, np.arange(len(ik))]), np.concatenate([x[w], s]),
                np.concatenate([np.ones(n_ak), -np.ones(len(ik))]), hi=0.0,
            )
        # (5) promise share
        if inst.service is not None and inst.service.min_share_within_promise > 0:
            within = np.flatnonzero(net.within_promise[ak_arc])
            need = inst.service.min_share_within_promise * d_w.sum()
            m.add_constraints(f"promise[{w}]", 1, np.zeros(len(within)), x[w][within], 1.0, lo=need)

    # (3) capacity: stock volume (or, with one scenario, shipped volume) <= Q_i y_i
    if s is not None:
        cap_rows, cap_cols, cap_vals = ik_site, s, net.volume[ik_sku]
    else:
        cap_rows = ak_site if W else np.zeros(0, np.int64)
        cap_cols = x[0] if W else np.zeros(0, np.int64)
        cap_vals = net.volume[ak_sku] if W else np.zeros(0)
    m.add_constraints(
        "capacity", I, np.concatenate([cap_rows, np.arange(I)]), np.concatenate([cap_cols, y]),
        np.concatenate([cap_vals, -net.capacity]), hi=0.0,
    )
    # (6) open sites
    if inst.max_open_sites is not None:
        m.add_constraints("max_open", 1, np.zeros(I), y, 1.0, hi=float(inst.max_open_sites))
    # (7) single source
    if z is not None:
        A = len(net.arc_site)
        m.add_constraints("one_site", len(net.zone_ids), net.arc_zone, z, 1.0, hi=1.0)
        m.add_constraints("assign_open", A, np.concatenate([np.arange(A), np.arange(A)]), np.concatenate([z, y[net.arc_site]]),
                          np.concatenate([np.ones(A), -np.ones(A)]), hi=0.0)

    return Formulation(m, net, y, x, ak_arc, ak_sku, u, lost, jk_zone, jk_sku, lost_pairs, s, ik_site, ik_sku)


def simple_lower_bound(net: Network) -> float:
    """A valid lower bound without any solver, reported when a solver stops before it has a
    better one. Two parts, each a lower bound on its own share of the cost:
    - fixed: the `open` sites, plus the cheapest capacity (fractional knapsack by fixed cost
      per unit of capacity) that the demand with no depot and no lost sales needs at its peak;
    - service: each unit of expected demand at its cheapest way to be served (any arc from a
      usable site, the depot, or losing it), ignoring capacity, promise and holding.
    """
    cheapest_arc = np.full(len(net.zone_ids), np.inf)
    np.minimum.at(cheapest_arc, net.arc_zone, net.arc_cost)
    per_unit = np.broadcast_to(cheapest_arc[:, None], net.demand.shape)
    if net.has_depot:
        per_unit = np.minimum(per_unit, net.depot_cost)
    per_unit = np.minimum(per_unit, np.where(net.lost_allowed, net.lost_cost, np.inf)[None, :])
    served = net.demand > 0
    expected_units = float(net.probability @ net.factor)
    service = expected_units * float((net.demand[served] * per_unit[served]).sum())

    fixed = float(net.fixed_cost[net.must_open].sum())
    short = net.peak_volume_needing_sites() - float(net.capacity[net.must_open].sum())
    free = np.flatnonzero(~net.must_open & ~net.closed & (net.capacity > 0))
    for i in free[np.argsort(net.fixed_cost[free] / net.capacity[free], kind="stable")]:
        if short <= 0:
            break
        take = min(1.0, short / net.capacity[i])
        fixed += take * float(net.fixed_cost[i])
        short -= take * float(net.capacity[i])
    return fixed + service


def read_solution(f: Formulation, values: np.ndarray, eps: float = 1e-9) -> FrontWarehouseSolution:
    """Turn the solver's column values into a solution keyed by ids."""
    net = f.net
    val = np.where(np.abs(values) < eps, 0.0, values)
    open_sites = [net.site_ids[i] for i in np.flatnonzero(val[f.y] > 0.5)]
    flows: list[Flow] = []
    for w, scenario in enumerate(net.scenario_ids):
        xw = val[f.x[w]]
        for p in np.flatnonzero(xw > 0):
            a = f.ak_arc[p]
            flows.append(Flow(net.site_ids[net.arc_site[a]], net.zone_ids[net.arc_zone[a]], net.sku_ids[f.ak_sku[p]], scenario, float(xw[p])))
        if f.u is not None:
            uw = val[f.u[w]]
            for p in np.flatnonzero(uw > 0):
                flows.append(Flow(DEPOT, net.zone_ids[f.jk_zone[p]], net.sku_ids[f.jk_sku[p]], scenario, float(uw[p])))
        if f.lost is not None:
            lw = val[f.lost[w]]
            for q in np.flatnonzero(lw > 0):
                p = f.lost_pairs[q]
                flows.append(Flow(LOST, net.zone_ids[f.jk_zone[p]], net.sku_ids[f.jk_sku[p]], scenario, float(lw[q])))
    if f.s is not None:
        units = val[f.s]
    else:
        K = len(net.sku_ids)
        shipped = np.zeros(len(net.site_ids) * K)
        if len(net.scenario_ids):
            np.add.at(shipped, net.arc_site[f.ak_arc] * K + f.ak_sku, val[f.x[0]])
        units = shipped[f.ik_site * K + f.ik_sku]
    stock = [Stock(net.site_ids[i], net.sku_ids[k], float(q)) for i, k, q in zip(f.ik_site, f.ik_sku, units) if q > 0]
    return FrontWarehouseSolution(open_sites, flows, stock)
