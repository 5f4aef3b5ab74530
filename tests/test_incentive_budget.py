"""incentive_budget: schema and checks, evaluate(), the certified bounds, the exact method
against brute force, the slsqp baseline, the frontier."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from models import InstanceError, evaluate, parse_instance
from models.incentive_budget import direct_users, generate, slope
from optimizers import SolverOptions, Status, solve
from optimizers.incentive_budget import dp, grid
from optimizers.incentive_budget.exact import frontier
from tests.conftest import INSTANCES

HILL = {"kind": "hill", "max_users": 1000.0, "half_spend": 400.0, "shape": 2.5}


def doc(cells, budget=1000.0, **extra):
    return {"problem": "incentive_budget", "name": "t", "budget": budget, "cells": cells, **extra}


def cell(cid, response=None, **extra):
    return {"id": cid, "response": response or dict(HILL), **extra}


def problems(document):
    with pytest.raises(InstanceError) as info:
        parse_instance(document)
    return [str(p) for p in info.value.problems]


# ----------------------------------------------------------------------------- input checks


def test_bad_input_is_located_and_quotes_numbers():
    found = problems(doc([
        cell("a", viral_k=1.2),
        cell("b", min_spend=500, max_spend=300),
        cell("c", {"kind": "hill", "max_users": 10, "half_spend": 5, "shape": -1}),
        cell("d", {"kind": "piecewise_linear", "points": [[10, 1], [5, 2]]}),
    ], caps=[{"id": "x", "cells": ["a", "zz"], "max_spend": 5}]))
    text = "\n".join(found)
    assert "cells[0].viral_k: must be in [0, 1)" in text and "got 1.2" in text
    assert "cells[1]: min_spend 500 > max_spend 300" in text
    assert "cells[2].response.shape: must be greater than 0" in text  # no union tag in the location
    assert "cells[3].response.points: spends must increase" in text
    assert "caps[0].cells[1]: unknown cell 'zz'" in text


def test_infeasible_data_caught_before_solving():
    text = "\n".join(problems(doc([cell("a", min_spend=700), cell("b", min_spend=600)], budget=1000)))
    assert "min_spend add up to 1,300, above the budget 1,000" in text
    text = "\n".join(problems(doc([cell("a", min_spend=300), cell("b", min_spend=300)], caps=[{"id": "c", "cells": ["a", "b"], "max_spend": 500}])))
    assert "caps[0].max_spend: 500 is below the min_spend of its cells, 600" in text
    text = "\n".join(problems(doc([cell("a", min_spend=110, max_spend=190)], step=100)))
    assert "no multiple of step 100" in text
    # target above what every curve can bring at its most (viral included)
    text = "\n".join(problems(doc([cell("a", viral_k=0.5)], objective="min_spend", target_users=2500)))
    assert "target_users: 2,500 users cannot be reached" in text and "brings" in text
    assert any("required with objective 'min_spend'" in p for p in problems(doc([cell("a")], objective="min_spend")))
    assert any("only used with objective 'min_spend'" in p for p in problems(doc([cell("a")], target_users=10)))


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_recomputes_and_lists_violations():
    inst = parse_instance(doc([cell("a", viral_k=0.2, value_per_user=3.0, max_spend=600), cell("b", min_spend=100)],
                              budget=1000, step=50, caps=[{"id": "c", "cells": ["a"], "max_spend": 500}]))
    ok = evaluate(inst, {"spend": {"a": 400, "b": 600}})
    users_a = 1000 / (1 + 1) / 0.8  # x = half_spend gives half of max_users
    assert ok.feasible and ok.objective == pytest.approx(users_a + float(direct_users(inst.cells[1].response, 600)))
    bad = evaluate(inst, {"spend": {"a": 555, "b": 50, "zz": 1}, "users": {"a": 1.0}})
    text = "\n".join(bad.violations)
    for expected in ("spend.zz: unknown cell", "spend.b: 50 below min_spend 100", "not a multiple of step 50",
                     "caps.c: spend 555 > max_spend 500", "users.a: reported 1"):
        assert expected in text
    assert "budget" in "\n".join(evaluate(inst, {"spend": {"a": 500, "b": 550}}).violations)
    value = parse_instance(doc([cell("a", value_per_user=2.0)], objective="value"))
    assert evaluate(value, {"spend": {"a": 400}}).objective == pytest.approx(2.0 * 500 - 400)


# ----------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("response", [
    HILL,
    {"kind": "hill", "max_users": 500.0, "half_spend": 300.0, "shape": 0.6},
    {"kind": "hill", "max_users": 500.0, "half_spend": 300.0, "shape": 1.0},
    {"kind": "exponential", "max_users": 800.0, "scale": 250.0},
    {"kind": "logistic", "max_users": 900.0, "midpoint": 350.0, "width": 60.0},
    {"kind": "piecewise_linear", "points": [[100, 50], [250, 20], [400, 600], [700, 650]]},
])
@pytest.mark.parametrize("objective", ["users", "value"])
def test_interval_bounds_hold_everywhere(response, objective):
    """F_j(lam) >= g(x) - lam (x - a_j) for every x in the interval, any lam >= 0."""
    inst = parse_instance(doc([cell("a", response, value_per_user=1.7, viral_k=0.3)], objective=objective))
    t = grid.terms(inst)
    rng = np.random.default_rng(1)
    for h in (7.0, 61.0, 333.0):
        g = grid.cell_grid(inst, t, 0, h)
        for lam in (0.0, 0.3, 2.0, float(rng.uniform(0, 5))):
            upper = grid.upper_values(inst, t, 0, g, lam)
            for j in range(len(g.starts)):
                xs = np.linspace(g.starts[j], g.ends[j], 101)
                sampled = grid.cell_value(inst, t, 0, xs) - lam * (xs - g.starts[j])
                assert upper[j] >= sampled.max() - 1e-9 * max(1.0, abs(upper[j]))


def test_slope_matches_finite_differences():
    for response in (HILL, {"kind": "exponential", "max_users": 800.0, "scale": 250.0},
                     {"kind": "logistic", "max_users": 900.0, "midpoint": 350.0, "width": 60.0}):
        inst = parse_instance(doc([cell("a", response)]))
        r = inst.cells[0].response
        x = np.linspace(10, 900, 25)
        numeric = (direct_users(r, x + 1e-3) - direct_users(r, x - 1e-3)) / 2e-3
        assert np.allclose(slope(r, x), numeric, rtol=1e-5, atol=1e-8)


def test_dp_with_nested_caps_matches_enumeration():
    rng = np.random.default_rng(3)
    leaves = [rng.uniform(0, 10, size=int(rng.integers(3, 7))) for _ in range(4)]
    caps = [(frozenset({0, 1}), 5), (frozenset({0, 1, 2}), 8)]
    for budget in range(0, 14):
        table = dp.solve_tree(leaves, caps, budget)
        best = max(
            sum(leaf[j] for leaf, j in zip(leaves, js))
            for js in itertools.product(*(range(len(leaf)) for leaf in leaves))
            if js[0] + js[1] <= 5 and js[0] + js[1] + js[2] <= 8 and sum(js) <= budget
        )
        assert table.values[budget] == pytest.approx(best)
        units: dict[int, int] = {}
        table.plan(budget, units)
        assert sum(leaves[i][j] for i, j in units.items()) == pytest.approx(best)
    assert not dp.is_laminar([frozenset({0, 1}), frozenset({1, 2})])


# ----------------------------------------------------------------------------- exact vs brute force


def _small(seed: int, objective: str = "users", caps: str | None = None, kinds: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    cells = []
    for i in range(3):
        response = {"kind": "hill", "max_users": float(rng.uniform(200, 900)), "half_spend": float(rng.uniform(150, 600)),
                    "shape": float(rng.uniform(1.2, 4))}
        if kinds and i == 1:
            response = {"kind": "exponential", "max_users": float(rng.uniform(200, 900)), "scale": float(rng.uniform(100, 500))}
        if kinds and i == 2:
            response = {"kind": "piecewise_linear", "points": [[100, 20], [300, float(rng.uniform(100, 300))], [700, 400]]}
        if kinds and i == 0 and seed % 2:
            response = {"kind": "logistic", "max_users": float(rng.uniform(200, 900)), "midpoint": float(rng.uniform(100, 500)),
                        "width": float(rng.uniform(20, 120))}
        cells.append(cell(f"c{i}", response, viral_k=float(rng.uniform(0, 0.5)), value_per_user=float(rng.uniform(0.5, 3)),
                          min_spend=float(rng.choice([0, 100])), max_spend=float(rng.choice([600, 900]))))
    d = doc(cells, budget=float(rng.choice([700, 1000, 1300])), objective=objective, step=50.0)
    if caps == "nested":
        d["caps"] = [{"id": "a", "cells": ["c0", "c1"], "max_spend": 600}]
    if caps == "crossing":
        d["caps"] = [{"id": "a", "cells": ["c0", "c1"], "max_spend": 600}, {"id": "b", "cells": ["c1", "c2"], "max_spend": 700}]
    if objective == "min_spend":
        d["target_users"] = float(rng.uniform(200, 900))
    return d


def _brute(inst) -> float | None:
    step = inst.step
    ranges = []
    for c in inst.cells:
        top = min(c.max_spend if c.max_spend is not None else inst.budget, inst.budget)
        ranges.append(np.arange(math.ceil(c.min_spend / step) * step, top + 1e-9, step))
    best = None
    for combo in itertools.product(*ranges):
        check = evaluate(inst, {"spend": {c.id: float(x) for c, x in zip(inst.cells, combo)}})
        if check.feasible and (best is None or (check.objective < best if inst.objective == "min_spend" else check.objective > best)):
            best = check.objective
    return best


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("objective,caps,kinds", [
    ("users", None, False), ("value", None, True), ("users", "nested", True), ("users", "crossing", False),
    ("min_spend", None, False), ("value", "crossing", True), ("min_spend", "nested", True),
])
def test_exact_equals_enumeration_on_step_grids(seed, objective, caps, kinds):
    inst = parse_instance(_small(seed, objective, caps, kinds))
    best = _brute(inst)
    result = solve(inst)
    if best is None:
        assert result.status is Status.INFEASIBLE
        return
    assert result.status is Status.OPTIMAL, result.message
    assert result.objective == pytest.approx(best, rel=1e-9, abs=1e-6)
    assert result.evaluation["feasible"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("objective", ["users", "value"])
def test_continuous_bound_is_valid_and_tight(seed, objective):
    """Two cells, no step: a dense scan of the split is the oracle."""
    rng = np.random.default_rng(10 + seed)
    cells = [cell(f"c{i}", {"kind": "hill", "max_users": float(rng.uniform(300, 900)), "half_spend": float(rng.uniform(200, 500)),
                            "shape": float(rng.uniform(1.5, 4))}, value_per_user=float(rng.uniform(1, 4))) for i in range(2)]
    inst = parse_instance(doc(cells, budget=700.0, objective=objective))
    xs = np.linspace(0, 700, 70_001)
    both = [grid.cell_value(inst, grid.terms(inst), i, xs) for i in range(2)]
    oracle = float(np.max(both[0] + np.maximum.accumulate(both[1])[::-1]))  # x0 + x1 <= budget
    result = solve(inst)
    assert result.bound >= oracle - 1e-6 * oracle
    assert result.objective >= oracle - 1e-5 * oracle
    assert result.gap <= 1e-4


def test_exact_beats_or_ties_slsqp_on_random_s_curves():
    wins = 0
    for seed in range(6):
        inst = parse_instance(generate(12, seed=seed))
        exact, base = solve(inst), solve(inst, method="slsqp")
        assert base.status is Status.FEASIBLE and base.bound is None
        assert exact.objective >= base.objective * (1 - 1e-9)
        assert exact.gap <= 1e-3
        wins += exact.objective >= 1.01 * base.objective
    assert wins >= 2


def test_min_spend_target_beyond_budget_is_proven_infeasible():
    inst = parse_instance(doc([cell("a"), cell("b")], budget=300.0, objective="min_spend", target_users=500))  # each alone reaches 327, both 655
    result = solve(inst)
    assert result.status is Status.INFEASIBLE and "target_users" in result.message


def test_marginal_value_matches_the_slope_of_the_optimum():
    inst = parse_instance(generate(6, seed=4))
    base = solve(inst).raise_for_status()
    bumped = solve(inst.model_copy(update={"budget": inst.budget * 1.002})).raise_for_status()
    finite = (bumped.objective - base.objective) / (inst.budget * 0.002)
    assert base.solution["marginal_value"] == pytest.approx(finite, rel=0.05)


def test_frontier_levels_agree_with_single_solves():
    inst = parse_instance(generate(8, seed=2, caps=True))
    budgets = [inst.budget * f for f in (0.25, 0.5, 1.0, 1.5)]
    rows = frontier(inst, budgets)
    assert [r["budget"] for r in rows] == budgets
    users = [r["users"] for r in rows]
    assert users == sorted(users)
    for r in rows:
        assert not r["violations"] and r["bound"] >= r["objective"] - 1e-9
        single = solve(inst.model_copy(update={"budget": r["budget"]}))
        assert r["objective"] >= single.bound * (1 - 1e-3) and single.objective >= r["bound"] * (1 - 1e-3) - 1e-9


def test_time_limit_and_options_are_honoured():
    inst = parse_instance(generate(20, seed=1))
    result = solve(inst, options=SolverOptions(time_limit_s=0.5))
    assert result.status.has_solution and result.bound is not None
    loose = solve(inst, options=SolverOptions(gap=1e-2))
    assert loose.status is Status.OPTIMAL and loose.gap <= 1e-2
    assert json.dumps(loose.to_dict())  # plain JSON


def test_without_a_time_limit_the_answer_does_not_depend_on_the_clock(monkeypatch):
    from optimizers.incentive_budget import exact

    inst = parse_instance(json.loads(EXAMPLE.read_text()))
    inst = inst.model_copy(update={"budget": inst.budget * 0.5})  # needs a second, finer round
    fast = solve(inst)
    clock = itertools.count(step=100.0)  # a machine where every round seems to take minutes
    monkeypatch.setattr(exact, "now", lambda: next(clock))
    slow = solve(inst)
    assert fast.status is slow.status is Status.OPTIMAL and fast.meta["rounds"] == slow.meta["rounds"] == 2
    assert slow.objective == fast.objective and slow.bound == fast.bound


# ----------------------------------------------------------------------------- command line

EXAMPLE = INSTANCES / "incentive_budget" / "q3-growth.json"
AB = INSTANCES / "incentive_budget" / "ab-tests.csv"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_solve_example():
    res = run("solve", EXAMPLE, "--format", "json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] in ("optimal", "feasible") and out["gap"] <= 1e-4
    assert set(out["solution"]) >= {"spend", "users", "marginal_value"}
    assert sum(out["solution"]["spend"].values()) <= 1_500_000 * (1 + 1e-9)
    table = run("solve", EXAMPLE)
    assert table.exit_code == 0 and "spend by cell" in table.stdout and "marginal value" in table.stdout
    slsqp = json.loads(run("solve", EXAMPLE, "--method", "slsqp", "--format", "json").stdout)
    assert slsqp["bound"] is None and slsqp["objective"] <= out["objective"] * (1 + 1e-9)


def test_cli_frontier(tmp_path):
    res = run("frontier", EXAMPLE, "--budgets", "500000:1500000:500000", "--format", "json", "--output", tmp_path / "f.json")
    assert res.exit_code == 0, res.stderr
    levels = json.loads(res.stdout)["levels"]
    assert [lv["budget"] for lv in levels] == [500_000, 1_000_000, 1_500_000]
    assert all(lv["marginal_value"] >= 0 and lv["gap"] <= 1e-3 for lv in levels)
    assert json.loads((tmp_path / "f.json").read_text())["levels"][0]["budget"] == 500_000
    assert "marginal value" in run("frontier", EXAMPLE, "--budgets", "400000,800000").stdout
    bad = run("frontier", EXAMPLE, "--budgets", "5:1:1")
    assert bad.exit_code == 2 and "--budgets" in bad.stderr


def test_cli_fit_writes_a_solvable_instance(tmp_path):
    target = tmp_path / "fitted.json"
    res = run("fit", AB, "--budget", "1500000", "--out", target, "--cap-at-tested")
    assert res.exit_code == 0, res.stderr
    assert "group_buy/lower_tier" in res.stdout and "95% CI" in res.stdout
    fitted = json.loads(target.read_text())
    assert fitted["problem"] == "incentive_budget" and len(fitted["cells"]) == 8
    assert all(c["max_spend"] == 600_000 for c in fitted["cells"])
    truth = {c["id"]: c["response"] for c in json.loads(EXAMPLE.read_text())["cells"]}
    group_buy = next(c for c in fitted["cells"] if c["id"] == "group_buy/lower_tier")["response"]
    assert group_buy["kind"] == "hill" and group_buy["half_spend"] == pytest.approx(truth["group_buy/lower_tier"]["half_spend"], rel=0.1)
    assert run("solve", target).exit_code == 0


def test_cli_bad_input_exit_2_and_infeasible_target_exit_3(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc([cell("a", viral_k=1.0, min_spend=700), cell("b", min_spend=600, max_spend=500)], budget=1000)))
    res = run("solve", bad)
    assert res.exit_code == 2 and "Traceback" not in res.stderr
    assert "cells[0].viral_k" in res.stderr and "min_spend 600 > max_spend 500" in res.stderr
    sums = tmp_path / "sums.json"
    sums.write_text(json.dumps(doc([cell("a", min_spend=700), cell("b", min_spend=600)], budget=1000)))
    assert "add up to 1,300, above the budget 1,000" in run("solve", sums).stderr
    target = tmp_path / "target.json"
    target.write_text(json.dumps(doc([cell("a"), cell("b")], budget=300.0, objective="min_spend", target_users=500)))
    res = run("solve", target)
    assert res.exit_code == 3 and "infeasible" in res.stdout
