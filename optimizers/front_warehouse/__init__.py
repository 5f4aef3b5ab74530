"""Methods for the ``front_warehouse`` family."""

from __future__ import annotations

import time

import numpy as np

from models.front_warehouse import FrontWarehouse
from optimizers import progress
from optimizers.backends import BACKENDS, explain_infeasibility, solve_linear
from optimizers.front_warehouse import benders, lagrangian, milp, pulp_tutorial, scenario_lagrangian
from optimizers.front_warehouse.stochastic import mean_plan, vss_report
from optimizers.registry import Method, MethodOutput, register, remaining
from optimizers.result import SolverOptions, Status

DEFAULT_BACKEND = "highs"  # fastest on the OR-Library set here: benchmarks/RESULTS.md


def run_milp(instance: FrontWarehouse, backend: str | None, options: SolverOptions) -> MethodOutput:
    start = time.perf_counter()
    backend = backend or DEFAULT_BACKEND
    integral = BACKENDS[backend].pure_integer_only and milp.integral_flows_exact(instance)
    progress.update("building the extensive form")
    formulation = milp.build(instance, integral_flows=integral)
    with progress.whole_model():
        out = solve_linear(formulation.model, backend, remaining(options, start))
    assert out.status is not None  # solve_linear settles "infeasible or unbounded"
    left = remaining(options, start)
    if out.status is Status.INFEASIBLE and (left.time_limit_s is None or left.time_limit_s > 2.0):
        out.message = _why_infeasible(instance, formulation, backend, left)
    solution = None if out.x is None else milp.read_solution(formulation, out.x).to_dict()
    bound = out.bound
    if out.status in (Status.FEASIBLE, Status.NO_SOLUTION):  # stopped early: keep the better bound
        simple = milp.simple_lower_bound(formulation.net)
        bound = simple if bound is None else max(bound, simple)
        if out.objective is not None:
            bound = min(bound, out.objective)
    model = formulation.model
    meta = {"variables": model.num_vars, "constraints": model.num_rows, "integral_flows": integral, "ignored_options": out.ignored_options}
    if out.objective is not None and len(formulation.net.scenario_ids) > 1:
        deadline = None if options.time_limit_s is None else start + options.time_limit_s

        def solve_mean(inst: FrontWarehouse, opts: SolverOptions) -> tuple[Status, dict | None]:
            mean = run_milp(inst, backend, opts)
            return mean.status, mean.solution

        with progress.sub_problem("mean-demand plan (for the value of the stochastic solution)"):
            meta["mean_plan"] = vss_report(mean_plan(instance, solve_mean, options, deadline), out.objective)
    return MethodOutput(out.status, out.objective, bound, solution, out.message, meta)


#: constraint families of the extensive form (row-name prefixes in milp.build) a planner can relax
FAMILIES = {
    "the promise share": ["promise"],
    "site capacities": ["capacity", "presale_volume"],
    "max_open_sites": ["max_open"],
    "max_skus per site": ["max_skus"],
    "single sourcing": ["one_site"],
    "serving all demand (no depot or lost sales for some SKUs)": ["demand", "supply"],
}


def _why_infeasible(instance: FrontWarehouse, f: milp.Formulation, backend: str, options: SolverOptions) -> str:
    """The message of a proven-infeasible instance: which family, relaxed alone, would leave a plan."""
    closed = np.flatnonzero(f.net.closed)
    reopen = {"sites with status closed": (f.y[closed], np.ones(len(closed)))} if len(closed) else {}
    found = explain_infeasibility(f.model, FAMILIES, backend, options, reopen)
    if not found:
        return "proven infeasible; no single constraint family (promise, capacity, open sites, SKUs per site, single sourcing, demand) explains it alone"
    return "proven infeasible; it has a plan once this is relaxed: " + " or ".join(found)


register(
    Method(
        problem="front_warehouse",
        name="milp",
        description="strong extensive-form MILP (x <= d y), on any MILP backend",
        run=run_milp,
        backends=("highs", "scip", "cbc", "cpsat"),
        default_backend=DEFAULT_BACKEND,
    ),
    default=True,
)
register(
    Method(
        problem="front_warehouse",
        name="benders",
        description="L-shaped decomposition over (scenario, SKU) blocks, warm-started from the mean-demand plan",
        run=lambda instance, backend, options, warm_start=None: benders.run(instance, backend, options, one_scenario=run_milp, warm_start=warm_start),
        backends=("highs", "scip", "cbc"),
        default_backend=DEFAULT_BACKEND,
        uses_warm_start=True,
    )
)
register(
    Method(
        problem="front_warehouse",
        name="pulp_tutorial",
        description="baseline: the PuLP+CBC facility location model from tutorials (location core only)",
        run=pulp_tutorial.run,
        unsupported=pulp_tutorial.unsupported,
    )
)
register(
    Method(
        problem="front_warehouse",
        name="lagrangian",
        description="location core (multi-source): Lagrangian bounds by per-site knapsacks, min-cost-flow incumbents with "
        "local search, fixing by Lagrangian bounds, branch and bound on the sites; single-source: that bound, and "
        "the plan's sites assigned one per zone by a MILP on the backend",
        run=lagrangian.run,
        uses_warm_start=True,
        backends=("highs", "scip", "cbc", "cpsat"),
        default_backend="highs",
        unsupported=lagrangian.unsupported,
        preferred=True,  # the default on the location core: 10x-50x faster than the MILP on capa/b/c (benchmarks/RESULTS.md)
    )
)
register(
    Method(
        problem="front_warehouse",
        name="scenario-lagrangian",
        description="stock plans over scenarios without the extensive form: plans from the weak LP's largest openings, each "
        "priced by the LP of its open sites on a few arcs per zone; Lagrangian bounds (demand rows relaxed, per-site knapsacks "
        "over stock segments, proximal bundle method from those LPs' duals)",
        run=scenario_lagrangian.run,
        backends=("highs",),
        default_backend="highs",
        unsupported=scenario_lagrangian.unsupported,
    )
)
