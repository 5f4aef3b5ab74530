"""Membership tier pricing: located input errors, the MILP and the fee-box branch and bound
against the enumeration oracle on seeded random menus, published optima of the envy-free
pricing benchmark, and evaluate() catching wrong fees and wrong choices."""

import copy
import csv
import itertools
import json

import numpy as np
import pytest

from models import InstanceError, evaluate, load_instance, parse_instance
from models.membership_pricing import generate, market
from optimizers import SolverOptions, Status, backend_info, solve
from optimizers.membership_pricing import enumeration
from optimizers.membership_pricing.fees import greatest_fees
from tests.conftest import INSTANCES

ENVYFREE = INSTANCES / "envyfree"
EXAMPLE = INSTANCES / "membership_pricing" / "prime-tiers.json"
INSTALLED = [b.name for b in backend_info() if b.installed]


def optima() -> dict[str, dict[str, str]]:
    with open(ENVYFREE / "OPTIMA.tsv", newline="") as fh:
        return {r["instance"]: r for r in csv.DictReader(fh, delimiter="\t")}


def doc() -> dict:
    return {
        "problem": "membership_pricing", "schema_version": 1, "name": "two-tiers",
        "tiers": [{"id": "silver", "min_fee": 0, "max_fee": 300}, {"id": "gold", "min_fee": 0, "max_fee": 600}],
        "segments": [
            {"id": "light", "size": 1000, "willingness_to_pay": {"silver": 120, "gold": 150},
             "benefit_cost": {"silver": 20, "gold": 40}, "margin_uplift": {"silver": 30, "gold": 35}},
            {"id": "heavy", "size": 300, "willingness_to_pay": {"silver": 200, "gold": 330},
             "benefit_cost": {"silver": 80, "gold": 150}, "margin_uplift": {"silver": 40, "gold": 90},
             "retention": {"silver": 0.8, "gold": 0.9}},
        ],
        "discount_rate": 0.1, "choice": {"model": "max_surplus"}, "fee_order": ["silver", "gold"], "min_fee_gap": 20,
    }


def problems_of(document: dict) -> list[str]:
    with pytest.raises(InstanceError) as info:
        parse_instance(document)
    return [str(p) for p in info.value.problems]


# ----------------------------------------------------------------------------- input errors


@pytest.mark.parametrize(
    "mutate, where, words",
    [
        (lambda d: d["tiers"][1].update(min_fee=700), "tiers[1].max_fee", ["600", "700"]),
        (lambda d: d["segments"][1]["retention"].update(gold=1.0), "segments[1].retention.gold", ["less than 1"]),
        (lambda d: d["segments"][0]["retention"] if False else d["segments"][0].update(retention={"silver": -0.1}), "segments[0].retention.silver", ["greater than or equal to 0"]),
        (lambda d: d["segments"][1]["willingness_to_pay"].update(platinum=500), "segments[1].willingness_to_pay.platinum",
         ["unknown tier 'platinum'", "silver, gold"]),
        (lambda d: d["segments"][0]["benefit_cost"].update(bronze=1), "segments[0].benefit_cost.bronze", ["unknown tier"]),
        (lambda d: d.update(fee_order=["silver", "platinum"]), "fee_order[1]", ["unknown tier 'platinum'"]),
        (lambda d: d.update(fee_order=["silver", "silver"]), "fee_order[1]", ["twice"]),
        (lambda d: d["tiers"].append(dict(d["tiers"][0])), "tiers[2].id", ["duplicate id 'silver'"]),
        (lambda d: d.update(choice={"model": "mnl"}), "choice.price_sensitivity", ["required"]),
        (lambda d: d.update(choice={"model": "logit"}), "choice.model", ["max_surplus"]),
        (lambda d: d.update(discount_rate=-0.1), "discount_rate", ["-0.1"]),
        (lambda d: d.update(utility_tolerance=-1), "utility_tolerance", ["-1"]),
        (lambda d: d["tiers"][0].update(fee_step=0), "tiers[0].fee_step", ["greater than 0"]),
        (lambda d: d["segments"][0].update(sizee=3), "segments[0].sizee", ["did you mean 'size'"]),
    ],
)
def test_input_errors_are_located(mutate, where, words):
    d = doc()
    mutate(d)
    found = problems_of(d)
    hits = [p for p in found if p.startswith(where + ":")]
    assert hits, found
    assert all(w in hits[0] for w in words), hits


def test_several_mistakes_reported_together():
    d = doc()
    d["tiers"][1]["min_fee"] = 700
    d["segments"][1]["retention"]["gold"] = 1.2
    d["segments"][1]["willingness_to_pay"]["platinum"] = 500
    d["fee_order"] = ["silver", "platinum"]
    found = problems_of(d)
    assert len(found) == 4, found
    assert "segments[1].willingness_to_pay.platinum: unknown tier 'platinum' (tiers: silver, gold)" in found


def test_impossible_fee_order_quotes_the_numbers():
    d = doc()
    d["tiers"][0].update(min_fee=300, max_fee=400)
    d["tiers"][1].update(max_fee=300)
    found = problems_of(d)
    assert found == ["fee_order: fee_order silver < gold with min_fee_gap 20 needs gold's fee >= 320 but gold.max_fee is 300 "
                     "(the two can never both be offered)"], found


def test_bad_input_exits_2_from_the_loader(tmp_path):
    d = doc()
    d["tiers"][0]["max_fee"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(InstanceError) as info:
        load_instance(path)
    assert any(p.where == "tiers[0].max_fee" for p in info.value.problems)


# ----------------------------------------------------------------------------- MILP vs oracle

VARIANTS = {
    "plain": {},
    "gap+fixed": dict(min_fee_gap=30, fixed_cost=3000),
    "grid+must": dict(fee_step=20, must_offer=1, retention_by_tier=False),
    "tolerance": dict(utility_tolerance=8, fee_order=False, costs=False),
    "tolerance+gap+grid": dict(utility_tolerance=5, min_fee_gap=15, fee_step=10),
    "revenue": dict(costs=False, retention=False, fee_order=False, integer_values=True),
    "two-must+gap": dict(must_offer=2, min_fee_gap=60, max_fee=200),
}


def variant(name: str, seed: int) -> dict:
    d = generate(3, 5, seed=seed, **VARIANTS[name])
    if seed % 3 == 0:  # a positive minimum fee: some segments can never join some tiers
        for tier in d["tiers"]:
            tier["min_fee"] = 30.0
    return d


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("seed", range(6))
def test_milp_equals_enumeration(name, seed):
    inst = parse_instance(variant(name, seed))
    exact = solve(inst, method="enumerate")
    result = solve(inst, method="milp")
    assert_matches_oracle(inst, result, exact)


def assert_matches_oracle(inst, result, exact):
    """Same status as the enumeration; when optimal, the same profit, proven, re-checked."""
    assert result.status is exact.status, (result.message, exact.message)
    if exact.status is Status.OPTIMAL:
        assert result.objective == pytest.approx(exact.objective, rel=1e-7, abs=1e-6)
        check = evaluate(inst, result.solution)
        assert check.feasible, check.violations
        assert check.objective == pytest.approx(result.objective, rel=1e-9, abs=1e-9)
        assert result.gap <= 1e-6 and result.bound >= result.objective


def box_instance(seed: int) -> dict:
    """A seeded small menu on a fee grid with every option of the model drawn at random."""
    rng = np.random.default_rng(500 + seed)
    step = float(rng.choice([1, 5, 7.5, 10, 20, 25]))
    d = generate(
        int(rng.integers(1, 5)),
        int(rng.integers(2, 6)),
        seed=seed,
        max_fee=float(rng.choice([100, 200, 300])),
        fee_step=step,
        fixed_cost=float(rng.choice([0, 0, 2000, 20000])),
        retention=bool(rng.random() < 0.7),
        retention_by_tier=bool(rng.random() < 0.5),
        costs=bool(rng.random() < 0.7),
        fee_order=bool(rng.random() < 0.6),
        min_fee_gap=float(rng.choice([0, 0, 10, 30])),
        must_offer=int(rng.choice([0, 0, 1, 2])),
        utility_tolerance=float(rng.choice([0, 0, 0, 3, 8])),
        integer_values=bool(rng.random() < 0.5),  # integer WTP on integer grids: exact ties
    )
    if rng.random() < 0.3:  # tighter, shifted ranges: some segments can never join some tiers
        for tier in d["tiers"]:
            tier["min_fee"] = float(rng.choice([0, 5, 20]))
            tier["max_fee"] = tier["min_fee"] + step * int(rng.integers(3, 40))
    return d


@pytest.mark.parametrize("seed", range(60))
def test_boxes_equals_enumeration(seed):
    for draw in range(seed, seed + 10_000, 1000):  # the next draw when this one is refused before solving
        try:
            inst = parse_instance(box_instance(draw))  # (an impossible must_offer chain: covered elsewhere)
            break
        except InstanceError:
            continue
    exact = solve(inst, method="enumerate")
    result = solve(inst)  # the default sends fee grids to boxes
    assert result.meta["dispatched_to"] == "boxes"
    assert_matches_oracle(inst, result, exact)


def test_boxes_bounds_are_valid_on_restricted_vectors():
    # the bound covers every fee vector of the box whose offered tiers are all joined (or must_offer) and obey fee_order
    from models.membership_pricing import order_violations, simulate
    from optimizers.membership_pricing.boxes import FeeBoxes

    rng = np.random.default_rng(11)
    checked = 0
    for seed in range(8):
        try:
            inst = parse_instance(box_instance(seed))
        except InstanceError:
            continue
        mk = market(inst)
        fb = FeeBoxes(mk)
        T = len(mk.tier_ids)
        for _ in range(15):
            a, b = rng.integers(0, fb.top + 1), rng.integers(0, fb.top + 1)
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            points = fb.vectors(lo, hi)
            if len(points) > 300:
                continue
            values = fb.exact(points)
            best = -np.inf
            for idx, value in zip(points, values):
                fee = fb.fees(idx[None])[0]
                on = ~np.isnan(fee)
                joined = np.zeros(T, bool)
                joined[[p for p in simulate(mk, fee) if p is not None]] = True
                if np.all(joined[on] | mk.must_offer[on]) and not order_violations(mk, fee, on):
                    best = max(best, value)
            plo, phi = lo[None].copy(), hi[None].copy()
            bound = fb.bounds(plo, phi)[0][0] if fb.propagate(plo, phi)[0] else -np.inf
            assert bound >= best - 1e-9 * max(1.0, abs(best)), (seed, lo, hi)
            checked += 1
    assert checked > 50


def test_boxes_time_limit_keeps_an_honest_bound():
    inst = parse_instance(generate(5, 40, seed=2, max_fee=300.0, fee_step=3, min_fee_gap=10, fixed_cost=20_000))
    full = solve(inst, method="boxes")
    assert full.status is Status.OPTIMAL
    cut = solve(inst, method="boxes", options=SolverOptions(time_limit_s=0.05))
    assert cut.status in (Status.FEASIBLE, Status.OPTIMAL) and cut.evaluation["feasible"]
    assert cut.objective <= full.objective * (1 + 1e-9) and cut.bound >= full.objective * (1 - 1e-9)
    if cut.status is Status.FEASIBLE:
        assert "time limit" in cut.message


def test_default_method_dispatches_by_shape():
    grid_inst = parse_instance(generate(3, 5, seed=1, fee_step=10))
    plain = parse_instance(generate(3, 5, seed=1))
    logit = parse_instance(generate(2, 2, seed=1, fee_step=50, choice="mnl"))
    assert solve(grid_inst).meta["dispatched_to"] == "boxes"
    assert solve(plain).meta["dispatched_to"] == "milp"
    assert solve(logit).meta["dispatched_to"] == "mnl"
    with pytest.raises(Exception, match="fee_step"):
        solve(plain, method="boxes")
    # the compact MILP stays available by name on grids, and agrees
    assert solve(grid_inst, method="milp").objective == pytest.approx(solve(grid_inst).objective, rel=1e-7)


def test_batch_profit_curve_equals_evaluate_curve():
    from models.membership_pricing import profit_curve
    from optimizers.membership_pricing.grid import surplus_curve

    for seed in range(4):
        inst = parse_instance(generate(3, 8, seed=seed, fee_step=10, min_fee_gap=20, utility_tolerance=5 * (seed % 2), must_offer=seed % 2,
                                       fixed_cost=1000))
        fees = solve(inst).solution["fees"]
        for tier in (t.id for t in inst.tiers):
            slow, fast = profit_curve(inst, fees, tier), surplus_curve(market(inst), fees, tier)
            assert [p["fee"] for p in slow] == [p["fee"] for p in fast]
            assert [p["feasible"] for p in slow] == [p["feasible"] for p in fast]
            assert [p["profit"] for p in fast] == pytest.approx([p["profit"] for p in slow], rel=1e-9, abs=1e-9)


def test_must_offer_chain_quotes_the_numbers():
    # each consecutive pair leaves room for the gap, but three must_offer tiers in a row do not
    d = doc()
    d["tiers"] = [{"id": n, "min_fee": 0, "max_fee": hi, "must_offer": True} for n, hi in (("silver", 50), ("gold", 100), ("platinum", 130))]
    d["fee_order"], d["min_fee_gap"] = ["silver", "gold", "platinum"], 70
    d["segments"] = [{"id": "only", "size": 10, "willingness_to_pay": {"silver": 45}}]
    found = problems_of(d)
    assert found == ["fee_order: must_offer tiers silver < gold < platinum with min_fee_gap 70 need platinum's fee >= 140 "
                     "but platinum.max_fee is 130"], found
    d["min_fee_gap"] = 65  # now feasible, and only as 0, 65, 130: the chain leaves silver no room above 0
    result = solve(parse_instance(d))
    assert result.status is Status.OPTIMAL and result.solution["fees"] == {"silver": 0.0, "gold": 65.0, "platinum": 130.0}


def test_infeasible_case_both_methods_say_infeasible():
    # two must_offer tiers at fixed fees leave the only segment surplus 20 and 18: with
    # utility_tolerance 5 it neither prefers one by 5 nor may it stay out (surplus > 5)
    d = doc()
    d["tiers"] = [{"id": "silver", "min_fee": 50, "max_fee": 50, "must_offer": True},
                  {"id": "gold", "min_fee": 60, "max_fee": 60, "must_offer": True}]
    d["fee_order"], d["utility_tolerance"] = [], 5
    d["segments"] = [{"id": "only", "size": 10, "willingness_to_pay": {"silver": 70, "gold": 78}}]
    inst = parse_instance(d)
    assert solve(inst, method="enumerate").status is Status.INFEASIBLE
    assert solve(inst).status is Status.INFEASIBLE
    found = evaluate(inst, {"fees": {"silver": 50, "gold": 60}}).violations
    assert any("not robust" in v for v in found), found
    d["segments"][0]["willingness_to_pay"]["gold"] = 90  # gold by 10: robust
    assert solve(parse_instance(d)).objective == pytest.approx(600)


@pytest.mark.parametrize("backend", [b for b in INSTALLED if b in ("scip", "cbc", "cpsat")])
def test_backends_agree(backend):
    for name, seed in (("gap+fixed", 1), ("grid+must", 2), ("revenue", 4)):
        if backend == "cpsat" and name != "revenue":
            continue  # fractional data: see test_cpsat_refuses_fractional_data
        inst = parse_instance(variant(name, seed))
        reference = solve(inst)
        other = solve(inst, backend=backend)
        assert other.status is Status.OPTIMAL, other.message
        assert other.objective == pytest.approx(reference.objective, rel=1e-6)


def test_cpsat_refuses_fractional_data():
    if "cpsat" not in INSTALLED:
        pytest.skip("ortools not installed")
    inst = parse_instance(variant("plain", 1))
    with pytest.raises(Exception, match="pure-integer"):
        solve(inst, backend="cpsat")


def test_enumeration_refuses_large_instances():
    inst = parse_instance(generate(5, 12, seed=1))
    with pytest.raises(Exception, match="assignments"):
        solve(inst, method="enumerate")


def test_greatest_fees_is_the_best_for_its_assignment():
    inst = parse_instance(variant("gap+fixed", 3))
    mk = market(inst)
    result = solve(inst)
    picks = [None if c is None else mk.tier_ids.index(c) for c in result.solution["choices"].values()]
    fee = greatest_fees(mk, picks)
    for t, tier in enumerate(mk.tier_ids):
        if tier in result.solution["fees"]:
            assert fee[t] == pytest.approx(result.solution["fees"][tier])
            raised = dict(result.solution["fees"], **{tier: fee[t] + 0.5})  # any higher fee breaks a rule or loses the segment
            check = evaluate(inst, dict(result.solution, fees=raised))
            assert not check.feasible or check.objective <= result.objective + 1e-6


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_simulates_choices_and_lifetime_profit():
    inst = parse_instance(doc())
    # silver 100, gold 200: light: surplus 20 vs -50 -> silver; heavy: 100 vs 130 -> gold
    check = evaluate(inst, {"fees": {"silver": 100, "gold": 200}})
    assert check.feasible, check.violations
    w_gold = 1.1 / (1.1 - 0.9)
    expect = 1000 * (100 - 20 + 30) + 300 * w_gold * (200 - 150 + 90)
    assert check.objective == pytest.approx(expect)
    assert check.details["tiers"]["gold"]["members"] == 300
    assert check.details["segments"]["heavy"]["break_even_fee"]["gold"] == pytest.approx(60)


def test_evaluate_catches_wrong_fees_and_choices():
    inst = parse_instance(variant("grid+must", 1))
    good = solve(inst).solution
    assert evaluate(inst, good).feasible
    tier = next(iter(good["fees"]))
    off_grid = dict(good, fees={**good["fees"], tier: good["fees"][tier] + 7})
    assert any("off the fee grid" in v for v in evaluate(inst, off_grid).violations)
    too_high = dict(good, fees={**good["fees"], tier: 10_000})
    assert any("above max_fee" in v for v in evaluate(inst, too_high).violations)
    seg, choice = next((s, c) for s, c in good["choices"].items() if c is not None)
    other = next(t for t in good["fees"] if t != choice) if len(good["fees"]) > 1 else None
    wrong = dict(good, choices={**good["choices"], seg: other})
    assert any(v.startswith(f"choices.{seg}: reported") for v in evaluate(inst, wrong).violations)
    members = dict(good, members={t: m + 1 for t, m in good["members"].items()})
    assert any(v.startswith("members.") for v in evaluate(inst, members).violations)
    must = next(t.id for t in inst.tiers if t.must_offer)
    dropped = dict(good, fees={t: f for t, f in good["fees"].items() if t != must})
    assert any("must_offer" in v for v in evaluate(inst, dropped).violations)


def test_evaluate_checks_fee_order_on_offered_tiers_only():
    d = doc()
    d["min_fee_gap"] = 50
    inst = parse_instance(d)
    # light joins silver (surplus 20 vs 10), heavy gold (190 vs 100): both offered, 40 apart
    found = evaluate(inst, {"fees": {"silver": 100, "gold": 140}}).violations
    assert found == ["fee_order: gold (fee 140) must be at least min_fee_gap 50 above silver (fee 100)"], found
    # gold at 90 draws everyone: silver counts as unoffered and its fee is not ordered
    assert evaluate(inst, {"fees": {"silver": 100, "gold": 90}}).feasible
    # gold priced out (nobody joins it): it counts as unoffered, its fee is not ordered
    assert evaluate(inst, {"fees": {"silver": 250, "gold": 590}}).feasible


def test_ties_go_to_the_seller():
    d = doc()
    d["fee_order"], d["min_fee_gap"] = [], 0
    inst = parse_instance(d)
    # heavy: silver surplus 0 at fee 200 (tie with staying out); the seller may count it in
    fees = {"silver": 200}
    assert evaluate(inst, {"fees": fees, "choices": {"light": None, "heavy": "silver"}}).feasible
    assert evaluate(inst, {"fees": fees, "choices": {"light": None, "heavy": None}}).feasible
    assert not evaluate(inst, {"fees": fees, "choices": {"light": "silver", "heavy": "silver"}}).feasible


def test_utility_tolerance_flags_fees_that_are_not_robust():
    d = doc()
    d["utility_tolerance"] = 10
    inst = parse_instance(d)
    # heavy: silver surplus 100, gold surplus 105: prefers gold by only 5
    found = evaluate(inst, {"fees": {"silver": 100, "gold": 225}}).violations
    assert any("not robust" in v for v in found), found


def test_mnl_probabilities_in_evaluate():
    d = doc()
    d["choice"] = {"model": "mnl", "price_sensitivity": 0.05}
    inst = parse_instance(d)
    check = evaluate(inst, {"fees": {"silver": 100, "gold": 200}})
    assert check.feasible
    members = check.details["tiers"]["silver"]["members"] + check.details["tiers"]["gold"]["members"]
    assert 0 < members < 1300
    with pytest.raises(Exception, match="max_surplus"):
        solve(inst, method="enumerate")
    result = solve(inst)  # the default method hands logit choice to the mnl method
    assert result.status is Status.OPTIMAL and result.meta["dispatched_to"] == "mnl", result.message


# ----------------------------------------------------------------------------- envy-free benchmark

FAST = ["c-n=100-c=19-p=7-o=8-l=1-h=100-d=0.25.0", "c-n=100-c=19-p=7-o=8-l=1-h=100-d=0.25.5"]  # about 2 s each


def envyfree_path(instance: str):
    return ENVYFREE / optima()[instance]["path"]


def test_envyfree_reader_maps_consumers_and_items(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("2 3 4\n0 0 10\n0 2 7.5\n1 0 4\n1 1 6\n")
    inst = load_instance(path, input_format="envyfree")
    assert [t.id for t in inst.tiers] == ["i0", "i1", "i2"] and [t.max_fee for t in inst.tiers] == [10, 6, 7.5]
    assert inst.segments[0].willingness_to_pay == {"i0": 10, "i2": 7.5} and inst.segments[1].size == 1
    result = solve(inst)
    assert result.objective == pytest.approx(solve(inst, method="enumerate").objective)
    assert result.objective == pytest.approx(16)  # i0 at 10 to consumer 0, i1 at 6 to consumer 1


@pytest.mark.parametrize(
    "text, where",
    [("2 3\n", "line 1"), ("2 3 2\n0 0 1\n", "end of file"), ("2 3 1\n0 5 1\n", "line 2"), ("2 3 1\n0 0 x\n", "line 2"),
     ("2 3 1\n0 0 1\n1 1 1\n", "line 3"), ("2 3 2\n0 0 1\n0 0 2\n", "line 3"), ("2 3 1\n0 0 -1\n", "line 2")],
)
def test_envyfree_reader_errors_are_located(tmp_path, text, where):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InstanceError) as info:
        load_instance(path, input_format="envyfree")
    assert info.value.problems[0].where == where, info.value.problems


def test_every_shipped_envyfree_file_is_listed():
    files = {p.relative_to(ENVYFREE).as_posix() for p in ENVYFREE.glob("*/*.txt")}
    assert files == {r["path"] for r in optima().values()} and len(files) == 70


@pytest.mark.parametrize("instance", FAST)
def test_envyfree_published_optimum(instance):
    row = optima()[instance]
    inst = load_instance(envyfree_path(instance), input_format="envyfree")
    result = solve(inst, options=SolverOptions(time_limit_s=120))
    assert result.status is Status.OPTIMAL, result.message
    # CPLEX proved these within 1e-4: the optimum lies between the best known revenue and the bound
    # (the table prints bounds with 6 significant digits: 34075.9 for 34075.9321)
    assert float(row["best_known_revenue"]) - 1e-3 <= result.objective <= max(float(row["best_bound"]) + 0.05, float(row["best_known_revenue"]))
    assert result.evaluation["feasible"]


@pytest.mark.slow
@pytest.mark.parametrize("instance", ["n-n=100-h=3-d=8-m=10.0", "n-n=100-h=3-d=8-m=10.8", "rc-n=100.0"])  # 5-10 s each
def test_envyfree_published_optimum_slow(instance):
    test_envyfree_published_optimum(instance)


# ----------------------------------------------------------------------------- example, fuzz


def test_example_solves_with_adverse_selection_visible():
    inst = load_instance(EXAMPLE)
    result = solve(inst)
    assert result.status is Status.OPTIMAL and result.evaluation["feasible"]
    assert set(result.solution["fees"]) <= {"silver", "gold", "platinum"}
    exact = solve(inst, method="enumerate") if enumeration.count(inst) <= 20_000 else None
    if exact is not None:
        assert result.objective == pytest.approx(exact.objective, rel=1e-7)
    curves = result.solution["profit_curve"]
    assert set(curves) == set(result.solution["fees"]) and all(len(points) >= 5 for points in curves.values())
    # every feasible point of a curve is a solution: none may beat the optimum
    assert max(p["profit"] for points in curves.values() for p in points if p["feasible"]) <= result.objective * (1 + 1e-9)
    heavy = result.solution["segments"]["heavy-shipper"]
    assert heavy["choice"] == "platinum" and heavy["break_even_fee"]["platinum"] == pytest.approx(180)
    assert sum(t["lifetime_profit"] for t in result.solution["tiers"].values()) == pytest.approx(result.objective)


def test_mutated_documents_fail_only_with_located_problems():
    import random

    rng = random.Random(5)
    base = doc()
    junk = [None, -1, 1.5, "gold", "", [], {}, {"gold": -3}, {"platinum": 1}, float("nan"), True, 10**12]
    places = []

    def walk(node, path):
        if path:
            places.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(base, ())
    for _ in range(300):
        d = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(places)
            parent = d
            try:
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = rng.choice(junk)
            except (KeyError, IndexError, TypeError):
                continue
        try:
            parse_instance(json.loads(json.dumps(d, allow_nan=True)))
        except InstanceError as exc:
            assert exc.problems and all(str(p) for p in exc.problems)


# ----------------------------------------------------------------------------- mnl and grid search

MNL_VARIANTS = {
    "plain": {},
    "order+gap": dict(min_fee_gap=40),
    "fixed+must": dict(fixed_cost=40_000, must_offer=1, fee_order=False),
    "steep": dict(price_sensitivity=0.3, retention_by_tier=False),
}


def mnl_instance(name: str, seed: int, n_tiers: int = 3, n_segments: int = 3, step: float = 50.0):
    d = generate(n_tiers, n_segments, seed=seed, choice="mnl", max_fee=250.0, fee_step=step,
                 **({"price_sensitivity": 0.05} | MNL_VARIANTS[name]))
    return parse_instance(d)


def brute_force(inst) -> tuple[float, dict]:
    """Every fee combination on the tiers' fee_step grids (and 'not offered'), judged by evaluate()."""
    mk = market(inst)
    options = []
    for t in range(len(mk.tier_ids)):
        fees = [float(mk.min_fee[t] + k * mk.step[t]) for k in range(int((mk.max_fee[t] - mk.min_fee[t]) / mk.step[t] + 1e-9) + 1)]
        options.append(fees if mk.must_offer[t] else fees + [None])
    best, argbest = -float("inf"), {}
    for combo in itertools.product(*options):
        fees = {mk.tier_ids[t]: f for t, f in enumerate(combo) if f is not None}
        check = evaluate(inst, {"fees": fees})
        if check.feasible and check.objective > best:
            best, argbest = check.objective, fees
    return best, argbest


@pytest.mark.parametrize("name", list(MNL_VARIANTS))
@pytest.mark.parametrize("seed, n_tiers, n_segments", [(0, 2, 2), (1, 3, 2), (2, 3, 3), (3, 2, 4), (4, 3, 4)])
def test_mnl_equals_brute_force_on_grids(name, seed, n_tiers, n_segments):
    inst = mnl_instance(name, seed, n_tiers, n_segments)
    best, _ = brute_force(inst)
    result = solve(inst, method="mnl")
    assert result.status is Status.OPTIMAL, result.message
    assert result.objective == pytest.approx(best, rel=1e-9)
    assert result.bound >= result.objective and result.gap <= 1e-6
    assert result.evaluation["feasible"] and result.evaluation["objective"] == pytest.approx(result.objective, rel=1e-12)
    assert "fee grid" in result.message


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("choice", ["max_surplus", "mnl"])
def test_grid_search_equals_brute_force(seed, choice):
    inst = mnl_instance("order+gap", seed) if choice == "mnl" else parse_instance(generate(3, 3, seed=seed, max_fee=250.0, fee_step=50.0,
                                                                                                 min_fee_gap=40, fixed_cost=5000))
    best, _ = brute_force(inst)
    result = solve(inst, method="grid_search")
    assert result.status is Status.FEASIBLE and result.bound is None
    assert result.objective == pytest.approx(best, rel=1e-9)
    assert result.evaluation["feasible"]


@pytest.mark.parametrize("seed", range(4))
def test_grid_search_equals_milp_on_step_grids(seed):
    # with a fee_step the grid is the whole domain: the exhaustive baseline must reach the MILP optimum
    inst = parse_instance(generate(3, 6, seed=seed, max_fee=200.0, fee_step=20.0, min_fee_gap=20, fixed_cost=3000))
    exact, boxes, base = solve(inst, method="milp"), solve(inst, method="boxes"), solve(inst, method="grid_search")
    assert exact.status is Status.OPTIMAL and boxes.status is Status.OPTIMAL
    assert base.objective == pytest.approx(exact.objective, rel=1e-9)
    assert boxes.objective == pytest.approx(exact.objective, rel=1e-9)


def test_grid_search_refuses_large_grids():
    inst = parse_instance(generate(5, 4, seed=0, max_fee=300.0, fee_step=3.0))
    with pytest.raises(Exception, match=r"fee combinations on the grid .* more than the limit 5,000,000"):
        solve(inst, method="grid_search")


def test_mnl_box_bounds_are_valid():
    from optimizers.membership_pricing.grid import grids
    from optimizers.membership_pricing.mnl import GridBoxes

    rng = np.random.default_rng(3)
    for seed in range(4):
        inst = mnl_instance("order+gap" if seed % 2 else "fixed+must", seed, 3, 4)
        mk = market(inst)
        gb = GridBoxes(mk, grids(mk))
        for _ in range(20):
            a, b = rng.integers(0, gb.top + 1), rng.integers(0, gb.top + 1)
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            points = np.array(list(itertools.product(*[range(lo[t], hi[t] + 1) for t in range(3)])))
            exact = gb.exact(points).max()
            bound = gb.bounds(lo[None], hi[None])[0]
            assert bound >= exact - 1e-9 * max(1.0, abs(exact)), (lo, hi)
            if (lo == hi).all() and exact > -np.inf:
                assert bound == pytest.approx(exact, rel=1e-9)


def fine_search(inst) -> float:
    """A numerical search for one segment with continuous fees (no fee_order): L-BFGS-B from
    seeded random starts on every menu, judged by evaluate()."""
    from scipy.optimize import minimize

    mk = market(inst)
    rng = np.random.default_rng(0)
    T = len(mk.tier_ids)
    best = 0.0 if not mk.must_offer.any() else -float("inf")
    for r in range(1, T + 1):
        for menu in itertools.combinations(range(T), r):
            if any(mk.must_offer[t] and t not in menu for t in range(T)):
                continue

            def value(p, menu=menu):
                return evaluate(inst, {"fees": {mk.tier_ids[t]: float(f) for t, f in zip(menu, p)}}).objective

            scale = max(1.0, abs(value(mk.max_fee[list(menu)])))
            for _ in range(4):
                x0 = rng.uniform(mk.min_fee[list(menu)], mk.max_fee[list(menu)])
                res = minimize(lambda p, scale=scale: -value(p) / scale, x0, method="L-BFGS-B", bounds=list(zip(mk.min_fee[list(menu)], mk.max_fee[list(menu)])),
                               options={"ftol": 1e-15, "gtol": 1e-10})
                best = max(best, value(np.clip(res.x, mk.min_fee[list(menu)], mk.max_fee[list(menu)])))
    return best


@pytest.mark.parametrize("seed, max_fee", [(0, 300.0), (1, 300.0), (2, 90.0), (3, 60.0), (4, 300.0)])
def test_mnl_one_segment_continuous_matches_fine_search(seed, max_fee):
    d = generate(3, 1, seed=seed, choice="mnl", price_sensitivity=0.04, max_fee=max_fee, fee_order=False, fixed_cost=1000 * seed)
    if seed == 4:
        d["tiers"][1]["must_offer"] = True
    inst = parse_instance(d)
    result = solve(inst)
    assert result.status is Status.OPTIMAL and result.evaluation["feasible"], result.message
    assert "equal adjusted markup" in result.message
    found = fine_search(inst)
    assert result.objective >= found * (1 - 1e-9)
    assert result.objective == pytest.approx(found, rel=1e-6)


def test_mnl_one_segment_equal_adjusted_markup():
    inst = parse_instance(generate(3, 1, seed=1, choice="mnl", price_sensitivity=0.04, max_fee=1000.0, fee_order=False))
    result = solve(inst, method="mnl")
    mk = market(inst)
    fees = result.solution["fees"]
    assert result.meta["menus_constrained"] == 0 and len(fees) == 3
    b = mk.price_sensitivity
    # a_t (p_t - k_t - 1/b) is the same for every tier, and equals the optimal profit
    adjusted = [mk.per_fee[0, t] * (fees[tier] - (mk.benefit_cost - mk.uplift)[0, t] - 1 / b) for t, tier in enumerate(mk.tier_ids)]
    assert adjusted == pytest.approx([result.objective] * 3, rel=1e-9)


def test_mnl_one_segment_with_binding_order_is_certified():
    inst = parse_instance(generate(3, 1, seed=0, choice="mnl", price_sensitivity=0.04, max_fee=300.0, min_fee_gap=40))
    result = solve(inst)
    assert result.status is Status.OPTIMAL and result.meta["menus_constrained"] > 0
    fees = list(result.solution["fees"].values())
    assert all(b - a >= 40 - 1e-6 for a, b in zip(fees, fees[1:]))
    mk = market(inst)
    grid = np.linspace(0, 300, 31)
    for combo in itertools.product(grid, repeat=2):  # no pair of fees for two tiers beats it
        fees2 = {mk.tier_ids[0]: combo[0], mk.tier_ids[2]: combo[1]}
        check = evaluate(inst, {"fees": fees2})
        if check.feasible:
            assert check.objective <= result.objective * (1 + 1e-9)


def test_mnl_continuous_fees_several_segments_say_grid():
    inst = parse_instance(generate(2, 3, seed=2, choice="mnl", price_sensitivity=0.05, max_fee=200.0))
    result = solve(inst)
    assert result.status is Status.OPTIMAL and "relative to the fee grid" in result.message
    assert "101 points" in result.meta["grid"]
    grid_best = solve(inst, method="grid_search")
    assert result.objective == pytest.approx(grid_best.objective, rel=1e-9)


def test_mnl_time_limit_keeps_an_honest_bound():
    inst = mnl_instance("plain", 5, 3, 4, step=1.0)
    result = solve(inst, method="mnl", options=SolverOptions(time_limit_s=0.05, gap=0.0))
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE)
    full = solve(inst, method="mnl")
    assert full.status is Status.OPTIMAL
    assert result.bound >= full.objective * (1 - 1e-9) and result.objective <= full.objective * (1 + 1e-9)


def test_mnl_solution_reports_shares_and_modal_choices():
    inst = load_instance(INSTANCES / "membership_pricing" / "prime-history-logit.json")
    result = solve(inst)
    assert result.status is Status.OPTIMAL and result.evaluation["feasible"]
    sol = result.solution
    assert {"fees", "choices", "members", "profit", "tiers", "segments", "shares", "profit_curve"} <= set(sol)
    for seg, shares in sol["shares"].items():
        assert sum(shares.values()) == pytest.approx(1.0)
        top = max(shares, key=shares.get)
        assert sol["choices"][seg] == (None if top == "none" else top)
    assert sum(sol["members"].values()) == pytest.approx(result.evaluation["members_total"])


# ----------------------------------------------------------------------------- the published-figures example

HISTORY = INSTANCES / "membership_pricing" / "prime-history.json"


def test_prime_history_example_solves_and_evaluate_agrees():
    inst = load_instance(HISTORY)
    result = solve(inst)
    assert result.status is Status.OPTIMAL, result.message
    check = evaluate(inst, result.solution)
    assert check.feasible and check.objective == pytest.approx(result.objective, rel=1e-12)
    fees = result.solution["fees"]
    assert "prime" in fees and 79 <= fees["prime"] <= 179  # the flagship is always offered
    assert sum(t["lifetime_profit"] for t in result.solution["tiers"].values()) == pytest.approx(result.objective)
    # the weights come from retention: a 92% first renewal at a 10% discount rate is worth 1.1/0.18 years
    assert result.solution["segments"]["urban-professional"]["lifetime_weight"]["shipping"] == pytest.approx(1.1 / 0.18)


def test_prime_history_logit_agrees_with_grid_search():
    inst = load_instance(INSTANCES / "membership_pricing" / "prime-history-logit.json")
    result, base = solve(inst), solve(inst, method="grid_search")
    assert result.status is Status.OPTIMAL
    assert base.objective == pytest.approx(result.objective, rel=1e-9)


@pytest.mark.slow
def test_five_tiers_two_hundred_segments_step_grid_is_proven():
    # the speed benchmark (timed in benchmarks/, not here): proven optimal by the default method
    inst = load_instance(INSTANCES / "membership_pricing" / "random" / "tiers-5x200-step3.json")
    result = solve(inst, options=SolverOptions(time_limit_s=120))
    assert result.status is Status.OPTIMAL and result.meta["dispatched_to"] == "boxes"
    assert result.evaluation["feasible"] and result.evaluation["objective"] == pytest.approx(result.objective, rel=1e-12)
    assert result.objective >= 96_955_208  # the compact MILP's incumbent after 60 s (bound 2.0e8)


def test_shipped_random_instances_load():
    files = sorted((INSTANCES / "membership_pricing" / "random").glob("*.json"))
    assert len(files) >= 9
    for path in files:
        assert load_instance(path).problem == "membership_pricing"


def test_cli_solve_mnl_json(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    out = CliRunner().invoke(app, ["solve", str(INSTANCES / "membership_pricing" / "random" / "mnl-3x8-s1.json"), "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["status"] == "optimal" and doc["evaluation"]["feasible"]
    assert {"fees", "choices", "members", "shares"} <= set(doc["solution"])


def test_milp_answer_stays_honest_when_exact_fees_cannot_be_recomputed(monkeypatch):
    """At a time limit a solver's incumbent may be an assignment no exact fees support (its
    tolerances); the answer then keeps the solver's fees and simulates the choices at them."""
    import optimizers.membership_pricing as package

    inst = load_instance(INSTANCES / "membership_pricing" / "prime-tiers.json")
    monkeypatch.setattr(package, "greatest_fees", lambda mk, picks: None)
    result = solve(inst, method="milp")
    assert result.status.has_solution and result.evaluation["feasible"], result.message
    assert "choices simulated" in result.message
    assert result.objective == pytest.approx(evaluate(inst, result.solution).objective)
