"""Methods for the ``incentive_assignment`` family (which incentive each user gets)."""

from __future__ import annotations

import logging
import time

from models.incentive_assignment import IncentiveAssignment
from optimizers import progress
from optimizers.incentive_assignment import bisection, lagrangian, milp, threshold
from optimizers.incentive_assignment.parts import workers
from optimizers.registry import Method, MethodOutput, register
from optimizers.result import SolverOptions

log = logging.getLogger(__name__)


def run_dual(inst: IncentiveAssignment, backend: str | None, options: SolverOptions) -> MethodOutput:
    started = time.perf_counter()
    method = lagrangian if inst.coupled else threshold
    progress.update("loading the users")
    pool = workers(inst, method.build, options.threads, options.scheduler)
    log.info("%s users loaded in %.2f s", f"{pool.users:,}", time.perf_counter() - started)
    try:
        return method.solve(inst, pool, options, started)
    finally:
        pool.close()


register(
    Method(
        problem="incentive_assignment",
        name="dual",
        description="one budget: exact LP by one threshold on per-user hull efficiencies (radix selection), integral plan; "
        "more constraints: Lagrangian dual (level bundle) with a feasible repair. Chunked; Dask with --scheduler",
        run=run_dual,
    ),
    default=True,
)
register(
    Method(
        problem="incentive_assignment",
        name="milp",
        description="exact MILP (small tables; the oracle in tests); default SCIP via OR-Tools",
        run=milp.run,
        backends=("scip", "highs", "cbc", "cpsat"),
        default_backend="scip",
        unsupported=milp.unsupported,
    )
)
register(
    Method(
        problem="incentive_assignment",
        name="bisection",
        description="baseline: 50 bisection passes on the budget multiplier over the whole table in memory (one budget only)",
        run=bisection.run,
        unsupported=bisection.unsupported,
    )
)
