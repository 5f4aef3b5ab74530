r"""Max-surplus tier pricing on fee grids: branch and bound over boxes of grid fees (exact).

Data
    segments s (size N_s), tiers t with grid G_t = {L_t + k d_t <= U_t} (every tier has a
    ``fee_step`` d_t), fixed cost F_t, must_offer; v_st willingness to pay; per unit of fee
    a_st = N_s w_st > 0, at fee 0 b_st = N_s w_st (uplift_st - benefit_cost_st); utility
    tolerance e; fee_order pairs i before j with gap g; tie_s the tie tolerance of segment s.
Domain
    f in prod_t (G'_t u {off}) ({off} only for tiers that are not must_offer), where G'_t drops
    the fees above max_s v_st - e + tie_s (nobody could join: the same as off) unless must_offer.
    Profit(f) is what ``evaluate()`` gives (choices simulated, ties to the seller, a tier nobody
    joins unoffered). It suffices to search the *restricted* vectors, where every tier that is
    on is joined or must_offer and the tiers on obey fee_order: turning off a tier nobody joins
    keeps the profit and loses no feasibility, so the best restricted vector is optimal.
Boxes
    B = prod_t [lo_t, hi_t] in grid indices, "off" the last index of a tier. A tier is *on*
    in B when off is outside its range, with fees plo_t <= f_t <= phi_t. For a restricted f in B
    and a segment s that joins t (e = 0: surplus within tie_s of the best; e > 0: ahead of every
    other tier on the menu by e - tie_s, and surplus >= e - tie_s):
        f_t <= c_st = min(phi_t, v_st - e + tie_s, min_{u on, u != t} (v_st - v_su + phi_u - e + tie_s)),
    rounded down to G_t, and f_t >= plo_t; s stays out only if no tier on has v_su - phi_u > e + tie_s.
    So
        profit(f) <= sum_s max({0 if s may stay out} u {a_st c_st + b_st : t possible for s})
                     - sum_{t on} F_t,
    a bound exact on a single fee vector. A box is dropped when a tier on and not must_offer has
    no possible member; such a tier's range is cut to max_s c_st (its member pays at most that)
    for the box's children; and the box is shrunk along fee_order first: for i before j with i on,
    f_j >= plo_i + g; with j on, f_i <= phi_j - g (a tier that may be off and cannot fit becomes
    off; with both on this is the pairwise gap, implied by the consecutive gaps).
Search
    Best first, a batch of boxes at once: a tier that may be off is split into {on} / {off}
    first, then the widest range in halves; a box of at most ``LEAF_VECTORS`` vectors is
    enumerated exactly (every vector's profit by :func:`grid.surplus_profit`). Incumbents from
    a coordinate ascent over the grid and each batch's best box centre. It stops when no open
    box can beat the incumbent by more than options.gap: optimal, since the grid is the whole
    fee domain (fees between grid steps are not allowed).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from models.base import TOLERANCE
from models.membership_pricing import Market, MembershipPricing, market, simulate, solution_document
from optimizers import progress
from optimizers.membership_pricing.bestfirst import BestFirst
from optimizers.membership_pricing.grid import fee_grid, surplus_profit
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status, relative_gap
from optimizers.stopping import expired

#: Boxes taken from the heap per round.
BATCH = 256
#: A box with at most this many fee vectors is enumerated exactly.
LEAF_VECTORS = 16
#: Fees per tier tried in one step of the coordinate ascent (longer grids are subsampled).
ASCENT_POINTS = 1000
#: Fee vectors scored at once when enumerating.
CHUNK_VECTORS = 20_000


def unsupported(inst: MembershipPricing) -> str | None:
    if inst.choice.model != "max_surplus":
        return f"the boxes method covers choice model 'max_surplus' (got '{inst.choice.model}'); use --method mnl"
    missing = [t.id for t in inst.tiers if not t.fee_step]
    if missing:
        return f"the boxes method needs a fee_step on every tier (none on {', '.join(missing[:5])}); use --method milp"
    return None


class FeeBoxes:
    """The fee grids as index ranges and the box bound of the module docstring."""

    def __init__(self, mk: Market) -> None:
        self.mk = mk
        S, T = mk.wtp.shape
        self.T = T
        self.tie = np.array([mk.tie(s) for s in range(S)])
        e = mk.tolerance
        grid = []
        for t in range(T):
            g = fee_grid(mk, t)
            if not mk.must_offer[t]:
                top = float((mk.wtp[:, t] - e + self.tie).max())
                g = g[g <= top + 1e-9 * max(1.0, abs(top))]
            grid.append(g)
        self.K = np.array([len(g) for g in grid], dtype=np.int64)
        self.can_off = ~mk.must_offer
        self.top = self.K - 1 + self.can_off  # largest index per tier (K_t: off)
        self.G = np.zeros((T, int(self.K.max(initial=0)) + 1))  # padding never read as a fee
        for t, g in enumerate(grid):
            self.G[t, : len(g)] = g
        self.grid = grid
        self.tol = 1e-9 * max(1.0, float(np.abs(mk.wtp).max(initial=0.0)), float(mk.max_fee.max(initial=0.0)))
        self.order_tol = TOLERANCE * max(1.0, float(mk.max_fee.max(initial=0.0)))  # at least evaluate()'s
        self.pairs = [(i, j) for n, i in enumerate(mk.order) for j in mk.order[n + 1 :]]
        self.diff = mk.wtp[:, :, None] - mk.wtp[:, None, :]  # (S, T, U): v_st - v_su
        self.cut = self.tie - e  # (S,)

    def fees(self, idx: np.ndarray) -> np.ndarray:
        """(B, T) fee vectors of index vectors (NaN: off)."""
        f = self.G[np.arange(self.T)[None, :], np.minimum(idx, self.K - 1).clip(0)]
        return np.where(idx >= self.K, np.nan, f)

    def _index(self, t: int, value: np.ndarray, side: str, tol: float) -> np.ndarray:
        """Grid index of tier t: 'ge' the first fee >= value, 'le' the last fee <= value."""
        g = self.grid[t]
        if side == "ge":
            return np.searchsorted(g, value - tol, side="left")
        return np.searchsorted(g, value + tol, side="right") - 1

    def propagate(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Shrinks boxes in place along fee_order; returns which boxes are still non-empty."""
        ok = np.all(lo <= hi, axis=1)
        K, g = self.K, self.mk.gap
        for _ in range(len(self.mk.order)):
            changed = False
            for i, j in self.pairs:
                on_i, on_j = hi[:, i] < K[i], hi[:, j] < K[j]
                if K[i] == 0 or K[j] == 0:
                    continue
                rows = np.flatnonzero(ok & on_i & (lo[:, j] < K[j]))
                if len(rows):
                    need = self._index(j, self.G[i, lo[rows, i]] + g, "ge", self.order_tol)
                    need = np.where(need >= K[j], K[j], need)
                    new = np.maximum(lo[rows, j], need)
                    changed |= bool(np.any(new != lo[rows, j]))
                    lo[rows, j] = new
                rows = np.flatnonzero(ok & on_j & (lo[:, i] < K[i]))
                if len(rows):
                    cap = self._index(i, self.G[j, hi[rows, j]] - g, "le", self.order_tol)
                    sure = hi[rows, i] < K[i]
                    new_hi = np.where(sure, np.minimum(hi[rows, i], cap), hi[rows, i])
                    new_lo = np.where(~sure & (cap < lo[rows, i]), K[i], lo[rows, i])
                    changed |= bool(np.any(new_hi != hi[rows, i]) or np.any(new_lo != lo[rows, i]))
                    hi[rows, i], lo[rows, i] = new_hi, new_lo
                ok &= (lo[:, i] <= hi[:, i]) & (lo[:, j] <= hi[:, j])
            if not changed:
                break
        return ok

    def bounds(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B,) upper bounds on the profit of restricted fee vectors in each box (-inf: none),
        and (B, T) branching scores: fee width x the lifetime mass the bound puts in the tier.
        Lowers ``hi`` in place where that keeps every restricted vector (module docstring)."""
        mk = self.mk
        B, T = lo.shape
        K = self.K[None, :]
        ar = np.arange(T)[None, :]
        sure_off = lo >= K
        on = hi < K
        plo = self.G[ar, np.minimum(lo, K - 1).clip(0)]
        phi = self.G[ar, np.minimum(hi, K - 1).clip(0)]
        cut = self.cut[None, :, None]  # tie_s - e
        if T > 1:  # min over u != t on of v_st - v_su + phi_u: the two smallest phi_u - v_su
            w = np.where(on[:, None, :], phi[:, None, :] - mk.wtp[None], np.inf)  # (B, S, U)
            first = w.argmin(axis=2)[..., None]
            at_first = np.arange(T)[None, None, :] == first
            rest = np.where(at_first, np.inf, w)  # inf when no other tier is on
            second = rest.argmin(axis=2)[..., None]
            limiter = np.where(at_first, second, first)  # (B, S, T): the u of the min
            other = np.where(at_first, rest.min(axis=2)[..., None], w.min(axis=2)[..., None])
            own = np.minimum(phi[:, None, :], mk.wtp[None] + cut)
            cross = mk.wtp[None] + other + cut
            limited = cross < own
            cap = np.minimum(own, cross)
        else:
            cap = np.minimum(phi[:, None, :], mk.wtp[None] + cut)
            limited = np.zeros(cap.shape, bool)
            limiter = np.zeros(cap.shape, np.int64)
        possible = ~sure_off[:, None, :] & (cap >= plo[:, None, :] - self.tol)
        step = mk.step[None, None, :]
        k = np.floor((np.minimum(cap, 1e300) - mk.min_fee[None, None, :] + self.tol) / step)
        k = np.minimum(k, np.minimum(hi, K - 1)[:, None, :])
        possible &= (k >= lo[:, None, :]) & (K[:, None, :] > 0)
        fee = mk.min_fee[None, None, :] + step * np.maximum(k, 0.0)
        # a tier on and not must_offer has a member, who pays at most its cap: the box's children start from there
        top_k = np.where(possible, k, -1).max(axis=1).astype(np.int64)
        shrink = on & ~mk.must_offer[None] & (top_k < hi) & (top_k >= lo)
        hi[shrink] = top_k[shrink]
        value = np.where(possible, mk.per_fee[None] * fee + mk.constant[None], -np.inf)
        must_join = (on[:, None, :] & (mk.wtp[None] - phi[:, None, :] > self.tie[None, :, None] + mk.tolerance)).any(axis=2)
        top = value.max(axis=2)
        seg = np.maximum(top, np.where(must_join, -np.inf, 0.0))
        pick = np.where(top >= seg, value.argmax(axis=2), -1)
        width = phi - plo + mk.step[None]
        a = np.take_along_axis(mk.per_fee[None], pick[..., None].clip(0), axis=2)[..., 0]  # (B, S)
        lim = np.take_along_axis(limiter, pick[..., None].clip(0), axis=2)[..., 0]
        hit = (pick >= 0) & np.take_along_axis(limited, pick[..., None].clip(0), axis=2)[..., 0]
        score = np.stack([(np.where(pick == t, a, 0.0) + np.where(hit & (lim == t), a, 0.0)).sum(axis=1) for t in range(T)], axis=1) * width
        score = np.where(hi > lo, score + 1e-9 * (hi - lo), -1.0)
        ub = seg.sum(axis=1) - (on * mk.fixed_cost[None]).sum(axis=1)
        lonely = on & ~mk.must_offer[None] & ~possible.any(axis=1)  # on, but nobody can join
        ub = np.where(lonely.any(axis=1), -np.inf, ub)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.where(np.isfinite(ub), ub + 1e-12 * np.abs(ub), ub)), score

    def exact(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty(len(idx))
        for n in range(0, len(idx), CHUNK_VECTORS):
            with np.errstate(invalid="ignore"):  # -inf - -inf for tiers off the menu
                out[n : n + CHUNK_VECTORS] = surplus_profit(self.mk, self.fees(idx[n : n + CHUNK_VECTORS]))
        return out

    def vectors(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Every index vector of the box."""
        axes = [np.arange(a, b + 1) for a, b in zip(lo, hi)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(lo))


def ascent(fb: FeeBoxes, start: np.ndarray, deadline: float | None) -> tuple[float, np.ndarray]:
    """Coordinate ascent over the grid from ``start``: each tier in turn moved to its best index
    (on long grids, the best of a strided subset and the neighbourhood of the current index)."""
    idx = start.copy()
    value = float(fb.exact(idx[None])[0])
    for _ in range(50):
        improved = False
        for t in range(len(idx)):
            n = int(fb.top[t]) + 1
            stride = -(-n // ASCENT_POINTS)  # long grids: a strided subset and the current neighbourhood
            moves = (
                np.arange(n) if stride == 1 else np.union1d(np.arange(0, n, stride), np.arange(max(0, idx[t] - 50), min(n, idx[t] + 51)))
            )
            trial = np.repeat(idx[None], len(moves), axis=0)
            trial[:, t] = moves
            vals = fb.exact(trial)
            j = int(np.argmax(vals))
            if vals[j] > value + 1e-12 * max(1.0, abs(value)):
                value, idx = float(vals[j]), trial[j].copy()
                improved = True
        if not improved or expired(deadline):
            break
    return value, idx


def run(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    start = time.perf_counter()
    deadline = None if options.time_limit_s is None else start + options.time_limit_s
    mk = market(inst)
    fb = FeeBoxes(mk)
    T = fb.T
    best_value, best_idx = -math.inf, None
    for first in (np.minimum((fb.K - 1) // 2, fb.top).clip(0), (fb.K - 1).clip(0), fb.top):
        value, idx = ascent(fb, first.astype(np.int64), deadline)
        if value > best_value:
            best_value, best_idx = value, idx
    lo0 = np.zeros((1, T), np.int64)
    hi0 = fb.top.astype(np.int64)[None].copy()
    queue = BestFirst(options.gap)
    queue.best = best_value
    ok = fb.propagate(lo0, hi0)
    if ok[0]:
        ub0, score0 = fb.bounds(lo0, hi0)
        if ub0[0] > -math.inf:
            queue.push(float(ub0[0]), lo0[0], hi0[0], int(np.argmax(score0[0])))
    boxes = leaves = 0
    stopped = False

    while not queue.done():
        if expired(deadline):
            stopped = True
            break
        batch = queue.pop(BATCH)
        lo = np.array([e[0] for e in batch])
        hi = np.array([e[1] for e in batch])
        clo, chi = split(fb, lo, hi, np.array([e[2] for e in batch]))
        keep = fb.propagate(clo, chi)
        clo, chi = clo[keep], chi[keep]
        boxes += len(clo)
        if not len(clo):
            continue
        ub, score = fb.bounds(clo, chi)
        size = np.prod(chi - clo + 1, axis=1)
        small = size <= LEAF_VECTORS
        if np.any(small & (ub <= queue.threshold())):
            queue.drop(float(ub[small & (ub <= queue.threshold())].max()))
        small &= ub > queue.threshold()
        if small.any():
            leaves += int(small.sum())
            idx = np.concatenate([fb.vectors(a, b) for a, b in zip(clo[small], chi[small])])
            vals = fb.exact(idx)
            j = int(np.argmax(vals))
            if vals[j] > best_value:
                best_value, best_idx = float(vals[j]), idx[j].copy()
        centre = (clo + chi) // 2
        vals = fb.exact(centre)
        j = int(np.argmax(vals))
        if vals[j] > best_value:
            best_value, best_idx = float(vals[j]), centre[j].copy()
        queue.best = best_value
        for c in np.flatnonzero(~small & (ub > -np.inf)):
            queue.push(float(ub[c]), clo[c], chi[c], int(np.argmax(score[c])))
        found = best_value if best_value > -math.inf else None
        progress.update("branch and bound over fee boxes", detail=f"{boxes:,} boxes", incumbent=found, bound=max(best_value, queue.open_bound, queue.dropped))
    open_bound, dropped = queue.open_bound, queue.dropped
    meta: dict[str, Any] = {
        "algorithm": "branch and bound over fee-grid boxes",
        "boxes": boxes,
        "leaf_boxes": leaves,
        "grid": ", ".join(f"{mk.tier_ids[t]} {fb.K[t]} fees" for t in range(T)),
    }
    if best_idx is None or best_value == -math.inf:
        if stopped:
            return MethodOutput(
                Status.NO_SOLUTION,
                bound=open_bound if open_bound > -math.inf else None,
                message="time limit reached before a feasible fee vector was found",
                meta=meta,
            )
        return MethodOutput(Status.INFEASIBLE, message="no fee vector on the grid meets the fee bounds and fee_order", meta=meta)
    fee = fb.fees(best_idx[None])[0]
    solution = solution_document(mk, fee, simulate(mk, fee))
    objective = float(solution["profit"])
    bound = max(objective, best_value, open_bound, dropped)
    gap = relative_gap(objective, bound)
    if not stopped and gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12:
        return MethodOutput(Status.OPTIMAL, objective, bound, solution, "optimal on the fee grid (every tier has a fee_step)", meta)
    return MethodOutput(Status.FEASIBLE, objective, bound, solution, f"time limit reached: best fee vector with bound {bound:.10g}", meta)


def split(fb: FeeBoxes, lo: np.ndarray, hi: np.ndarray, pick: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two children per box: a tier that may be off or on splits into on / off (the widest such
    range first), otherwise the widest range splits in halves."""
    K = fb.K[None, :]
    width = hi - lo
    mixed = (lo < K) & (hi >= K)
    tier = np.where(mixed.any(axis=1), np.argmax(np.where(mixed, width + 1, 0), axis=1), pick)
    rows = np.arange(len(lo))
    kt = fb.K[tier]
    mid = np.where(mixed[rows, tier], kt - 1, (lo[rows, tier] + hi[rows, tier]) // 2)
    lo_a, hi_a = lo.copy(), hi.copy()
    hi_a[rows, tier] = mid
    lo_b, hi_b = lo.copy(), hi.copy()
    lo_b[rows, tier] = mid + 1
    return np.concatenate([lo_a, lo_b]), np.concatenate([hi_a, hi_b])
