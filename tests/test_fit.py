"""Response curves fitted from A/B-test data: recovery of known curves, refusals, the CSV reader,
and the incentive_budget document built from the fits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.errors import InstanceError, UsageError
from optimizers.incentive_budget import fit as fit_module
from optimizers.incentive_budget.fit import AbCell, AbData, FitRefused, fit_cell, fit_table, read_ab_table, to_instance

HILL = {"max_users": 50_000.0, "half_spend": 200_000.0, "shape": 2.5}
EXPONENTIAL = {"max_users": 40_000.0, "scale": 250_000.0}
LEVELS = np.linspace(0, 800_000, 9)  # 0, 100k, ..., 800k


# the curves written out again here, as an oracle independent of the module
def hill(x: np.ndarray, max_users: float, half_spend: float, shape: float) -> np.ndarray:
    return max_users * x**shape / (half_spend**shape + x**shape)


def exponential(x: np.ndarray, max_users: float, scale: float) -> np.ndarray:
    return max_users * (1 - np.exp(-x / scale))


def arms(kind: str, levels: np.ndarray, seed: int, reps: int = 3, noise: float = 0.03, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Replicated arms of a known curve with multiplicative Gaussian noise (users kept >= 0)."""
    rng = np.random.default_rng(seed)
    x = np.repeat(levels.astype(float), reps)
    curve = hill if kind == "hill" else exponential
    truth = params or (HILL if kind == "hill" else EXPONENTIAL)
    y = curve(x, **truth) * (1 + noise * rng.standard_normal(x.size))
    return x, np.clip(y, 0, None)


def write(tmp_path: Path, text: str | bytes, name: str = "ab.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- fitting known curves


@pytest.mark.parametrize(("kind", "truth"), [("hill", HILL), ("exponential", EXPONENTIAL)])
def test_known_curve_is_recovered_within_10_percent_and_inside_its_ci(kind, truth):
    # Wald intervals from 27 points cover the truth in about 9 draws out of 10; seed 1 is one
    x, y = arms(kind, LEVELS, seed=1)
    fit = fit_cell("group_buy/lower_tier", x, y, kind)
    assert fit.kind == kind
    assert set(fit.params) == set(truth)
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=0.10), name
        low, high = fit.ci95[name]
        assert low < fit.params[name] < high
        assert low <= value <= high, f"{name}: truth {value} outside the 95% CI ({low}, {high})"


@pytest.mark.parametrize("kind", ["hill", "exponential"])
def test_auto_picks_the_kind_that_generated_the_data(kind):
    x, y = arms(kind, LEVELS, seed=3)
    assert fit_cell("c", x, y).kind == kind


def test_fit_reports_quality_and_passes_through_the_origin():
    x, y = arms("hill", LEVELS, seed=11)
    fit = fit_cell("c", x, y, "hill")
    assert (fit.n_points, fit.n_levels) == (27, 9)
    assert fit.r2 > 0.99
    # 3% noise on up to ~47,000 users: the residuals are some hundreds of users
    assert 100 < fit.rmse < 2_000
    assert fit.predict([0.0])[0] == 0.0
    np.testing.assert_allclose(fit.predict(LEVELS), hill(LEVELS, **fit.params), rtol=1e-9)
    assert math.isfinite(fit.aicc)


def test_auto_falls_back_to_exponential_when_hill_has_too_few_levels():
    x, y = arms("exponential", np.array([0, 100_000, 200_000, 300_000]), seed=5)
    with pytest.raises(FitRefused, match="needs at least 4"):
        fit_cell("c", x, y, "hill")
    assert fit_cell("c", x, y).kind == "exponential"


# ---------------------------------------------------------------- refusals


def test_too_few_spend_levels_is_refused_naming_the_cell_and_the_counts():
    x, y = arms("hill", np.array([0, 100_000, 200_000, 300_000]), seed=1)
    with pytest.raises(FitRefused) as info:
        fit_cell("group_buy/lower_tier", x, y, "hill")
    assert isinstance(info.value, InstanceError)  # so the CLI exits 2
    (problem,) = info.value.problems
    assert problem.where == "cell 'group_buy/lower_tier'"
    assert problem.what.startswith("3 spend levels above 0; a hill curve has 3 parameters and needs at least 4")


def test_data_far_below_saturation_are_refused_by_both_kinds_with_the_numbers():
    # arms stop at 40,000 while the true half_spend is 200,000: only the convex foot is seen
    x, y = arms("hill", np.linspace(0, 40_000, 9), seed=1)
    with pytest.raises(FitRefused) as info:
        fit_cell("group_buy/lower_tier", x, y)
    text = info.value.render()
    assert "cell 'group_buy/lower_tier'" in text
    assert "hill: " in text and "exponential: " in text
    assert "spend 40,000" in text
    assert "do not show saturation" in text
    assert "add arms at higher spend" in text
    assert "--kind exponential" not in text  # with auto, exponential was tried and refused too


def test_hill_refusal_suggests_the_exponential_kind():
    x, y = arms("hill", np.linspace(0, 40_000, 9), seed=2)
    with pytest.raises(FitRefused, match=r"do not show saturation; add arms at higher spend or use --kind exponential"):
        fit_cell("c", x, y, "hill")


@pytest.mark.parametrize("seed", range(5))
def test_no_saturation_is_refused_whatever_the_noise_draw(seed):
    x, y = arms("hill", np.linspace(0, 40_000, 9), seed=100 + seed)
    with pytest.raises(FitRefused):
        fit_cell("c", x, y)


def test_wide_confidence_intervals_are_refused_with_the_limit_quoted():
    x, y = arms("hill", LEVELS, seed=7)
    fit_cell("c", x, y, "hill", max_rel_ci=1.0)
    with pytest.raises(FitRefused) as info:
        fit_cell("c", x, y, "hill", max_rel_ci=0.001)
    what = info.value.problems[0].what
    assert what.startswith("95% confidence intervals too wide: max_users ")
    assert "the limit is +-0.1% (max_rel_ci 0.001)" in what


def test_noisy_data_are_refused_with_advice_to_add_replicates():
    x, y = arms("hill", LEVELS, seed=1, reps=1, noise=0.4)
    with pytest.raises(FitRefused) as info:
        fit_cell("c", x, y, "hill")
    what = info.value.problems[0].what
    assert what.startswith("95% confidence intervals too wide: max_users ")
    assert "the users vary too much for 9 points on 9 spend levels; add replicates or spend levels" in what


def test_all_zero_users_are_refused():
    with pytest.raises(FitRefused, match=r"cell 'c': users are 0 on all 6 arms"):
        fit_cell("c", [0, 1, 2, 3, 4, 5], [0] * 6)


def test_no_convergence_is_refused(monkeypatch):
    def never_converges(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found: The maximum number of function evaluations is exceeded.")

    monkeypatch.setattr(fit_module, "curve_fit", never_converges)
    x, y = arms("hill", LEVELS, seed=7)
    with pytest.raises(FitRefused, match=r"hill: the least-squares fit did not converge from any of 3 starting points"):
        fit_cell("c", x, y)


def test_singular_covariance_is_refused(monkeypatch):
    real = fit_module.curve_fit

    def singular(*args, **kwargs):
        theta, cov = real(*args, **kwargs)
        return theta, np.full_like(cov, np.inf)

    monkeypatch.setattr(fit_module, "curve_fit", singular)
    x, y = arms("hill", LEVELS, seed=7)
    with pytest.raises(FitRefused, match="singular covariance"):
        fit_cell("c", x, y, "hill")


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="unknown curve kind 'logistic'"):
        fit_cell("c", [1, 2, 3, 4], [1, 2, 3, 4], "logistic")
    with pytest.raises(UsageError, match="max_rel_ci"):
        fit_cell("c", [1, 2, 3, 4], [1, 2, 3, 4], max_rel_ci=0)


def test_fit_table_collects_every_refusal_one_problem_per_cell():
    good = arms("hill", LEVELS, seed=7)
    few = arms("hill", np.array([0, 100_000, 200_000]), seed=7)
    flat = arms("hill", np.linspace(0, 40_000, 9), seed=7)
    data = AbData("ab.csv", tuple(
        AbCell(name, tuple(x), tuple(y), tuple(range(2, 2 + len(x)))) for name, (x, y) in
        [("group_buy/lower_tier", good), ("bargain/new", few), ("coupon/urban", flat)]
    ))
    with pytest.raises(FitRefused) as info:
        fit_table(data)
    assert info.value.source == "ab.csv"
    assert [p.where for p in info.value.problems] == ["cell 'bargain/new'", "cell 'coupon/urban'"]
    assert "2 spend levels above 0" in info.value.problems[0].what
    assert [f.cell for f in fit_table(AbData("ab.csv", data.cells[:1]))] == ["group_buy/lower_tier"]


# ---------------------------------------------------------------- reading the A/B table


def ab_csv(kind: str = "hill", cell: str = "group_buy/lower_tier", delimiter: str = ",", extra: str = "") -> str:
    x, y = arms(kind, LEVELS, seed=7)
    head = ["cell", "spend", "users"] + (extra.split(",") if extra else [])
    tail = {"viral_k": "0.35", "value_per_user": "38", "max_spend": "600000"}
    lines = [delimiter.join(head)]
    for s, u in zip(x, y):
        lines.append(delimiter.join([cell, f"{s:.0f}", f"{u:.1f}"] + [tail[c] for c in head[3:]]))
    return "\n".join(lines) + "\n"


def test_reads_bom_semicolons_and_optional_columns(tmp_path):
    text = ab_csv(delimiter=";", extra="viral_k,value_per_user,max_spend")
    path = write(tmp_path, "\ufeff".encode() + text.replace("\n", "\r\n").encode())
    data = read_ab_table(path)
    assert data.source == str(path)
    (cell,) = data.cells
    assert cell.id == "group_buy/lower_tier"
    assert len(cell.spend) == len(cell.users) == 27
    assert cell.lines[0] == 2 and cell.lines[-1] == 28
    assert (cell.viral_k, cell.value_per_user, cell.max_spend, cell.min_spend) == (0.35, 38.0, 600_000.0, None)


def test_reads_tabs_and_keeps_cells_in_file_order(tmp_path):
    text = "cell\tspend\tusers\nb\t0\t0\na\t10\t5\n\nb\t20\t9\n"
    data = read_ab_table(write(tmp_path, text))
    assert [c.id for c in data.cells] == ["b", "a"]
    assert data.cell("b").spend == (0.0, 20.0) and data.cell("b").lines == (2, 5)


def test_bad_values_are_all_reported_with_line_and_column(tmp_path):
    text = "cell,spend,users\na,0,0\na,abc,10\na,100,-3\na,nan,5\n,200,4\na,300,inf\n"
    with pytest.raises(InstanceError) as info:
        read_ab_table(write(tmp_path, text))
    err = info.value
    assert err.source.endswith("ab.csv")
    assert [str(p) for p in err.problems] == [
        "ab.csv line 3: spend: must be a number >= 0 (got 'abc')",
        "ab.csv line 4: users: must be >= 0 (got -3)",
        "ab.csv line 5: spend: must be a finite number; NaN and infinity are refused (got 'nan')",
        "ab.csv line 6: cell: missing (every row names its cell)",
        "ab.csv line 7: users: must be a finite number; NaN and infinity are refused (got 'inf')",
    ]
    assert err.render().startswith(f"{err.source}: 5 problems found")


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [
        ("cell,users\na,1\n", "ab.csv: column 'spend'", "missing required column (the header has: cell, users)"),
        ("", "ab.csv", "empty file (expected a header with the columns cell, spend, users)"),
        ("cell,spend,users\n", "ab.csv", "no data rows under the header"),
        (b"cell,spend,users\na,1,2\n\xff\xfe,3,4\n", "ab.csv line 3", "not UTF-8 text (save the file as UTF-8)"),
        ("cell,spend,users,viralk\na,1,2,0.1\n", "ab.csv: column 'viralk'", "unknown column (expected cell, spend, users, mechanic, segment, viral_k, value_per_user, min_spend, max_spend)"),
        ("cell,spend,users\na,1,2,3\n", "ab.csv line 2", "4 cells, but the header has 3 columns"),
        ("cell,spend,users\na,,2\n", "ab.csv line 2", "spend: missing (must be a number >= 0)"),
    ],
)
def test_file_level_problems_are_located(tmp_path, content, where, what):
    with pytest.raises(InstanceError) as info:
        read_ab_table(write(tmp_path, content))
    assert [(p.where, p.what) for p in info.value.problems] == [(where, what)]


def test_missing_file_is_an_instance_error(tmp_path):
    with pytest.raises(InstanceError, match="ab.csv: file not found"):
        read_ab_table(tmp_path / "ab.csv")


def test_per_cell_attribute_that_differs_within_a_cell_is_refused(tmp_path):
    text = "cell,spend,users,viral_k\nx,0,0,\nx,10,5,0.2\ny,10,5,0.5\nx,20,9,0.20\nx,30,12,0.3\nx,40,14,0.4\n"
    with pytest.raises(InstanceError) as info:
        read_ab_table(write(tmp_path, text))
    # 0.20 equals 0.2 and a blank states nothing; the first real difference is reported, once
    assert [str(p) for p in info.value.problems] == [
        "ab.csv line 6: viral_k differs within cell 'x': 0.2 on line 3, 0.3 on line 6 (it must be constant within a cell)"
    ]


def test_viral_k_outside_0_1_and_min_above_max_are_refused(tmp_path):
    text = "cell,spend,users,viral_k,min_spend,max_spend\nx,0,0,1,,\ny,10,5,-0.1,,\nz,10,5,0.5,500,100\n"
    with pytest.raises(InstanceError) as info:
        read_ab_table(write(tmp_path, text))
    assert [str(p) for p in info.value.problems] == [
        "ab.csv line 2: viral_k: must be in [0, 1) (got 1)",
        "ab.csv line 3: viral_k: must be in [0, 1) (got -0.1)",
        "ab.csv: cell 'z': min_spend 500 > max_spend 100",
    ]


# ---------------------------------------------------------------- the incentive_budget document


def two_cell_data(tmp_path: Path) -> AbData:
    a = ab_csv("hill", cell="group_buy/lower_tier", extra="viral_k,value_per_user,max_spend")
    b = ab_csv("exponential", cell="invite", extra="viral_k,value_per_user,max_spend")
    # the second cell leaves its optional columns blank: the defaults apply
    text = a + "".join(line.replace(",0.35,38,600000", ",,,") + "\n" for line in b.splitlines()[1:])
    return read_ab_table(write(tmp_path, text))


def test_to_instance_builds_the_documented_document(tmp_path):
    data = two_cell_data(tmp_path)
    fits = fit_table(data)
    doc = to_instance(data, fits, name="q3-growth", budget=1_000_000.0, default_viral_k=0.1, default_value_per_user=12.5)
    assert list(doc) == ["problem", "schema_version", "name", "description", "budget", "objective", "cells"]
    assert (doc["problem"], doc["schema_version"], doc["name"], doc["budget"], doc["objective"]) == ("incentive_budget", 1, "q3-growth", 1_000_000, "users")
    assert str(data.source) in doc["description"] and "fitted" in doc["description"]
    first, second = doc["cells"]
    assert first == {
        "id": "group_buy/lower_tier", "mechanic": "group_buy", "segment": "lower_tier",
        "response": {"kind": "hill", **{k: float(f"{v:.6g}") for k, v in fits[0].params.items()}},
        "viral_k": 0.35, "value_per_user": 38, "max_spend": 600_000,
    }
    assert first["response"]["max_users"] != fits[0].params["max_users"]  # rounded to 6 digits
    assert second == {
        "id": "invite", "response": {"kind": "exponential", **{k: float(f"{v:.6g}") for k, v in fits[1].params.items()}},
        "viral_k": 0.1, "value_per_user": 12.5,
    }


def test_to_instance_optional_keys_and_objective_checks(tmp_path):
    data = two_cell_data(tmp_path)
    fits = fit_table(data)
    doc = to_instance(data, fits, name="n", budget=5e5, objective="min_spend", target_users=60_000, step=1000)
    assert (doc["target_users"], doc["step"], doc["objective"]) == (60_000, 1000, "min_spend")
    with pytest.raises(UsageError, match="target_users"):
        to_instance(data, fits, name="n", budget=5e5, objective="min_spend")
    with pytest.raises(UsageError, match="unknown objective 'profit'"):
        to_instance(data, fits, name="n", budget=5e5, objective="profit")


def test_to_instance_passes_the_family_validation(tmp_path):
    pytest.importorskip("models.incentive_budget")
    from models.io import parse_instance

    data = two_cell_data(tmp_path)
    doc = to_instance(data, fit_table(data), name="q3-growth", budget=1_000_000, step=1000)
    instance = parse_instance(doc)
    assert [c.id for c in instance.cells] == ["group_buy/lower_tier", "invite"]


def test_users_at_zero_spend_well_above_zero_are_warned_about(caplog):
    x, y = arms("hill", LEVELS, seed=1)
    fit_cell("c", x, y, "hill")
    assert not caplog.records
    y = np.where(x == 0, 20_000.0, y)  # a control arm counted as total, not incremental, users
    fit_cell("c", x, y, "auto", max_rel_ci=100)
    assert any("users at spend 0 average 20,000" in r.getMessage() and "incremental" in r.getMessage() for r in caplog.records)
