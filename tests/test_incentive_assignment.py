"""incentive_assignment: the per-user hulls against brute force, the dual method against the
exact MILP and an independent LP relaxation, plans re-checked from the written plan files,
the bisection baseline, Dask and multi-part runs, bad input through the CLI, the generator.

Every expected number is computed here from the arrays the test wrote (numpy, scipy's LP,
enumeration), never copied from a run of the library."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, vstack
from typer.testing import CliRunner

from cli import app
from models import incentive_assignment as ia
from models.io import load_instance
from optimizers import SolverOptions, Status, solve
from optimizers.incentive_assignment import lagrangian, parts, threshold
from optimizers.incentive_assignment.hull import BLOCK, upper_hulls

runner = CliRunner()
INSTANCES = Path(__file__).resolve().parents[1] / "instances"  # not tests.conftest: `.venv/bin/pytest` does not put the root on sys.path
SEGMENTS = np.array(["a", "b", "c"])


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


# ----------------------------------------------------------------------------- helpers


def write_instance(folder: Path, V, C, *, budget, segment=None, ids=None, limits=None, segment_budgets=None, fmt="parquet",
                   row_group=None, name="inst", treatment_ids=None) -> Path:
    """A users table (T x n arrays V, C) written with pyarrow, and its instance JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    V, C = np.asarray(V, float), np.asarray(C, float)
    T, n = V.shape
    tids = treatment_ids or [f"t{j}" for j in range(T)]
    cols: dict = {"user_id": pa.array(np.arange(n, dtype=np.int64) * 3 + 11) if ids is None else pa.array(ids)}
    if segment is not False:  # None: everybody in segment "a"; False: no segment column
        cols["segment"] = pa.array(["a"] * n if segment is None else list(segment), pa.string())
    for j, t in enumerate(tids):
        cols[f"value_{t}"] = pa.array(V[j])
        cols[f"cost_{t}"] = pa.array(C[j])
    table = pa.table(cols)
    path = folder / f"{name}-users.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=row_group or max(1, n))
    else:
        pacsv.write_csv(table, path)
    doc = {"problem": "incentive_assignment", "schema_version": 1, "name": name, "budget": budget,
           "treatments": [{"id": t, **({"limit": limits[j]} if limits and j in limits else {})} for j, t in enumerate(tids)],
           "users": {"table": path.name}}
    if segment_budgets:
        doc["segment_budgets"] = dict(segment_budgets)
    out = folder / f"{name}.json"
    out.write_text(json.dumps(doc))
    return out


def plan_totals(V, C, choice, segment=None):
    """Value, spend, users per treatment and spend per segment of a plan, recomputed here."""
    choice = np.asarray(choice, np.int64)
    T, n = V.shape
    assert choice.shape == (n,) and ((choice >= -1) & (choice < T)).all()
    on = choice >= 0
    pick = np.maximum(choice, 0)
    value = np.where(on, V[pick, np.arange(n)], 0.0)
    cost = np.where(on, C[pick, np.arange(n)], 0.0)
    counts = np.bincount(choice[on], minlength=T)
    by_segment = {}
    if segment is not None:
        seg = np.asarray(segment)
        by_segment = {s: float(cost[seg == s].sum()) for s in np.unique(seg)}
    return float(value.sum()), float(cost.sum()), counts, by_segment


def lp_relaxation(V, C, budget, limits=None, segment=None, segment_budgets=None) -> float:
    """The LP relaxation of the assignment (x in [0, 1]), by scipy's HiGHS."""
    T, n = V.shape
    col = np.arange(T * n).reshape(T, n)
    rows = [coo_matrix((np.ones(T * n), (np.tile(np.arange(n), T), col.ravel())), shape=(n, T * n)), coo_matrix(C.ravel()[None, :])]
    rhs = [np.ones(n), [budget]]
    for j, cap in (limits or {}).items():
        a = np.zeros((T, n))
        a[j] = 1.0
        rows.append(coo_matrix(a.ravel()[None, :]))
        rhs.append([cap])
    for s, cap in (segment_budgets or {}).items():
        rows.append(coo_matrix(np.where((np.asarray(segment) == s)[None, :], C, 0.0).ravel()[None, :]))
        rhs.append([cap])
    res = linprog(-V.ravel(), A_ub=vstack(rows).tocsr(), b_ub=np.concatenate([np.asarray(r, float) for r in rhs]), bounds=(0, 1), method="highs")
    assert res.status == 0, res.message
    return float(-res.fun)


def brute_force(V, C, budget, limits=None, segment=None, segment_budgets=None) -> float:
    """The best plan by enumerating every choice vector (tiny tables only)."""
    T, n = V.shape
    choices = np.array(list(itertools.product(range(-1, T), repeat=n)))  # (K, n)
    on = choices >= 0
    pick = np.maximum(choices, 0)
    users = np.arange(n)[None, :]
    value = np.where(on, V[pick, users], 0.0)
    cost = np.where(on, C[pick, users], 0.0)
    ok = cost.sum(axis=1) <= budget + 1e-9
    for j, cap in (limits or {}).items():
        ok &= (choices == j).sum(axis=1) <= cap
    for s, cap in (segment_budgets or {}).items():
        ok &= (cost * (np.asarray(segment) == s)[None, :]).sum(axis=1) <= cap + 1e-9
    return float(value.sum(axis=1)[ok].max())


def assert_feasible_plan(V, C, choice, budget, limits=None, segment=None, segment_budgets=None, value=None):
    got_value, spend, counts, by_segment = plan_totals(V, C, choice, segment)
    assert spend <= budget + 1e-6 * max(1.0, budget)
    for j, cap in (limits or {}).items():
        assert counts[j] <= cap
    for s, cap in (segment_budgets or {}).items():
        assert by_segment.get(s, 0.0) <= cap + 1e-6 * max(1.0, cap)
    if value is not None:
        assert got_value == pytest.approx(value, rel=1e-9, abs=1e-9)
    return got_value


# ----------------------------------------------------------------------------- 1. hulls


def lp_value_of_user(v, c, b) -> float:
    """max sum l_t v_t s.t. sum l_t c_t <= b, sum l_t <= 1, l >= 0: the optimum of this
    2-row LP mixes at most two points of {(0, 0)} + {(c_t, v_t)}, so enumerate the pairs."""
    points = [(0.0, 0.0), *zip(c.tolist(), v.tolist())]
    best = 0.0
    for ci, vi in points:
        if ci > b:
            continue
        best = max(best, vi)
        for cj, vj in points:
            if cj > b:
                best = max(best, vi + (b - ci) / (cj - ci) * (vj - vi))
    return best


def hull_value(dcost, dvalue, b) -> float:
    """The piecewise-linear hull at budget b: segments taken in order, the last one in part."""
    total, used = 0.0, 0.0
    for dc, dv in zip(dcost, dvalue):
        if dc == 0:
            total += dv if used <= b else 0.0
            continue
        total += min(max((b - used) / dc, 0.0), 1.0) * dv
        used += dc
    return total


def special_points(rng, T, m):
    V = np.round(rng.uniform(-3, 10, (T, m)), int(rng.integers(0, 3)))
    C = np.round(rng.uniform(0, 5, (T, m)), int(rng.integers(0, 3)))
    C[rng.random((T, m)) < 0.2] = 0.0  # free treatments (some with positive value)
    V[:, rng.random(m) < 0.15] *= -1  # users with negative values
    if T > 1:
        dup = rng.random(m) < 0.3
        V[1, dup], C[1, dup] = V[0, dup], C[0, dup]  # duplicate points
    if T > 2:
        col = rng.random(m) < 0.3
        V[2, col], C[2, col] = 2 * V[0, col], 2 * C[0, col]  # collinear with (0, 0) and point 0
    if T > 3:
        V[3, :5], C[3, :5] = 0.0, rng.uniform(0, 2, min(5, m))  # zero value
    return V, C


@pytest.mark.parametrize("seed", range(12))
def test_upper_hulls_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    T, m = int(rng.integers(1, 6)), int(rng.integers(1, 40))
    V, C = special_points(rng, T, m)
    h = upper_hulls(V, C)
    assert h.key.shape == h.dcost.shape == h.dvalue.shape == h.vertex.shape and h.key.shape[1] == m and h.key.shape[0] <= T
    for u in range(m):
        key, dc, dv, vertex = h.key[:, u], h.dcost[:, u], h.dvalue[:, u], h.vertex[:, u]
        k = int((key > 0).sum())
        assert (key[:k] > 0).all() and (key[k:] == 0).all(), "zero keys only pad the end"
        assert (vertex[:k] >= 0).all() and (vertex[k:] == -1).all()
        assert (np.diff(key[:k].astype(np.int64)) < 0).all(), "keys strictly decrease"
        assert (dv[:k] > 0).all() and (dc[:k] >= 0).all()
        eff = np.where(dc[:k] > 0, dv[:k] / np.where(dc[:k] > 0, dc[:k], 1.0), np.inf)
        assert (eff[1:] <= eff[:-1]).all(), "efficiencies decrease along the hull"
        finite = np.isfinite(eff)
        assert np.allclose(key[:k][finite].view(np.float64), eff[finite], rtol=1e-12), "key is the efficiency's bits"
        assert (~finite[1:] <= ~finite[:-1]).all(), "free segments (infinite efficiency) come first"
        if (~finite).any() and finite.any():  # free segments keep keys above every paid one
            assert key[:k][~finite].min() > key[:k][finite].max()
        # each vertex is one of the user's points, reached by summing the segments
        assert np.allclose(np.cumsum(dc[:k]), C[vertex[:k], u], rtol=1e-12, atol=1e-12)
        assert np.allclose(np.cumsum(dv[:k]), V[vertex[:k], u], rtol=1e-12, atol=1e-12)
        best = max(0.0, float(V[:, u].max()))
        assert dv[:k].sum() == pytest.approx(best, rel=1e-12, abs=1e-12), "the hull ends at the most valuable point"
        # the hull is the upper concave majorant: the LP value at every budget
        budgets = sorted({0.0, 1e9, *C[:, u].tolist(), *(C[:, u] * 0.5).tolist(), *(C[:, u] * 1.3 + 0.01).tolist()})
        for b in budgets:
            assert hull_value(dc[:k], dv[:k], b) == pytest.approx(lp_value_of_user(V[:, u], C[:, u], b), rel=1e-9, abs=1e-9), (u, b)


def test_upper_hulls_hand_made_cases():
    # columns: collinear points; duplicates; a free treatment; nothing worth giving; two free ones
    V = np.array([[1.0, 2.0, 3.0, -1.0, 1.0],
                  [2.0, 2.0, 1.0, 0.0, 4.0],
                  [3.0, 1.0, 5.0, -2.0, 2.0]])
    C = np.array([[1.0, 1.0, 0.0, 1.0, 0.0],
                  [2.0, 1.0, 2.0, 0.0, 0.0],
                  [3.0, 3.0, 4.0, 2.0, 1.0]])
    h = upper_hulls(V, C)
    k = (h.key > 0).sum(axis=0)
    # collinear (1,1) (2,2) (3,3): one segment straight to the farthest point
    assert k[0] == 1 and h.vertex[0, 0] == 2 and h.dcost[0, 0] == 3.0 and h.dvalue[0, 0] == 3.0
    # duplicate (1, 2) twice, then (3, 1) below: one segment
    assert k[1] == 1 and h.vertex[0, 1] in (0, 1) and (h.dcost[0, 1], h.dvalue[0, 1]) == (1.0, 2.0)
    # free (0, 3) first (infinite efficiency), then (4, 5) with slope 0.5 (not (2, 1), below)
    assert k[2] == 2 and h.vertex[0, 2] == 0 and h.key[0, 2] == np.float64(np.inf).view(np.uint64)
    assert h.vertex[1, 2] == 2 and (h.dcost[1, 2], h.dvalue[1, 2]) == (4.0, 2.0)
    assert k[3] == 0  # negative or zero values: no segment, "none" is the only choice
    # two free treatments: the user ends at the free one worth 4; the (1, 2) point is below
    assert h.dcost[:, 4].sum() == 0.0 and h.dvalue[:, 4].sum() == 4.0 and h.vertex[k[4] - 1, 4] == 1


def test_upper_hulls_across_blocks_equal_per_user_hulls():
    rng = np.random.default_rng(7)
    m = BLOCK + 500
    V, C = special_points(rng, 4, m)
    h = upper_hulls(V, C)
    for u in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, m - 1, *rng.integers(0, m, 20).tolist()]:
        one = upper_hulls(V[:, [u]], C[:, [u]])
        H = one.key.shape[0]
        assert (h.key[H:, u] == 0).all()
        assert np.array_equal(h.key[:H, u], one.key[:, 0]) and np.array_equal(h.vertex[:H, u], one.vertex[:, 0])
        assert np.array_equal(h.dcost[:H, u], one.dcost[:, 0]) and np.array_equal(h.dvalue[:H, u], one.dvalue[:, 0])


# ----------------------------------------------------------------------------- 2. dual against the MILP


def random_case(seed: int, scenario: str):
    """(V, C, segment, budget) of a random table; scenario picks the special structure."""
    rng = np.random.default_rng(1000 + seed)
    n, T = int(rng.integers(30, 201)), int(rng.integers(2, 5))
    V = np.round(rng.uniform(-1, 10, (T, n)), 3)
    C = np.round(rng.uniform(0.1, 5, (T, n)), 3)
    segment = SEGMENTS[rng.integers(0, 3, n)]
    if scenario == "ties":  # every user identical
        V[:], C[:] = V[:, :1], C[:, :1]
    if scenario in ("zero_cost", "zero_budget"):  # free treatments with positive value
        free = rng.random(n) < 0.4
        C[0, free] = 0.0
        V[0, free] = np.abs(V[0, free]) + 0.5
    if scenario == "negative":  # users for whom some or every treatment loses value
        V[:, rng.random(n) < 0.4] *= -1
        V[rng.integers(0, T, n), np.arange(n)] *= np.where(rng.random(n) < 0.3, -1, 1)
    full = float(np.where(V > 0, C, 0.0).max(axis=0).sum())
    budget = {"slack": round(2 * full + 1, 3), "zero_budget": 0.0}.get(scenario, round(0.3 * full, 3))
    return V, C, segment, budget


CASES = [(s, sc) for sc, seeds in (("binding", range(4)), ("slack", [0]), ("zero_budget", [1]), ("ties", [2]), ("zero_cost", [3]), ("negative", [4, 5]))
         for s in seeds]


@pytest.mark.parametrize("coupling", ["budget", "limit", "limit+segments"])
@pytest.mark.parametrize("seed, scenario", CASES)
def test_dual_against_milp_and_lp(tmp_path, seed, scenario, coupling):
    V, C, segment, budget = random_case(seed, scenario)
    T, n = V.shape
    limits = {0: n // 8} if coupling != "budget" else None
    seg_budgets = {"a": round(0.15 * budget, 3), "b": round(0.25 * budget, 3)} if coupling == "limit+segments" else None
    path = write_instance(tmp_path, V, C, budget=budget, segment=segment, limits=limits, segment_budgets=seg_budgets,
                          fmt="parquet" if seed % 2 else "csv", row_group=max(1, n // 3))
    inst = load_instance(path)
    assert inst.coupled == (coupling != "budget")
    dual = solve(inst, "dual")
    exact = solve(inst, "milp")  # SCIP via OR-Tools
    assert exact.status is Status.OPTIMAL and dual.status in (Status.OPTIMAL, Status.FEASIBLE), dual.message
    for r in (dual, exact):
        assert r.evaluation["violations"] == [] and r.evaluation["feasible"]
        assert_feasible_plan(V, C, r.attachments["choice"], budget, limits, segment, seg_budgets, value=r.objective)
    opt = exact.objective
    tol = 1e-6 * max(1.0, abs(opt))
    lp = lp_relaxation(V, C, budget, limits, segment, seg_budgets)
    assert opt <= lp + tol, "the MILP optimum cannot beat its LP relaxation"
    assert dual.bound >= opt - tol, "the dual bound must bound the optimum"
    assert dual.bound >= lp - tol, "the Lagrangian dual is never below the LP relaxation"
    assert dual.objective <= opt + tol
    assert opt - dual.objective <= (dual.bound - dual.objective) + tol, "the plan is within the gap it reports"
    if dual.status is Status.OPTIMAL:
        assert opt - dual.objective <= 1e-6 * max(1.0, abs(dual.objective)) + tol
    if coupling == "budget":
        assert dual.bound == pytest.approx(lp, rel=1e-7, abs=1e-7), "one budget: the bound is the exact LP optimum"
    else:
        assert dual.bound <= lp + 1e-5 * max(1.0, abs(lp)), "the bundle method converges to the LP value"
    if scenario == "slack" and coupling == "budget":  # everyone gets their best treatment
        best = float(np.maximum(V.max(axis=0), 0.0).sum())
        assert dual.objective == pytest.approx(best, rel=1e-9) and dual.status is Status.OPTIMAL
    if scenario == "zero_budget" and coupling == "budget":  # only the free treatments can be given
        free_best = float(np.maximum(np.where(C == 0, V, 0.0).max(axis=0), 0.0).sum())
        assert free_best > 0 and opt == pytest.approx(free_best, rel=1e-9) and dual.objective == pytest.approx(free_best, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_milp_oracle_against_enumeration(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n, T = int(rng.integers(4, 8)), int(rng.integers(1, 3))
    V = np.round(rng.uniform(-2, 6, (T, n)), 1)
    C = np.round(rng.uniform(0, 3, (T, n)), 1)
    V[0, 0] = abs(V[0, 0]) + 1  # at least one user worth treating
    segment = SEGMENTS[rng.integers(0, 2, n)]
    budget = round(float(rng.uniform(0.2, 0.6) * np.maximum(C, 0).sum(axis=0).max() * n / 2), 1)
    limits = {0: int(rng.integers(0, 3))} if seed % 2 else None
    seg_budgets = {"a": round(budget * 0.3, 1)} if seed % 3 == 0 else None
    path = write_instance(tmp_path, V, C, budget=budget, segment=segment, limits=limits, segment_budgets=seg_budgets)
    inst = load_instance(path)
    want = brute_force(V, C, budget, limits, segment, seg_budgets)
    exact = solve(inst, "milp")
    assert exact.status is Status.OPTIMAL and exact.objective == pytest.approx(want, abs=1e-9)
    dual = solve(inst, "dual")
    assert dual.objective <= want + 1e-9 and dual.bound >= want - 1e-9
    assert_feasible_plan(V, C, dual.attachments["choice"], budget, limits, segment, seg_budgets, value=dual.objective)


def brute_force_identical(v, c, n, budget) -> float:
    """Best plan when every user has the same (value, cost) per treatment: choose how many
    users get each treatment (two treatments)."""
    best = 0.0
    for k0 in range(n + 1):
        for k1 in range(n + 1 - k0):
            if k0 * c[0] + k1 * c[1] <= budget + 1e-9:
                best = max(best, k0 * v[0] + k1 * v[1])
    return best


def test_dual_on_identical_users_with_one_budget_splits_the_ties(tmp_path, monkeypatch):
    """One budget, 40 identical users over 6 parts: the threshold method takes tied users in
    table order, across part boundaries, so the plan is optimal up to one user's value."""
    n = 40
    V = np.vstack([np.full(n, 3.0), np.full(n, 5.0)])
    C = np.vstack([np.full(n, 1.0), np.full(n, 2.0)])
    monkeypatch.setattr(parts.Workers.__init__, "__defaults__", (1, 7))
    for budget in (0.0, 10.5, 17.0, 55.0, 1000.0):
        path = write_instance(tmp_path / str(budget), V, C, budget=budget, row_group=7)
        want = brute_force_identical(V[:, 0], C[:, 0], n, budget)
        dual = solve(load_instance(path), "dual")
        assert dual.objective <= want + 1e-9 and dual.bound >= want - 1e-9
        assert want - dual.objective <= 5.0 + 1e-9
        assert_feasible_plan(V, C, dual.attachments["choice"], budget, value=dual.objective)


def test_dual_with_a_limit_on_identical_users_is_not_empty(tmp_path):
    n = 40
    V = np.vstack([np.full(n, 3.0), np.full(n, 5.0)])
    C = np.vstack([np.full(n, 1.0), np.full(n, 2.0)])
    path = write_instance(tmp_path, V, C, budget=17.0, limits={0: 5})
    inst = load_instance(path)
    dual = solve(inst, "dual")
    want = solve(inst, "milp").objective  # 45: 5 users get t0, 6 get t1 (checked against enumeration below)
    assert want == pytest.approx(max(k0 * 3 + k1 * 5 for k0 in range(6) for k1 in range(n) if k0 + 2 * k1 <= 17))
    assert dual.evaluation["feasible"]
    assert want - dual.objective <= 2 * 5.0, f"dual {dual.objective} vs optimum {want}"


@pytest.mark.parametrize("method", ["dual", "milp", "bisection"])
def test_parquet_table_without_segment_column(tmp_path, method):
    V = np.array([[3.0, 1.0, 2.0], [1.0, 4.0, 0.5]])
    C = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 1.0]])
    path = write_instance(tmp_path, V, C, budget=3.0, segment=False, fmt="parquet")
    assert "segment" not in pq.read_schema(path.with_name("inst-users.parquet")).names
    res = cli("solve", path, "--method", method, "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert_no_segment_result(json.loads(res.stdout), brute_force(V, C, 3.0))


def assert_no_segment_result(out, best):
    assert out["evaluation"]["violations"] == [] and out["solution"]["segments"] == {}
    assert out["objective"] <= best + 1e-9 and out["bound"] >= best - 1e-9
    if out["method"] != "bisection":  # a baseline: a Lagrangian plan, not the optimum of this tiny table
        assert out["objective"] == pytest.approx(best)


def test_csv_table_without_segment_column(tmp_path):
    V = np.array([[3.0, 1.0, 2.0], [1.0, 4.0, 0.5]])
    C = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 1.0]])
    path = write_instance(tmp_path, V, C, budget=3.0, segment=False, fmt="csv")
    for method in ("dual", "milp", "bisection"):
        res = cli("solve", path, "--method", method, "--format", "json")
        assert res.exit_code == 0, res.stderr
        assert_no_segment_result(json.loads(res.stdout), brute_force(V, C, 3.0))


def test_milp_when_no_treatment_is_worth_giving(tmp_path):
    V = np.array([[-1.0, 0.0, -3.0], [0.0, -2.0, -0.5]])
    C = np.ones_like(V)
    inst = load_instance(write_instance(tmp_path, V, C, budget=5.0))
    assert solve(inst, "dual").objective == 0.0
    exact = solve(inst, "milp")
    assert exact.status is Status.OPTIMAL and exact.objective == 0.0


# ----------------------------------------------------------------------------- evaluate()


def test_evaluate_recomputes_and_reports_every_violation(tmp_path):
    V = np.array([[4.0, 3.0, 2.0, 1.0], [5.0, 1.0, 6.0, 2.0]])
    C = np.array([[1.0, 1.0, 1.0, 1.0], [3.0, 2.0, 4.0, 1.0]])
    segment = ["a", "a", "b", "c"]
    inst = load_instance(write_instance(tmp_path, V, C, budget=5.0, segment=segment, limits={1: 1}, segment_budgets={"a": 2.0}))
    ok = np.array([0, 0, 0, -1], np.int8)  # spend 3, value 9, segment a spends 2
    ev = ia.evaluate(inst, {"choice": ok})
    assert ev.violations == [] and ev.objective == pytest.approx(9.0) and ev.details["spend"] == pytest.approx(3.0)
    bad = np.array([1, 0, 1, 1], np.int8)  # spend 3+1+4+1 = 9 > 5, t1 to 3 users > 1, segment a spends 4 > 2
    ev = ia.evaluate(inst, {"choice": bad})
    assert ev.objective == pytest.approx(5 + 3 + 6 + 2)
    text = "\n".join(ev.violations)
    assert "budget" in text and "treatments.t1" in text and "segment_budgets.a" in text and len(ev.violations) == 3
    assert ia.evaluate(inst, {"choice": np.array([0, 5, -1, -1], np.int8)}).violations  # index out of range
    assert ia.evaluate(inst, {"choice": np.array([0, 0, -1], np.int8)}).violations  # wrong length
    # a written plan with a missing user and an unknown treatment
    plan = tmp_path / "plan.csv"
    plan.write_text("user_id,treatment\n11,t0\n14,t9\n17,\n")
    text = "\n".join(ia.evaluate(inst, {"plan_file": str(plan)}).violations)
    assert "3 rows for 4 users" in text and "unknown treatment 't9'" in text and "no row for user" in text


def test_iter_chunks_reads_the_table_in_order(tmp_path):
    rng = np.random.default_rng(3)
    V, C = rng.uniform(-1, 5, (3, 1000)), rng.uniform(0, 2, (3, 1000))
    segment = SEGMENTS[rng.integers(0, 3, 1000)]
    for fmt in ("parquet", "csv"):
        inst = load_instance(write_instance(tmp_path / fmt, V, C, budget=10.0, segment=segment, fmt=fmt, row_group=128,
                                            segment_budgets={"b": 1.0}))
        chunks = list(ia.iter_chunks(inst, rows=300))
        if fmt == "parquet":
            assert [c.offset for c in chunks] == [0, 384, 768] and [len(c) for c in chunks] == [384, 384, 232]
        assert np.array_equal(np.concatenate([c.value for c in chunks], axis=1), V)
        assert np.array_equal(np.concatenate([c.cost for c in chunks], axis=1), C)
        names = np.concatenate([np.array(c.segment_names)[c.segment] for c in chunks])
        assert np.array_equal(names, segment)
        budgeted = np.concatenate([c.budgeted for c in chunks])
        assert np.array_equal(budgeted == 0, segment == "b") and set(budgeted.tolist()) == {-1, 0}


# ----------------------------------------------------------------------------- 3. the written plan


def read_users(path: Path):
    if path.suffix == ".parquet":
        return pq.read_table(path)
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"user_id": pa.string(), "segment": pa.string()}))


def read_plan_file(path: Path) -> dict[str, str]:
    """user_id (as text) -> treatment ('' for none), read here without the library."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        treatment = table.column("treatment").cast(pa.string()).to_pylist()
    else:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"user_id": pa.string(), "treatment": pa.string()},
                                                                           strings_can_be_null=False))
        treatment = table.column("treatment").to_pylist()
    ids = [str(u) for u in table.column("user_id").to_pylist()]
    assert len(set(ids)) == len(ids), "one row per user"
    return dict(zip(ids, ["" if t is None else t for t in treatment]))


@pytest.mark.parametrize("table", ["parquet", "csv"])
@pytest.mark.parametrize("plan_fmt", ["parquet", "csv"])
def test_cli_plan_file_respects_every_constraint(tmp_path, table, plan_fmt):
    limits = {"free_gift": 12, "coupon_10": 30}
    doc = ia.generate(tmp_path / "g.json", 600, seed=11, budget_share=0.4, limits=limits,
                      segment_budget_shares={"lower_tier": 0.15, "students": 0.1}, table=table)
    plan = tmp_path / f"plan.{plan_fmt}"
    res = cli("solve", tmp_path / "g.json", "--plan", plan, "--format", "json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] in ("optimal", "feasible") and out["evaluation"]["violations"] == []
    assert out["solution"]["plan_file"] == str(plan) and plan.is_file()
    assert not list(tmp_path.glob(f".{plan.name}.*")), "temporary plan file left behind"

    users = read_users(tmp_path / doc["users"]["table"])
    chosen = read_plan_file(plan)
    ids = [str(u) for u in users.column("user_id").to_pylist()]
    assert set(chosen) == set(ids) and len(chosen) == users.num_rows
    tids = [t["id"] for t in doc["treatments"]]
    assert set(chosen.values()) <= set(tids) | {""}
    cols = {k: np.asarray(users.column(k).to_numpy(zero_copy_only=False)) for k in users.column_names if k.startswith(("value_", "cost_"))}
    segment = np.array(users.column("segment").cast(pa.string()).to_pylist())
    spend = value = 0.0
    per_t = {t: [0, 0.0, 0.0] for t in tids}
    per_s: dict[str, float] = {}
    for row, u in enumerate(ids):
        t = chosen[u]
        if t:
            c, v = float(cols[f"cost_{t}"][row]), float(cols[f"value_{t}"][row])
            spend += c
            value += v
            per_t[t][0] += 1
            per_t[t][1] += c
            per_t[t][2] += v
            per_s[segment[row]] = per_s.get(segment[row], 0.0) + c
    tol = 1e-6
    assert spend <= doc["budget"] * (1 + tol)
    for t, cap in limits.items():
        assert per_t[t][0] <= cap
    for s, cap in doc["segment_budgets"].items():
        assert per_s.get(s, 0.0) <= cap * (1 + tol)
    sol = out["solution"]
    assert sol["spend"] == pytest.approx(spend, rel=1e-9) and sol["value"] == pytest.approx(value, rel=1e-9)
    assert out["objective"] == pytest.approx(value, rel=1e-9)
    assert sol["users"] == len(ids) and sol["treated"] == sum(1 for t in chosen.values() if t)
    for t in tids:
        assert sol["treatments"][t]["users"] == per_t[t][0]
        assert sol["treatments"][t]["spend"] == pytest.approx(per_t[t][1], rel=1e-9, abs=1e-9)
        assert sol["treatments"][t]["value"] == pytest.approx(per_t[t][2], rel=1e-9, abs=1e-9)
    for s, spent in per_s.items():
        assert sol["segments"][s]["spend"] == pytest.approx(spent, rel=1e-9)
    for s, cap in doc["segment_budgets"].items():
        assert sol["segment_budgets"][s] == {"budget": cap, "spend": pytest.approx(per_s.get(s, 0.0), rel=1e-9, abs=1e-9)}

    inst = load_instance(tmp_path / "g.json")
    ev = ia.evaluate(inst, {"plan_file": str(plan)})
    assert ev.violations == [] and ev.objective == pytest.approx(value, rel=1e-9)
    choice, problems = ia.read_plan(inst, plan)
    assert problems == [] and np.array_equal(choice, np.array([tids.index(chosen[u]) if chosen[u] else -1 for u in ids]))


def test_plan_file_with_string_ids_parquet(tmp_path):
    ids = [f"user-{i}" for i in range(30)]
    V = np.vstack([np.linspace(1, 5, 30), np.linspace(5, 1, 30)])
    C = np.vstack([np.full(30, 1.0), np.full(30, 2.0)])
    path = write_instance(tmp_path, V, C, budget=20.0, ids=ids, fmt="parquet")
    for plan_fmt in ("parquet", "csv"):
        plan = tmp_path / f"plan.{plan_fmt}"
        res = cli("solve", path, "--plan", plan, "--format", "json")
        assert res.exit_code == 0, res.stderr
        chosen = read_plan_file(plan)
        assert set(chosen) == set(ids)
        ev = ia.evaluate(load_instance(path), {"plan_file": str(plan)})
        assert ev.violations == [] and ev.objective == pytest.approx(json.loads(res.stdout)["objective"], rel=1e-12)


def test_csv_plan_of_text_ids_with_leading_zeros_reads_back(tmp_path):
    folder = tmp_path
    (folder / "u.csv").write_text("user_id,value_a,cost_a\n" + "".join(f"{i:03d},5,1\n" for i in range(10)))
    (folder / "i.json").write_text(json.dumps({"problem": "incentive_assignment", "budget": 3, "treatments": [{"id": "a"}],
                                               "users": {"table": "u.csv"}}))
    res = cli("solve", folder / "i.json", "--plan", folder / "plan.csv", "--format", "json")
    assert res.exit_code == 0, res.stderr
    ev = ia.evaluate(load_instance(folder / "i.json"), {"plan_file": str(folder / "plan.csv")})
    assert ev.violations == [] and ev.objective == pytest.approx(15.0)


# ----------------------------------------------------------------------------- 4. bisection


@pytest.mark.parametrize("seed, share", [(0, 0.3), (1, 0.9), (2, 0.3)])
def test_bisection_close_to_dual(tmp_path, seed, share):
    ia.generate(tmp_path / "g.json", 3000, seed=seed, budget_share=share)
    inst = load_instance(tmp_path / "g.json")
    base = solve(inst, "bisection")
    dual = solve(inst, "dual")
    assert base.status.has_solution and base.evaluation["violations"] == []
    assert base.solution["spend"] <= inst.budget * (1 + 1e-9)
    assert base.bound >= base.objective - 1e-9
    assert base.bound >= dual.bound * (1 - 1e-9), "every Lagrangian value is >= the LP optimum"
    assert base.bound >= dual.objective
    assert base.objective <= dual.bound * (1 + 1e-9)
    assert base.objective == pytest.approx(dual.objective, rel=1e-3)


def test_bisection_on_small_tables_against_milp(tmp_path):
    for seed in range(3):
        V, C, segment, budget = random_case(seed, "negative" if seed == 2 else "binding")
        inst = load_instance(write_instance(tmp_path / str(seed), V, C, budget=budget))
        base = solve(inst, "bisection")
        opt = solve(inst, "milp").objective
        assert base.evaluation["violations"] == []
        assert_feasible_plan(V, C, base.attachments["choice"], budget, value=base.objective)
        assert base.objective <= opt + 1e-9 and base.bound >= opt - 1e-6 * max(1.0, opt)


@pytest.mark.parametrize("extra", [{"limits": {"free_gift": 5}}, {"segment_budget_shares": {"students": 0.1}}])
def test_bisection_refuses_coupled_instances(tmp_path, extra):
    ia.generate(tmp_path / "g.json", 50, seed=1, **extra)
    res = cli("solve", tmp_path / "g.json", "--method", "bisection")
    assert res.exit_code == 2 and "one budget" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert res.stdout == ""


# ----------------------------------------------------------------------------- 5. parts, threads, Dask


def dask_instances(folder: Path) -> tuple[Path, Path]:
    """3,000 generated users in row groups of 500; one instance with one budget, one coupled."""
    folder.mkdir(parents=True, exist_ok=True)
    ia.write_users(folder / "users.parquet", 3000, seed=5, row_group=500)
    assert pq.ParquetFile(folder / "users.parquet").metadata.num_row_groups == 6
    base = {"problem": "incentive_assignment", "schema_version": 1, "users": {"table": "users.parquet"},
            "treatments": [{"id": t} for t in ia.TREATMENTS]}
    table = pq.read_table(folder / "users.parquet")
    best = np.vstack([table.column(f"value_{t}").to_numpy() for t in ia.TREATMENTS]).argmax(axis=0)
    costs = np.vstack([table.column(f"cost_{t}").to_numpy() for t in ia.TREATMENTS])
    budget = round(0.3 * float(costs[best, np.arange(3000)].sum()), 2)
    one = folder / "one.json"
    one.write_text(json.dumps({**base, "name": "one", "budget": budget}))
    coupled = folder / "coupled.json"
    coupled.write_text(json.dumps({**base, "name": "coupled", "budget": budget,
                                   "treatments": [{"id": t, **({"limit": 80} if t == "free_gift" else {})} for t in ia.TREATMENTS],
                                   "segment_budgets": {"lower_tier": round(0.2 * budget, 2), "new_users": round(0.25 * budget, 2)}}))
    return one, coupled


def test_parts_follow_row_groups(tmp_path):
    one, _ = dask_instances(tmp_path)
    inst = load_instance(one)
    table = pq.read_table(tmp_path / "users.parquet")
    for rows, sizes in ((1_000_000, [3000]), (1000, [1000, 1000, 1000]), (700, [1000, 1000, 1000]), (500, [500] * 6), (1, [500] * 6)):
        w = parts.Workers(inst, threshold.build, 2, rows_per_part=rows)
        try:
            assert [p.size for p in w.parts] == sizes and [p.index for p in w.parts] == list(range(len(sizes)))
            assert [p.offset for p in w.parts] == np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
            assert np.array_equal(np.concatenate([p.ids for p in w.parts]), table.column("user_id").to_numpy())
            assert w.users == 3000
        finally:
            w.close()


def solve_both(inst, monkeypatch, rows_per_part, **options):
    monkeypatch.setattr(parts.Workers.__init__, "__defaults__", (1, rows_per_part))
    monkeypatch.setattr(parts.Cluster.__init__, "__defaults__", (rows_per_part,))
    return solve(inst, "dual", options=SolverOptions(**options))


def assert_same_plan(a, b):
    assert a.status is b.status
    assert np.array_equal(a.attachments["choice"], b.attachments["choice"])
    assert a.objective == pytest.approx(b.objective, rel=1e-12) and a.bound == pytest.approx(b.bound, rel=1e-12)


@pytest.mark.parametrize("which", ["one", "coupled"])
def test_threads_and_parts_give_the_same_plan(tmp_path, monkeypatch, which):
    one, coupled = dask_instances(tmp_path)
    inst = load_instance(one if which == "one" else coupled)
    single = solve_both(inst, monkeypatch, 500, threads=1)
    assert single.evaluation["violations"] == []
    assert_same_plan(single, solve_both(inst, monkeypatch, 500, threads=2))
    whole = solve_both(inst, monkeypatch, 1_000_000, threads=1)  # one part: same LP value, a feasible plan
    assert whole.evaluation["violations"] == []
    assert whole.bound == pytest.approx(single.bound, rel=1e-6)
    if which == "one":
        assert whole.bound == pytest.approx(single.bound, rel=1e-12)  # the exact LP bound does not depend on the parts


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.mark.parametrize("which", ["one", "coupled"])
def test_dask_cluster_gives_the_local_plan(tmp_path, monkeypatch, dask_cluster, which):
    one, coupled = dask_instances(tmp_path)
    inst = load_instance(one if which == "one" else coupled)
    local = solve_both(inst, monkeypatch, 1000, threads=1)
    remote = solve_both(inst, monkeypatch, 1000, scheduler=dask_cluster.scheduler_address)
    assert remote.evaluation["violations"] == [] and remote.status.has_solution
    assert_same_plan(local, remote)
    assert remote.objective == local.objective


def test_dask_cluster_with_the_default_part_size(tmp_path, dask_cluster):
    one, _ = dask_instances(tmp_path)
    inst = load_instance(one)
    local = solve(inst, "dual")
    assert_same_plan(local, solve(inst, "dual", options=SolverOptions(scheduler=dask_cluster.scheduler_address)))


def test_scheduler_needs_parquet(tmp_path):
    ia.generate(tmp_path / "g.json", 50, seed=1, table="csv")
    res = cli("solve", tmp_path / "g.json", "--scheduler", "tcp://127.0.0.1:9")
    assert res.exit_code == 2 and "Parquet" in res.stderr and "Traceback" not in res.stderr + res.stdout


def test_lagrangian_build_keeps_the_arrays(tmp_path):
    _, coupled = dask_instances(tmp_path)
    inst = load_instance(coupled)
    w = parts.Workers(inst, lagrangian.build, 1, rows_per_part=1000)
    try:
        V = np.concatenate([p.data[0] for p in w.parts], axis=1)
        table = pq.read_table(tmp_path / "users.parquet")
        assert np.array_equal(V, np.vstack([table.column(f"value_{t}").to_numpy() for t in ia.TREATMENTS]))
    finally:
        w.close()


# ----------------------------------------------------------------------------- 6. bad input


def good_columns(n=5, ids=None):
    return {"user_id": ids if ids is not None else list(range(1, n + 1)), "segment": ["x", "y", "x", "y", "x"][:n],
            "value_a": [1.0, 2, 3, 4, 5][:n], "cost_a": [1.0, 1, 1, 1, 1][:n], "value_b": [2.0, 1, 0, 1, 2][:n], "cost_b": [2.0, 2, 2, 2, 2][:n]}


def bad_instance(folder: Path, fmt: str, columns: dict, table_name=None, **doc_extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = table_name or f"users.{fmt}"
    if table_name is None:
        table = pa.table(columns)
        (pq.write_table if fmt == "parquet" else pacsv.write_csv)(table, folder / name)
    doc = {"problem": "incentive_assignment", "schema_version": 1, "name": "bad", "budget": 10,
           "treatments": [{"id": "a"}, {"id": "b"}], "users": {"table": name}, **doc_extra}
    (folder / "i.json").write_text(json.dumps(doc))
    return folder / "i.json"


def rejected(path, *args):
    res = cli("solve", path, *args)
    out = res.stderr + res.stdout
    assert res.exit_code == 2, out
    assert "Traceback" not in out and "internal error" not in out
    assert res.stdout == ""
    return res.stderr


def row(fmt, parquet_row):
    """How the messages name a row: Parquet rows are 1-based, CSV lines count the header."""
    return f"row {parquet_row}" if fmt == "parquet" else f"line {parquet_row + 1}"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_bad_tables_are_located(tmp_path, fmt):
    cols = good_columns()
    del cols["cost_b"]
    err = rejected(bad_instance(tmp_path / "nocost", fmt, cols))
    assert "cost_b" in err and "treatments[1]" in err

    cols = good_columns()
    cols["value_a"] = [1.0, float("nan"), 3, 4, 5]
    err = rejected(bad_instance(tmp_path / "nan", fmt, cols))
    assert "value_a" in err and row(fmt, 2) in err

    cols = good_columns()
    cols["value_b"] = [2.0, 1, 0, None, 2]
    err = rejected(bad_instance(tmp_path / "null", fmt, cols))
    assert "value_b" in err and row(fmt, 4) in err and "empty cell" in err

    cols = good_columns()
    cols["cost_b"] = [2.0, 2, -1, 2, 2]
    err = rejected(bad_instance(tmp_path / "negative", fmt, cols))
    assert "cost_b" in err and row(fmt, 3) in err and ">= 0" in err

    cols = good_columns()
    cols["cost_a"] = [1.0, 1, 1, 1, float("inf")]
    err = rejected(bad_instance(tmp_path / "inf", fmt, cols))
    assert "cost_a" in err and row(fmt, 5) in err

    for ids, first, second in (([1, 2, 3, 2, 5], 2, 4), (["u1", "u2", "u3", "u4", "u2"], 2, 5)):
        err = rejected(bad_instance(tmp_path / f"dup-{second}", fmt, good_columns(ids=ids)))
        assert "duplicate id" in err and "user_id" in err and repr(ids[first - 1]) in err
        assert f"{row(fmt, second)} column user_id" in err and f"first at users.{fmt} {row(fmt, first)}" in err, err

    cols = good_columns()
    del cols["segment"]
    err = rejected(bad_instance(tmp_path / "noseg", fmt, cols, segment_budgets={"x": 3}))
    assert "segment_budgets" in err and "segment column" in err

    err = rejected(bad_instance(tmp_path / "unknown", fmt, good_columns(), budgett=3, extra_key={"x": 1}))
    assert "budgett" in err and "extra_key" in err and "unknown key" in err

    path = bad_instance(tmp_path / "duptreat", fmt, good_columns())
    doc = json.loads(path.read_text())
    doc["treatments"].append({"id": "a", "limit": 3})
    path.write_text(json.dumps(doc))
    err = rejected(path)
    assert "treatments[2].id" in err and "duplicate id 'a'" in err

    err = rejected(bad_instance(tmp_path / "plan", fmt, good_columns()), "--plan", tmp_path / "plan" / "plan.txt")
    assert "--plan" in err and "plan.txt" in err
    assert not (tmp_path / "plan" / "plan.txt").exists()


@pytest.mark.parametrize("text, where, column", [
    ("user_id,value_a,cost_a,value_b,cost_b\n1,1,1,2,2\n2,,1,2,2\n3,1,1,2,2\n", "line 3", "value_a"),
    ("user_id,value_a,cost_a,value_b,cost_b\n1,1,1,2,2\n2,1,1,2,2\n3,1,1,2,\n", "line 4", "cost_b"),
    ("user_id,value_a,cost_a,value_b,cost_b\n1,1,1,2,2\n2,1,1,NaN,2\n", "line 3", "value_b"),
    ("user_id;value_a;cost_a;value_b;cost_b\n1;1;1;2;2\n2;1;1;2;-0.5\n", "line 3", "cost_b"),
    ("user_id,value_a,cost_a,value_b,cost_b\n1,1,1,2,2\n,1,1,2,2\n", "line 3", "user_id"),
])
def test_bad_csv_cells_are_located(tmp_path, text, where, column):
    (tmp_path / "users.csv").write_text(text)
    path = bad_instance(tmp_path, "csv", {}, table_name="users.csv")
    err = rejected(path)
    assert where in err and column in err and "users.csv" in err


def test_text_in_a_number_column_names_column_and_line(tmp_path):
    (tmp_path / "users.csv").write_text("user_id,value_a,cost_a,value_b,cost_b\n1,1,1,2,2\n2,abc,1,2,2\n")
    err = rejected(bad_instance(tmp_path, "csv", {}, table_name="users.csv"))
    assert "value_a" in err and "line 3" in err


def test_csv_segment_named_na_keeps_its_budget(tmp_path):
    n = 10
    (tmp_path / "users.csv").write_text("user_id,segment,value_a,cost_a\n" + "".join(f"{i},{'NA' if i % 2 else 'EU'},5,1\n" for i in range(n)))
    (tmp_path / "i.json").write_text(json.dumps({"problem": "incentive_assignment", "budget": 100, "treatments": [{"id": "a"}],
                                                 "users": {"table": "users.csv"}, "segment_budgets": {"NA": 2, "EU": 2}}))
    inst = load_instance(tmp_path / "i.json")
    with (tmp_path / "users.csv").open(newline="") as fh:
        segment = [r["segment"] for r in csv.DictReader(fh)]
    for method in ("dual", "milp"):
        choice = solve(inst, method).attachments["choice"]
        spent = {s: sum(1.0 for c, seg in zip(choice, segment) if c >= 0 and seg == s) for s in ("NA", "EU")}
        assert spent["NA"] <= 2 and spent["EU"] <= 2, (method, spent)


def test_csv_user_id_na_is_an_id(tmp_path):
    (tmp_path / "users.csv").write_text("user_id,value_a,cost_a\nNA,5,1\nEU,4,1\n")
    (tmp_path / "i.json").write_text(json.dumps({"problem": "incentive_assignment", "budget": 1, "treatments": [{"id": "a"}],
                                                 "users": {"table": "users.csv"}}))
    res = cli("solve", tmp_path / "i.json", "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["objective"] == 5.0


def test_bad_table_files(tmp_path):
    err = rejected(bad_instance(tmp_path / "missing", "parquet", {}, table_name="nope.parquet"))
    assert "users.table" in err and "file not found" in err and "nope.parquet" in err
    (tmp_path / "xlsx").mkdir()
    (tmp_path / "xlsx" / "users.xlsx").write_bytes(b"PK\x03\x04")
    err = rejected(bad_instance(tmp_path / "xlsx", "parquet", {}, table_name="users.xlsx"))
    assert "users.table" in err and "users.xlsx" in err and ".csv and .parquet" in err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "users.parquet").write_bytes(b"not a parquet file")
    err = rejected(bad_instance(tmp_path / "broken", "parquet", {}, table_name="users.parquet"))
    assert "users.table" in err and "users.parquet" in err


def test_plan_option_only_for_incentive_assignment(tmp_path):
    err = rejected(INSTANCES / "front_warehouse" / "town-12x60.json", "--plan", tmp_path / "plan.parquet")
    assert "--plan" in err and "incentive_assignment" in err
    assert not (tmp_path / "plan.parquet").exists()


def test_parquet_string_values_are_refused(tmp_path):
    cols = good_columns()
    cols["value_a"] = ["1", "2", "3", "4", "5"]
    err = rejected(bad_instance(tmp_path, "parquet", cols))
    assert "value_a" in err and "numbers expected" in err


# ----------------------------------------------------------------------------- 7. the generator


@pytest.mark.parametrize("table", ["parquet", "csv"])
def test_generate_is_deterministic_and_sane(tmp_path, table):
    kwargs = dict(seed=4, budget_share=0.25, limits={"free_gift": 20}, segment_budget_shares={"students": 0.1, "lapsed": 0.2}, table=table)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a = ia.generate(tmp_path / "one" / "g.json", 500, **kwargs)
    b = ia.generate(tmp_path / "two" / "g.json", 500, **kwargs)
    assert a == b and json.loads((tmp_path / "one" / "g.json").read_text()) == a
    ta, tb = read_users(tmp_path / "one" / a["users"]["table"]), read_users(tmp_path / "two" / b["users"]["table"])
    assert ta.equals(tb) and ta.num_rows == 500
    assert (tmp_path / "one" / a["users"]["table"]).suffix == f".{table}"
    other = ia.generate(tmp_path / "one" / "h.json", 500, **{**kwargs, "seed": 5})
    assert not read_users(tmp_path / "one" / other["users"]["table"]).equals(ta)

    tids = [t["id"] for t in a["treatments"]]
    assert tids == list(ia.TREATMENTS) and a["treatments"][tids.index("free_gift")]["limit"] == 20
    V = np.vstack([ta.column(f"value_{t}").to_numpy() for t in tids])
    C = np.vstack([ta.column(f"cost_{t}").to_numpy() for t in tids])
    assert np.isfinite(V).all() and np.isfinite(C).all() and (C >= 0).all() and (V > 0).any()
    ids = np.array([int(u) for u in ta.column("user_id").to_pylist()])
    assert len(np.unique(ids)) == 500
    assert set(ta.column("segment").cast(pa.string()).to_pylist()) <= set(ia.SEGMENTS)
    # the budget is the share of what every user's most valuable treatment would cost
    full = float(C[V.argmax(axis=0), np.arange(500)].sum())
    assert a["budget"] == pytest.approx(round(0.25 * full, 2), abs=0.011)
    assert a["segment_budgets"] == {"students": round(0.1 * a["budget"], 2), "lapsed": round(0.2 * a["budget"], 2)}
    inst = load_instance(tmp_path / "one" / "g.json")
    assert inst.coupled and inst.budget == a["budget"]
