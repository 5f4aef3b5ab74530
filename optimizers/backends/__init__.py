"""Backend adapters: the only code that calls OR-Tools, PuLP or SciPy's solvers.

:func:`solve_linear` runs one backend and makes its answer honest: "infeasible or
unbounded" is settled, ``optimal`` is kept only when the gap is proven, and the bound never
claims more than the incumbent allows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from models.errors import BackendUnavailableError
from optimizers.backends.base import Backend, Outcome, native_output_to_stderr
from optimizers.backends.cbc import CbcBackend
from optimizers.backends.highs import HighsBackend
from optimizers.backends.ortools import CpSatBackend, ScipBackend
from optimizers.linear import LinearModel
from optimizers.result import SolverOptions, Status, relative_gap

BACKENDS: dict[str, Backend] = {b.name: b for b in (HighsBackend(), ScipBackend(), CpSatBackend(), CbcBackend())}


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    installed: bool
    version: str


def backend_info() -> list[BackendInfo]:
    """Every known backend, with whether its package imports here."""
    out = []
    for backend in BACKENDS.values():
        try:
            out.append(BackendInfo(backend.name, backend.description, True, backend.version()))
        except ImportError as exc:
            out.append(BackendInfo(backend.name, backend.description, False, f"not installed ({exc.name})"))
    return out


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise BackendUnavailableError(f"--backend: unknown backend '{name}' (known: {', '.join(BACKENDS)})")
    backend = BACKENDS[name]
    try:
        backend.version()
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--backend {name}: its package '{backend.package}' is not installed ({exc}); pip install {backend.package}"
        ) from None
    return backend


def solve_linear(model: LinearModel, backend_name: str, options: SolverOptions) -> Outcome:
    """Solve ``model`` with one backend; the returned status is one :class:`Status` value."""
    backend = get_backend(backend_name)
    reason = backend.unsupported(model)
    if reason:
        raise BackendUnavailableError(f"--backend {backend_name}: {reason}")
    start = time.perf_counter()
    with native_output_to_stderr():
        out = backend.solve(model, options)
    if out.status is None:
        out.status = _infeasible_or_unbounded(model, backend, options, time.perf_counter() - start)
    if out.status in (Status.INFEASIBLE, Status.UNBOUNDED, Status.NO_SOLUTION, Status.ERROR):
        out.x, out.objective = None, None
        if out.status is not Status.NO_SOLUTION:  # a limit hit before any solution may still leave a bound
            out.bound = None
        return out
    if out.objective is not None and out.bound is not None:
        # A bound may not be better than the incumbent (numerical noise aside).
        out.bound = max(out.bound, out.objective) if model.maximize else min(out.bound, out.objective)
    gap = relative_gap(out.objective, out.bound)
    if out.status is Status.OPTIMAL and (gap is None or gap > options.gap * (1 + 1e-9) + 1e-12):
        out.message += f"; downgraded to feasible: gap {gap} not proven within {options.gap}"
        out.status = Status.FEASIBLE
    return out


def _infeasible_or_unbounded(model: LinearModel, backend: Backend, options: SolverOptions, spent: float) -> Status:
    """Settle "infeasible or unbounded" by solving for feasibility alone (zero objective)."""
    probe = LinearModel(name=model.name + "-feasibility")
    probe.add_variables("x", model.num_vars, lb=model.lb, ub=model.ub, integer=model.integer)
    A = model.matrix().tocoo()
    probe.add_constraints("rows", model.num_rows, A.row, A.col, A.data, lo=model.row_lo, hi=model.row_hi)
    left = None if options.time_limit_s is None else max(0.1, options.time_limit_s - spent)
    probe_options = SolverOptions(time_limit_s=left, gap=options.gap, threads=options.threads, seed=options.seed)
    with native_output_to_stderr():
        out = backend.solve(probe, probe_options)
    if out.status in (Status.OPTIMAL, Status.FEASIBLE):
        return Status.UNBOUNDED
    if out.status is Status.INFEASIBLE:
        return Status.INFEASIBLE
    return Status.ERROR
