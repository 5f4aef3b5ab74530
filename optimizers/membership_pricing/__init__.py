"""Methods for the ``membership_pricing`` family.

The default, ``auto``, picks by instance shape: logit choice goes to ``mnl``; max-surplus choice
with a ``fee_step`` on every tier (a finite fee domain) and at most ``BOXES_MAX_TIERS`` tiers to
``boxes`` (branch and bound over fee-grid boxes: 5 tiers x 200 segments x 101 fees proven in
seconds, where the compact MILP is still far from closing after 300 s); anything else
(continuous fees, as in the envy-free benchmark, or many tiers) to the compact ``milp``.
"""

from __future__ import annotations

import time

import numpy as np

from models.membership_pricing import MembershipPricing, evaluate, market, profit_curve, simulate, solution_document
from optimizers.backends import BACKENDS, solve_linear
from optimizers.membership_pricing import boxes, enumeration, grid, milp, mnl
from optimizers.membership_pricing.fees import greatest_fees
from optimizers.registry import Method, MethodOutput, register, remaining
from optimizers.result import SolverOptions, Status, relative_gap

DEFAULT_BACKEND = "highs"
#: Profit-vs-fee curves are added to the solution for menus with at most this many tiers.
CURVE_MAX_TIERS = 10
#: ``auto`` sends grid instances with at most this many tiers to ``boxes`` (a box has one
#: dimension per tier; measured faster than the MILP up to 10 tiers x 20 segments).
BOXES_MAX_TIERS = 10


def auto_choice(inst: MembershipPricing) -> tuple[str, str]:
    """(method, why) for the default method."""
    if inst.choice.model == "mnl":
        return "mnl", "logit choice"
    if boxes.unsupported(inst) is None and len(inst.tiers) <= BOXES_MAX_TIERS:
        return "boxes", f"every tier has a fee_step and there are at most {BOXES_MAX_TIERS} tiers"
    return "milp", "continuous fees" if boxes.unsupported(inst) else f"more than {BOXES_MAX_TIERS} tiers"


def run_auto(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    """The default method: dispatches by :func:`auto_choice`."""
    target, why = auto_choice(inst)
    run = {"mnl": run_mnl, "boxes": run_boxes, "milp": run_milp}[target]
    out = run(inst, backend, options)
    out.message = f"{why}: solved by the {target} method" + (f"; {out.message}" if out.message else "")
    out.meta["dispatched_to"] = target
    return out


def add_curves(inst: MembershipPricing, solution: dict | None) -> None:
    """Profit-vs-fee curves per offered tier (others held), batch-scored under max-surplus choice."""
    if solution is None or len(inst.tiers) > CURVE_MAX_TIERS:
        return
    if inst.choice.model == "max_surplus":
        mk = market(inst)
        solution["profit_curve"] = {tier: grid.surplus_curve(mk, solution["fees"], tier) for tier in solution["fees"]}
    else:
        solution["profit_curve"] = {tier: profit_curve(inst, solution["fees"], tier) for tier in solution["fees"]}


def run_milp(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    """The compact surplus MILP for max_surplus choice; for logit choice the instance goes to
    the ``mnl`` method."""
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
    if fee is None:  # seen on incumbents at a time limit (solver tolerances): keep the solver's
        # fees (on their grid, within bounds, off where the model left a tier off) and let the
        # segments choose at them, so the answer is what those fees really earn
        fee = _solver_fees(f, out.x)
        picks = simulate(f.mk, fee)
        exact = greatest_fees(f.mk, picks)  # the choices those fees cause, priced exactly
        if exact is not None:
            better = evaluate(inst, solution_document(f.mk, exact, picks))
            if better.feasible and better.objective > evaluate(inst, solution_document(f.mk, fee, picks)).objective:
                fee = exact
        message += "; the solver's assignment has no exact fees (tolerances): its fees kept, choices simulated at them"
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
    add_curves(inst, solution)
    return MethodOutput(status, objective, bound, solution, message.strip("; "), meta)


def _solver_fees(f: milp.Formulation, x: np.ndarray) -> np.ndarray:
    mk = f.mk
    fee = np.clip(np.array(x[f.p], dtype=float), mk.min_fee, mk.max_fee)
    steps = np.where(mk.step > 0, mk.step, 1.0)
    nearest = mk.min_fee + steps * np.round((fee - mk.min_fee) / steps)  # the solver's fee is on its grid up to tolerance
    fee = np.where(mk.step > 0, [mk.snap_down(t, v) for t, v in enumerate(np.minimum(nearest, mk.max_fee))], fee)
    fee[(np.array(x[f.o]) < 0.5) & ~mk.must_offer] = np.nan
    return fee


def run_mnl(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    out = mnl.run(inst, backend, options)
    add_curves(inst, out.solution)
    return out


def run_boxes(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    out = boxes.run(inst, backend, options)
    add_curves(inst, out.solution)
    return out


def run_grid_search(inst: MembershipPricing, backend: str | None, options: SolverOptions) -> MethodOutput:
    out = grid.run(inst, backend, options)
    add_curves(inst, out.solution)
    return out


register(
    Method(
        problem="membership_pricing",
        name="auto",
        description="the default: mnl for logit choice; boxes when every tier has a fee_step (at most "
        f"{BOXES_MAX_TIERS} tiers); otherwise the compact surplus MILP",
        run=run_auto,
        backends=("highs", "scip", "cbc", "cpsat"),
        default_backend=DEFAULT_BACKEND,
        maximize=True,
    ),
    default=True,
)
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
    )
)
register(
    Method(
        problem="membership_pricing",
        name="boxes",
        description="max_surplus on fee grids: branch and bound over boxes of grid fees with per-segment fee caps "
        "(exact: every tier needs a fee_step)",
        run=run_boxes,
        maximize=True,
        unsupported=boxes.unsupported,
    )
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
