"""Warm start from an earlier plan, e.g. last week's result on this week's instance.

The earlier plan's lasting decisions are carried over and priced on the new instance, without
any of its old numbers:

- front_warehouse: the open sites (that still exist and are not closed); the stock and every
  scenario's flows, transfers and pre-sale stock are re-optimised for them (an LP, or a
  small MILP with max_skus or single sourcing);
- incentive_budget: the spend per cell (cells that still exist);
- membership_pricing: the fees (of tiers that still exist); who joins is simulated anew;
- incentive_assignment: nothing (users come and go; the dual method is fast from scratch).

``solve(..., warm_start=plan)`` then returns a plan at least as good as the carried one: a
method that can use it starts from it (the location method's incumbent, Benders' first cut
point), and any method's result is replaced by the carried plan when that is better.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from models import evaluate
from models.base import TOLERANCE
from models.errors import UsageError
from optimizers.result import SolverOptions, Status


@dataclass
class Start:
    objective: float
    solution: dict[str, Any]
    kept: str  # what was carried over, for the result's meta
    core_flow: tuple[float, Any] | None = None  # on the location core: (cost, flow per arc) of lagrangian.Core.of(instance)


def plan_of(warm_start: dict[str, Any]) -> dict[str, Any]:
    """The solution inside a result document, or the solution itself."""
    if not isinstance(warm_start, dict):
        raise UsageError(f"warm_start: expected a result document or its solution (a dict; got {type(warm_start).__name__})")
    plan = warm_start.get("solution", warm_start) if "problem" in warm_start else warm_start
    if not isinstance(plan, dict):
        raise UsageError("warm_start: the result document has no solution")
    return plan


def carry(instance: Any, warm_start: dict[str, Any], options: SolverOptions) -> tuple[Start | None, str]:
    """The earlier plan priced on ``instance``, or None and why not."""
    plan = plan_of(warm_start)
    if isinstance(warm_start, dict) and warm_start.get("problem") not in (None, instance.problem):
        raise UsageError(f"warm_start: a {warm_start.get('problem')} result cannot start a {instance.problem} solve")
    carried = CARRY.get(instance.problem)
    if carried is None:
        return None, f"a warm start is not used for {instance.problem}"
    found = carried(instance, plan, options)
    if found is None:
        return None, "the earlier plan has no feasible counterpart on this instance"
    check = evaluate(instance, found.solution)
    if check.violations or abs(check.objective - found.objective) > TOLERANCE * max(1.0, abs(found.objective)):
        return None, f"the earlier plan is not feasible on this instance ({(check.violations or ['objective mismatch'])[0]})"
    return found, ""


def _front_warehouse(inst: Any, plan: dict[str, Any], options: SolverOptions) -> Start | None:
    import numpy as np

    from models.front_warehouse import beyond_location_core
    from optimizers.backends import solve_linear
    from optimizers.front_warehouse import lagrangian, milp

    if not beyond_location_core(inst) and not inst.single_source:  # the location core: a min-cost flow from the sites
        core, net = lagrangian.Core.of(inst)
        position = {s: i for i, s in enumerate(net.site_ids)}
        sites = core.must.copy()
        kept = [position[s] for s in plan.get("open_sites", []) if s in position and np.isfinite(core.fixed[position[s]])]
        sites[kept] = True
        deadline = math.inf if options.time_limit_s is None else time.perf_counter() + options.time_limit_s
        found = lagrangian.transport(core, sites, deadline, exact=True)
        if found is None:
            return None
        solution = lagrangian.plan_document(inst, net, core, found[1])
        return Start(evaluate(inst, solution).objective, solution, f"{len(kept)} open sites (flows re-optimised)", core_flow=found)
    f = milp.build(inst, stock_columns=True)
    usable = {i for i, s in enumerate(f.net.site_ids) if not f.net.closed[i]}
    position = {s: i for i, s in enumerate(f.net.site_ids)}
    opened = np.zeros(len(f.net.site_ids))
    kept = [position[s] for s in plan.get("open_sites", []) if position.get(s) in usable]
    opened[kept] = 1.0
    opened[f.net.must_open] = 1.0
    f.model.fix(f.y, opened)
    out = solve_linear(f.model, "highs", options)
    if out.status not in (Status.OPTIMAL, Status.FEASIBLE) or out.x is None or out.objective is None:
        return None
    return Start(out.objective, milp.read_solution(f, out.x).to_dict(), f"{len(kept)} open sites (stock and flows re-optimised)")


def _incentive_budget(inst: Any, plan: dict[str, Any], options: SolverOptions) -> Start | None:
    from models.incentive_budget import plan as budget_plan

    given = plan.get("spend") or {}
    solution = budget_plan(inst, {c.id: float(given.get(c.id, 0.0)) for c in inst.cells}, None)
    check = evaluate(inst, solution)
    if check.violations:
        return None
    return Start(check.objective, solution, f"the spend of {sum(c.id in given for c in inst.cells)} cells")


def _membership_pricing(inst: Any, plan: dict[str, Any], options: SolverOptions) -> Start | None:
    from models.membership_pricing import fee_vector, market, mnl_solution_document, simulate, solution_document

    mk = market(inst)
    fees = {t: f for t, f in (plan.get("fees") or {}).items() if t in mk.tier_ids}
    fee = fee_vector(mk, fees)
    solution = mnl_solution_document(mk, fee) if mk.model == "mnl" else solution_document(mk, fee, simulate(mk, fee))
    check = evaluate(inst, solution)
    if check.violations:
        return None
    return Start(check.objective, solution, f"the fees of {len(fees)} tiers")


CARRY = {
    "front_warehouse": _front_warehouse,
    "incentive_budget": _incentive_budget,
    "membership_pricing": _membership_pricing,
}
