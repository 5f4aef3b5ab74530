"""How problems are solved: options, results, the method registry and backends.

    from models import load_instance
    from optimizers import solve, SolverOptions

    result = solve(load_instance("instances/front_warehouse/metro-40x400.json"),
                   options=SolverOptions(time_limit_s=60))
"""

from optimizers import front_warehouse, incentive_assignment, incentive_budget, membership_pricing  # noqa: F401  (register the families' methods)
from optimizers.backends import BACKENDS, backend_info, get_backend
from optimizers.registry import DEFAULT_METHOD, METHODS, Method, MethodOutput, methods_for, register, solve
from optimizers.result import Result, SolveFailed, SolverOptions, Status, relative_gap

__all__ = [
    "BACKENDS",
    "DEFAULT_METHOD",
    "METHODS",
    "Method",
    "MethodOutput",
    "Result",
    "SolveFailed",
    "SolverOptions",
    "Status",
    "backend_info",
    "get_backend",
    "methods_for",
    "register",
    "relative_gap",
    "solve",
]
