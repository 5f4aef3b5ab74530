r"""Fee grids, profit of many fee vectors at once, and the ``grid_search`` baseline.

Model (the rules of :mod:`models.membership_pricing`, evaluated for a batch of C fee vectors)
    fee vector f in prod_t (G_t u {off}),  G_t = {L_t + k d_t <= U_t} with a ``fee_step`` d_t,
    otherwise ``DEFAULT_POINTS`` evenly spaced fees from L_t to U_t; ``off`` (not offered) is
    allowed unless the tier is ``must_offer``.
    max_surplus: s joins argmax_t (v_st - f_t) when that surplus is >= e (ties to the seller);
                 offered = joined or must_offer.
    mnl:         P_st = exp(b (v_st - f_t)) / (1 + sum_{u on} exp(b (v_su - f_u)));  offered = on.
    profit(f) = sum_s sum_t share_st N_s w_st (f_t - c_st + m_st) - sum_{t offered} F_t,
    infeasible (-inf) when consecutive offered tiers of fee_order are less than g apart (or, with
    e > 0, a member prefers its tier by less than e).

``grid_search`` is what a planner would write without a solver: try every combination of
grid fees (and "not offered"), simulate the choices, keep the best. It proves nothing (status
``feasible``, no bound) and refuses grids of more than ``MAX_COMBINATIONS`` combinations.
"""

from __future__ import annotations

import math
import time

import numpy as np

from models.base import TOLERANCE
from models.membership_pricing import (
    Market,
    MembershipPricing,
    curve_fees,
    fee_vector,
    market,
    mnl_solution_document,
    simulate,
    solution_document,
)
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status
from optimizers.stopping import expired

#: Fees per tier on a grid when the tier has no ``fee_step`` (101 points: 100 equal steps).
DEFAULT_POINTS = 101
#: grid_search refuses grids with more fee combinations than this.
MAX_COMBINATIONS = 5_000_000
#: Numbers (combinations x segments x tiers) held at once.
CHUNK_ELEMENTS = 2_000_000


def fee_grid(mk: Market, t: int, points: int = DEFAULT_POINTS) -> np.ndarray:
    """Tier t's fees: its ``fee_step`` grid, or ``points`` evenly spaced fees over its range."""
    lo, hi = float(mk.min_fee[t]), float(mk.max_fee[t])
    if mk.step[t] > 0:
        n = int(math.floor((hi - lo) / mk.step[t] + 1e-9))
        return lo + mk.step[t] * np.arange(n + 1)
    if hi <= lo:
        return np.array([lo])
    return np.linspace(lo, hi, points)


def grids(mk: Market, points: int = DEFAULT_POINTS) -> list[np.ndarray]:
    return [fee_grid(mk, t, points) for t in range(len(mk.tier_ids))]


def describe_grids(mk: Market, grid: list[np.ndarray]) -> str:
    parts = []
    for t, g in enumerate(grid):
        how = f"step {mk.step[t]:g}" if mk.step[t] > 0 else f"{len(g)} points"
        parts.append(f"{mk.tier_ids[t]} {len(g)} fees ({how})")
    return ", ".join(parts)


def combinations(mk: Market, grid: list[np.ndarray]) -> int:
    return math.prod(len(g) + (0 if mk.must_offer[t] else 1) for t, g in enumerate(grid))


def order_ok(mk: Market, F: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """(C,) True where consecutive offered tiers of fee_order are at least min_fee_gap apart."""
    ok = np.ones(len(F), bool)
    last = np.full(len(F), -np.inf)
    for t in mk.order:
        here = offered[:, t]
        fee = np.where(here, F[:, t], 0.0)
        ok &= ~here | (fee - last >= mk.gap - TOLERANCE * np.maximum(1.0, np.abs(fee)))
        last = np.where(here, fee, last)
    return ok


def mnl_profit(mk: Market, F: np.ndarray) -> np.ndarray:
    """(C,) expected lifetime profit of C fee vectors (NaN: tier not offered) under logit choice."""
    on = ~np.isnan(F)
    F0 = np.where(on, F, 0.0)
    util = np.where(on[:, None, :], mk.price_sensitivity * (mk.wtp[None] - F0[:, None, :]), -np.inf)
    top = np.maximum(util.max(axis=2), 0.0)
    expo = np.exp(util - top[..., None])
    share = expo / (np.exp(-top) + expo.sum(axis=2))[..., None]
    value = mk.per_fee[None] * F0[:, None, :] + mk.constant[None]
    profit = (share * value).sum(axis=(1, 2)) - (on * mk.fixed_cost[None]).sum(axis=1)
    return np.where(order_ok(mk, F, on), profit, -np.inf)


def surplus_profit(mk: Market, F: np.ndarray) -> np.ndarray:
    """(C,) lifetime profit of C fee vectors under max-surplus choice (ties to the seller)."""
    profit, feasible = surplus_outcome(mk, F)
    return np.where(feasible, profit, -np.inf)


def surplus_outcome(mk: Market, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C,) lifetime profit of C fee vectors under max-surplus choice (ties to the seller) and
    (C,) whether they are feasible (fee_order; robustness with a utility tolerance)."""
    on = ~np.isnan(F)
    F0 = np.where(on, F, 0.0)
    S = len(mk.segment_ids)
    tie = np.array([mk.tie(s) for s in range(S)])[None, :]
    e = mk.tolerance
    sur = np.where(on[:, None, :], mk.wtp[None] - F0[:, None, :], -np.inf)
    best = sur.max(axis=2)
    value = mk.per_fee[None] * F0[:, None, :] + mk.constant[None]
    cand = np.where(sur >= (best - tie)[..., None], value, -np.inf)
    pick = cand.argmax(axis=2)
    pv = np.take_along_axis(cand, pick[..., None], axis=2)[..., 0]
    join = best >= e - tie
    edge = join & (best <= e + tie)
    member = join & ~(edge & (pv < -1e-12 * np.maximum(1.0, np.abs(pv))))
    feasible = np.ones(len(F), bool)
    if e > 0:
        mine = np.take_along_axis(sur, pick[..., None], axis=2)
        other = on[:, None, :] & (np.arange(len(mk.tier_ids))[None, None, :] != pick[..., None])
        close = other & (mine - sur < (e - tie)[..., None])
        feasible &= ~(member & close.any(axis=2)).any(axis=1)
    joined = np.zeros_like(on)
    for t in range(len(mk.tier_ids)):
        joined[:, t] = (member & (pick == t)).any(axis=1)
    offered = joined | (mk.must_offer[None] & on)
    profit = np.where(member, pv, 0.0).sum(axis=1) - (offered * mk.fixed_cost[None]).sum(axis=1)
    return profit, feasible & order_ok(mk, F, offered)


def surplus_curve(mk: Market, fees: dict[str, float], tier: str) -> list[dict]:
    """What :func:`models.membership_pricing.profit_curve` gives under max-surplus choice
    (same fees, profit and feasibility), scored in one batch instead of one evaluate() per fee."""
    t = mk.tier_ids.index(tier)
    points = np.array(curve_fees(mk, t, float(fees.get(tier, mk.min_fee[t]))))
    F = np.repeat(fee_vector(mk, fees)[None], len(points), axis=0)
    F[:, t] = points
    with np.errstate(invalid="ignore"):  # -inf - -inf for tiers off the menu
        profit, feasible = surplus_outcome(mk, F)
    return [{"fee": float(f), "profit": float(p), "feasible": bool(ok)} for f, p, ok in zip(points, profit, feasible)]


def profits(mk: Market, F: np.ndarray) -> np.ndarray:
    return mnl_profit(mk, F) if mk.model == "mnl" else surplus_profit(mk, F)


def document(mk: Market, fee: np.ndarray) -> dict:
    """The solution object for fees ``fee`` (NaN: not offered), choices simulated."""
    if mk.model == "mnl":
        return mnl_solution_document(mk, fee)
    return solution_document(mk, fee, simulate(mk, fee))


# ----------------------------------------------------------------------------- grid_search


def unsupported(inst: MembershipPricing) -> str | None:
    mk = market(inst)
    n = combinations(mk, grids(mk))
    if n > MAX_COMBINATIONS:
        return (f"{n:,} fee combinations on the grid ({describe_grids(mk, grids(mk))}, each tier also 'not offered' unless "
                f"must_offer), more than the limit {MAX_COMBINATIONS:,}; use the default method (auto)")
    return None


def run(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    start = time.perf_counter()
    mk = market(inst)
    grid = grids(mk)
    choices = [np.concatenate([g, [np.nan]]) if not mk.must_offer[t] else g for t, g in enumerate(grid)]
    shape = tuple(len(c) for c in choices)
    total = math.prod(shape)
    chunk = max(1, CHUNK_ELEMENTS // max(1, len(mk.segment_ids) * len(mk.tier_ids)))
    best_value, best_fee, done = -np.inf, None, 0
    meta = {"combinations": total, "grid": describe_grids(mk, grid)}
    while done < total:
        if expired(None if options.time_limit_s is None else start + options.time_limit_s):
            break
        flat = np.arange(done, min(total, done + chunk))
        idx = np.unravel_index(flat, shape)
        F = np.column_stack([choices[t][idx[t]] for t in range(len(choices))])
        value = profits(mk, F)
        k = int(np.argmax(value))
        if value[k] > best_value:
            best_value, best_fee = float(value[k]), F[k].copy()
        done = len(flat) + done
    meta["tried"] = done
    if best_fee is None:
        if done < total:
            return MethodOutput(Status.NO_SOLUTION, message="time limit reached before a feasible fee combination was found", meta=meta)
        return MethodOutput(Status.INFEASIBLE, message="no fee combination on the grid is feasible", meta=meta)
    solution = document(mk, best_fee)
    note = "best of every fee combination on the grid (no bound: nothing between grid fees is tried)"
    if done < total:
        note = f"time limit reached after {done:,} of {total:,} fee combinations"
    return MethodOutput(Status.FEASIBLE, float(solution["profit"]), None, solution, note, meta)
