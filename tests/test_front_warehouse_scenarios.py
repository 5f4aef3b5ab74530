"""Stock placement across scenarios: pre-sale stock, transfers, max_skus, overrides; the
L-shaped decomposition against the extensive form; evaluate() on every new rule; the value
of the stochastic solution."""

import json

import pytest

from models import evaluate, parse_instance
from models.errors import InstanceError
from models.front_warehouse import generate
from optimizers import SolverOptions, Status, solve
from optimizers.front_warehouse.stochastic import mean_value_instance
from tests.test_cli import run

NORMAL = {"id": "normal", "probability": 0.7, "demand_factor": 1.0}
PEAK = {"id": "peak", "probability": 0.3, "demand_factor": 2.5}


def _doc(case: str, seed: int = 0) -> dict:
    """Small instances, one per feature the decomposition must carry."""
    peak = dict(PEAK)
    kwargs: dict = {"lost_sale_cost": 40.0}
    if case == "presale+transfers":
        peak.update(presale_share=0.3, transfer_cost_per_unit=1.5, transfer_max_minutes=40,
                    demand_overrides=[{"sku": "sku-01", "factor": 4.0}], min_share_within_promise=0.6)
    elif case == "max_skus+no-depot":
        kwargs.update(max_skus=1, depot_cost_per_unit=None)
    elif case == "three-scenarios":
        peak["probability"] = 0.2
        kwargs["lost_sale_cost"] = None
    scenarios = [NORMAL, peak] + ([{"id": "weekend", "probability": 0.1, "demand_factor": 1.4}] if case == "three-scenarios" else [])
    return generate(4, 9, seed=seed, n_skus=2, side_km=12.0, max_minutes=45, rent_scale=0.2, min_share_within_promise=0.5, scenarios=scenarios, **kwargs)


CASES = ["plain", "presale+transfers", "max_skus+no-depot", "three-scenarios"]


@pytest.mark.parametrize("case", CASES)
def test_benders_agrees_with_the_extensive_form(case):
    inst = parse_instance(_doc(case))
    extensive = solve(inst, method="milp", options=SolverOptions(gap=1e-9))
    decomposed = solve(inst, method="benders", options=SolverOptions(gap=1e-9))
    assert extensive.status is Status.OPTIMAL and decomposed.status is Status.OPTIMAL, decomposed.message
    assert decomposed.objective == pytest.approx(extensive.objective, rel=1e-6)
    assert decomposed.bound <= decomposed.objective * (1 + 1e-9) and decomposed.bound >= extensive.objective * (1 - 1e-6)
    for result in (extensive, decomposed):
        assert result.evaluation["feasible"], result.evaluation["violations"][:3]
        assert result.evaluation["objective"] == pytest.approx(result.objective, rel=1e-6)


def test_benders_stopped_early_keeps_a_valid_bound():
    inst = parse_instance(_doc("presale+transfers", seed=3))
    exact = solve(inst, method="milp", options=SolverOptions(gap=1e-9)).objective
    early = solve(inst, method="benders", options=SolverOptions(time_limit_s=1.0))
    assert early.status in (Status.FEASIBLE, Status.OPTIMAL, Status.NO_SOLUTION)
    if early.bound is not None:
        assert early.bound <= exact * (1 + 1e-6)
    if early.objective is not None:
        assert early.objective >= exact * (1 - 1e-6) and early.evaluation["feasible"]


def test_benders_stopped_early_returns_a_plan_from_its_warm_start():
    inst = parse_instance(_doc("three-scenarios", seed=0))
    early = solve(inst, method="benders", options=SolverOptions(time_limit_s=1.0))
    assert early.status in (Status.FEASIBLE, Status.OPTIMAL) and early.evaluation["feasible"]


def test_value_of_the_stochastic_solution_is_never_negative():
    doc = _doc("plain", seed=2)
    doc.pop("service")  # the mean-demand plan can always fall back on the depot
    result = solve(parse_instance(doc), method="milp", options=SolverOptions(gap=1e-9))
    mean = result.meta["mean_plan"]
    assert mean["computed"] and mean["vss"] >= -1e-6 * result.objective
    assert mean["cost_in_scenarios"] == pytest.approx(result.objective + mean["vss"])


def test_mean_value_instance_has_the_expected_demand():
    inst = parse_instance(_doc("presale+transfers"))
    mean = mean_value_instance(inst)
    assert len(mean.scenarios) == 1
    zone = inst.zones[0]
    sku = "sku-02"
    expected = 0.7 * zone.demand[sku] + 0.3 * 2.5 * zone.demand[sku]
    assert mean.zones[0].demand[sku] == pytest.approx(expected)


def _solved(case: str) -> tuple:
    inst = parse_instance(_doc(case))
    result = solve(inst, method="milp", options=SolverOptions(gap=1e-9))
    assert result.evaluation["feasible"]
    return inst, result.solution


def test_evaluate_checks_presale_transfers_and_max_skus():
    inst, good = _solved("presale+transfers")
    presale = [f for f in good["flows"] if f.get("presale")]
    assert presale, "the peak should use pre-sale stock"
    # more pre-sale units than the pre-sale share of a zone's demand
    greedy = [dict(f, presale=True) if f["site"] not in ("depot", "lost") and f["scenario"] == "peak" else f for f in good["flows"]]
    assert any("pre-sale units delivered" in v for v in evaluate(inst, dict(good, flows=greedy)).violations)
    # pre-sale from the depot is not a thing
    bad = [dict(f, presale=True) if f["site"] == "depot" else f for f in good["flows"]]
    if any(f["site"] == "depot" for f in good["flows"]):
        assert any("only a site ships from pre-sale stock" in v for v in evaluate(inst, dict(good, flows=bad)).violations)
    # a transfer in a scenario that allows none, and a transfer to a closed site
    wrong = [{"from": "fw-001", "to": "fw-002", "sku": "sku-01", "scenario": "normal", "units": 1.0}]
    assert any("allows no transfer" in v for v in evaluate(inst, dict(good, transfers=wrong)).violations)
    closed = [s for s in ("fw-001", "fw-002", "fw-003", "fw-004") if s not in good["open_sites"]]
    if closed:
        src = good["open_sites"][0]
        link = [{"from": src, "to": closed[0], "sku": "sku-01", "scenario": "peak", "units": 1.0}]
        found = evaluate(inst, dict(good, transfers=link)).violations
        assert any("open sites only" in v or "allows no transfer" in v for v in found)
    # stock that does not cover a scenario's shipments
    thin = [dict(s, units=s["units"] / 3) for s in good["stock"]]
    assert any("but stocks" in v for v in evaluate(inst, dict(good, stock=thin)).violations)

    inst, good = _solved("max_skus+no-depot")
    site = good["open_sites"][0]
    extra = good["stock"] + [{"site": site, "sku": sku, "units": 1.0} for sku in ("sku-01", "sku-02")]
    assert any("max_skus is 1" in v for v in evaluate(inst, dict(good, stock=extra)).violations)


def test_evaluate_counts_presale_stock_in_the_volume():
    inst, good = _solved("presale+transfers")
    site = next(f["site"] for f in good["flows"] if f.get("presale"))
    volume = {k.id: k.unit_volume for k in inst.skus}
    stocked = sum(s["units"] * volume[s["sku"]] for s in good["stock"] if s["site"] == site)
    doc = inst.model_dump(exclude_none=True)
    doc["sites"] = [{**s, "capacity": stocked + 1e-3} if s["id"] == site else s for s in doc["sites"]]
    found = evaluate(parse_instance(doc), good).violations
    assert any(f"site '{site}': stock volume (with pre-sale stock)" in v for v in found), found


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda d: d["scenarios"][1].update(probability=0.5), "probabilities must sum to 1"),
        (lambda d: d["scenarios"][1].update(demand_overrides=[{"zone": "z-9999", "factor": 2}]), "scenarios[1].demand_overrides[0].zone"),
        (lambda d: d["scenarios"][1].update(demand_overrides=[{"sku": "tv", "factor": 2}]), "scenarios[1].demand_overrides[0].sku"),
        (lambda d: d["scenarios"][1].update(demand_overrides=[{"sku": "sku-01", "units": 2}]), "give `zone` and `sku`"),
        (lambda d: d["scenarios"][1].update(demand_overrides=[{"sku": "sku-01"}]), "exactly one of `factor` and `units`"),
        (lambda d: d["scenarios"][1].update(transfer_max_minutes=10), "set `transfer_cost_per_unit`"),
        (lambda d: d["scenarios"][1].update(presale_share=1.5), "scenarios[1].presale_share"),
        (lambda d: d["zones"][0]["demand"].update(tv=3), "zones[0].demand.tv: unknown sku"),
        (lambda d: d["depot"].update(cost_per_unit_by_sku={"tv": 3}), "depot.cost_per_unit_by_sku.tv"),
        (lambda d: d["scenarios"][1].update(min_share_within_promise=1.0) or [a.update(minutes=99) for a in d["arcs"] if a["zone"] == "z-0001"],
         "scenarios[1].min_share_within_promise"),
    ],
)
def test_bad_scenario_input_is_located(change, where):
    doc = _doc("plain")
    change(doc)
    with pytest.raises(InstanceError) as err:
        parse_instance(doc)
    assert where in str(err.value)


def test_promise_beyond_what_the_sites_can_hold_is_refused_with_numbers(tmp_path):
    doc = _doc("plain")
    doc["service"]["min_share_within_promise"] = 0.95
    doc["sites"] = [{**s, "capacity": 10.0} for s in doc["sites"]]
    path = tmp_path / "tight.json"
    path.write_text(json.dumps(doc))
    res = run("solve", path)
    assert res.exit_code == 2
    assert "within the promise needs stock volume" in res.stderr and "hold at most 40" in res.stderr


def test_cli_reports_scenarios_stock_and_vss(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps(_doc("presale+transfers")))
    res = run("solve", path)
    assert res.exit_code == 0, res.stderr
    for text in ("per scenario", "within promise", "stock (units) by site and SKU", "value of the stochastic solution"):
        assert text in res.stdout
