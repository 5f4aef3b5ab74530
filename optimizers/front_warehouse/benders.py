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

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from optimizers.backends import solve_linear
from optimizers.backends.lp import solve_lp
from optimizers.front_warehouse.milp import FIRST_STAGE, Formulation
from optimizers.linear import LinearModel
from optimizers.result import SolverOptions, Status, relative_gap

#: a block's cut is added when the master underestimates its value by more than this (relative)
CUT_TOLERANCE = 1e-7
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

    def solve(self, v: np.ndarray) -> tuple[str, float, np.ndarray | None, np.ndarray]:
        """(status, value, x, g) at the first stage ``v``: g is the cut's slope; with status
        "infeasible", value and g describe the feasibility cut instead."""
        lo, hi = self.lo - self.B @ v, self.hi - self.B @ v
        lb, ub, from_lo, from_hi = self._bounds(v)
        out = self._priced(lo, hi, lb, ub)
        if out is not None:
            return "optimal", out[0], out[1], self._slope(out[2], out[3], out[4], from_lo, from_hi)
        # phase one: least total violation of the rows, with elastic columns e+ and e-
        n_rows, n = self.A.shape[0], self.A.shape[1]
        eye = sp.identity(n_rows, format="csr")
        A1 = sp.hstack([self.A, eye, -eye]).tocsr()
        c1 = np.concatenate([np.zeros(n), np.ones(2 * n_rows)])
        lb1, ub1 = np.concatenate([lb, np.zeros(2 * n_rows)]), np.concatenate([ub, np.full(2 * n_rows, np.inf)])
        one = solve_lp(c1, A1, lo, hi, lb1, ub1)
        if one.status != "optimal":
            raise RuntimeError(f"a block's phase-one LP ended with status {one.status}: {one.message}")
        assert one.objective is not None
        slope = self._slope(one.row_dual, one.lower_dual[:n], one.upper_dual[:n], from_lo, from_hi)  # type: ignore[index]
        return "infeasible", one.objective, None, slope

    def _priced(self, lo: np.ndarray, hi: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The block LP by column generation: arc flows start with the few cheapest usable
        arcs into each zone, and columns the duals price below zero are added until none is.
        Columns left out sit at their bound 0, their bound duals are their reduced costs.
        None when the LP is infeasible."""
        movable = ub > lb
        active = (lb != 0) | (movable & (self.zone < 0))
        arcs = np.flatnonzero(movable & (self.zone >= 0))
        order = arcs[np.lexsort((self.c[arcs], self.zone[arcs]))]
        starts = np.r_[0, np.flatnonzero(np.diff(self.zone[order])) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        active[order[rank < INITIAL_ARCS_PER_ZONE]] = True
        while True:
            cols = np.flatnonzero(active)
            out = solve_lp(self.c[cols], self.A[:, cols], lo, hi, lb[cols], ub[cols])
            if out.status == "infeasible" and not active[movable].all():
                active |= movable  # infeasible with some columns left out: decide with all of them
                continue
            if out.status == "infeasible":
                return None
            if out.status != "optimal":
                raise RuntimeError(f"a block LP ended with status {out.status}: {out.message}")
            assert out.x is not None and out.objective is not None and out.row_dual is not None
            reduced = self.c - self.A.T @ out.row_dual
            entering = ~active & movable & (reduced < -1e-9 * max(1.0, abs(out.objective)))
            if not entering.any():
                break
            active |= entering
        x = np.zeros(len(self.c))
        x[cols] = out.x
        lower, upper = np.maximum(reduced, 0.0), np.minimum(reduced, 0.0)
        lower[cols], upper[cols] = out.lower_dual, out.upper_dual  # type: ignore[index]
        return out.objective, x, out.row_dual, lower, upper

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
            )
        )
    return Decomposition(f, first, master_A, row_lo[master_rows], row_hi[master_rows], blocks)


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
        self.iterations = 0
        self.block_solves = 0

    # --- time
    def left(self) -> float | None:
        if self.options.time_limit_s is None:
            return None
        return self.options.time_limit_s - (time.perf_counter() - self.start)

    def out_of_time(self) -> bool:
        left = self.left()
        return left is not None and left <= 0.05

    # --- master
    def master(self, integer: bool, fixed: np.ndarray | None = None) -> tuple[Status, np.ndarray | None, np.ndarray | None, float | None, float | None]:
        """Solve the master (its LP relaxation unless ``integer``; with the integer columns
        at their values in ``fixed`` when given)."""
        dec, nF, nB = self.dec, len(self.dec.first), len(self.dec.blocks)
        model = LinearModel(name="benders-master")
        lb, ub = self.lb_first, self.ub_first
        if fixed is not None:
            lb = np.where(self.integer_first, fixed, lb)
            ub = np.where(self.integer_first, fixed, ub)
        v = model.add_variables("first", nF, lb=lb, ub=ub, cost=self.c_first, integer=self.integer_first if integer else False)
        theta = model.add_variables("theta", nB, lb=0.0, cost=1.0)
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
    def separate(self, v: np.ndarray, test: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int, float | None, list[np.ndarray | None]]:
        """Solve every block at ``v`` and add the cuts that the master's point ``test``
        (v', theta') violates (every cut without a test point); returns (cuts added, the
        plan's cost when every block is feasible, the blocks' solutions)."""
        added, total, feasible = 0, float(self.c_first @ v), True
        xs: list[np.ndarray | None] = []
        for b, block in enumerate(self.dec.blocks):
            status, value, x, g = block.solve(v)
            self.block_solves += 1
            xs.append(x)
            at_test = value if test is None else value + float(g @ (test[0] - v))
            if status == "infeasible":
                feasible = False
                if test is None or at_test > CUT_TOLERANCE * max(1.0, value):
                    self.cuts.add(-1, value, g, v, self.lb_first, self.ub_first)
                    added += 1
                continue
            total += value
            if test is None or at_test > test[1][b] + CUT_TOLERANCE * max(1.0, abs(value)):
                self.cuts.add(b, value, g, v, self.lb_first, self.ub_first)
                added += 1
        return added, (total if feasible else None), xs

    def integral(self, v: np.ndarray) -> bool:
        return bool(np.all(np.abs(v[self.integer_first] - np.round(v[self.integer_first])) <= 1e-6))

    def offer(self, v: np.ndarray, cost: float | None, xs: list[np.ndarray | None]) -> None:
        if cost is None or cost >= self.best.objective or not self.integral(v):
            return
        full = np.zeros(self.dec.formulation.model.num_vars)
        full[self.dec.first] = v
        for block, x in zip(self.dec.blocks, xs):
            assert x is not None
            full[block.cols] = x
        self.best = Incumbent(cost, full)

    def rounded_up(self, v: np.ndarray) -> np.ndarray | None:
        """``v`` with its fractional integer columns rounded up, if the first-stage rows allow."""
        r = np.where(self.integer_first, np.ceil(v - 1e-6), v)
        r = np.clip(r, self.lb_first, self.ub_first)
        act = self.dec.master_A @ r
        tol = 1e-7 * np.maximum(1.0, np.abs(act))
        if np.all(act >= self.dec.master_lo - tol) and np.all(act <= self.dec.master_hi + tol):
            return r
        return None

    def gap(self) -> float | None:
        return relative_gap(self.best.objective if np.isfinite(self.best.objective) else None, self.lower if np.isfinite(self.lower) else None)

    def run(self, seeds: list[np.ndarray]) -> Status:
        for v in seeds:  # warm start: cuts (and perhaps an incumbent) at given plans
            if self.out_of_time():
                break
            _, cost, xs = self.separate(v)
            self.offer(v, cost, xs)
        if not self.relaxation():
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
            if added and not self.relaxation(fixed=v):  # the best stock for these openings
                break
            gap = self.gap()
            if gap is not None and gap <= self.options.gap:
                return Status.OPTIMAL
            if added == 0:  # the master's own gap is what is left
                break
        return Status.FEASIBLE if self.best.x is not None else Status.NO_SOLUTION

    def relaxation(self, fixed: np.ndarray | None = None) -> bool:
        """Cuts on the LP relaxation of the master, stabilised in-out (Ben-Ameur and Neto):
        blocks are solved at a point between the master's optimum and a core point (the
        running average of past optima), which damps the zig-zag of plain cutting planes.
        With ``fixed``, the integer columns (openings) are held at its values: the loop then
        finds the best continuous first stage (stock) for them, and every point is a plan.
        False when the master proves the problem (or these openings) infeasible."""
        core: np.ndarray | None = None
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
