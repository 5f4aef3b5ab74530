"""Baseline: the budget multiplier by plain bisection, as a planner would write it in numpy.

The whole table in memory; 50 passes, each scoring every user and treatment at
lam (value - lam cost, "none" = 0) and comparing the spend with the budget. The plan is the
choices at the smallest lam found whose spend fits; the bound is the smallest
Lagrangian value sum_u max(0, max_t value - lam cost) + lam B met on the way.
"""

from __future__ import annotations

import numpy as np

from models.incentive_assignment import NONE, IncentiveAssignment, Totals, chosen, iter_chunks
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status

PASSES = 50


def unsupported(inst: IncentiveAssignment) -> str | None:
    return "handles one budget only (the instance has treatment limits or segment budgets); use --method dual" if inst.coupled else None


def run(inst: IncentiveAssignment, backend: str | None, options: SolverOptions) -> MethodOutput:
    chunks = list(iter_chunks(inst))
    V = np.concatenate([c.value for c in chunks], axis=1)
    C = np.concatenate([c.cost for c in chunks], axis=1)
    segment = [(c.offset, len(c), c.segment, c.segment_names) for c in chunks]
    del chunks

    def choose(lam: float) -> tuple[np.ndarray, float, float]:
        score = V - lam * C
        top = score.argmax(axis=0)
        best = np.take_along_axis(score, top[None, :], 0)[0]
        choice = np.where(best > 0, top, NONE)
        spend = float(np.where(choice >= 0, np.take_along_axis(C, top[None, :], 0)[0], 0.0).sum())
        return choice, spend, float(np.maximum(best, 0).sum()) + lam * inst.budget

    with np.errstate(divide="ignore", invalid="ignore"):
        hi = float(np.where((C > 0) & (V > 0), V / C, 0.0).max(initial=0.0)) * 1.01 + 1e-9
    lo = 0.0
    choice, spend, bound = choose(lo)
    if spend > inst.budget:
        for _ in range(PASSES):
            mid = 0.5 * (lo + hi)
            _, spend, dual = choose(mid)
            bound = min(bound, dual)
            lo, hi = (mid, hi) if spend > inst.budget else (lo, mid)
        choice, spend, dual = choose(hi)
        bound = min(bound, dual)
    choice = choice.astype(np.int8)
    totals = Totals()
    for offset, m, seg, names in segment:
        part = choice[offset : offset + m]
        totals.add(inst, part, chosen(V[:, offset : offset + m], part), chosen(C[:, offset : offset + m], part), seg, names)
    value = totals.value
    bound = max(bound, value)
    status = Status.OPTIMAL if bound - value <= options.gap * max(1.0, abs(value)) else Status.FEASIBLE
    solution = totals.summary() | {"budget": inst.budget}
    return MethodOutput(status, totals.value, bound, solution, meta={"multiplier": hi, "passes": PASSES}, attachments={"choice": choice})
