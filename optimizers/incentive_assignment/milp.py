"""Exact MILP for small tables (the oracle the tests check the dual method against).

x_ut in {0, 1} for the treatments with positive value (the others never beat "none"):
max sum value_ut x_ut  s.t.  sum_t x_ut <= 1 per user, sum cost_ut x_ut <= B,
sum_u x_ut <= limit_t, sum_{u in s} cost_ut x_ut <= B_s.
"""

from __future__ import annotations

import time

import numpy as np

from models.incentive_assignment import NONE, IncentiveAssignment, iter_chunks, totals_of
from optimizers.backends import solve_linear
from optimizers.linear import LinearModel
from optimizers.registry import MethodOutput, remaining
from optimizers.result import SolverOptions, Status, relative_gap

MAX_CELLS = 2_000_000  # users x treatments


def unsupported(inst: IncentiveAssignment) -> str | None:
    from models.incentive_assignment import parquet_parts

    if inst.table_path.suffix.lower() == ".parquet":
        users = sum(p.rows for p in parquet_parts(inst))
        if users * len(inst.treatments) > MAX_CELLS:
            return f"{users:,} users x {len(inst.treatments)} treatments is too large for a MILP (at most {MAX_CELLS:,} cells); use --method dual"
    return None


def run(inst: IncentiveAssignment, backend: str | None, options: SolverOptions) -> MethodOutput:
    start = time.perf_counter()
    chunks = list(iter_chunks(inst))
    V = np.concatenate([c.value for c in chunks], axis=1)
    C = np.concatenate([c.cost for c in chunks], axis=1)
    if V.size > MAX_CELLS:
        from models.errors import UsageError

        raise UsageError(f"--method milp: {V.shape[1]:,} users x {V.shape[0]} treatments is too large (at most {MAX_CELLS:,} cells); use --method dual")
    budgeted = np.concatenate([c.budgeted for c in chunks])
    T, n = V.shape
    t_idx, u_idx = np.nonzero(V > 0)
    k = len(t_idx)
    if k == 0:  # no treatment is worth giving: "none" for everyone is optimal
        nobody = np.full(n, NONE, np.int8)
        return MethodOutput(Status.OPTIMAL, 0.0, 0.0, totals_of(inst, chunks, nobody).summary() | {"budget": inst.budget}, attachments={"choice": nobody})
    model = LinearModel(name=inst.name, maximize=True)
    x = model.add_variables("x", k, ub=1.0, cost=V[t_idx, u_idx], integer=True)
    model.add_constraints("one_per_user", n, u_idx, x, 1.0, hi=1.0)
    model.add_constraints("budget", 1, np.zeros(k), x, C[t_idx, u_idx], hi=inst.budget)
    for j, t in enumerate(inst.treatments):
        if t.limit is not None:
            sel = t_idx == j
            model.add_constraints(f"limit:{t.id}", 1, np.zeros(int(sel.sum())), x[sel], 1.0, hi=float(t.limit))
    for s, (name, cap) in enumerate(inst.segment_budgets.items()):
        sel = budgeted[u_idx] == s
        model.add_constraints(f"segment:{name}", 1, np.zeros(int(sel.sum())), x[sel], C[t_idx[sel], u_idx[sel]], hi=cap)
    out = solve_linear(model, backend or "scip", remaining(options, start))
    if out.x is None:
        return MethodOutput(out.status or Status.ERROR, bound=out.bound, message=out.message)
    choice = np.full(n, NONE, np.int8)
    on = out.x[x] > 0.5
    choice[u_idx[on]] = t_idx[on]
    totals = totals_of(inst, chunks, choice)
    bound = out.bound if out.bound is not None else None
    status = out.status or Status.ERROR
    if status is Status.OPTIMAL and (relative_gap(totals.value, bound) or 0.0) > options.gap * (1 + 1e-9) + 1e-12:
        status = Status.FEASIBLE
    return MethodOutput(status, totals.value, bound, totals.summary() | {"budget": inst.budget}, message=out.message, attachments={"choice": choice})
