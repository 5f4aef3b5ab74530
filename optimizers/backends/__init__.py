"""Backend adapters: the only code that calls OR-Tools, PuLP or SciPy's solvers.

:func:`solve_linear` runs one backend and makes its answer honest: "infeasible or
unbounded" is settled, ``optimal`` is kept only when the gap is proven, and the bound never
claims more than the incumbent allows.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.errors import BackendUnavailableError, NumericsWarning
from optimizers import progress
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
    if (spread := coefficient_spread(model)) is not None:
        warnings.warn(spread, NumericsWarning, stacklevel=2)
    start = time.perf_counter()
    progress.update(f"{backend_name} solve", detail=f"{model.num_rows:,} rows, {model.num_vars:,} columns")
    with native_output_to_stderr():
        out = backend.solve(model, options)
    if out.status is None:
        with progress.sub_problem("is it infeasible or unbounded"):
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


#: seconds all re-checks of relaxed models may take together (less when the time left is shorter)
EXPLAIN_TOTAL_S = 60.0


def explain_infeasibility(model: LinearModel, families: dict[str, list[str]], backend_name: str, options: SolverOptions,
                          column_families: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> list[str]:
    """Which constraint families a proven-infeasible model needs relaxed: each family (the
    row blocks whose names start with its prefixes, or columns whose upper bounds it resets)
    is dropped alone and feasibility re-checked with a zero objective. Returns the families
    whose removal alone leaves a feasible model."""
    backend = get_backend(backend_name)
    A = model.matrix().tocoo()
    count = len(families) + len(column_families or {})
    per_try = min(EXPLAIN_TOTAL_S, options.time_limit_s or math.inf) / max(1, count)

    def feasible(name: str, lo: np.ndarray, hi: np.ndarray, ub: np.ndarray) -> bool:
        probe = _feasibility_probe(model, f"{model.name}-without-{name}", A, lo, hi, ub)
        with native_output_to_stderr():
            out = backend.solve(probe, SolverOptions(time_limit_s=per_try, gap=0.999, threads=options.threads, seed=options.seed))
        return out.status in (Status.OPTIMAL, Status.FEASIBLE)

    responsible = []
    for name, prefixes in families.items():
        blocks = [block for label, block in model.row_blocks.items() if any(label.startswith(p) for p in prefixes)]
        if not blocks:
            continue
        lo, hi = model.row_lo, model.row_hi
        for block in blocks:
            lo[block], hi[block] = -np.inf, np.inf
        if feasible(name, lo, hi, model.ub):
            responsible.append(name)
    for name, (columns, bounds) in (column_families or {}).items():
        ub = model.ub
        ub[columns] = bounds
        if feasible(name, model.row_lo, model.row_hi, ub):
            responsible.append(name)
    return responsible


#: largest ratio between the biggest and smallest nonzero constraint coefficient that the
#: solvers' tolerances (about 1e-6 on rows, 1e-9 on integrality) handle reliably
MAX_SPREAD = 1e10
#: largest magnitude of an objective coefficient, bound or right-hand side: beyond it the
#: absolute tolerances are below what doubles can resolve
MAX_MAGNITUDE = 1e12


def coefficient_spread(model: LinearModel) -> str | None:
    """A warning text when the model's numbers are beyond what solvers handle reliably."""
    found = []
    size = np.abs(model.coefficients)
    size = size[size > 0]
    if len(size) and size.max() > MAX_SPREAD * size.min():
        found.append(f"constraint coefficients span {size.min():.3g} to {size.max():.3g} (more than {MAX_SPREAD:.0e} apart)")
    for name, values in (("objective coefficients", model.cost), ("bounds and right-hand sides", np.concatenate([model.row_lo, model.row_hi, model.lb, model.ub]))):
        size = np.abs(values[np.isfinite(values)])
        if len(size) and size.max() > MAX_MAGNITUDE:
            found.append(f"{name} reach {size.max():.3g} (above {MAX_MAGNITUDE:.0e})")
    if not found:
        return None
    return (f"{model.name}: {'; '.join(found)}: solver tolerances (about 1e-6 on rows, 1e-9 on integrality) may then give wrong or "
            "suboptimal answers; measure in larger or smaller units (thousands of units, costs in thousands) to narrow the range")


def _infeasible_or_unbounded(model: LinearModel, backend: Backend, options: SolverOptions, spent: float) -> Status:
    """Settle "infeasible or unbounded" by solving for feasibility alone (zero objective)."""
    probe = _feasibility_probe(model, model.name + "-feasibility", model.matrix().tocoo(), model.row_lo, model.row_hi, model.ub)
    left = None if options.time_limit_s is None else max(0.1, options.time_limit_s - spent)
    probe_options = SolverOptions(time_limit_s=left, gap=options.gap, threads=options.threads, seed=options.seed)
    with native_output_to_stderr():
        out = backend.solve(probe, probe_options)
    if out.status in (Status.OPTIMAL, Status.FEASIBLE):
        return Status.UNBOUNDED
    if out.status is Status.INFEASIBLE:
        return Status.INFEASIBLE
    return Status.ERROR


def _feasibility_probe(model: LinearModel, name: str, A: sp.coo_matrix, lo: np.ndarray, hi: np.ndarray, ub: np.ndarray) -> LinearModel:
    """``model``'s variables and rows (rows within ``lo``..``hi``, upper bounds ``ub``) with a
    zero objective: any solution of it is a feasible point."""
    probe = LinearModel(name=name)
    probe.add_variables("x", model.num_vars, lb=model.lb, ub=ub, integer=model.integer)
    probe.add_constraints("rows", model.num_rows, A.row, A.col, A.data, lo=lo, hi=hi)
    return probe
