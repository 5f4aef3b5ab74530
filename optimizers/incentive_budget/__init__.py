"""Methods for the ``incentive_budget`` family."""

from __future__ import annotations

from models.incentive_budget import IncentiveBudget
from optimizers.incentive_budget import exact, slsqp
from optimizers.registry import Method, MethodOutput, register
from optimizers.result import SolverOptions


def run_exact(instance: IncentiveBudget, backend: str | None, options: SolverOptions) -> MethodOutput:
    return exact.run(instance, options, backend=backend)


register(
    Method(
        problem="incentive_budget",
        name="exact",
        description="global: DP on a spend grid (nested caps) or PWL MILP (crossing caps), certified bound, local polish",
        run=run_exact,
        backends=("highs", "scip", "cbc"),
        default_backend=None,
    ),
    default=True,
)
register(
    Method(
        problem="incentive_budget",
        name="slsqp",
        description="baseline: SLSQP from a uniform split, as marketing-mix tools do (local, no bound)",
        run=slsqp.run,
    )
)
