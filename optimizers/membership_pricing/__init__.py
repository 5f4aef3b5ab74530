"""Methods for the ``membership_pricing`` family."""

from __future__ import annotations

import time

import numpy as np

from models.membership_pricing import MembershipPricing, market, profit_curve, solution_document
from optimizers.backends import BACKENDS, solve_linear
from optimizers.membership_pricing import enumeration, grid, milp, mnl
from optimizers.membership_pricing.fees import greatest_fees
from optimizers.registry import Method, MethodOutput, register, remaining
from optimizers.result import SolverOptions, Status, relative_gap

DEFAULT_BACKEND = "highs"
#: Profit-vs-fee curves are added to the solution for menus with at most this many tiers.
CURVE_MAX_TIERS = 10


def run_milp(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    """The default method: the surplus MILP for max_surplus choice; for logit choice the
    instance goes to the ``mnl`` method (so ``ecomopt solve`` needs no ``--method``)."""
    if inst.choice.model == "mnl":
        handed = run_mnl(inst, backend, options)
        handed.message = "logit choice: solved by the mnl method; " + handed.message
        handed.meta["dispatched_to"] = "mnl"
        return handed
    start = time.perf_counter()
    backend = backend or DEFAULT_BACKEND
    integral = BACKENDS[backend].pure_integer_only and milp.integral_exact(market(inst))
    f = milp.build(inst, integral=integral)
    out = solve_linear(f.model, backend, remaining(options, start))
    assert out.status is not None  # solve_linear settles "infeasible or unbounded"
    model = f.model
    meta = {"variables": model.num_vars, "constraints": model.num_rows, "binaries": int(len(f.x)), "integral": integral,
            "ignored_options": out.ignored_options}
    if out.x is None:
        return MethodOutput(out.status, None, out.bound, None, out.message, meta)
    picks = milp.read_picks(f, out.x)
    fee = greatest_fees(f.mk, picks)
    message = out.message
    if fee is None:  # not expected: the solver's own fees, for evaluate() to judge
        fee = np.array(out.x[f.p], dtype=float)
        message += "; the exact fee recomputation found no fees for the solver's assignment: solver fees kept"
    solution = solution_document(f.mk, fee, picks)
    objective = float(solution["profit"])
    bound = out.bound
    if bound is not None:
        bound = max(bound, objective)
    status = out.status
    gap = relative_gap(objective, bound)
    if status is Status.OPTIMAL and (gap is None or gap > options.gap * (1 + 1e-9) + 1e-12):
        status = Status.FEASIBLE
        message += f"; downgraded to feasible: gap {gap} after the exact fee recomputation"
    if len(f.mk.tier_ids) <= CURVE_MAX_TIERS:
        solution["profit_curve"] = {tier: profit_curve(inst, solution["fees"], tier) for tier in solution["fees"]}
    return MethodOutput(status, objective, bound, solution, message.strip("; "), meta)


def run_mnl(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    out = mnl.run(inst, backend, options)
    if out.solution is not None and len(market(inst).tier_ids) <= CURVE_MAX_TIERS:
        out.solution["profit_curve"] = {tier: profit_curve(inst, out.solution["fees"], tier) for tier in out.solution["fees"]}
    return out


def run_grid_search(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    out = grid.run(inst, backend, options)
    if out.solution is not None and len(market(inst).tier_ids) <= CURVE_MAX_TIERS:
        out.solution["profit_curve"] = {tier: profit_curve(inst, out.solution["fees"], tier) for tier in out.solution["fees"]}
    return out


register(
    Method(
        problem="membership_pricing",
        name="milp",
        description="compact surplus MILP (one binary per segment x tier), fees recomputed exactly for the assignment found; "
        "logit-choice instances go to the mnl method",
        run=run_milp,
        backends=("highs", "scip", "cbc", "cpsat"),
        default_backend=DEFAULT_BACKEND,
        maximize=True,
    ),
    default=True,
)
register(
    Method(
        problem="membership_pricing",
        name="mnl",
        description="logit choice: exact equal-adjusted-markup fees for one segment with continuous fees (LP-certified when "
        "bounds bind); otherwise branch and bound over fee-grid boxes with monotone-share bounds (optimal on the grid)",
        run=run_mnl,
        backends=("highs", "scip", "cbc"),
        default_backend=DEFAULT_BACKEND,
        maximize=True,
        unsupported=mnl.unsupported,
    )
)
register(
    Method(
        problem="membership_pricing",
        name="grid_search",
        description="baseline: every combination of grid fees (and 'not offered') simulated, the best kept; no bound",
        run=run_grid_search,
        maximize=True,
        unsupported=grid.unsupported,
    )
)
register(
    Method(
        problem="membership_pricing",
        name="enumerate",
        description="exact oracle for small instances: every assignment of segments to tiers, best fees for each",
        run=enumeration.run,
        maximize=True,
        unsupported=enumeration.unsupported,
    )
)
