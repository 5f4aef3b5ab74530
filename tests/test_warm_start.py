"""Warm start from last week's plan: priced on this week's instance, never a worse answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from models import UsageError, evaluate, load_instance
from optimizers import SolverOptions, solve
from optimizers.warm_start import carry

INSTANCES = Path(__file__).resolve().parent.parent / "instances"


def this_week(inst, factor: float):
    """The same network with every zone's demand scaled."""
    zones = [z.model_copy(update={"demand": {k: v * factor for k, v in z.demand.items()}}) for z in inst.zones]
    return inst.model_copy(update={"zones": zones})


def test_last_weeks_network_is_repriced_on_this_weeks_demand_and_starts_the_location_method():
    last = load_instance(INSTANCES / "orlib/cap71.txt", input_format="orlib-cap")
    plan = solve(last, method="lagrangian").to_dict()
    now = this_week(last, 0.97)
    start, why_not = carry(now, plan, SolverOptions())
    assert start is not None, why_not
    assert not evaluate(now, start.solution).violations
    assert set(start.solution["open_sites"]) == set(plan["solution"]["open_sites"])
    result = solve(now, method="lagrangian", warm_start=plan)
    assert result.status.value == "optimal" and result.meta["warm_start"]["used"]
    assert result.objective <= start.objective * (1 + 1e-9)
    assert result.objective == pytest.approx(solve(now, method="lagrangian").objective, rel=1e-6)


def test_a_method_stopped_before_any_plan_returns_the_warm_start_plan(suburb_peak):
    inst, earlier = suburb_peak
    result = solve(inst, options=SolverOptions(time_limit_s=0.05), warm_start=earlier)
    assert result.status.has_solution, result.message
    assert result.objective <= earlier["objective"] * (1 + 1e-6)
    assert result.evaluation["feasible"]
    if result.meta["warm_start"]["returned"]:
        assert "warm-start plan" in result.message and result.objective == pytest.approx(result.meta["warm_start"]["objective"])


def test_benders_cuts_first_at_the_warm_start_plan(suburb_peak):
    inst, earlier = suburb_peak
    result = solve(inst, method="benders", warm_start=earlier, options=SolverOptions(time_limit_s=8))
    assert result.status.has_solution and result.meta["warm_start"]["used"]
    assert result.objective <= earlier["objective"] * (1 + 1e-6)


def test_fees_and_spend_carry_over_and_the_answer_is_never_worse():
    tiers = load_instance(INSTANCES / "membership_pricing/prime-tiers.json")
    fees = solve(tiers).to_dict()
    grown = tiers.model_copy(update={"segments": [s.model_copy(update={"size": s.size * (1.5 if k % 2 else 0.8)})
                                                  for k, s in enumerate(tiers.segments)]})
    start, _ = carry(grown, fees, SolverOptions())
    assert start is not None and start.solution["fees"] == fees["solution"]["fees"]
    result = solve(grown, warm_start=fees)
    assert result.status.value == "optimal" and result.objective >= start.objective * (1 - 1e-9)

    budget = load_instance(INSTANCES / "incentive_budget/q3-growth.json")
    spend = solve(budget).to_dict()
    bigger = budget.model_copy(update={"budget": budget.budget * 1.2})
    start, _ = carry(bigger, spend["solution"], SolverOptions())  # a bare solution works too
    assert start is not None and start.objective == pytest.approx(spend["objective"], rel=1e-9)
    result = solve(bigger, warm_start=spend)
    assert result.objective >= start.objective and result.meta["warm_start"]["used"]


def test_a_plan_that_no_longer_fits_is_not_used_and_the_result_says_why():
    budget = load_instance(INSTANCES / "incentive_budget/q3-growth.json")
    spend = solve(budget).to_dict()
    smaller = budget.model_copy(update={"budget": budget.budget * 0.5})
    result = solve(smaller, warm_start=spend)
    assert result.status.value == "optimal"
    assert result.meta["warm_start"] == {"used": False, "reason": "the earlier plan has no feasible counterpart on this instance"}
    users = load_instance(INSTANCES / "incentive_assignment/coupons-csv.json")
    result = solve(users, warm_start=solve(users).to_dict())
    assert result.meta["warm_start"]["used"] is False and "not used for incentive_assignment" in result.meta["warm_start"]["reason"]


def test_bad_warm_starts_are_usage_errors():
    town = load_instance(INSTANCES / "front_warehouse/town-12x60.json")
    with pytest.raises(UsageError, match="cannot start a front_warehouse"):
        solve(town, warm_start={"problem": "membership_pricing", "solution": {"fees": {}}})
    with pytest.raises(UsageError, match="expected a result document"):
        solve(town, warm_start=["not", "a", "plan"])  # type: ignore[arg-type]


def test_cli_warm_start_from_last_weeks_result(tmp_path):
    instance = str(INSTANCES / "front_warehouse/town-12x60.json")
    last = tmp_path / "last-week.json"
    assert CliRunner().invoke(app, ["solve", instance, "--output", str(last)]).exit_code == 0
    res = CliRunner().invoke(app, ["solve", instance, "--warm-start", str(last), "--format", "json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["meta"]["warm_start"]["used"] and doc["objective"] == pytest.approx(json.loads(last.read_text())["objective"], rel=1e-6)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    res = CliRunner().invoke(app, ["solve", instance, "--warm-start", str(broken)])
    assert res.exit_code == 2 and "broken.json: line 1" in res.stderr
