r"""Baseline: the capacitated facility location model as a planner writes it from a PuLP
tutorial (dicts of variables keyed by ids, ``lpSum``, CBC with default settings).

    min  sum_i f_i y_i + sum_ij c_ij x_ij
    s.t. sum_i x_ij = d_j              for every zone j        (demand)
         sum_j x_ij <= Q_i y_i         for every site i        (capacity)
         x_ij <= d_j y_i               for every arc (i, j)    (linking)
         x >= 0, y binary; `open` sites fixed to 1
    single-source: x_ij = d_j a_ij with a_ij binary, sum_i a_ij = 1

It covers the location core only (one SKU, one scenario, no depot, lost sales or promise)
and exists to be measured against in ``ecomopt bench``; it reports statuses as honestly as
PuLP allows (solution status, not the "Optimal" PuLP prints on a time limit).
"""

from __future__ import annotations

import time
import warnings

from models.front_warehouse import FrontWarehouse, beyond_location_core
from optimizers.backends.base import call_in_child, can_fork, child_deadline, native_output_to_stderr
from optimizers.memory import refuse_if_too_big
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status

#: PuLP keeps a Python object per variable and per term, and writes an MPS file for CBC
BYTES_PER_VARIABLE = 3000


def unsupported(inst: FrontWarehouse) -> str | None:
    found = beyond_location_core(inst)
    return f"the tutorial model covers the location core only; this instance has {', '.join(found)}" if found else None


def run(inst: FrontWarehouse, backend: str | None, options: SolverOptions) -> MethodOutput:
    """The tutorial's model and solve; under a time limit in a child process stopped at the
    limit (CBC overruns its own limit by minutes in the root of large models)."""
    if options.time_limit_s is None or not can_fork():
        return _run(inst, options)
    out = call_in_child(lambda _: _run(inst, options), None, child_deadline(options.time_limit_s),
                        failure=lambda message: MethodOutput(Status.ERROR, message=message))
    if out is None:
        return MethodOutput(Status.NO_SOLUTION, message=f"CBC did not return within the time limit ({options.time_limit_s:.3g} s); stopped")
    return out  # type: ignore[no-any-return]


def _run(inst: FrontWarehouse, options: SolverOptions) -> MethodOutput:
    import pulp

    started = time.perf_counter()

    sku = inst.skus[0]
    scenario = inst.scenarios[0] if inst.scenarios else None
    factor = scenario.demand_factor if scenario else 1.0
    demand = {z.id: z.demand.get(sku.id, 0.0) * factor for z in inst.zones}
    sites = {s.id: s for s in inst.sites if s.status != "closed"}
    assert inst.arcs is not None, "the tutorial model needs explicit arcs"
    variables = len(inst.arcs) * (2 if inst.single_source else 1)
    refuse_if_too_big("the PuLP tutorial model", BYTES_PER_VARIABLE * variables, f"{variables:,} PuLP variables", "Use --method milp or lagrangian.")
    arcs = {(a.site, a.zone): a.cost_per_unit + sku.holding_cost for a in inst.arcs if a.site in sites}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        prob = pulp.LpProblem("facility_location", pulp.LpMinimize)
        y = pulp.LpVariable.dicts("open", list(sites), cat="Binary")
        x = pulp.LpVariable.dicts("ship", list(arcs), lowBound=0)
        if inst.single_source:
            assign = pulp.LpVariable.dicts("assign", list(arcs), cat="Binary")
            for i, j in arcs:
                prob += x[i, j] == demand[j] * assign[i, j]
        prob += pulp.lpSum(s.fixed_cost * y[i] for i, s in sites.items()) + pulp.lpSum(c * x[a] for a, c in arcs.items())
        into: dict[str, list] = {j: [] for j in demand}
        out: dict[str, list] = {i: [] for i in sites}
        for i, j in arcs:
            into[j].append(x[i, j])
            out[i].append(x[i, j])
        for j, d in demand.items():
            prob += pulp.lpSum(into[j]) == d
        for i, s in sites.items():
            prob += pulp.lpSum(out[i]) * sku.unit_volume <= s.capacity * y[i]
            if s.status == "open":
                prob += y[i] == 1
        for (i, j), var in x.items():
            prob += var <= demand[j] * y[i]
        limit = None if options.time_limit_s is None else max(1.0, options.time_limit_s - (time.perf_counter() - started))  # less the building
        solver = pulp.PULP_CBC_CMD(msg=options.verbose, timeLimit=limit, gapRel=options.gap, threads=options.threads or None)
        with native_output_to_stderr():
            prob.solve(solver)

    code = prob.sol_status
    if code not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        status = {pulp.LpSolutionInfeasible: Status.INFEASIBLE, pulp.LpSolutionUnbounded: Status.UNBOUNDED}.get(code, Status.NO_SOLUTION)
        return MethodOutput(status, message=f"pulp solution status {code}")
    objective = pulp.value(prob.objective)
    flows = [
        {"site": i, "zone": j, "sku": sku.id, "scenario": scenario.id if scenario else "base", "units": var.varValue}
        for (i, j), var in x.items() if var.varValue and var.varValue > 1e-9
    ]
    solution = {"open_sites": [i for i in sites if (y[i].varValue or 0) > 0.5], "flows": flows, "stock": []}
    # The tutorial has no bound: PuLP does not expose CBC's. Optimal means CBC closed the gap.
    status = Status.OPTIMAL if code == pulp.LpSolutionOptimal else Status.FEASIBLE
    bound = objective - options.gap * max(1.0, abs(objective)) if status is Status.OPTIMAL else None
    return MethodOutput(status, objective, bound, solution, f"pulp solution status {code}")
