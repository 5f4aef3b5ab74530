"""The front-warehouse MILP: published OR-Library optima, evaluate() agreement, backend
agreement, and an enumeration oracle over opening decisions."""

import itertools

import numpy as np
import pytest

from models import evaluate, load_instance, parse_instance
from models.front_warehouse import generate
from optimizers import SolverOptions, Status, backend_info, solve
from optimizers.backends import solve_linear
from optimizers.front_warehouse import milp
from tests.conftest import INSTANCES, ORLIB, read_tsv

INSTALLED = [b.name for b in backend_info() if b.installed]
CAP = [r for r in read_tsv("OPTIMA.tsv") if r["kind"] == "cap"]
SINGLE = [r for r in read_tsv("SS_OPTIMA.tsv") if not r["capacity"]]


def test_the_tables_list_every_instance():
    assert len(CAP) == 37 and len(SINGLE) == 24


@pytest.mark.parametrize("row", CAP, ids=[r["instance"] for r in CAP])
def test_orlib_cap_published_optimum(row):
    inst = load_instance(ORLIB / row["file"], input_format="orlib-cap")
    result = solve(inst)
    assert result.status is Status.OPTIMAL
    assert result.objective == pytest.approx(float(row["optimum"]), rel=1e-6)
    assert result.gap <= 1e-6
    assert result.evaluation["feasible"] and result.evaluation["objective"] == pytest.approx(result.objective, rel=1e-9)


@pytest.mark.parametrize("row", SINGLE, ids=[r["instance"] for r in SINGLE])
def test_orlib_cap_single_source_published_optimum(row):
    inst = load_instance(ORLIB / row["file"], input_format="orlib-cap", single_source=True)
    result = solve(inst)
    assert result.status is Status.OPTIMAL
    assert result.objective == pytest.approx(float(row["ss_optimum"]), rel=1e-6)
    zones_served = {}
    for flow in result.solution["flows"]:
        zones_served.setdefault(flow["zone"], set()).add(flow["site"])
    assert all(len(s) == 1 for s in zones_served.values())


def tiny(seed: int, **kw) -> dict:
    base = dict(n_skus=2, max_minutes=40, promise_minutes=25, min_share_within_promise=0.6, capacity_ratio=1.6,
                open_sites=1, closed_sites=1)
    return generate(6, 14, seed=seed, **{**base, **kw})


VARIANTS = {
    "promise+depot": {},
    "scenarios+stock": dict(scenarios=[("normal", 0.7, 1.0), ("peak", 0.3, 1.8)], capacity_ratio=2.5),
    "lost-sales": dict(depot_cost_per_unit=None, capacity_ratio=0.9),
    "single-source": dict(single_source=True),
    "max-open": dict(max_open_sites=3, capacity_ratio=3.0),
}


def variant(name: str, seed: int):
    kw = dict(VARIANTS[name])
    single = kw.pop("single_source", False)
    doc = tiny(seed, **kw)
    if name == "lost-sales":
        doc["lost_sale_cost"] = {"sku-01": 30.0}
        doc["depot"] = {"cost_per_unit": 45.0}
        doc["lost_sale_cost"]["sku-02"] = 60.0
        doc.pop("depot")
    doc["single_source"] = single
    return parse_instance(doc)


def enumerate_openings(inst) -> float:
    """Oracle: the best over every open/closed pattern of the LP with openings fixed."""
    f = milp.build(inst)
    net = f.net
    free = [i for i in range(len(net.site_ids)) if not net.must_open[i] and not net.closed[i]]
    best = np.inf
    for pattern in itertools.product([0.0, 1.0], repeat=len(free)):
        lb, ub = f.model._lb[0].copy(), f.model._ub[0].copy()
        f.model._lb[0][free] = pattern
        f.model._ub[0][free] = pattern
        out = solve_linear(f.model, "highs", SolverOptions())
        f.model._lb[0], f.model._ub[0] = lb, ub
        if out.status is Status.OPTIMAL:
            best = min(best, out.objective)
    return best


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("seed", [1, 2])
def test_milp_matches_enumeration_and_evaluate(name, seed):
    inst = variant(name, seed)
    result = solve(inst)
    assert result.status is Status.OPTIMAL, result.message
    assert result.objective == pytest.approx(enumerate_openings(inst), rel=1e-6)
    check = evaluate(inst, result.solution)
    assert check.feasible, check.violations
    assert check.objective == pytest.approx(result.objective, rel=1e-7)


@pytest.mark.parametrize("backend", [b for b in INSTALLED if b != "highs"])
@pytest.mark.parametrize("name", ["promise+depot", "scenarios+stock", "single-source"])
def test_backends_agree(backend, name):
    inst = variant(name, 3)
    reference = solve(inst, backend="highs")
    if backend == "cpsat" and not milp.integral_flows_exact(inst):
        with pytest.raises(Exception, match="pure-integer"):
            solve(inst, backend=backend)
        return
    other = solve(inst, backend=backend)
    assert other.status is Status.OPTIMAL and reference.status is Status.OPTIMAL
    assert other.objective == pytest.approx(reference.objective, rel=1e-5)
    assert other.evaluation["feasible"]


@pytest.mark.parametrize("backend", INSTALLED)
def test_backends_agree_on_orlib(backend):
    inst = load_instance(ORLIB / "cap71.txt", input_format="orlib-cap")
    result = solve(inst, backend=backend)
    assert result.status is Status.OPTIMAL
    assert result.objective == pytest.approx(932615.75, rel=1e-6)


def test_cpsat_uses_integral_flows_only_when_exact():
    cap = load_instance(ORLIB / "cap41.txt", input_format="orlib-cap")
    assert milp.integral_flows_exact(cap)
    assert not milp.integral_flows_exact(variant("promise+depot", 1))


def test_status_open_and_closed_sites_are_respected():
    inst = variant("promise+depot", 4)
    result = solve(inst)
    statuses = {s.id: s.status for s in inst.sites}
    assert all(statuses[s] != "closed" for s in result.solution["open_sites"])
    assert all(s in result.solution["open_sites"] for s, st in statuses.items() if st == "open")


def test_evaluate_catches_violations():
    inst = variant("promise+depot", 1)
    good = solve(inst).solution
    closed = next(s.id for s in inst.sites if s.status == "closed")
    bad = dict(good, open_sites=good["open_sites"][1:] + [closed])
    found = evaluate(inst, bad).violations
    assert any("status 'closed'" in v for v in found) and any("must stay open" in v for v in found)
    short = dict(good, flows=good["flows"][1:])
    assert any("units delivered" in v for v in evaluate(inst, short).violations)
    crowded = dict(good, stock=[{**s, "units": s["units"] * 50} for s in good["stock"]])
    assert any("> capacity" in v for v in evaluate(inst, crowded).violations)
    to_depot = [{**f, "site": "depot"} for f in good["flows"]]
    assert any("promise share" in v for v in evaluate(inst, dict(good, flows=to_depot)).violations)


def test_time_limit_on_a_large_instance_is_never_optimal():
    inst = load_instance(ORLIB / "capb.txt", input_format="orlib-cap", capacity=5000)
    result = solve(inst, method="milp", options=SolverOptions(time_limit_s=1.0))
    assert result.status in (Status.FEASIBLE, Status.NO_SOLUTION)
    if result.status is Status.FEASIBLE:
        assert result.bound is not None and result.gap > 1e-6


def test_location_core_defaults_to_lagrangian_and_a_named_backend_to_the_milp():
    inst = load_instance(ORLIB / "cap41.txt", input_format="orlib-cap")
    assert solve(inst).method == "lagrangian"
    assert solve(inst, backend="highs").method == "milp"
    assert solve(load_instance(INSTANCES / "front_warehouse" / "town-12x60.json")).method == "milp"  # max_open_sites: not the core


def test_shipped_examples_solve_and_pass_evaluate():
    inst = load_instance(INSTANCES / "front_warehouse" / "town-12x60.json")
    result = solve(inst)
    assert result.status is Status.OPTIMAL and result.evaluation["feasible"]
    assert len(result.solution["open_sites"]) <= inst.max_open_sites


def _edge(name: str) -> dict:
    doc = generate(5, 12, seed=7, n_skus=2, max_minutes=40, promise_minutes=25, min_share_within_promise=0.5, capacity_ratio=1.5,
                   scenarios=[("calm", 0.5, 0.0), ("peak", 0.5, 2.0)] if name == "factor-zero" else None)
    if name == "travel":
        doc.pop("arcs")
        doc["travel"] = {"cost_per_unit_distance": 0.5, "minutes_per_distance": 2.0, "max_minutes": 40}
    elif name == "empty-demand":
        for zone in doc["zones"][:4]:
            zone["demand"] = {}
    elif name == "zero-capacity":
        doc["sites"][0]["capacity"] = 0
    elif name == "share-1":
        doc["service"]["min_share_within_promise"] = 1.0
    elif name == "all-closed":
        doc["sites"] = [{**s, "status": "closed"} for s in doc["sites"]]
        doc.pop("service")
    elif name == "holding+volume":
        doc["skus"][0]["holding_cost"], doc["skus"][1]["unit_volume"] = 3.0, 2.5
        doc["sites"] = [{**s, "capacity": 2 * s["capacity"]} for s in doc["sites"]]  # room for the bulkier SKU
    elif name == "single-source+lost":
        doc["single_source"] = True
        doc.pop("depot")
        doc["lost_sale_cost"] = {"sku-01": 80.0, "sku-02": 80.0}
    return doc


@pytest.mark.parametrize("name", ["travel", "empty-demand", "zero-capacity", "factor-zero", "share-1", "all-closed", "holding+volume", "single-source+lost"])
def test_edge_cases_match_the_oracle(name):
    inst = parse_instance(_edge(name))
    result = solve(inst)
    assert result.status is Status.OPTIMAL, result.message
    assert evaluate(inst, result.solution).feasible
    assert result.objective == pytest.approx(enumerate_openings(inst), rel=1e-6)
    assert milp.simple_lower_bound(milp.network(inst)) <= result.objective + 1e-6


def test_solve_accepts_a_document_or_a_path():
    path = INSTANCES / "front_warehouse" / "town-12x60.json"
    from_path = solve(str(path))
    from_doc = solve(__import__("json").loads(path.read_text()))
    assert from_path.status is Status.OPTIMAL and from_doc.objective == pytest.approx(from_path.objective, rel=1e-9)
    from models import InstanceError

    with pytest.raises(InstanceError):
        solve({"problem": "front_warehouse"})


LARGE = [r for r in read_tsv("OPTIMA.tsv") if r["kind"] == "capabc"]


@pytest.mark.parametrize("row", CAP[::6] + [CAP[-1]] + LARGE[::4], ids=lambda r: r["instance"])
def test_simple_lower_bound_is_valid_on_orlib(row):
    capacity = float(row["capacity"]) if row["capacity"] else None
    inst = load_instance(ORLIB / row["file"], input_format="orlib-cap", capacity=capacity)
    assert 0.5 * float(row["optimum"]) < milp.simple_lower_bound(milp.network(inst)) <= float(row["optimum"])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_simple_lower_bound_is_valid_on_variants(name):
    inst = variant(name, 5)
    assert milp.simple_lower_bound(milp.network(inst)) <= solve(inst).objective + 1e-6


@pytest.mark.parametrize("method", ["milp", "lagrangian"])
def test_a_run_stopped_early_still_has_a_bound(method):
    inst = load_instance(ORLIB / "capb.txt", input_format="orlib-cap", capacity=5000)
    result = solve(inst, method=method, options=SolverOptions(time_limit_s=1.0 if method == "milp" else 0.3))
    assert result.status in (Status.FEASIBLE, Status.NO_SOLUTION)
    assert result.bound is not None and 0 < result.bound <= 13656379.578
