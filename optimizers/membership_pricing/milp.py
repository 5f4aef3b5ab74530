r"""Membership tier pricing under max-surplus self-selection: the compact surplus MILP.

Data
    segments s (size N_s), tiers t with fee bounds [L_t, U_t], optional grid step d_t, fixed
    cost F_t, must_offer; willingness to pay v_st; lifetime weight w_st = (1+d)/(1+d-r_st);
    per unit of fee a_st = N_s w_st; at fee 0 b_st = N_s w_st (uplift_st - benefit_cost_st);
    utility tolerance e >= 0; fee_order pairs i before j with gap g.
    E = eligible pairs: (s, t) with v_st - L_t >= e (s can join t at some fee), less those
    with v_st - L_t = e and a_st L_t + b_st <= 0 (joining only at surplus exactly e and at a
    loss: staying out is as good and always allowed, and the tier need not be offered for it).
    A segment is *uniform* when a_st is the same for all its eligible tiers (equal retention).
Variables
    p_t in [L_t, U'_t]   fee of tier t (U'_t below); p_t = L_t + d_t k_t, k_t integer, with a grid
    o_t in {0, 1}        tier t is offered (1 for must_offer; fixed 1 for *free* tiers, below)
    x_st in {0, 1}       segment s joins tier t, (s, t) in E
    S_s in [0, Smax_s]   surplus of segment s, Smax_s = max(0, max_t (v_st - L_t))
    y_st >= 0            surplus of s through tier t (non-uniform segments only): S_s = sum_t y_st
    X_s in [0, 1]        s is a member (when rows (5) or (7) need it): X_s = sum_t x_st
Objective (lifetime profit; a member of t pays p_t = v_st - S_s)
    max sum_E (a_st v_st + b_st) x_st - sum_{s uniform} a_s S_s - sum_{s non-uniform} sum_t a_st y_st
        - sum_t F_t o_t
Constraints
    (1) one tier      sum_t x_st = X_s  (<= 1 when X_s is not needed)
    (2) offer link    x_st <= o_t
    (3) offered only if someone joins   o_t <= sum_s x_st          (t neither must_offer nor free)
    (4) chosen surplus is exact: uniform   S_s + p_t <= v_st + M4_st (1 - x_st), M4 = Smax_s + U'_t - v_st
                                 otherwise y_st + p_t <= v_st + M4_st (1 - x_st), M4 = U'_t - v_st
                                           y_st <= (v_st - L_t) x_st;  S_s = sum_t y_st
    (5) join threshold (e > 0)  S_s >= e X_s  (uniform);  y_st >= e x_st  (otherwise)
    (6) envy          S_s >= v_su - p_u - e + e (2 X_s - x_su) - M6_su (1 - o_u)   for v_su > L_u
                      (member of t != u: S_s >= v_su - p_u + e; member of u: S_s >= v_su - p_u;
                      non-member: 0 >= v_su - p_u - e), M6_su = v_su - L_u
    (7) non-members have zero surplus   S_s <= Smax_s X_s  (when e > 0 or b_s != 0: with costs
                      a non-member with positive surplus could otherwise look profitable)
    (8) fee order     p_j - p_i >= g - M8_ij (2 - o_i - o_j)   every pair i before j in fee_order
                      (all pairs: with an unoffered tier between, its neighbours keep the gap),
                      M8_ij = g + U'_i - L_j
    (9) fee grid      p_t - d_t k_t = L_t

Big-M values are the smallest that leave a relaxed row vacuous over the variables' bounds.
U'_t: a tier that is offered has a member, whose fee is at most v_st - e, so for tiers that are
not must_offer U'_t = min(U_t, max over eligible s of v_st - e) (on the grid). A tier is *free*
when it has no fixed cost, is not in fee_order and can be priced at or above every v_st within
U_t: then "unoffered" is the same as "priced out", so o_t is fixed to 1 with p_t <= that price
and rows (6) need no big-M (the envy-free benchmark is all free tiers).

Reading a solution: the assignment x is kept; the fees are recomputed for it exactly and
without a solver (:func:`fees.greatest_fees`), so solver tolerances never reach the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.membership_pricing import Market, MembershipPricing, market
from optimizers.linear import LinearModel


@dataclass
class Formulation:
    """The built model and the index maps needed to read a solution back by ids."""

    model: LinearModel
    mk: Market
    pair_seg: np.ndarray  # (P,) segment of each eligible pair
    pair_tier: np.ndarray  # (P,) tier of each eligible pair
    x: np.ndarray  # (P,) columns
    p: np.ndarray  # (T,) columns
    o: np.ndarray  # (T,) columns
    S: np.ndarray  # (S,) columns
    upper: np.ndarray  # (T,) U'_t


def eligible_pairs(mk: Market) -> tuple[np.ndarray, np.ndarray]:
    eps = mk.tolerance
    room = mk.wtp - mk.min_fee[None, :]
    tie = np.array([mk.tie(s) for s in range(len(mk.segment_ids))])[:, None]
    at_edge = room <= eps + tie
    edge_profit = mk.per_fee * mk.min_fee[None, :] + mk.constant
    keep = (room >= eps - tie) & ~(at_edge & (edge_profit <= 0))
    seg, tier = np.nonzero(keep)
    return seg.astype(np.int64), tier.astype(np.int64)


def integral_exact(mk: Market) -> bool:
    """True when requiring integer fees and surpluses loses nothing: with integer willingness to
    pay, minimum fees, grid steps, gap and tolerance, the best fees of any assignment (the
    greatest point of a difference system with integer data, see :mod:`fees`) are integers."""
    values = np.concatenate([mk.wtp.ravel(), mk.min_fee, mk.step, [mk.gap, mk.tolerance]])
    return bool(np.all(np.mod(values, 1.0) == 0.0))


def build(inst: MembershipPricing, *, integral: bool = False) -> Formulation:
    """The MILP; ``integral`` makes every variable integer (for pure-integer backends; exact
    when :func:`integral_exact` holds)."""
    mk = market(inst)
    S, T = len(mk.segment_ids), len(mk.tier_ids)
    eps, gap = mk.tolerance, mk.gap
    v, a, b = mk.wtp, mk.per_fee, mk.constant
    L, U = mk.min_fee, mk.max_fee
    m = LinearModel(name=inst.name, maximize=True)

    pair_seg, pair_tier = eligible_pairs(mk)
    P = len(pair_seg)
    has_pair = np.zeros(T, bool)
    has_pair[pair_tier] = True
    in_order = np.zeros(T, bool)
    in_order[mk.order] = True

    # U'_t, free tiers, and which tiers can be offered at all
    upper = U.copy()
    free = np.zeros(T, bool)
    for t in range(T):
        price_out = mk.snap_up(t, max(L[t], float(v[:, t].max(initial=0.0))))
        if not mk.must_offer[t] and mk.fixed_cost[t] == 0 and not in_order[t] and price_out <= U[t] + 1e-9 * max(1.0, U[t]):
            free[t] = True
            upper[t] = price_out
        elif not mk.must_offer[t] and has_pair[t]:
            top = float(v[pair_seg[pair_tier == t], t].max()) - eps
            upper[t] = max(L[t], min(U[t], mk.snap_down(t, top + 1e-9 * max(1.0, top))))
        elif not mk.must_offer[t]:
            upper[t] = L[t]
    can_offer = mk.must_offer | has_pair | free
    o_fixed = mk.must_offer | free

    smax = np.maximum(0.0, (v - L[None, :]).max(axis=1))
    a_pair = a[pair_seg, pair_tier]
    uniform = np.ones(S, bool)
    for s in range(S):
        mine = a_pair[pair_seg == s]
        if len(mine) and np.ptp(mine) > 1e-12 * max(1.0, float(np.abs(mine).max())):
            uniform[s] = False
    has_cost = np.array([bool(np.any(b[s, pair_tier[pair_seg == s]] != 0)) for s in range(S)])
    member_of = np.zeros(S, bool)
    member_of[pair_seg] = True
    need_zero = (eps > 0 or has_cost) & uniform & member_of  # row (7)
    need_X = (eps > 0) | need_zero

    # --- variables
    step = mk.step
    if integral:
        upper = np.floor(upper + 1e-9)
    p = m.add_variables("fee", T, lb=L, ub=upper, integer=integral)
    o = m.add_variables("offer", T, lb=o_fixed.astype(float), ub=can_offer.astype(float), cost=-mk.fixed_cost, integer=True)
    x = m.add_variables("join", P, ub=1.0, cost=a_pair * v[pair_seg, pair_tier] + b[pair_seg, pair_tier], integer=True)
    s_cost = np.where(uniform, -np.array([float(a_pair[pair_seg == s][0]) if member_of[s] else 0.0 for s in range(S)]), 0.0)
    Scol = m.add_variables("surplus", S, ub=np.where(member_of, smax, 0.0), cost=s_cost, integer=integral)
    nonuni = np.flatnonzero(~uniform[pair_seg])  # pairs of non-uniform segments
    y = m.add_variables("pair_surplus", len(nonuni), ub=(v - L[None, :])[pair_seg[nonuni], pair_tier[nonuni]], cost=-a_pair[nonuni], integer=integral)
    X = m.add_variables("member", S, ub=1.0, integer=integral) if np.any(need_X) else None
    grid = np.flatnonzero(step > 0)
    k = m.add_variables("fee_steps", len(grid), ub=np.floor((upper[grid] - L[grid]) / step[grid] + 1e-9), integer=True)

    pairs = np.arange(P)
    # (1) one tier
    if X is not None:
        m.add_constraints("1_one_tier", S, np.concatenate([pair_seg, np.arange(S)]), np.concatenate([x, X]),
                          np.concatenate([np.ones(P), -np.ones(S)]), lo=0.0, hi=0.0)
    else:
        m.add_constraints("1_one_tier", S, pair_seg, x, 1.0, hi=1.0)
    # (2) offer link, (3) offered only if someone joins
    linked = np.flatnonzero(~o_fixed[pair_tier])
    m.add_constraints("2_offer_link", len(linked), np.concatenate([np.arange(len(linked))] * 2),
                      np.concatenate([x[linked], o[pair_tier[linked]]]), np.concatenate([np.ones(len(linked)), -np.ones(len(linked))]), hi=0.0)
    only = np.flatnonzero(~o_fixed & can_offer)
    row_of = np.full(T, -1)
    row_of[only] = np.arange(len(only))
    joined = np.flatnonzero(row_of[pair_tier] >= 0)
    m.add_constraints("3_offered_if_joined", len(only), np.concatenate([np.arange(len(only)), row_of[pair_tier[joined]]]),
                      np.concatenate([o[only], x[joined]]), np.concatenate([np.ones(len(only)), -np.ones(len(joined))]), hi=0.0)
    # (4) the chosen tier's surplus is exact
    vp = v[pair_seg, pair_tier]
    uni = np.flatnonzero(uniform[pair_seg])
    M4u = np.maximum(0.0, smax[pair_seg[uni]] + upper[pair_tier[uni]] - vp[uni])
    n = len(uni)
    m.add_constraints("4_exact_surplus", n, np.tile(np.arange(n), 3), np.concatenate([Scol[pair_seg[uni]], p[pair_tier[uni]], x[uni]]),
                      np.concatenate([np.ones(n), np.ones(n), M4u]), hi=vp[uni] + M4u)
    n = len(nonuni)
    M4n = np.maximum(0.0, upper[pair_tier[nonuni]] - vp[nonuni])
    m.add_constraints("4_exact_pair_surplus", n, np.tile(np.arange(n), 3), np.concatenate([y, p[pair_tier[nonuni]], x[nonuni]]),
                      np.concatenate([np.ones(n), np.ones(n), M4n]), hi=vp[nonuni] + M4n)
    m.add_constraints("4_pair_surplus_if_joined", n, np.tile(np.arange(n), 2), np.concatenate([y, x[nonuni]]),
                      np.concatenate([np.ones(n), -(vp[nonuni] - L[pair_tier[nonuni]])]), hi=0.0)
    segs = np.flatnonzero(~uniform)
    seg_row = np.full(S, -1)
    seg_row[segs] = np.arange(len(segs))
    m.add_constraints("4_surplus_sum", len(segs), np.concatenate([np.arange(len(segs)), seg_row[pair_seg[nonuni]]]),
                      np.concatenate([Scol[segs], y]), np.concatenate([np.ones(len(segs)), -np.ones(n)]), lo=0.0, hi=0.0)
    # (5) join threshold
    if eps > 0 and X is not None:
        us = np.flatnonzero(uniform)
        m.add_constraints("5_threshold", len(us), np.tile(np.arange(len(us)), 2), np.concatenate([Scol[us], X[us]]),
                          np.concatenate([np.ones(len(us)), -eps * np.ones(len(us))]), lo=0.0)
        m.add_constraints("5_pair_threshold", n, np.tile(np.arange(n), 2), np.concatenate([y, x[nonuni]]),
                          np.concatenate([np.ones(n), -eps * np.ones(n)]), lo=0.0)
    # (6) envy, for every (s, u) with v_su > L_u and u possibly on the menu
    es, eu = np.nonzero((v > L[None, :]) & can_offer[None, :])
    R = len(es)
    pair_index = np.full((S, T), -1)
    pair_index[pair_seg, pair_tier] = pairs
    rows, cols, vals = [np.arange(R), np.arange(R)], [Scol[es], p[eu]], [np.ones(R), np.ones(R)]
    M6 = np.where(o_fixed[eu], 0.0, v[es, eu] - L[eu])
    if eps > 0 and X is not None:
        rows.append(np.arange(R))
        cols.append(X[es])
        vals.append(-2 * eps * np.ones(R))
        own = np.flatnonzero(pair_index[es, eu] >= 0)
        rows.append(own)
        cols.append(x[pair_index[es[own], eu[own]]])
        vals.append(eps * np.ones(len(own)))
    relaxed = np.flatnonzero(M6 > 0)
    rows.append(relaxed)
    cols.append(o[eu[relaxed]])
    vals.append(-M6[relaxed])
    m.add_constraints("6_envy", R, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), lo=v[es, eu] - eps - M6)
    # (7) non-members have zero surplus
    if X is not None:
        zs = np.flatnonzero(need_zero)
        m.add_constraints("7_nonmember_zero_surplus", len(zs), np.tile(np.arange(len(zs)), 2), np.concatenate([Scol[zs], X[zs]]),
                          np.concatenate([np.ones(len(zs)), -smax[zs]]), hi=0.0)
    # (8) fee order
    o_rows: list[int] = []
    o_cols: list[int] = []
    o_vals: list[float] = []
    o_lo: list[float] = []
    order = [t for t in mk.order if can_offer[t]]
    r = 0
    for ii, i in enumerate(order):
        for j in order[ii + 1 :]:
            M8 = gap + upper[i] - L[j]
            if M8 <= 0:
                continue
            both_fixed = o_fixed[i] and o_fixed[j]
            o_rows += [r, r] + ([] if both_fixed else [r, r])
            o_cols += [int(p[j]), int(p[i])] + ([] if both_fixed else [int(o[i]), int(o[j])])
            o_vals += [1.0, -1.0] + ([] if both_fixed else [-M8, -M8])
            o_lo.append(gap if both_fixed else gap - 2 * M8)
            r += 1
    m.add_constraints("8_fee_order", r, np.array(o_rows, np.int64), np.array(o_cols, np.int64), np.array(o_vals), lo=np.array(o_lo))
    # (9) fee grid
    g = len(grid)
    m.add_constraints("9_fee_grid", g, np.tile(np.arange(g), 2), np.concatenate([p[grid], k]),
                      np.concatenate([np.ones(g), -step[grid]]), lo=L[grid], hi=L[grid])
    return Formulation(m, mk, pair_seg, pair_tier, x, p, o, Scol, upper)


def read_picks(f: Formulation, values: np.ndarray) -> list[int | None]:
    """Each segment's tier from the solver's x (None: not a member)."""
    picks: list[int | None] = [None] * len(f.mk.segment_ids)
    chosen = np.flatnonzero(values[f.x] > 0.5)
    for q in chosen:
        picks[int(f.pair_seg[q])] = int(f.pair_tier[q])
    return picks
