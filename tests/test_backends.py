"""Backend conformance: every installed backend reports statuses, bounds and gaps honestly."""

import numpy as np
import pytest

from optimizers import SolverOptions, Status, backend_info
from optimizers.backends import solve_linear
from optimizers.linear import LinearModel

INSTALLED = [b.name for b in backend_info() if b.installed]


def knapsack(maximize: bool = True) -> LinearModel:
    """max 5a + 4b + 3c  s.t. 2a + 3b + c <= 5, 4a + b + 2c <= 11, 3a + 4b + 2c <= 8, integer >= 0: optimum 13."""
    m = LinearModel(name="knapsack", maximize=maximize)
    sign = 1 if maximize else -1
    x = m.add_variables("x", 3, cost=sign * np.array([5.0, 4.0, 3.0]), integer=True, ub=10)
    rows = np.repeat(np.arange(3), 3)
    cols = np.tile(x, 3)
    vals = np.array([2, 3, 1, 4, 1, 2, 3, 4, 2], float)
    m.add_constraints("cap", 3, rows, cols, vals, hi=np.array([5.0, 11.0, 8.0]))
    return m


def hard_knapsack(n: int = 60, seed: int = 1) -> LinearModel:
    """A multi-dimensional 0-1 knapsack with correlated weights: an incumbent comes at once,
    a proof does not."""
    rng = np.random.default_rng(seed)
    w = rng.integers(20, 100, size=(10, n)).astype(float)
    v = w.mean(axis=0) + rng.integers(0, 10, size=n)
    m = LinearModel(name="hard", maximize=True)
    x = m.add_variables("x", n, ub=1.0, cost=v, integer=True)
    rows, cols = np.nonzero(np.ones_like(w))
    m.add_constraints("cap", 10, rows, x[cols], w[rows, cols], hi=w.sum(axis=1) / 2)
    return m


@pytest.mark.parametrize("backend", INSTALLED)
@pytest.mark.parametrize("maximize", [True, False])
def test_optimal(backend, maximize):
    out = solve_linear(knapsack(maximize), backend, SolverOptions())
    assert out.status is Status.OPTIMAL
    expected = 13.0 if maximize else -13.0
    assert out.objective == pytest.approx(expected, abs=1e-6)
    assert out.bound == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert np.allclose(out.x, np.round(out.x), atol=1e-6)


@pytest.mark.parametrize("backend", INSTALLED)
def test_infeasible(backend):
    m = LinearModel(name="infeasible")
    x = m.add_variables("x", 2, ub=3.0, integer=True, cost=1.0)
    m.add_constraints("sum", 1, [0, 0], x, 1.0, lo=7.0)
    out = solve_linear(m, backend, SolverOptions())
    assert out.status is Status.INFEASIBLE
    assert out.x is None and out.objective is None and out.bound is None


@pytest.mark.parametrize("backend", INSTALLED)
def test_unbounded(backend):
    m = LinearModel(name="unbounded", maximize=True)
    x = m.add_variables("x", 2, cost=1.0, integer=True)
    m.add_constraints("diff", 1, [0, 0], x, [1.0, -1.0], hi=1.0)
    out = solve_linear(m, backend, SolverOptions())
    if backend == "cpsat":  # CP-SAT needs bounded domains: it refuses, and must not claim a solution
        assert out.status is Status.ERROR and "unbounded" in out.message
    else:
        assert out.status is Status.UNBOUNDED


@pytest.mark.parametrize("backend", INSTALLED)
def test_time_limit_returns_incumbent_never_optimal(backend):
    out = solve_linear(hard_knapsack(), backend, SolverOptions(time_limit_s=0.5, threads=1))
    assert out.status in (Status.FEASIBLE, Status.NO_SOLUTION), out.message
    if out.status is Status.FEASIBLE:
        assert out.objective is not None and out.bound is not None
        assert out.bound >= out.objective  # maximisation: the bound is above
        assert (out.bound - out.objective) / max(1, abs(out.objective)) > 1e-6


@pytest.mark.parametrize("backend", INSTALLED)
def test_optimal_means_gap_within_tolerance(backend):
    options = SolverOptions(gap=0.05)
    out = solve_linear(hard_knapsack(30, seed=2), backend, options)
    assert out.status in (Status.OPTIMAL, Status.FEASIBLE)
    if out.status is Status.OPTIMAL:
        assert (out.bound - out.objective) / max(1, abs(out.objective)) <= 0.05 + 1e-9


def test_cpsat_refuses_continuous_variables():
    from models.errors import BackendUnavailableError

    m = LinearModel()
    m.add_variables("x", 1, ub=1.0, cost=1.0)
    with pytest.raises(BackendUnavailableError, match="pure-integer"):
        solve_linear(m, "cpsat", SolverOptions())


def test_unknown_backend_is_a_usage_error():
    from models.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        solve_linear(knapsack(), "gurobi", SolverOptions())


def test_highs_is_stopped_when_it_overruns_its_limit(monkeypatch):
    from optimizers.backends import base, highs

    # HiGHS gets 30 s of its own, but the process is stopped 0.2 s in: an overrun.
    monkeypatch.setattr(highs, "CHILD_FROM_NONZEROS", 0)
    monkeypatch.setattr(base, "GRACE_FACTOR", -1.0)
    monkeypatch.setattr(base, "GRACE_S", 0.2)
    out = solve_linear(hard_knapsack(400, seed=3), "highs", SolverOptions(time_limit_s=30))
    assert out.status is Status.NO_SOLUTION and "did not return" in out.message
    assert out.x is None and out.objective is None
