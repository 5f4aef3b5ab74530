"""The Lagrangian method for the location core: published optima, agreement with the MILP on
random cities (sparse arcs, unequal capacities, existing and closed sites), valid bounds."""

from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pytest

from models import UsageError, load_instance, parse_instance
from models.front_warehouse import generate
from optimizers import SolverOptions, Status, solve
from optimizers.front_warehouse.lagrangian import Core, _cover, _flipped_covers, _knapsack_cover, _knapsacks, relax, restrict
from tests.conftest import ORLIB

OPTIMA = {r["instance"]: float(r["optimum"]) for r in csv.DictReader(open(ORLIB / "OPTIMA.tsv"), delimiter="\t")}
SS_OPTIMA = {r["instance"]: float(r["ss_optimum"]) for r in csv.DictReader(open(ORLIB / "SS_OPTIMA.tsv"), delimiter="\t")}


@pytest.mark.parametrize("name", ["cap41", "cap64", "cap74", "cap94", "cap104", "cap124", "cap131", "cap134"])
def test_published_optima(name):
    inst = load_instance(ORLIB / f"{name}.txt", input_format="orlib-cap")
    r = solve(inst, method="lagrangian")
    assert r.status is Status.OPTIMAL and r.evaluation["feasible"]
    assert r.objective == pytest.approx(OPTIMA[name], rel=1e-6)
    assert r.bound <= OPTIMA[name] * (1 + 1e-9)


def _city(seed: int, **kw) -> object:
    doc = generate(14, 70, seed=seed, promise_minutes=None, min_share_within_promise=0.0, depot_cost_per_unit=None, **kw)
    return parse_instance(doc)


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_the_milp_on_random_cities(seed):
    inst = _city(seed, capacity_ratio=1.6 + 0.3 * seed, open_sites=seed % 3, closed_sites=(seed + 1) % 3)
    exact = solve(inst, method="milp")
    r = solve(inst, method="lagrangian")
    assert exact.status is Status.OPTIMAL and r.status is Status.OPTIMAL, r.message
    assert r.objective == pytest.approx(exact.objective, rel=1e-6)
    assert r.evaluation["feasible"] and r.bound <= exact.objective * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_every_multiplier_gives_a_lower_bound(seed):
    inst = _city(seed, capacity_ratio=2.0)
    opt = solve(inst, method="milp").objective
    core, _ = Core.of(inst)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        u = rng.uniform(-5, 60, len(core.demand))
        assert relax(core, u).value <= opt * (1 + 1e-9)


def test_covering_knapsack_is_exact_on_small_integer_data():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 10))
        q = rng.integers(0, 30, n).astype(float)
        v = rng.integers(0, 50, n).astype(float) if rng.random() < 0.7 else rng.random(n) * 10
        short = float(rng.integers(1, int(q.sum()) + 1)) if q.sum() >= 1 else 0.0
        if short <= 0:
            continue
        best = min((float(v[list(y)].sum()) for y in itertools.product([False, True], repeat=n) if q[list(y)].sum() >= short), default=math.inf)
        value, chosen = _knapsack_cover(v, q, short)
        assert value == pytest.approx(best, abs=1e-9) and q[chosen].sum() >= short and v[chosen].sum() == pytest.approx(value)


def test_feasible_cover_covers_and_is_least_on_small_integer_data():
    from optimizers.front_warehouse.lagrangian import _feasible_cover

    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        units = rng.integers(1, 30, n).astype(float) + rng.choice([0.0, 0.4], n)  # fractions: rounded down on the grid
        demand = rng.uniform(1, np.floor(units).sum()) * rng.dirichlet(np.ones(int(rng.integers(1, 4))))  # coverable on the grid
        v = rng.uniform(-5, 50, n)
        must = rng.random(n) < 0.15
        core = Core(np.zeros(n), units, must, demand, np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1))
        y = _feasible_cover(core, v)
        assert units[y].sum() >= demand.sum() and y[must | (v < 0)].all()
        taken = must | (v < 0)
        need = math.ceil(demand.sum() - units[taken].sum() - 1e-6)  # the grid is one unit a step here: capacities rounded down
        free = np.flatnonzero(~taken)
        best = min((float(v[free[list(c)]].sum()) for c in itertools.product([False, True], repeat=len(free))
                    if np.floor(units[free[list(c)]]).sum() >= need), default=math.inf) if need > 0 else 0.0
        if math.isfinite(best):
            assert float(v[y & ~taken].sum()) == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("equal", [False, True])
def test_flip_bounds_at_once_equal_the_cover_per_site(equal):
    core, _ = Core.of(_city(1, capacity_ratio=2.0))
    if equal:
        core = restrict(Core(core.fixed, np.full(len(core.units), core.units.mean()), core.must, core.demand, core.site, core.zone, core.cost), {})
    rng = np.random.default_rng(1)
    for trial in range(10):
        sub = restrict(core, {0: True, 3: False}) if trial % 2 else core
        r = relax(sub, rng.uniform(0, 60, len(sub.demand)))
        fast = _flipped_covers(sub, r.site_value, r.open)
        for i in np.flatnonzero(~sub.must & np.isfinite(sub.fixed)):
            slow = _cover(sub, r.site_value, {int(i): not bool(r.open[i])})[0]
            assert fast[i] == pytest.approx(slow, rel=1e-9, abs=1e-9)


def test_knapsacks_with_a_cut_guess_equal_the_full_sort():
    core, _ = Core.of(_city(3, capacity_ratio=1.5))
    rng = np.random.default_rng(3)
    for trial in range(20):
        u = rng.uniform(0, 60, len(core.demand))
        full = _knapsacks(core, u)
        critical = full[3]
        assert np.any(critical < 0)  # some sites are full, or the cut is never used
        cut = critical + rng.uniform(-5, 5, len(critical)) * (trial % 3)  # exact, too tight or too loose per site
        guessed = _knapsacks(core, u, cut)
        for a, b in zip(full, guessed, strict=True):
            assert np.allclose(a, b, rtol=1e-12, atol=1e-9)


def test_arcs_cheaper_than_the_multipliers():
    core, _ = Core.of(_city(2, capacity_ratio=2.0))
    rng = np.random.default_rng(2)
    for _ in range(10):
        u = rng.uniform(-5, 60, len(core.demand))
        tied = rng.choice(len(core.cost), len(u) // 3, replace=False)
        u[core.zone[tied]] = core.cost[tied]  # multipliers equal to an arc's cost
        found = np.sort(core.cheaper_than(u))
        assert np.array_equal(found, np.flatnonzero(core.cost < u[core.zone]))


def test_time_limit_keeps_a_valid_bound():
    inst = load_instance(ORLIB / "cap131.txt", input_format="orlib-cap")
    r = solve(inst, method="lagrangian", options=SolverOptions(time_limit_s=0.5))
    assert r.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert r.bound <= OPTIMA["cap131"] * (1 + 1e-9) and r.evaluation["feasible"]


@pytest.mark.parametrize("kw", [{"max_open_sites": 3}, {"n_skus": 2}])
def test_outside_the_core_is_refused(kw):
    doc = generate(6, 20, seed=1, promise_minutes=None, min_share_within_promise=0.0, depot_cost_per_unit=None, **kw)
    with pytest.raises(UsageError, match="location core"):
        solve(parse_instance(doc), method="lagrangian")


@pytest.mark.parametrize("max_minutes", [12.0, 20.0])
@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_the_milp_on_sparse_cities(seed, max_minutes):
    """Few arcs per zone: incumbents must first reach every zone."""
    inst = _city(seed, capacity_ratio=2.5, max_minutes=max_minutes, minutes_per_km=2.5, side_km=10.0)
    exact = solve(inst, method="milp")
    r = solve(inst, method="lagrangian")
    assert r.status is exact.status, r.message
    if exact.status is Status.OPTIMAL:
        assert r.objective == pytest.approx(exact.objective, rel=1e-6)
        assert r.evaluation["feasible"] and r.bound <= exact.objective * (1 + 1e-9)


@pytest.mark.parametrize("name", ["cap63", "cap64", "cap92", "cap122", "cap133"])
def test_single_source_bound_and_plan(name):
    """Single sourcing: the bound (multi-source) never passes the published single-source
    optimum, the plan serves each zone from one site and is within the reported gap."""
    inst = load_instance(ORLIB / f"{name}.txt", input_format="orlib-cap", single_source=True)
    r = solve(inst, method="lagrangian")
    assert r.status in (Status.OPTIMAL, Status.FEASIBLE) and r.evaluation["feasible"], r.message
    assert r.bound <= SS_OPTIMA[name] * (1 + 1e-7) <= r.objective * (1 + 2e-7)
    assert r.gap is not None and r.gap <= 5e-3
    zones = {}
    for f in r.solution["flows"]:
        zones.setdefault(f["zone"], set()).add(f["site"])
    assert all(len(sites) == 1 for sites in zones.values())


@pytest.mark.parametrize("seed", range(3))
def test_transports_agree_with_the_full_lp(seed, monkeypatch):
    from optimizers.front_warehouse import lagrangian

    inst = _city(seed, capacity_ratio=1.8)
    core, _ = Core.of(inst)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        sites = rng.random(len(core.fixed)) < 0.6
        priced = lagrangian.transport(core, sites, exact=True)
        flow = lagrangian.transport(core, sites)  # min-cost flow on whole units
        monkeypatch.setattr(lagrangian, "TRANSPORT_ARCS_PER_ZONE", 10**9)
        full = lagrangian.transport(core, sites, exact=True)
        monkeypatch.undo()
        assert (priced is None) == (full is None) == (flow is None)
        if full is not None:
            assert priced[0] == pytest.approx(full[0], rel=1e-9)
            assert full[0] * (1 - 1e-9) <= flow[0] <= full[0] * (1 + 1e-3)  # capacities rounded down to 0.1 unit
            shipped = np.bincount(core.zone, weights=flow[1], minlength=len(core.demand))
            assert np.allclose(shipped, core.demand) and np.all(np.bincount(core.site, weights=flow[1], minlength=len(sites)) <= core.units * (1 + 1e-9))


@pytest.mark.parametrize("seed", range(4))
def test_made_feasible_reaches_every_zone_with_enough_capacity(seed):
    from optimizers.front_warehouse.lagrangian import _made_feasible

    inst = _city(seed, capacity_ratio=1.5, open_sites=1, closed_sites=1, max_minutes=14.0, minutes_per_km=2.5, side_km=10.0)
    core, _ = Core.of(inst)
    usable = np.isfinite(core.fixed)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        given = rng.random(len(core.fixed)) < rng.uniform(0.0, 0.5)
        sites = _made_feasible(core, given.copy(), rng.random(len(core.fixed)))
        assert not (sites & ~usable).any() and (sites >= (given & usable) | core.must).all()
        reached = np.zeros(len(core.demand), bool)
        reached[core.zone[sites[core.site]]] = True
        reachable = np.zeros(len(core.demand), bool)
        reachable[core.zone[usable[core.site]]] = True
        assert (reached == reachable).all()
        assert core.units[sites].sum() >= min(core.total, core.units[usable].sum()) * (1 - 1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_local_search_ends_in_a_local_optimum(seed):
    """From every site open, the local search ends where no allowed drop, add or swap is cheaper."""
    from optimizers.front_warehouse import lagrangian as lag

    inst = _city(seed, capacity_ratio=2.0)
    core, _ = Core.of(inst)
    search = lag.subgradient(core, math.inf, lag.Search(), lp_every=None)
    start = lag.transport(core, np.isfinite(core.fixed))
    search.upper, search.flow = start
    lag.local_search(core, search, math.inf)
    assert search.upper <= start[0] and lag._priced(core, search.flow) == pytest.approx(search.upper, rel=1e-12)
    here = lag._in_use(core, search.flow)
    may_open = ~here & np.isfinite(core.fixed) & (search.if_open < search.upper) & (search.y_mean > lag.Y_CANDIDATE)
    may_close = here & ~core.must & (search.if_closed < search.upper)
    moves = [[i] for i in np.flatnonzero(may_close | may_open)] + [[i, k] for i in np.flatnonzero(may_close) for k in np.flatnonzero(may_open)]
    for move in moves:
        trial = here.copy()
        trial[move] = ~trial[move]
        found = lag.transport(core, trial)
        assert found is None or found[0] >= search.upper * (1 - 1e-9), move
