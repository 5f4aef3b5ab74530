"""The scenario Lagrangian: its per-site subproblems against an LP solver, its bound against
the extensive form (at the LP's duals it equals the LP; it never passes the optimum), its
plans through evaluate(), and the structures it leaves to other methods."""

import numpy as np
import pytest
from scipy.optimize import linprog

from models import parse_instance
from models.front_warehouse import generate
from optimizers import SolverOptions, Status, solve
from optimizers.backends.lp import solve_lp
from optimizers.front_warehouse import milp
from optimizers.front_warehouse import scenario_lagrangian as sl

NORMAL = {"id": "normal", "probability": 0.6, "demand_factor": 1.0}
WEEKEND = {"id": "weekend", "probability": 0.25, "demand_factor": 1.4}
PEAK = {"id": "peak", "probability": 0.15, "demand_factor": 2.5, "presale_share": 0.3}


def _doc(seed: int = 0, **kwargs) -> dict:
    options = dict(n_skus=3, side_km=12.0, max_minutes=40, rent_scale=0.2, min_share_within_promise=0.6, sku_groups=True,
                   capacity_ratio=2.0, scenarios=[NORMAL, WEEKEND, PEAK])
    options.update(kwargs)
    return generate(6, 30, seed=seed, **options)


CASES = {
    "presale+depot": {},
    "lost sales, no depot": {"depot_cost_per_unit": None, "lost_sale_cost": 30.0},
    "max open sites, no presale": {"max_open_sites": 3, "scenarios": [dict(NORMAL, probability=0.85), dict(PEAK, presale_share=0.0)]},
    "must-open and closed sites": {"open_sites": 1, "closed_sites": 1},
}


def _random_multipliers(split: sl.Split, seed: int) -> sl.Multipliers:
    rng = np.random.default_rng(seed)
    start = sl.first_multipliers(split)
    return sl.Multipliers(start.u * rng.uniform(0.5, 2.0, start.u.shape), rng.uniform(0, 0.5, start.rho.shape), rng.uniform(0, 0.3, start.mu.shape))


def _site_lp(split: sl.Split, m: sl.Multipliers, i: int) -> float:
    """f_i + S_i by an LP solver: stock per SKU, flows per scenario up to the stock, pre-sale flows, one volume row."""
    net = split.net
    _, _, K, W = split.shape
    pairs = np.flatnonzero(split.site == i)
    n = len(pairs)
    cost, upper = [net.holding], [np.full(K, np.inf)]
    for w in range(W):
        cost.append(net.probability[w] * split.cost[pairs] - m.u[w, split.zone[pairs], split.sku[pairs]] - m.mu[w] * split.within[pairs])
        upper.append(split.demand[w][pairs])
    w_pre = split.presale_w
    if w_pre is not None:
        cost.append(net.probability[w_pre] * (split.cost[pairs] + net.holding[split.sku[pairs]]) - m.u[w_pre, split.zone[pairs], split.sku[pairs]]
                    + m.rho[split.zone[pairs], split.sku[pairs]] - m.mu[w_pre] * split.within[pairs])
        upper.append(net.presale[w_pre] * split.demand[w_pre][pairs])
    c = np.concatenate(cost)
    rows = []
    for w in range(W):
        for k in range(K):
            row = np.zeros(len(c))
            row[k] = -1.0
            row[K + w * n + np.flatnonzero(split.sku[pairs] == k)] = 1.0
            rows.append(row)
    volume = np.zeros(len(c))
    volume[:K] = net.volume
    if w_pre is not None:
        volume[K + W * n:] = net.volume[split.sku[pairs]]
    rows.append(volume)
    rhs = np.r_[np.zeros(W * K), net.capacity[i]]
    res = linprog(c, A_ub=np.array(rows), b_ub=rhs, bounds=list(zip(np.zeros(len(c)), np.concatenate(upper))), method="highs")
    return float(res.fun) + float(net.fixed_cost[i])


@pytest.mark.parametrize("seed", [0, 1])
def test_site_values_are_the_per_site_lps(seed, monkeypatch):
    split = sl.Split.of(parse_instance(_doc(seed)))
    m = _random_multipliers(split, seed)
    seen = {}
    choose = sl._choose_sites
    monkeypatch.setattr(sl, "_choose_sites", lambda sp, values: (seen.setdefault("v", values.copy()), choose(sp, values))[1])
    sl.relax(split, m)
    for i in range(split.shape[0]):
        assert seen["v"][i] == pytest.approx(_site_lp(split, m, i), rel=1e-7, abs=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_bound_at_the_lp_duals_is_the_lp_value(case):
    """L(u, rho, mu) at the strong LP's duals equals the LP's value: every term of the
    relaxation is right (a missing or wrong one moves it), the sites' choice is exact, and the
    duals are read as multipliers with the right signs."""
    inst = parse_instance(_doc(2, **CASES[case]))
    f = milp.build(inst, stock_columns=True)
    model = f.model
    lp = solve_lp(model.cost, model.matrix(), model.row_lo, model.row_hi, model.lb, model.ub, method="highs-ds")
    value = sl.relax(sl.Split.of(inst), sl.duals_as_multipliers(f, lp.row_dual)).value
    if "max_open_sites" in CASES[case]:  # the choice of sites is integral: at least the LP
        assert value >= lp.objective * (1 - 1e-7)
    else:
        assert value == pytest.approx(lp.objective, rel=1e-7)


@pytest.mark.parametrize("case", list(CASES))
def test_bound_and_plan_against_the_extensive_form(case):
    inst = parse_instance(_doc(3, **CASES[case]))
    exact = solve(inst, method="milp", options=SolverOptions(gap=1e-9))
    assert exact.status is Status.OPTIMAL
    result = solve(inst, method="scenario-lagrangian", options=SolverOptions(time_limit_s=20, gap=1e-9))
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert result.bound <= exact.objective * (1 + 1e-7)
    assert result.objective >= exact.objective * (1 - 1e-7)
    assert result.evaluation["feasible"], result.evaluation["violations"][:3]
    assert result.evaluation["objective"] == pytest.approx(result.objective, rel=1e-6)
    assert (result.objective - result.bound) / result.objective < 0.05  # the LP's gap on these, and a plan near the optimum


def test_random_multipliers_give_bounds_below_the_optimum():
    inst = parse_instance(_doc(4))
    exact = solve(inst, method="milp", options=SolverOptions(gap=1e-9)).objective
    split = sl.Split.of(inst)
    for seed in range(5):
        assert sl.relax(split, _random_multipliers(split, seed)).value <= exact * (1 + 1e-9)


def test_structures_it_does_not_cover_are_named():
    doc = _doc(0, scenarios=[dict(NORMAL, probability=0.85), dict(PEAK, transfer_cost_per_unit=1.0, transfer_max_minutes=20)])
    message = sl.unsupported(parse_instance(doc))
    assert message is not None and "transfers" in message
    assert sl.unsupported(parse_instance(_doc(0))) is None


def test_relaxation_does_not_depend_on_the_order_kept_from_earlier_steps():
    inst = parse_instance(_doc(5))
    used, fresh = sl.Split.of(inst), sl.Split.of(inst)
    for seed in range(3):
        sl.relax(used, _random_multipliers(used, 10 + seed))  # leaves its orders sorted for other multipliers
    m = _random_multipliers(fresh, 99)
    a, b = sl.relax(used, m), sl.relax(fresh, m)
    assert a.value == pytest.approx(b.value, rel=1e-12)
    assert np.array_equal(a.open, b.open)
    np.testing.assert_allclose(a.slope.u, b.slope.u, atol=1e-9)


def _strong_lp(inst) -> float:
    model = milp.build(inst, stock_columns=True).model
    return solve_lp(model.cost, model.matrix(), model.row_lo, model.row_hi, model.lb, model.ub, method="highs-ds").objective


def test_bundle_reaches_the_strong_lp_from_the_first_multipliers():
    """The bound's best value is the strong LP's (without max_open_sites): the bundle gets
    there, and never above it."""
    inst = parse_instance(_doc(6))
    lp = _strong_lp(inst)
    split = sl.Split.of(inst)
    search = sl.Search()
    sl.bundle(split, search, deadline=float("inf"), steps=1000)
    assert search.bound <= lp * (1 + 1e-7)
    assert search.bound >= lp * (1 - 1e-4)


def test_the_bundle_step_maximises_its_model():
    """The proximal step (solved through its dual over the cut weights, with bounds on d)
    against a direct solution of max_{d >= lower, z} z - |d|^2 / 2t, z <= e_b + g_b . d."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    n, B, t = 6, 4, 0.7
    cuts = [sl.Cut(rng.normal(size=n), float(rng.uniform(0, 1)), np.zeros(2)) for _ in range(B)]
    cuts[0].error = 0.0
    lower = np.array([-np.inf, -np.inf, -np.inf, -0.1, 0.0, -0.3])
    _, d, predicted = sl._model_step(cuts, lower, t)

    def model(d: np.ndarray) -> float:
        return min(c.error + c.slope @ d for c in cuts)

    direct = minimize(lambda v: -(v[-1] - v[:-1] @ v[:-1] / (2 * t)), np.zeros(n + 1), method="SLSQP",
                      bounds=[(lo if np.isfinite(lo) else None, None) for lo in lower] + [(None, None)],
                      constraints=[{"type": "ineq", "fun": lambda v, c=c: c.error + c.slope @ v[:-1] - v[-1]} for c in cuts],
                      options={"ftol": 1e-12, "maxiter": 500})
    best = model(direct.x[:-1]) - direct.x[:-1] @ direct.x[:-1] / (2 * t)
    assert np.all(d >= lower - 1e-9)
    assert model(d) - d @ d / (2 * t) == pytest.approx(best, abs=1e-6)
    assert predicted == pytest.approx(model(d), abs=1e-6)


def test_the_weak_formulation_has_the_same_integer_optimum_and_a_weaker_lp():
    inst = parse_instance(_doc(7))
    strong, weak = milp.build(inst, stock_columns=True), milp.build(inst, stock_columns=True, strong=False)
    assert weak.model.num_rows < strong.model.num_rows
    weak_lp = solve_lp(weak.model.cost, weak.model.matrix(), weak.model.row_lo, weak.model.row_hi, weak.model.lb, weak.model.ub).objective
    assert weak_lp <= _strong_lp(inst) * (1 + 1e-9)
    from optimizers.backends import solve_linear

    options = SolverOptions(gap=1e-9)
    assert solve_linear(weak.model, "highs", options).objective == pytest.approx(solve_linear(strong.model, "highs", options).objective, rel=1e-7)


def test_plan_duals_are_multipliers_and_an_lp_in_a_child_is_the_same_lp():
    """A plan's LP (openings fixed) gives multipliers whose L is a bound; the LP run in a child
    process gives what it gives in this one."""
    from optimizers.backends.lp import solve_lp_stoppable

    inst = parse_instance(_doc(8))
    exact = solve(inst, method="milp", options=SolverOptions(gap=1e-9)).objective
    split = sl.Split.of(inst)
    plan = sl.price_plan(inst, split, ~split.net.closed, float("inf"))
    assert plan is not None and plan.duals is not None
    assert plan.cost >= exact * (1 - 1e-7)
    assert sl.relax(split, plan.duals).value <= exact * (1 + 1e-7)
    m = milp.build(inst, stock_columns=True).model
    here = solve_lp(m.cost, m.matrix(), m.row_lo, m.row_hi, m.lb, m.ub)
    there = solve_lp_stoppable(m.cost, m.matrix(), m.row_lo, m.row_hi, m.lb, m.ub, time_limit=60)
    assert there.status == "optimal" and there.objective == pytest.approx(here.objective, rel=1e-9)


@pytest.mark.parametrize("first", [0, 3, 7, 12, 19])
def test_count_search_finds_the_least_of_a_unimodal_price_and_prices_few_counts(first):
    asked = []

    def price(k):
        asked.append(k)
        return (k - 7) ** 2 + 100.0

    assert sl.count_search(price, first, 20) == 7
    assert len(asked) == len(set(asked)) <= 10  # each count once, not all 21


def test_count_search_walks_up_from_counts_without_a_plan():
    def price(k):
        return np.inf if k < 9 else float(k)  # fewer than 9 sites cannot serve: then each site costs

    assert sl.count_search(price, 2, 30) == 9


def test_largest_keeps_must_open_sites_and_the_open_site_limit():
    split = sl.Split.of(parse_instance(_doc(open_sites=1, closed_sites=1, max_open_sites=3)))
    net = split.net
    y = np.linspace(1.0, 0.0, len(net.site_ids))
    y[net.closed] = 2.0  # a closed site never opens, however large its y
    sites = sl.largest(split, y, 5)
    assert sites[net.must_open].all() and not sites[net.closed].any()
    assert sites.sum() == 3
    free = ~net.must_open & ~net.closed
    chosen, left = y[sites & free], y[~sites & free]
    assert chosen.min() >= left.max()
