"""What planning for the scenarios is worth: the value of the stochastic solution.

The mean-value (deterministic) problem replaces the scenarios by one with the expected demand
of every zone and SKU (promise and pre-sale shares weighted by demand, no transfers). Its plan
(openings and stock) is then held fixed and run through every scenario, each scenario
re-routing as well as it can (EEV). VSS = EEV - the scenario plan's cost: what planning for
the peak saves. The mean-value plan is also a warm start for the decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import InstanceError
from models.front_warehouse import FrontWarehouse, FrontWarehouseSolution, network
from models.io import parse_instance
from optimizers.backends import solve_linear
from optimizers.front_warehouse import milp
from optimizers.result import SolverOptions, Status
from optimizers.stopping import expired, now


def mean_value_instance(inst: FrontWarehouse) -> FrontWarehouse:
    net = network(inst)
    weight = net.scen_demand.sum(axis=(1, 2)) * net.probability
    share = weight / max(float(weight.sum()), 1e-300)
    promise = float(share @ net.promise_share)
    return _one_scenario(inst, "mean demand", np.tensordot(net.probability, net.scen_demand, axes=1), float(share @ net.presale), promise)


def peak_instance(inst: FrontWarehouse) -> FrontWarehouse:
    """Every zone's largest demand of every SKU over the scenarios, the largest promise share,
    no pre-sale: its plan serves every scenario (scale its flows down), so it is a plan of the
    scenario problem whenever this problem has one."""
    net = network(inst)
    return _one_scenario(inst, "peak demand", net.scen_demand.max(axis=0), 0.0, float(net.promise_share.max(initial=0.0)))


def _one_scenario(inst: FrontWarehouse, label: str, demand: np.ndarray, presale: float, promise: float) -> FrontWarehouse:
    net = network(inst)
    doc = inst.model_dump(exclude_none=True)
    for j, zone in enumerate(doc["zones"]):
        zone["demand"] = {k: float(demand[j, n]) for n, k in enumerate(net.sku_ids) if demand[j, n] > 0}
    scenario: dict[str, Any] = {"id": label.split()[0], "probability": 1.0, "presale_share": presale}
    if inst.service is not None:
        scenario["min_share_within_promise"] = promise
    doc["scenarios"] = [scenario]
    doc["name"] = f"{inst.name} ({label})"
    return parse_instance(doc)  # type: ignore[return-value]


@dataclass
class PlanValue:
    status: Status  # optimal: the plan's exact cost in the scenarios; infeasible: it cannot serve one
    cost: float | None
    solution: dict[str, Any] | None


def evaluate_plan(inst: FrontWarehouse, plan: FrontWarehouseSolution | dict[str, Any], options: SolverOptions) -> PlanValue:
    """The expected cost of a plan's openings and stock when every scenario then routes,
    transfers and stocks pre-sale orders as well as it can (an LP, or a MILP under
    single-sourcing)."""
    if isinstance(plan, dict):
        plan = FrontWarehouseSolution.from_dict(plan)
    f = milp.build(inst, stock_columns=True)
    net, model = f.net, f.model
    site_pos = {s: i for i, s in enumerate(net.site_ids)}
    sku_pos = {k: i for i, k in enumerate(net.sku_ids)}
    K = len(net.sku_ids)
    opened = np.zeros(len(net.site_ids))
    opened[[site_pos[s] for s in plan.open_sites]] = 1.0
    stock = np.zeros(len(net.site_ids) * K)
    for item in plan.stock:
        stock[site_pos[item.site] * K + sku_pos[item.sku]] += item.units
    model.fix(f.y, opened)
    assert f.s is not None
    model.fix(f.s, stock[f.ik_site * K + f.ik_sku])
    if f.b is not None:
        model.fix(f.b, (stock[f.ik_site[f.b_pairs] * K + f.ik_sku[f.b_pairs]] > 0).astype(float))
    out = solve_linear(model, "highs", options)
    if out.status is Status.INFEASIBLE:
        return PlanValue(Status.INFEASIBLE, None, None)
    if out.x is None or out.objective is None:
        return PlanValue(out.status or Status.ERROR, None, None)
    return PlanValue(out.status or Status.ERROR, out.objective, milp.read_solution(f, out.x).to_dict())


@dataclass
class MeanPlan:
    """The mean-demand plan and what it costs in the scenarios (or why it is missing)."""

    status: Status | None = None
    plan: dict[str, Any] | None = None
    value: PlanValue | None = None
    reason: str = ""


def mean_plan(inst: FrontWarehouse, solve_mean: Any, options: SolverOptions, deadline: float | None, *, peak: bool = False) -> MeanPlan:
    """Solve the mean-value problem (the peak problem with ``peak``) with
    ``solve_mean(instance, options) -> (status, solution dict)`` and run its plan through the
    scenarios, within ``deadline``."""
    def left() -> float | None:
        return None if deadline is None else deadline - now()

    if expired(None):
        return MeanPlan(reason="the solve was stopped")
    if (t := left()) is not None and t < 1.0:
        return MeanPlan(reason="no time left under the time limit")
    try:
        mean = peak_instance(inst) if peak else mean_value_instance(inst)
    except InstanceError as exc:
        return MeanPlan(reason=f"the one-scenario problem is not a valid instance: {exc}")
    status, plan = solve_mean(mean, SolverOptions(time_limit_s=left(), gap=options.gap, threads=options.threads))
    if plan is None:
        return MeanPlan(status, reason=f"the mean-demand problem ended {status.value}")
    if (t := left()) is not None and t < 0.5:
        return MeanPlan(status, plan, reason="no time left under the time limit")
    return MeanPlan(status, plan, evaluate_plan(inst, plan, SolverOptions(time_limit_s=left(), gap=options.gap, threads=options.threads)))


def vss_report(mean: MeanPlan, objective: float) -> dict[str, Any]:
    """The value of the stochastic solution, as the result's ``meta["mean_plan"]``."""
    if mean.plan is None or mean.value is None:
        return {"computed": False, "reason": mean.reason}
    out: dict[str, Any] = {"computed": True, "status": mean.status.value if mean.status else None, "open_sites": len(mean.plan["open_sites"])}
    if mean.value.status is Status.INFEASIBLE:
        out.update(cost_in_scenarios=None, vss=None,
                   note="the mean-demand plan's openings and stock cannot meet some scenario (its promise share, or demand with no depot or lost sales)")
    elif mean.value.cost is None:
        out.update(computed=False, reason=f"running the mean-demand plan through the scenarios ended {mean.value.status.value}")
    else:
        out.update(cost_in_scenarios=mean.value.cost, stochastic_cost=objective, vss=mean.value.cost - objective,
                   vss_share=(mean.value.cost - objective) / max(abs(mean.value.cost), 1e-300))
    return out
