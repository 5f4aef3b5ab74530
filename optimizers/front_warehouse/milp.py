r"""Front-warehouse location and stock placement: the strong extensive-form MILP.

Data
    sites i (fixed cost f_i, volume capacity Q_i, status, at most m_i SKUs), zones j, SKUs k
    (unit volume v_k, holding cost h_k), scenarios w (probability p_w, demand d_jkw, promise
    share alpha_w, pre-sale share pi_w, transfer cost t_w between linked sites L_w),
    arcs a = (i, j) in A with cost c_a per unit, A_P = arcs within the promise,
    depot cost c0_k (if a depot exists), lost-sale cost l_k (for SKUs that may be lost),
    at most P open sites.
First stage (one plan)
    y_i in {0, 1}     site i is open (fixed to 1 for status `open`, 0 for `closed`)
    s_ik >= 0         units of k stocked at site i
    b_ik in {0, 1}    site i stocks k (only at sites with `max_skus`)
    P_kw >= 0         units of k promised within the promise in scenario w (when alpha_w > 0)
    R_ikw >= 0        volume site i keeps for pre-sale stock of k in scenario w (when pi_w > 0)
Second stage (each scenario w)
    x_akw >= 0        units of k on arc a from the plan's stock
    q_akw >= 0        units of k on arc a from stock placed for pre-sale orders
    u_jkw, L_jkw >= 0 units of k sent to zone j from the depot, lost
    t_lkw >= 0        units of k transferred over link l = (i -> i') in L_w
Objective
    min sum_i f_i y_i + sum_ik h_k s_ik + sum_w p_w ( sum_ak c_a x_akw + sum_ak (c_a + h_k) q_akw
        + sum_jk (c0_k u_jkw + l_k L_jkw) + sum_lk t_w t_lkw )
Constraints (every w)
    (1) demand     sum_{a into j} (x_akw + q_akw) + u_jkw + L_jkw = d_jkw
    (2) strong     x_akw <= d_jkw y_i,  q_akw <= pi_w d_jkw y_i   (single-source: z_a for y_i)
    (3) pre-sale   sum_{a into j} q_akw <= pi_w d_jkw
    (4) stock      sum_{a from i} x_akw + sum_{l out of i} t_lkw - sum_{l into i} t_lkw <= s_ik
    (5) transfer   t_lkw <= D_kw y_i'   (into an open site; leaving needs stock, hence an open site)
    (6) volume     sum_k v_k s_ik + sum_k R_ikw <= Q_i y_i,  v_k sum_{a from i} q_akw <= R_ikw
    (7) promise    sum_{a in A_P} (x_akw + q_akw) >= P_kw,  sum_k P_kw >= alpha_w sum_jk d_jkw
    (8) open sites sum_i y_i <= P;  SKUs per site  s_ik <= (Q_i / v_k) b_ik, sum_k b_ik <= m_i
    (9) single     sum_{a into j} z_a <= 1 for all j;  z_a <= y_i for all a
P and R split the rows that tie SKUs together, so that once (y, s, P, R) is fixed each
(scenario, SKU) is its own transportation LP: the blocks Benders works on (``benders.py``).
With one scenario and nothing else tying stock to scenarios (the OR-Library case) s, P and
R are left out: (4) and (6) read on the shipments directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.front_warehouse import DEPOT, LOST, Flow, FrontWarehouse, FrontWarehouseSolution, Network, Stock, Transfer, network
from optimizers.linear import LinearModel
from optimizers.memory import refuse_if_too_big

FIRST_STAGE = -1


@dataclass
class Formulation:
    """The built model, which block each column and row belongs to (``FIRST_STAGE`` or a
    (scenario, SKU) block w * K + k), and the index maps to read a solution back by ids."""

    model: LinearModel
    net: Network
    y: np.ndarray  # (I,) columns
    s: np.ndarray | None  # (n_ik,) stock columns (None: stock = shipments)
    ik_site: np.ndarray
    ik_sku: np.ndarray
    ak_arc: np.ndarray  # (n_ak,) arc of each arc-SKU pair
    ak_sku: np.ndarray
    x: np.ndarray  # (W, n_ak)
    q: list[np.ndarray | None]  # per scenario (n_ak,) pre-sale flows
    jk_zone: np.ndarray
    jk_sku: np.ndarray
    u: np.ndarray | None  # (W, n_jk)
    lost_pairs: np.ndarray  # indices into jk pairs that may be lost
    lost: np.ndarray | None  # (W, n_lost)
    t: list[np.ndarray | None]  # per scenario (n_links * K,) transfers, link-major
    b: np.ndarray | None  # stocks-this-SKU binaries of the (site, sku) pairs in b_pairs
    b_pairs: np.ndarray  # indices into the ik pairs
    P: dict[int, np.ndarray]  # scenario -> (K,) promised units
    R: dict[int, np.ndarray]  # scenario -> (n_ik,) pre-sale volume
    z: np.ndarray | None  # (A,) single-source assignment
    col_block: np.ndarray  # (num_vars,)
    col_zone: np.ndarray  # (num_vars,) the zone an arc flow serves, -1 for other columns
    row_block: np.ndarray  # (num_rows,)


def needs_stock_columns(net: Network) -> bool:
    return bool(len(net.scenario_ids) > 1 or net.presale.any() or any(len(f) for f in net.transfer_from) or net.max_skus.any())


def integral_flows_exact(inst: FrontWarehouse) -> bool:
    """True when requiring integer flows loses nothing: with one scenario, unit volumes,
    integer demand and capacity and no promise row, every opening decision leaves a
    transportation problem with integer data, whose optimal vertices are integral."""
    net = network(inst)
    return (
        not needs_stock_columns(net)
        and not net.promise_share.any()
        and bool(np.all(net.volume == 1.0))
        and bool(np.all(np.mod(net.scen_demand, 1.0) == 0.0))
        and bool(np.all(np.mod(net.capacity, 1.0) == 0.0))
    )


#: bytes per nonzero of the extensive form, building and solving on HiGHS included (measured:
#: the 40 x 400 x 20 x 2-scenario city example, 3.4 M nonzeros, peaks at 1.2 GB)
BYTES_PER_NONZERO = 350


def size_estimate(net: Network) -> tuple[int, int]:
    """Columns and nonzeros of the extensive form, counted before building it: every
    arc-SKU pair with demand carries a flow per scenario (and a pre-sale flow where there is
    pre-sale), each in about five rows (demand, linking twice, stock, promise)."""
    wanted = net.scen_demand.max(axis=0) > 0
    n_ak = int(wanted[net.arc_zone].sum())
    flows = n_ak * (len(net.scenario_ids) + int((net.presale > 0).sum()))
    return flows + len(net.site_ids) * (1 + len(net.sku_ids)), 5 * flows


def check_size(net: Network) -> None:
    """Refuse (exit 2) an extensive form that would not fit in the memory available."""
    columns, nonzeros = size_estimate(net)
    refuse_if_too_big("the extensive-form MILP", BYTES_PER_NONZERO * nonzeros, f"about {columns:,} columns, {nonzeros:,} nonzeros",
                      "Use --method lagrangian on the location core, --method scenario-lagrangian for stock plans (no extensive form), "
                      "fewer arcs (travel.max_minutes) or fewer SKUs or scenarios.")


def build(inst: FrontWarehouse, *, integral_flows: bool = False, stock_columns: bool | None = None, arcs: np.ndarray | None = None,
          open_sites: np.ndarray | None = None, strong: bool = True) -> Formulation:
    """The model; with ``arcs`` (a mask over the network's arcs) only those carry flow, and
    with ``open_sites`` (a mask over the sites) the openings are fixed: a restriction, whose
    plans are plans of the instance. ``strong=False`` leaves out the rows (2) (volume rows (6)
    still tie stock to openings): the same integer problem with a weaker, much smaller LP."""
    net = network(inst)
    if arcs is None:
        check_size(net)  # before any of the model is built
    I, K, W = len(net.site_ids), len(net.sku_ids), len(net.scenario_ids)
    m = LinearModel(name=inst.name)
    col_block: list[np.ndarray] = []
    row_block: list[np.ndarray] = []

    col_zone: list[np.ndarray] = []

    def cols(block: np.ndarray | int, columns: np.ndarray, zone: np.ndarray | None = None) -> np.ndarray:
        col_block.append(np.broadcast_to(np.asarray(block, np.int64), columns.shape).copy())
        col_zone.append(np.full(columns.shape, -1, np.int64) if zone is None else zone)
        return columns

    def rows(block: np.ndarray | int, count: int, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        m.add_constraints(*args, **kwargs)
        row_block.append(np.broadcast_to(np.asarray(block, np.int64), (count,)).copy())

    # (zone, sku) pairs with demand in some scenario, and the arc-sku pairs that can serve them
    wanted = net.scen_demand.max(axis=0) > 0
    jk_zone, jk_sku = np.nonzero(wanted)
    n_jk = len(jk_zone)
    jk_row = np.full(wanted.shape, -1, np.int64)
    jk_row[jk_zone, jk_sku] = np.arange(n_jk)
    ak_arc, ak_sku = np.nonzero(wanted[net.arc_zone] & (True if arcs is None else arcs[:, None]))
    n_ak = len(ak_arc)
    ak_site, ak_zone = net.arc_site[ak_arc], net.arc_zone[ak_arc]
    stock = needs_stock_columns(net) if stock_columns is None else stock_columns
    links = [len(f) for f in net.transfer_from]
    if stock:  # every site may stock what it ships, or what it may transfer
        ik = np.unique(np.concatenate([ak_site * K + ak_sku] + [(np.repeat(f, K) * K + np.tile(np.arange(K), len(f))) for f in net.transfer_from]))
    else:
        ik = np.unique(ak_site * K + ak_sku)
    ik_site, ik_sku = ik // K, ik % K
    n_ik = len(ik)
    lost_pairs = np.flatnonzero(net.lost_allowed[jk_sku])
    hold = 0.0 if stock else net.holding[ak_sku]

    # first stage
    y_lb, y_ub = (net.must_open, ~net.closed) if open_sites is None else (open_sites, open_sites)
    y = cols(FIRST_STAGE, m.add_variables("y", I, lb=y_lb.astype(float), ub=y_ub.astype(float), cost=net.fixed_cost, integer=True))
    s = cols(FIRST_STAGE, m.add_variables("stock", n_ik, cost=net.holding[ik_sku], integer=integral_flows)) if stock else None
    limited = np.flatnonzero(net.max_skus[ik_site] > 0) if stock else np.zeros(0, np.int64)
    b = cols(FIRST_STAGE, m.add_variables("stocks_sku", len(limited), ub=1.0, integer=True)) if len(limited) else None
    promise_w = [w for w in range(W) if net.promise_share[w] > 0]
    P = {w: cols(FIRST_STAGE, m.add_variables(f"promised[{w}]", K)) for w in promise_w}
    presale_w = [w for w in range(W) if net.presale[w] > 0]
    R = {w: cols(FIRST_STAGE, m.add_variables(f"presale_volume[{w}]", n_ik)) for w in presale_w}
    z = cols(FIRST_STAGE, m.add_variables("assign", len(net.arc_site), ub=1.0, integer=True)) if inst.single_source else None

    # second stage, block (w, k)
    x_all, q_all, u_all, lost_all, t_all = [], [], [], [], []
    for w in range(W):
        p, d_w = net.probability[w], net.scen_demand[w]
        x_all.append(cols(w * K + ak_sku, m.add_variables(f"x[{w}]", n_ak, cost=p * (net.arc_cost[ak_arc] + hold), integer=integral_flows), ak_zone))
        q = None
        if w in R:
            q = cols(w * K + ak_sku, m.add_variables(f"presale[{w}]", n_ak, cost=p * (net.arc_cost[ak_arc] + net.holding[ak_sku])), ak_zone)
        q_all.append(q)
        if net.has_depot:
            u_all.append(cols(w * K + jk_sku, m.add_variables(f"depot[{w}]", n_jk, cost=p * net.depot_cost[jk_sku])))
        if len(lost_pairs):
            lost_all.append(cols(w * K + jk_sku[lost_pairs], m.add_variables(f"lost[{w}]", len(lost_pairs), cost=p * net.lost_cost[jk_sku[lost_pairs]])))
        t = None
        if links[w]:
            t = cols(w * K + np.tile(np.arange(K), links[w]), m.add_variables(f"transfer[{w}]", links[w] * K, cost=p * net.transfer_cost[w]))
        t_all.append(t)
        x = x_all[-1]
        ak_d = d_w[ak_zone, ak_sku]
        pair = np.arange(n_ak)

        # (1) demand
        parts = [(jk_row[ak_zone, ak_sku], x)]
        if q is not None:
            parts.append((jk_row[ak_zone, ak_sku], q))
        if net.has_depot:
            parts.append((np.arange(n_jk), u_all[-1]))
        if len(lost_pairs):
            parts.append((lost_pairs, lost_all[-1]))
        rows(w * K + jk_sku, n_jk, f"demand[{w}]", n_jk, np.concatenate([r for r, _ in parts]), np.concatenate([c for _, c in parts]), 1.0,
             lo=d_w[jk_zone, jk_sku], hi=d_w[jk_zone, jk_sku])
        # (2) strong linking x <= d y (or d z)
        z_or_y = y[ak_site] if z is None else z[ak_arc]
        for name, flow, scale in (("strong", x, 1.0), ("presale_strong", q, net.presale[w])):
            if flow is None or not (strong or z is not None):
                continue
            rows(w * K + ak_sku, n_ak, f"{name}[{w}]", n_ak, np.concatenate([pair, pair]), np.concatenate([flow, z_or_y]),
                 np.concatenate([np.ones(n_ak), -scale * ak_d]), hi=0.0)
        if q is not None:
            # (3) pre-sale orders: at most the pre-sale share of each zone's demand
            rows(w * K + jk_sku, n_jk, f"presale_orders[{w}]", n_jk, jk_row[ak_zone, ak_sku], q, 1.0, hi=net.presale[w] * d_w[jk_zone, jk_sku])
        if s is not None:
            # (4) stock covers shipments and transfers out, less transfers in
            ik_of_ak = np.searchsorted(ik, ak_site * K + ak_sku)
            r_parts, c_parts, v_parts = [ik_of_ak, np.arange(n_ik)], [x, s], [np.ones(n_ak), -np.ones(n_ik)]
            if t is not None:
                k_of = np.tile(np.arange(K), links[w])
                src, dst = np.repeat(net.transfer_from[w], K), np.repeat(net.transfer_to[w], K)
                r_parts += [np.searchsorted(ik, src * K + k_of), _ik_rows(ik, dst * K + k_of)]
                c_parts += [t, t]
                v_parts += [np.ones(len(t)), -np.ones(len(t))]
            keep = [rp >= 0 for rp in r_parts]
            rows(w * K + ik_sku, n_ik, f"stock[{w}]", n_ik, np.concatenate([rp[kp] for rp, kp in zip(r_parts, keep)]),
                 np.concatenate([cp[kp] for cp, kp in zip(c_parts, keep)]), np.concatenate([vp[kp] for vp, kp in zip(v_parts, keep)]), hi=0.0)
        if t is not None:
            # (5) transfers go into open sites only
            n_t = len(t)
            k_of = np.tile(np.arange(K), links[w])
            cap = d_w.sum(axis=0)[k_of]
            rows(w * K + k_of, n_t, f"transfer_open[{w}]", n_t, np.concatenate([np.arange(n_t)] * 2),
                 np.concatenate([t, y[np.repeat(net.transfer_to[w], K)]]), np.concatenate([np.ones(n_t), -cap]), hi=0.0)
        if q is not None:
            # (6) pre-sale stock within the volume kept for it
            ik_of_ak = np.searchsorted(ik, ak_site * K + ak_sku)
            rows(w * K + ik_sku, n_ik, f"presale_volume[{w}]", n_ik, np.concatenate([ik_of_ak, np.arange(n_ik)]), np.concatenate([q, R[w]]),
                 np.concatenate([net.volume[ak_sku], -np.ones(n_ik)]), hi=0.0)
        if w in P:
            # (7) promise, per SKU and in total
            within = np.flatnonzero(net.within_promise[ak_arc])
            flows = [x[within]] + ([q[within]] if q is not None else [])
            skus = np.concatenate([ak_sku[within]] * len(flows))
            rows(w * K + np.arange(K), K, f"promise_sku[{w}]", K, np.concatenate([skus, np.arange(K)]), np.concatenate(flows + [P[w]]),
                 np.concatenate([np.ones(len(skus)), -np.ones(K)]), lo=0.0)
            rows(FIRST_STAGE, 1, f"promise[{w}]", 1, np.zeros(K), P[w], 1.0, lo=net.promise_share[w] * d_w.sum())
        if s is not None:
            # valid, and they spare a decomposition many infeasible blocks: what is promised
            # (or, for SKUs with no depot and no lost sales, demanded) needs stock that can ship it
            promise_sites = np.zeros(I, bool)
            promise_sites[net.arc_site[net.within_promise]] = True
            stock_sites = promise_sites | bool(links[w])
            need = {"promise_stock": (np.arange(K), promise_sites)} if w in P else {}
            hard = np.flatnonzero(~(net.has_depot | net.lost_allowed) & (d_w.sum(axis=0) > 0))
            for name, (skus_, sites_) in (need | ({"supply": (hard, np.ones(I, bool))} if len(hard) else {})).items():
                sku_row = np.full(K, -1, np.int64)
                sku_row[skus_] = np.arange(len(skus_))
                stocked = np.flatnonzero((sku_row[ik_sku] >= 0) & (sites_[ik_site] | (stock_sites[ik_site] if name == "promise_stock" else True)))
                r_parts, c_parts, v_parts = [sku_row[ik_sku[stocked]]], [s[stocked]], [np.ones(len(stocked))]
                if w in R:
                    pre = np.flatnonzero((sku_row[ik_sku] >= 0) & sites_[ik_site])
                    r_parts.append(sku_row[ik_sku[pre]])
                    c_parts.append(R[w][pre])
                    v_parts.append(1.0 / net.volume[ik_sku[pre]])
                if name == "promise_stock":
                    r_parts.append(np.arange(K))
                    c_parts.append(P[w])
                    v_parts.append(-np.ones(K))
                    lo = 0.0
                else:
                    lo = d_w.sum(axis=0)[hard]
                rows(FIRST_STAGE, len(skus_), f"{name}[{w}]", len(skus_), np.concatenate(r_parts), np.concatenate(c_parts), np.concatenate(v_parts), lo=lo)

    # (6) volume: stock (or, without stock columns, the one scenario's shipments) <= Q_i y_i
    if s is not None:
        for w in presale_w or [None]:  # type: ignore[list-item]
            extra_r, extra_c, extra_v = ([ik_site], [R[w]], [np.ones(n_ik)]) if w is not None else ([], [], [])
            rows(FIRST_STAGE, I, "capacity" if w is None else f"capacity[{w}]", I,
                 np.concatenate([ik_site, np.arange(I)] + extra_r), np.concatenate([s, y] + extra_c),
                 np.concatenate([net.volume[ik_sku], -net.capacity] + extra_v), hi=0.0)
    else:
        x0 = x_all[0] if W else np.zeros(0, np.int64)
        rows(FIRST_STAGE, I, "capacity", I, np.concatenate([ak_site if W else np.zeros(0, np.int64), np.arange(I)]),
             np.concatenate([x0, y]), np.concatenate([net.volume[ak_sku] if W else np.zeros(0), -net.capacity]), hi=0.0)
    # (8) open sites, SKUs per site
    if inst.max_open_sites is not None:
        rows(FIRST_STAGE, 1, "max_open", 1, np.zeros(I), y, 1.0, hi=float(inst.max_open_sites))
    if b is not None:
        assert s is not None
        n_b = len(limited)
        most = net.capacity[ik_site[limited]] / net.volume[ik_sku[limited]]
        rows(FIRST_STAGE, n_b, "stock_if_listed", n_b, np.concatenate([np.arange(n_b)] * 2), np.concatenate([s[limited], b]),
             np.concatenate([np.ones(n_b), -most]), hi=0.0)
        sites = np.flatnonzero(net.max_skus > 0)
        site_row = np.searchsorted(sites, ik_site[limited])
        rows(FIRST_STAGE, len(sites), "max_skus", len(sites), site_row, b, 1.0, hi=net.max_skus[sites].astype(float))
    # (9) single source
    if z is not None:
        A = len(net.arc_site)
        rows(FIRST_STAGE, len(net.zone_ids), "one_site", len(net.zone_ids), net.arc_zone, z, 1.0, hi=1.0)
        rows(FIRST_STAGE, A, "assign_open", A, np.concatenate([np.arange(A), np.arange(A)]), np.concatenate([z, y[net.arc_site]]),
             np.concatenate([np.ones(A), -np.ones(A)]), hi=0.0)

    return Formulation(
        model=m, net=net, y=y, s=s, ik_site=ik_site, ik_sku=ik_sku, ak_arc=ak_arc, ak_sku=ak_sku,
        x=np.stack(x_all) if W else np.zeros((0, 0), np.int64), q=q_all, jk_zone=jk_zone, jk_sku=jk_sku,
        u=np.stack(u_all) if u_all else None, lost_pairs=lost_pairs, lost=np.stack(lost_all) if lost_all else None, t=t_all,
        b=b, b_pairs=limited, P=P, R=R, z=z,
        col_block=np.concatenate(col_block), col_zone=np.concatenate(col_zone), row_block=np.concatenate(row_block),
    )


def _ik_rows(ik: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row of each (site, sku) key in ``ik``, -1 where the pair has no stock column."""
    pos = np.searchsorted(ik, keys)
    pos = np.minimum(pos, len(ik) - 1)
    return np.where(ik[pos] == keys, pos, -1)


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
    per_unit = np.minimum(cheapest_arc[:, None], net.fallback_cost[None, :])
    expected = np.tensordot(net.probability, net.scen_demand, axes=1)  # (J, K)
    served = expected > 0
    service = float((expected[served] * per_unit[served]).sum())

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
    """Turn the column values into a solution keyed by ids."""
    net = f.net
    K = len(net.sku_ids)
    val = np.where(np.abs(values) < eps, 0.0, values)
    open_sites = [net.site_ids[i] for i in np.flatnonzero(val[f.y] > 0.5)]
    flows: list[Flow] = []
    transfers: list[Transfer] = []
    for w, scenario in enumerate(net.scenario_ids):
        for block, presale in ((f.x[w], False), (f.q[w], True)):
            if block is None:
                continue
            xw = val[block]
            for p in np.flatnonzero(xw > 0):
                a = f.ak_arc[p]
                flows.append(Flow(net.site_ids[net.arc_site[a]], net.zone_ids[net.arc_zone[a]], net.sku_ids[f.ak_sku[p]], scenario, float(xw[p]), presale))
        if f.u is not None:
            uw = val[f.u[w]]
            for p in np.flatnonzero(uw > 0):
                flows.append(Flow(DEPOT, net.zone_ids[f.jk_zone[p]], net.sku_ids[f.jk_sku[p]], scenario, float(uw[p])))
        if f.lost is not None:
            lw = val[f.lost[w]]
            for n in np.flatnonzero(lw > 0):
                p = f.lost_pairs[n]
                flows.append(Flow(LOST, net.zone_ids[f.jk_zone[p]], net.sku_ids[f.jk_sku[p]], scenario, float(lw[n])))
        t = f.t[w]
        if t is not None:
            tw = val[t]
            for n in np.flatnonzero(tw > 0):
                link, k = divmod(int(n), K)
                src, dst = net.transfer_from[w][link], net.transfer_to[w][link]
                transfers.append(Transfer(net.site_ids[src], net.site_ids[dst], net.sku_ids[k], scenario, float(tw[n])))
    if f.s is not None:
        units = val[f.s]
    else:
        shipped = np.zeros(len(net.site_ids) * K)
        if len(net.scenario_ids):
            np.add.at(shipped, net.arc_site[f.ak_arc] * K + f.ak_sku, val[f.x[0]])
        units = shipped[f.ik_site * K + f.ik_sku]
    stock = [Stock(net.site_ids[i], net.sku_ids[k], float(q)) for i, k, q in zip(f.ik_site, f.ik_sku, units) if q > 0]
    return FrontWarehouseSolution(open_sites, flows, stock, transfers)
