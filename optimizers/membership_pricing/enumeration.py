r"""Exact oracle for small max_surplus instances: every assignment of segments to tiers.

Any solution assigns each segment a tier or none; for a fixed assignment the best fees are the
greatest point of a system of fee bounds and fee differences (see :mod:`fees`), or there are
none. So the optimum is the best, over all assignments, of the profit at those fees:

    max over c in prod_s ({none} u {t : v_st >= min_fee_t + e})  profit(c, greatest_fees(c))

A segment can only join tier t when v_st - min_fee_t >= e, which prunes the choices. The work
is the product of the choice counts, hence a limit (``MAX_ASSIGNMENTS``). Independent of the
MILP: it shares no formulation, big-M or pruning argument with it, only the rules of the model.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from models.membership_pricing import Market, MembershipPricing, market, profit_of, solution_document
from optimizers.membership_pricing.fees import greatest_fees
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status
from optimizers.stopping import expired

MAX_ASSIGNMENTS = 200_000


def choices(mk: Market) -> list[list[int | None]]:
    out: list[list[int | None]] = []
    for s in range(len(mk.segment_ids)):
        tie = mk.tie(s)
        out.append([None] + [t for t in range(len(mk.tier_ids)) if mk.wtp[s, t] - mk.min_fee[t] >= mk.tolerance - tie])
    return out


def count(inst: MembershipPricing) -> int:
    return math.prod(len(c) for c in choices(market(inst)))


def unsupported(inst: MembershipPricing) -> str | None:
    if inst.choice.model != "max_surplus":
        return f"enumeration covers choice model 'max_surplus' only (got '{inst.choice.model}')"
    n = count(inst)
    if n > MAX_ASSIGNMENTS:
        return f"{n:,} assignments of segments to tiers to try, more than the limit {MAX_ASSIGNMENTS:,}; use --method milp"
    return None


def best(mk: Market, deadline: float | None = None) -> tuple[tuple[float, np.ndarray, list[int | None]] | None, bool]:
    """(profit, fees, picks) of the best assignment tried (None when none is feasible), and
    whether every assignment was tried before the deadline."""
    found: tuple[float, np.ndarray, list[int | None]] | None = None
    S, T = len(mk.segment_ids), len(mk.tier_ids)
    for n, combo in enumerate(itertools.product(*choices(mk))):
        if n % 1000 == 0 and expired(deadline):
            return found, False
        picks = list(combo)
        fee = greatest_fees(mk, picks)
        if fee is None:
            continue
        share = np.zeros((S, T))
        for s, pick in enumerate(picks):
            if pick is not None:
                share[s, pick] = 1.0
        offered = (share.sum(axis=0) > 0) | mk.must_offer
        value = profit_of(mk, fee, share, offered)
        if found is None or value > found[0] + 1e-9 * max(1.0, abs(found[0])):
            found = (value, fee, picks)
    return found, True


def run(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    mk = market(inst)
    deadline = None if options.time_limit_s is None else time.perf_counter() + options.time_limit_s
    found, complete = best(mk, deadline)
    meta = {"assignments": count(inst)}
    if found is None:
        if complete:
            return MethodOutput(Status.INFEASIBLE, message="no assignment of segments to tiers has feasible fees", meta=meta)
        return MethodOutput(Status.NO_SOLUTION, message="time limit reached before a feasible assignment was found", meta=meta)
    value, fee, picks = found
    solution = solution_document(mk, fee, picks)
    if not complete:
        return MethodOutput(Status.FEASIBLE, value, None, solution, "time limit reached before every assignment was tried", meta)
    return MethodOutput(Status.OPTIMAL, value, value, solution, "", meta)
