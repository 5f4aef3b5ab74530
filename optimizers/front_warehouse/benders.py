r"""L-shaped (Benders) decomposition of the front-warehouse model over (scenario, SKU) blocks.

Write the model of ``milp.py`` as
    min  c_F'v + sum_b V_b(v)    s.t.  v in F
where v = (y, s, b, P, R) is the first stage (one plan; F its own rows: capacity, promise
total, open sites, SKUs per site) and, for each block b = (scenario w, SKU k),
    V_b(v) = min { c_b'x_b : lo_b <= A_b x_b + B_b v <= hi_b, x_b >= 0 }
is a transportation LP (demand, stock, pre-sale, promise-per-SKU rows of that SKU in that
scenario). V_b is convex and piecewise linear in v; at a point v^t its LP duals pi give
    V_b(v) >= V_b(v^t) + g^t'(v - v^t),   g^t = -B_b' pi      (optimality cut)
and when the block is infeasible at v^t, the duals of its phase-one LP (least total
violation W_b) give  0 >= W_b(v^t) + g'(v - v^t)  (feasibility cut).
Master:  min c_F'v + sum_b theta_b  s.t. v in F, theta_b >= 0, the cuts so far.
Its optimum is a lower bound; every integral v^t with feasible blocks is a plan whose cost
c_F'v^t + sum_b V_b(v^t) is an upper bound. Cuts are first gathered on the LP relaxation
of the master (cheap LPs), then the master is solved as a MILP until the gap closes.
Rows of a block with a single block column (x <= d y) are passed to the LP as that column's
bounds, their duals read from the bound's.

Warm start: the mean-demand (deterministic) plan is solved first, evaluated on every
scenario (an incumbent, and the value of the stochastic solution at the end), and its
first stage seeds the cuts.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.front_warehouse import FrontWarehouse
from optimizers import progress
from optimizers.backends import solve_linear
from optimizers.backends.lp import solve_lp
from optimizers.front_warehouse.milp import FIRST_STAGE, Formulation, build, read_solution
from optimizers.front_warehouse.stochastic import MeanPlan, mean_plan, vss_report
from optimizers.linear import LinearModel
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status, relative_gap
from optimizers.stopping import expired, now

#: a block's cut is added when the master underestimates its value by more than this (relative)
CUT_TOLERANCE = 1e-7
#: units a plan may fall short (demand, promise) and still count as a plan
SHORTFALL_TOLERANCE = 1e-6
#: a block LP starts with this many of the cheapest usable arcs into each zone (more are priced in)
INITIAL_ARCS_PER_ZONE = 4


@dataclass
class Block:
    """One (scenario, SKU) LP with the first stage as a parameter."""

    cols: np.ndarray  # global columns
    c: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    A: sp.csc_matrix  # rows x block columns
    B: sp.csr_matrix  # rows x first-stage columns (positions in Decomposition.first)
    lo: np.ndarray
    hi: np.ndarray
    bound_col: np.ndarray  # single-column rows: the column they bound
    bound_coef: np.ndarray
    bound_B: sp.csr_matrix
    bound_lo: np.ndarray
    bound_hi: np.ndarray
    zone: np.ndarray  # arc flows: the zone served (-1: other columns)
    weight: float  # the scenario's probability
    floor: float  # a lower bound on the block's value at any first stage
    warm: np.ndarray | None = None  # columns with flow at the last solve (column generation starts with them)

    def solve(self, v: np.ndarray, penalty: float) -> tuple[float, np.ndarray, np.ndarray, float, tuple[float, np.ndarray] | None]:
        """(value, x, g, shortfall, feasibility cut) at the first stage ``v``.

        Rows that ask for something (demand, promise) may fall short at ``penalty`` per unit,
        so the LP is always feasible and its value V_M(v) <= V(v): the cut
        theta >= value + g'(v' - v) is valid for any penalty, and value is the block's true
        cost when nothing falls short. When something does, the least shortfall W(v) > 0
        (phase one) and its slope g1 give the feasibility cut 0 >= W(v) + g1'(v' - v)."""
        lo, hi = self.lo - self.B @ v, self.hi - self.B @ v
        lb, ub, from_lo, from_hi = self._bounds(v)
        value, x, row_dual, lower, upper, shortfall = self._priced(self.c, lo, hi, lb, ub, penalty)
        g = self._slope(row_dual, lower, upper, from_lo, from_hi)
        feasibility = None
        if shortfall > SHORTFALL_TOLERANCE:
            least, _, row_dual, lower, upper, _ = self._priced(np.zeros_like(self.c), lo, hi, lb, ub, 1.0)
            if least > SHORTFALL_TOLERANCE:
                feasibility = (least, self._slope(row_dual, lower, upper, from_lo, from_hi))
        return value, x, g, shortfall, feasibility

    def _priced(self, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, lb: np.ndarray, ub: np.ndarray, penalty: float
                ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """The block LP (costs ``c``) by column generation: arc flows start with the few
        cheapest usable arcs into each zone, and columns the duals price below zero are added
        until none is. Columns left out sit at their bound 0, their bound duals are their
        reduced costs."""
        movable = ub > lb
        active = (lb != 0) | (movable & (self.zone < 0))
        arcs = np.flatnonzero(movable & (self.zone >= 0))
        order = arcs[np.lexsort((self.c[arcs], self.zone[arcs]))]  # cheapest by the true costs
        starts = np.r_[0, np.flatnonzero(np.diff(self.zone[order])) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        active[order[rank < INITIAL_ARCS_PER_ZONE]] = True
        if self.warm is not None:
            active |= self.warm & movable  # columns that carried flow last time
        asking = np.flatnonzero(np.isfinite(lo) & (lo > 0))  # rows that can fall short
        short = sp.csc_matrix((np.ones(len(asking)), (asking, np.arange(len(asking)))), shape=(len(lo), len(asking)))
        while True:
            cols = np.flatnonzero(active)
            out = solve_lp(
                np.concatenate([c[cols], np.full(len(asking), penalty)]), sp.hstack([self.A[:, cols], short]),
                lo, hi, np.concatenate([lb[cols], np.zeros(len(asking))]), np.concatenate([ub[cols], np.full(len(asking), np.inf)]),
            )
            if out.status != "optimal":
                raise RuntimeError(f"a block LP ended with status {out.status}: {out.message}")
            assert out.x is not None and out.objective is not None and out.row_dual is not None
            reduced = c - self.A.T @ out.row_dual
            entering = ~active & movable & (reduced < -1e-9 * max(1.0, abs(out.objective)))
            if not entering.any():
                break
            active |= entering
        n = len(cols)
        x = np.zeros(len(c))
        x[cols] = out.x[:n]
        self.warm = x > 0
        lower, upper = np.maximum(reduced, 0.0), np.minimum(reduced, 0.0)
        lower[cols], upper[cols] = out.lower_dual[:n], out.upper_dual[:n]  # type: ignore[index]
        return out.objective, x, out.row_dual, lower, upper, float(out.x[n:].sum())

    def _bounds(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lb, ub = self.lb.copy(), self.ub.copy()
        from_lo = np.zeros(len(self.bound_col), bool)
        from_hi = np.zeros(len(self.bound_col), bool)
        if len(self.bound_col):
            shift = self.bound_B @ v
            a = self.bound_coef
            low = np.where(a > 0, self.bound_lo - shift, self.bound_hi - shift) / a
            high = np.where(a > 0, self.bound_hi - shift, self.bound_lo - shift) / a
            col = self.bound_col
            from_lo = low > lb[col]
            from_hi = high < ub[col]
            lb[col] = np.maximum(lb[col], low)
            ub[col] = np.minimum(ub[col], high)
        # a first stage a hair outside its box (solver noise) must not make bounds cross
        ub = np.maximum(ub, lb)
        return lb, ub, from_lo, from_hi

    def _slope(self, row_dual: np.ndarray | None, lower_dual: np.ndarray | None, upper_dual: np.ndarray | None,
               from_lo: np.ndarray, from_hi: np.ndarray) -> np.ndarray:
        assert row_dual is not None and lower_dual is not None and upper_dual is not None
        g = -(self.B.T @ row_dual)
        if len(self.bound_col):
            col = self.bound_col
            pi = (np.where(from_lo, lower_dual[col], 0.0) + np.where(from_hi, upper_dual[col], 0.0)) / self.bound_coef
            g -= self.bound_B.T @ pi
        return np.asarray(g).ravel()


@dataclass
class Decomposition:
    formulation: Formulation
    first: np.ndarray  # global first-stage columns
    master_A: sp.csr_matrix  # first-stage rows over first-stage columns
    master_lo: np.ndarray
    master_hi: np.ndarray
    blocks: list[Block]


def decompose(f: Formulation) -> Decomposition:
    """Split the model into the first stage with its rows and one LP per block."""
    m = f.model
    A = m.matrix().tocoo()
    first = np.flatnonzero(f.col_block == FIRST_STAGE)
    local = np.empty(m.num_vars, np.int64)  # position of each column within its block (or the first stage)
    local[first] = np.arange(len(first))
    order = np.argsort(f.col_block, kind="stable")
    bounds = np.searchsorted(f.col_block[order], np.arange(-1, f.col_block.max() + 2))
    for b in range(-1, f.col_block.max() + 1):
        cols = order[bounds[b + 1] : bounds[b + 2]]
        local[cols] = np.arange(len(cols))
    lb, ub, cost, row_lo, row_hi = m.lb, m.ub, m.cost, m.row_lo, m.row_hi

    entry_block = f.row_block[A.row]
    col_first = f.col_block[A.col] == FIRST_STAGE
    if not np.all((f.col_block[A.col] == entry_block) | col_first):
        raise ValueError("a row mixes the columns of two blocks")
    is_master = entry_block == FIRST_STAGE
    master_rows = np.flatnonzero(f.row_block == FIRST_STAGE)
    row_pos = np.full(m.num_rows, -1, np.int64)
    row_pos[master_rows] = np.arange(len(master_rows))
    master_A = sp.csr_matrix(
        (A.data[is_master], (row_pos[A.row[is_master]], local[A.col[is_master]])), shape=(len(master_rows), len(first))
    )

    blocks = []
    by_row = np.argsort(entry_block, kind="stable")
    row_order = np.argsort(f.row_block, kind="stable")
    row_bounds = np.searchsorted(f.row_block[row_order], np.arange(-1, f.row_block.max() + 2))
    entry_bounds = np.searchsorted(entry_block[by_row], np.arange(-1, f.row_block.max() + 2))
    for b in range(0, f.col_block.max() + 1):
        cols = order[bounds[b + 1] : bounds[b + 2]]
        rows = row_order[row_bounds[b + 1] : row_bounds[b + 2]] if b + 2 < len(row_bounds) else np.zeros(0, np.int64)
        if len(cols) == 0:
            continue
        entries = by_row[entry_bounds[b + 1] : entry_bounds[b + 2]] if b + 2 < len(entry_bounds) else np.zeros(0, np.int64)
        r_local = np.full(m.num_rows, -1, np.int64)
        r_local[rows] = np.arange(len(rows))
        e_row, e_col, e_val = r_local[A.row[entries]], A.col[entries], A.data[entries]
        in_block = ~col_first[entries]
        n_block_entries = np.bincount(e_row[in_block], minlength=len(rows))
        # a row with one block column becomes that column's bound (the first one per column)
        single_entry = in_block & (n_block_entries[e_row] == 1)
        cand_rows, cand_cols = e_row[single_entry], local[e_col[single_entry]]
        _, first_of_col = np.unique(cand_cols, return_index=True)
        single_rows = cand_rows[first_of_col]
        is_single = np.zeros(len(rows), bool)
        is_single[single_rows] = True
        plain_rows = np.flatnonzero(~is_single)
        plain_pos = np.full(len(rows), -1, np.int64)
        plain_pos[plain_rows] = np.arange(len(plain_rows))
        single_pos = np.full(len(rows), -1, np.int64)
        single_pos[single_rows] = np.arange(len(single_rows))

        plain_e = plain_pos[e_row] >= 0
        A_b = sp.csr_matrix(
            (e_val[plain_e & in_block], (plain_pos[e_row[plain_e & in_block]], local[e_col[plain_e & in_block]])), shape=(len(plain_rows), len(cols))
        )
        B_b = sp.csr_matrix(
            (e_val[plain_e & ~in_block], (plain_pos[e_row[plain_e & ~in_block]], local[e_col[plain_e & ~in_block]])), shape=(len(plain_rows), len(first))
        )
        single_e = ~plain_e
        coef = np.zeros(len(single_rows))
        bcol = np.zeros(len(single_rows), np.int64)
        se_in = single_e & in_block
        coef[single_pos[e_row[se_in]]] = e_val[se_in]
        bcol[single_pos[e_row[se_in]]] = local[e_col[se_in]]
        se_first = single_e & ~in_block
        bound_B = sp.csr_matrix(
            (e_val[se_first], (single_pos[e_row[se_first]], local[e_col[se_first]])), shape=(len(single_rows), len(first))
        )
        blocks.append(
            Block(
                cols=cols, c=cost[cols], lb=lb[cols], ub=ub[cols], A=A_b.tocsc(), B=B_b,
                lo=row_lo[rows[plain_rows]], hi=row_hi[rows[plain_rows]],
                bound_col=bcol, bound_coef=coef, bound_B=bound_B,
                bound_lo=row_lo[rows[single_rows]], bound_hi=row_hi[rows[single_rows]], zone=f.col_zone[cols],
                weight=float(f.net.probability[b // len(f.net.sku_ids)]),
                floor=_floor(f, b),
            )
        )
    return Decomposition(f, first, master_A, row_lo[master_rows], row_hi[master_rows], blocks)


def _floor(f: Formulation, b: int) -> float:
    """Block (w, k) costs at least p_w times each unit of demand at its cheapest way to be
    served: an arc into its zone, the depot or a lost sale."""
    net = f.net
    w, k = divmod(b, len(net.sku_ids))
    cheapest = np.full(len(net.zone_ids), np.inf)
    np.minimum.at(cheapest, net.arc_zone, net.arc_cost)
    per_unit = np.minimum(cheapest, net.fallback_cost[k])
    d = net.scen_demand[w][:, k]
    served = d > 0
    return float(net.probability[w] * (d[served] * per_unit[served]).sum()) if np.isfinite(per_unit[served]).all() else 0.0


def seed_plan(f: Formulation) -> np.ndarray:
    """A generous first stage to cut at before the master knows anything: every usable site
    open, each zone's peak demand stocked at its cheapest site, the promise spread over SKUs
    by demand, pre-sale volume for what that site ships of its zones' pre-sale orders."""
    net, model = f.net, f.model
    K = len(net.sku_ids)
    v = np.zeros(model.num_vars)
    v[f.y] = model.ub[f.y]
    cheapest = np.full(len(net.zone_ids), -1, np.int64)
    order = np.lexsort((net.arc_cost, net.arc_zone))
    first_of_zone = order[np.r_[0, np.flatnonzero(np.diff(net.arc_zone[order])) + 1]] if len(order) else order
    cheapest[net.arc_zone[first_of_zone]] = net.arc_site[first_of_zone]
    if f.s is not None:
        ik = f.ik_site * K + f.ik_sku
        zones = np.flatnonzero(cheapest >= 0)
        for k in range(K):
            keys = cheapest[zones] * K + k
            pos = np.searchsorted(ik, keys)
            ok = (pos < len(ik)) & (ik[np.minimum(pos, len(ik) - 1)] == keys)
            peak = net.scen_demand[:, zones, k].max(axis=0)
            np.add.at(v, f.s[pos[ok]], peak[ok])
            for w, R in f.R.items():
                np.add.at(v, R[pos[ok]], net.presale[w] * net.scen_demand[w, zones[ok], k] * net.volume[k])
        if f.b is not None:
            v[f.b] = (v[f.s[f.b_pairs]] > 0).astype(float)
    for w, P in f.P.items():
        v[P] = net.promise_share[w] * net.scen_demand[w].sum(axis=0)
    if f.z is not None:
        v[f.z[first_of_zone]] = 1.0
    return v[f.col_block == FIRST_STAGE]


@dataclass
class Cuts:
    """Rows  theta_b - g'v >= rhs  (optimality, block b) and  -g'v >= rhs  (feasibility, block -1)."""

    block: list[int] = field(default_factory=list)
    g: list[sp.csr_matrix] = field(default_factory=list)
    rhs: list[float] = field(default_factory=list)

    def add(self, block: int, value: float, g: np.ndarray, v: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> None:
        # Slopes below 1e-9 of the largest are noise that makes MILP masters unreliable. One is
        # dropped only where its column is bounded, and the cut lowered by the most it could
        # contribute over the column's range, so the cut stays valid.
        tiny = (np.abs(g) <= 1e-9 * float(np.abs(g).max(initial=0.0))) & (g != 0) & np.isfinite(lb) & np.isfinite(ub)
        worst = np.minimum(g[tiny] * (lb[tiny] - v[tiny]), g[tiny] * (ub[tiny] - v[tiny])).sum()
        g = np.where(tiny, 0.0, g)
        rhs = value - float(g @ v) + float(worst)
        if block < 0:  # a feasibility cut keeps its meaning at any scale: make its largest slope 1
            scale = float(np.abs(g).max(initial=0.0))
            if scale > 0:
                g, rhs = g / scale, rhs / scale
        self.block.append(block)
        self.g.append(sp.csr_matrix(g))
        self.rhs.append(rhs)


@dataclass
class Incumbent:
    objective: float = np.inf
    x: np.ndarray | None = None


class LShaped:
    """The cutting-plane loop: LP master first, then MILP master, until the gap closes."""

    def __init__(self, dec: Decomposition, backend: str, options: SolverOptions, start: float) -> None:
        self.dec, self.backend, self.options, self.start = dec, backend, options, start
        m = dec.formulation.model
        F = dec.first
        self.c_first, self.lb_first, self.ub_first = m.cost[F], m.lb[F], m.ub[F]
        self.integer_first = m.integer[F]
        self.cuts = Cuts()
        self.best = Incumbent()
        self.lower = -np.inf
        # a unit falling short costs ten times the dearest unit of the block plus what its
        # volume at the dearest site per volume costs (feasibility cuts do the rest)
        net = dec.formulation.net
        per_volume = float(np.max(net.fixed_cost / np.maximum(net.capacity, 1e-9), initial=0.0)) * float(net.volume.max(initial=1.0))
        self.penalty = np.array([10.0 * (float(np.abs(b.c).max(initial=0.0)) + b.weight * per_volume) + 1.0 for b in dec.blocks])
        self.shortfall = 0.0
        self.floors = np.array([b.floor for b in dec.blocks])
        self.pool: Any = None  # a process pool for the blocks (``workers``)
        self.iterations = 0
        self.block_solves = 0

    # --- time
    def left(self) -> float | None:
        if self.options.time_limit_s is None:
            return None
        return self.options.time_limit_s - (now() - self.start)

    def out_of_time(self) -> bool:
        left = self.left()
        return expired(None) or (left is not None and left <= 0.05)

    # --- master
    def master(self, integer: bool, fixed: np.ndarray | None = None) -> tuple[Status | None, np.ndarray | None, np.ndarray | None, float | None, float | None]:
        """Solve the master (its LP relaxation unless ``integer``; with the integer columns
        at their values in ``fixed`` when given)."""
        dec, nF, nB = self.dec, len(self.dec.first), len(self.dec.blocks)
        model = LinearModel(name="benders-master")
        lb, ub = self.lb_first, self.ub_first
        if fixed is not None:
            lb = np.where(self.integer_first, fixed, lb)
            ub = np.where(self.integer_first, fixed, ub)
        v = model.add_variables("first", nF, lb=lb, ub=ub, cost=self.c_first, integer=self.integer_first if integer else False)
        theta = model.add_variables("theta", nB, lb=self.floors, cost=1.0)
        A = dec.master_A.tocoo()
        if A.shape[0]:
            model.add_constraints("first_stage", A.shape[0], A.row, v[A.col], A.data, lo=dec.master_lo, hi=dec.master_hi)
        if self.cuts.block:
            G = sp.vstack(self.cuts.g).tocoo()
            n = G.shape[0]
            rows, cols, vals = [G.row], [v[G.col]], [-G.data]
            opt = np.flatnonzero(np.array(self.cuts.block) >= 0)
            rows.append(opt)
            cols.append(theta[np.array(self.cuts.block)[opt]])
            vals.append(np.ones(len(opt)))
            model.add_constraints("cuts", n, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), lo=np.array(self.cuts.rhs))
        opts = SolverOptions(time_limit_s=self.left(), gap=self.options.gap / 2, threads=self.options.threads, seed=self.options.seed)
        out = solve_linear(model, self.backend, opts)
        if out.x is None:
            return out.status, None, None, None, out.bound
        x = np.clip(out.x[v], self.lb_first, self.ub_first)
        if integer:
            x = np.where(self.integer_first, np.round(x), x)
        return out.status, x, out.x[theta], out.objective, out.bound

    # --- blocks
    def separate(self, v: np.ndarray, test: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int, float | None, list[np.ndarray]]:
        """Solve every block at ``v`` and add the cuts that the master's point ``test``
        (v', theta') violates (every cut without a test point); returns (cuts added, the
        plan's cost when no block falls short, the blocks' solutions)."""
        added, total, short = 0, float(self.c_first @ v), 0.0
        xs: list[np.ndarray] = []
        answers = self.solve_blocks(v)
        for b, (value, x, g, shortfall, feasibility) in enumerate(answers):
            self.block_solves += 1
            xs.append(x)
            short += shortfall
            if feasibility is not None:
                least, slope = feasibility
                if test is None or least + float(slope @ (test[0] - v)) > CUT_TOLERANCE * max(1.0, least):
                    self.cuts.add(-1, least, slope, v, self.lb_first, self.ub_first)
                    added += 1
            total += value
            at_test = value if test is None else value + float(g @ (test[0] - v))
            if test is None or at_test > test[1][b] + CUT_TOLERANCE * max(1.0, abs(value)):
                self.cuts.add(b, value, g, v, self.lb_first, self.ub_first)
                added += 1
        self.shortfall = short
        complete = len(answers) == len(self.dec.blocks)
        return added, (total if complete and short <= SHORTFALL_TOLERANCE else None), xs

    def solve_blocks(self, v: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray, float, tuple[float, np.ndarray] | None]]:
        """The blocks' answers in order, stopping early (a shorter list) at the time limit."""
        answers = []
        if self.pool is None:
            for b, block in enumerate(self.dec.blocks):
                if self.out_of_time():
                    break
                answers.append(block.solve(v, self.penalty[b]))
            return answers
        for answer in self.pool.imap(_solve_block_args, [(b, v, self.penalty[b]) for b in range(len(self.dec.blocks))]):
            answers.append(answer)
            if self.out_of_time():
                break
        return answers

    def integral(self, v: np.ndarray) -> bool:
        return bool(np.all(np.abs(v[self.integer_first] - np.round(v[self.integer_first])) <= 1e-6))

    def offer(self, v: np.ndarray, cost: float | None, xs: list[np.ndarray]) -> None:
        if cost is None or cost >= self.best.objective or not self.integral(v) or not self.first_stage_holds(v):
            return
        full = np.zeros(self.dec.formulation.model.num_vars)
        full[self.dec.first] = v
        for block, x in zip(self.dec.blocks, xs):
            full[block.cols] = x
        self.best = Incumbent(cost, full)

    def first_stage_holds(self, v: np.ndarray) -> bool:
        """``v`` is within its bounds and meets the first-stage rows (seeds need not)."""
        act = self.dec.master_A @ v
        tol = 1e-7 * np.maximum(1.0, np.abs(act))
        in_box = np.all(v >= self.lb_first - 1e-9) and np.all(v <= self.ub_first + 1e-9)
        return bool(in_box and np.all(act >= self.dec.master_lo - tol) and np.all(act <= self.dec.master_hi + tol))

    def rounded_up(self, v: np.ndarray) -> np.ndarray | None:
        """``v`` with its fractional integer columns rounded up, if the first-stage rows allow."""
        r = np.clip(np.where(self.integer_first, np.ceil(v - 1e-6), v), self.lb_first, self.ub_first)
        return r if self.first_stage_holds(r) else None

    def gap(self) -> float | None:
        return relative_gap(self.best.objective if np.isfinite(self.best.objective) else None, self.lower if np.isfinite(self.lower) else None)

    def report(self, phase: str) -> None:
        progress.update(phase, detail=f"master solve {self.iterations}", incumbent=self.best.objective if np.isfinite(self.best.objective) else None,
                        bound=self.lower if np.isfinite(self.lower) else None)

    def run(self, seeds: list[np.ndarray]) -> Status:
        for seed in seeds:  # warm start: cuts (and perhaps an incumbent) at given plans
            if self.out_of_time():
                break
            _, cost, xs = self.separate(seed)
            self.offer(seed, cost, xs)
        if not self.relaxation(core=seeds[0] if seeds else None):
            return Status.INFEASIBLE
        while not self.out_of_time():
            self.iterations += 1
            status, v, theta, objective, bound = self.master(integer=True)
            if status is Status.INFEASIBLE:
                return Status.INFEASIBLE
            if bound is not None:
                self.lower = max(self.lower, bound)
            if v is None or theta is None or objective is None:
                break
            added, cost, xs = self.separate(v, (v, theta))
            self.offer(v, cost, xs)
            self.report("L-shaped, integer master")
            if added and not self.relaxation(fixed=v):  # the best stock for these openings
                break
            gap = self.gap()
            if gap is not None and gap <= self.options.gap:
                return Status.OPTIMAL
            if added == 0:  # the master's own gap is what is left
                break
        return Status.FEASIBLE if self.best.x is not None else Status.NO_SOLUTION

    def relaxation(self, fixed: np.ndarray | None = None, core: np.ndarray | None = None) -> bool:
        """Cuts on the LP relaxation of the master, stabilised in-out (Ben-Ameur and Neto):
        blocks are solved at a point between the master's optimum and a core point (the
        running average of past optima), which damps the zig-zag of plain cutting planes.
        With ``fixed``, the integer columns (openings) are held at its values: the loop then
        finds the best continuous first stage (stock) for them, and every point is a plan.
        False when the master proves the problem (or these openings) infeasible."""
        weight, best_cost = 0.5, np.inf
        v = None
        while not self.out_of_time():
            self.iterations += 1
            status, v, theta, objective, _ = self.master(integer=False, fixed=fixed)
            if status is Status.INFEASIBLE:
                return fixed is not None
            if v is None or theta is None or objective is None:
                return True
            if fixed is None:
                self.lower = max(self.lower, objective)
            core = v if core is None else 0.5 * (core + v)
            point = weight * v + (1 - weight) * core
            added, cost, xs = self.separate(point, (v, theta))
            if cost is not None:
                best_cost = min(best_cost, cost)
                self.offer(point, cost, xs)
            self.report("L-shaped, LP master" if fixed is None else "L-shaped, best stock for the openings")
            lp_gap = relative_gap(best_cost, objective) if np.isfinite(best_cost) else None
            if added == 0:
                if weight >= 1.0:
                    break
                weight = 1.0  # the core point gives nothing more: cut at the optimum itself
            elif lp_gap is not None and lp_gap <= max(self.options.gap, 1e-4):
                break
        rounded = self.rounded_up(v) if v is not None and fixed is None else None
        if rounded is not None and not self.out_of_time():
            _, r_cost, r_xs = self.separate(rounded)
            self.offer(rounded, r_cost, r_xs)
        return True


def plan_vector(f: Formulation, plan: dict[str, Any]) -> np.ndarray:
    """A plan's openings and stock as a first stage (promise and pre-sale volume as in
    :func:`seed_plan`), to cut at."""
    net = f.net
    K = len(net.sku_ids)
    v = np.zeros(f.model.num_vars)
    v[f.col_block == FIRST_STAGE] = seed_plan(f)
    site_pos = {s: i for i, s in enumerate(net.site_ids)}
    sku_pos = {k: i for i, k in enumerate(net.sku_ids)}
    v[f.y] = 0.0
    v[f.y[[site_pos[s] for s in plan["open_sites"]]]] = 1.0
    if f.s is not None:
        stock = np.zeros(len(net.site_ids) * K)
        for item in plan.get("stock", []):
            stock[site_pos[item["site"]] * K + sku_pos[item["sku"]]] += item["units"]
        v[f.s] = stock[f.ik_site * K + f.ik_sku]
        if f.b is not None:
            v[f.b] = (v[f.s[f.b_pairs]] > 0).astype(float)
    v[f.y] = np.clip(v[f.y], f.model.lb[f.y], f.model.ub[f.y])
    return v[f.col_block == FIRST_STAGE]


def run(inst: FrontWarehouse, backend: str | None, options: SolverOptions, one_scenario: Any = None, warm_start: Any = None) -> MethodOutput:
    """The method. ``one_scenario(instance, backend, options) -> MethodOutput`` solves the
    one-scenario problems of the warm start (default: this method; the registry passes the
    extensive form, much faster there). ``warm_start`` (an :class:`optimizers.warm_start.Start`):
    an earlier plan, the first point cut at."""
    start = time.perf_counter()
    deadline = None if options.time_limit_s is None else start + options.time_limit_s
    f = build(inst, stock_columns=True)
    dec = decompose(f)
    loop = LShaped(dec, backend or "highs", options, start)
    with _block_pool(dec, options.threads) as loop.pool:
        return _run(inst, f, dec, loop, backend, options, start, deadline, one_scenario or run, warm_start)


def _run(inst: FrontWarehouse, f: Formulation, dec: Decomposition, loop: LShaped, backend: str | None, options: SolverOptions,
         start: float, deadline: float | None, one_scenario: Any, warm_start: Any = None) -> MethodOutput:
    seeds = ([plan_vector(f, warm_start.solution)] if warm_start is not None else []) + [seed_plan(f)]
    meta: dict[str, Any] = {"blocks": len(dec.blocks), "first_stage_columns": len(dec.first)}
    mean = MeanPlan(reason="one scenario: nothing to compare")
    peak_plan: tuple[float, dict[str, Any]] | None = None
    if len(f.net.scenario_ids) > 1:
        # warm start: the mean-demand plan, run through the scenarios (an incumbent), and
        # what planning for the scenarios is worth (VSS) once this plan is known
        share = None if deadline is None else start + MEAN_PLAN_SHARE * options.time_limit_s  # type: ignore[operator]
        with progress.sub_problem("mean-demand plan (warm start)"):
            mean = mean_plan(inst, lambda i, o: _plan(one_scenario(i, backend, o)), options, share)
        if mean.plan is not None:
            seeds.insert(0, plan_vector(f, mean.plan))
        if mean.value is None or mean.value.cost is None:
            # the mean plan gives no incumbent: plan for every zone's peak demand, which
            # serves every scenario (at a price)
            share = None if deadline is None else time.perf_counter() + MEAN_PLAN_SHARE * options.time_limit_s  # type: ignore[operator]
            with progress.sub_problem("peak-demand plan (warm start)"):
                peak = mean_plan(inst, lambda i, o: _plan(one_scenario(i, backend, o)), options, share, peak=True)
            if peak.plan is not None:
                seeds.insert(0, plan_vector(f, peak.plan))
            if peak.value is not None and peak.value.cost is not None and peak.value.solution is not None:
                peak_plan = (peak.value.cost, peak.value.solution)
    status = loop.run(seeds)
    solution = read_solution(f, loop.best.x).to_dict() if loop.best.x is not None else None
    objective = loop.best.objective if solution is not None else None
    for cost, plan in ([(mean.value.cost, mean.value.solution)] if mean.value is not None else []) + ([peak_plan] if peak_plan else []):
        if cost is not None and plan is not None and (objective is None or cost < objective):
            objective, solution = cost, plan
    if status is Status.INFEASIBLE:
        return MethodOutput(Status.INFEASIBLE, message="the master problem is infeasible: no plan meets the first-stage rows and every scenario", meta=meta)
    bound = loop.lower if np.isfinite(loop.lower) else None
    if bound is not None and objective is not None:
        bound = min(bound, objective)
    gap = relative_gap(objective, bound)
    if objective is None:
        status = Status.NO_SOLUTION
    else:
        status = Status.OPTIMAL if gap is not None and gap <= options.gap else Status.FEASIBLE
    if len(f.net.scenario_ids) > 1 and objective is not None:
        meta["mean_plan"] = vss_report(mean, objective)
    meta.update(iterations=loop.iterations, block_solves=loop.block_solves, cuts=len(loop.cuts.block))
    return MethodOutput(status, objective, bound, solution, f"L-shaped: {loop.iterations} master solves, {len(loop.cuts.block)} cuts", meta)


#: with a time limit, the mean-demand plan may take this share of it
MEAN_PLAN_SHARE = 0.2


_BLOCKS: list[Block] = []  # what forked block workers solve


def _solve_block_args(args: tuple[int, np.ndarray, float]) -> tuple[float, np.ndarray, np.ndarray, float, tuple[float, np.ndarray] | None]:
    b, v, penalty = args
    return _BLOCKS[b].solve(v, penalty)


@contextmanager
def _block_pool(dec: Decomposition, threads: int) -> Iterator[Any]:
    """A pool of ``threads`` forked processes that know the blocks (None for one thread, or
    where forking is unsafe)."""
    workers = min(threads, os.cpu_count() or 1) if threads else (os.cpu_count() or 1)
    if workers < 2 or len(dec.blocks) < 2 or "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        yield None
        return
    global _BLOCKS
    _BLOCKS = dec.blocks
    pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()
        _BLOCKS = []


def _plan(out: MethodOutput) -> tuple[Status, dict[str, Any] | None]:
    return out.status, out.solution
