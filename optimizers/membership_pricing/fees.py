r"""The best fees for a given assignment of segments to tiers (max_surplus), without a solver.

Once every segment's choice is fixed (a tier, or none), the offered tiers are those with
members plus the ``must_offer`` ones, and every rule is a bound or a difference of two fees:

    member s of t:       p_t <= v_st - e                     (joins: surplus >= e)
                         p_t - p_u <= v_st - v_su - e        for every other offered u (prefers t by e)
    non-member s:        p_u >= v_su - e                     for every offered u (surplus <= e)
    fee_order:           p_i - p_j <= -g                     consecutive offered tiers i before j
    bounds, grid:        min_fee_t <= p_t <= max_fee_t,  p_t in min_fee_t + fee_step_t Z

Such a system is closed under the componentwise maximum (a lattice), grids included, so when it
is feasible it has a greatest point; every member's profit grows with its tier's fee
(size x weight > 0), so that greatest point is the best fee vector for the assignment. It is
found by Bellman-Ford style relaxation from the upper bounds, rounding down to the grid.
"""

from __future__ import annotations

import numpy as np

from models.membership_pricing import Market


def greatest_fees(mk: Market, picks: list[int | None]) -> np.ndarray | None:
    """The best fees (NaN off the menu) for this assignment, or None when none is feasible."""
    T = len(mk.tier_ids)
    offered = mk.must_offer.copy()
    for pick in picks:
        if pick is not None:
            offered[pick] = True
    on = np.flatnonzero(offered)
    eps = mk.tolerance
    lo = mk.min_fee.copy()
    hi = mk.max_fee.copy()
    bound = np.full((T, T), np.inf)  # bound[t, u]: p_t - p_u <= bound[t, u]
    picks_arr = np.array([-1 if p is None else p for p in picks], dtype=np.int64)
    out_seg = np.flatnonzero(picks_arr < 0)
    if len(out_seg) and len(on):
        lo[on] = np.maximum(lo[on], (mk.wtp[np.ix_(out_seg, on)] - eps).max(axis=0))
    for t in np.unique(picks_arr[picks_arr >= 0]):
        seg = np.flatnonzero(picks_arr == t)
        hi[t] = min(hi[t], float((mk.wtp[seg, t] - eps).min()))
        diff = (mk.wtp[seg, t][:, None] - mk.wtp[np.ix_(seg, on)] - eps).min(axis=0)
        bound[t, on] = np.minimum(bound[t, on], diff)
        bound[t, t] = np.inf
    chain = [t for t in mk.order if offered[t]]
    for i, j in zip(chain, chain[1:]):
        bound[i, j] = min(bound[i, j], -mk.gap)
    scale = max(1.0, float(np.abs(mk.wtp).max(initial=0.0)), float(mk.max_fee.max(initial=0.0)))
    tol = 1e-9 * scale
    fee = np.full(T, np.nan)
    for t in map(int, on):
        if mk.step[t] > 0:  # onto the grid, forgiving rounding noise in the data
            lo[t], hi[t] = mk.snap_up(t, lo[t] - tol), mk.snap_down(t, hi[t] + tol)
        fee[t] = hi[t]
        if fee[t] < lo[t] - tol:
            return None
    sub = bound[np.ix_(on, on)]
    grid = bool((mk.step[on] > 0).any())
    rounds = 0
    while True:
        rounds += 1
        current = fee[on]
        limit = (current[None, :] + sub).min(axis=1) if len(on) else current
        new = np.minimum(current, limit)
        if grid:
            new = np.array([mk.snap_down(int(t), float(v) + tol) if mk.step[t] > 0 else float(v) for t, v in zip(on, new)])
        if np.any(new < lo[on] - tol):
            return None
        if np.all(new >= current - tol):
            break
        fee[on] = new
        if not grid and rounds > len(on) + 1:
            return None  # still falling after |T| + 1 rounds: a negative cycle
    return fee
