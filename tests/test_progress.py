"""Progress reports: what a caller's callback sees while a solve runs, and that it is true."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from models import load_instance
from optimizers import SolverOptions, solve
from optimizers import progress as progress_module
from optimizers.backends.base import can_fork
from optimizers.backends.highs import HighsLog
from optimizers.progress import Progress
from optimizers.stopping import request_stop

INSTANCES = Path(__file__).resolve().parent.parent / "instances"
TOL = 1e-6


def follow(path: Path, method: str | None = None, **load) -> tuple[object, list[Progress]]:
    seen: list[Progress] = []
    result = solve(load_instance(path, **load), method=method, on_progress=seen.append)
    return result, seen


def assert_true_numbers(result, seen: list[Progress], maximise: bool) -> None:
    """Every incumbent reported is a plan no better than the final one (proven optimal here),
    and every bound holds for it."""
    assert result.status.value == "optimal"
    best = result.objective
    scale = TOL * max(1.0, abs(best))
    for p in seen:
        if p.incumbent is not None:
            assert (p.incumbent <= best + scale) if maximise else (p.incumbent >= best - scale), p
        if p.bound is not None:
            assert (p.bound >= best - scale) if maximise else (p.bound <= best + scale), p
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    assert seen[-1].phase == "done" and seen[-1].incumbent == result.objective and seen[-1].bound == result.bound


def test_lagrangian_location_reports_true_incumbents_and_bounds():
    result, seen = follow(INSTANCES / "orlib/cap71.txt", method="lagrangian", input_format="orlib-cap")
    assert_true_numbers(result, seen, maximise=False)
    phases = {p.phase for p in seen}
    assert {"subgradient", "done"} <= phases
    assert any(p.incumbent is not None and p.bound is not None for p in seen[:-1])


def test_highs_log_gives_the_extensive_forms_incumbent_and_bound_and_side_problems_stay_out():
    if not can_fork():  # other tests left threads (e.g. Dask's): HiGHS would run in-process, without its log
        here = f"{Path(__file__)}::test_highs_log_gives_the_extensive_forms_incumbent_and_bound_and_side_problems_stay_out"
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", here], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:]
        return
    result, seen = follow(INSTANCES / "front_warehouse/suburb-peak-25x200.json")
    assert_true_numbers(result, seen, maximise=False)
    during = [p for p in seen if p.phase == "HiGHS branch-and-cut"]
    assert during and any(p.incumbent is not None for p in during) and any(p.bound is not None for p in during)
    side = [k for k, p in enumerate(seen) if p.phase.startswith("mean-demand plan")]
    assert side, [p.phase for p in seen]
    first = seen[side[0]]
    for k in side:  # the mean-demand plan's own numbers are not the problem's: they stay as the main solve left them
        assert (seen[k].incumbent, seen[k].bound) == (first.incumbent, first.bound)
    assert first.incumbent == pytest.approx(result.objective, rel=1e-6)


def test_membership_boxes_and_budget_dp_report_true_numbers():
    result, seen = follow(INSTANCES / "membership_pricing/prime-tiers.json")
    assert_true_numbers(result, seen, maximise=True)
    assert any(p.phase == "branch and bound over fee boxes" and p.detail.endswith("boxes") for p in seen)
    result, seen = follow(INSTANCES / "incentive_budget/q3-growth.json")
    assert result.status.value == "optimal" and any(p.phase == "dynamic program" for p in seen)
    for p in seen:
        if p.bound is not None:
            assert p.bound >= result.objective * (1 - 1e-6)


def test_assignment_dual_reports_upper_bounds():
    result, seen = follow(INSTANCES / "incentive_assignment/new-user-push.json")
    dual = [p for p in seen if p.phase == "dual bundle"]
    assert dual and all(p.bound >= result.objective * (1 - 1e-9) for p in dual)
    assert seen[-1].phase == "done"


def test_callback_may_stop_the_solve_and_keep_the_best_plan():
    inst = load_instance(INSTANCES / "orlib/capa.txt", input_format="orlib-cap", capacity=8000)

    def stop_once_a_plan_exists(p: Progress) -> None:
        if p.incumbent is not None and p.elapsed_s > 0.5:
            request_stop()

    started = time.perf_counter()
    result = solve(inst, options=SolverOptions(time_limit_s=120), on_progress=stop_once_a_plan_exists)
    assert result.status.value in ("feasible", "optimal") and result.objective is not None and result.bound is not None
    assert time.perf_counter() - started < 60  # it stopped long before its limit (a loose check: the point is the stop)
    assert result.meta.get("stopped") or result.status.value == "optimal"


def test_without_a_callback_nothing_listens_and_results_are_the_same():
    inst = load_instance(INSTANCES / "front_warehouse/town-12x60.json")
    plain = solve(inst)
    followed = solve(inst, on_progress=lambda p: None)
    assert not progress_module.active()
    assert plain.objective == followed.objective and plain.solution == followed.solution


def test_highs_log_lines_are_read_in_the_problems_sense():
    lines = [
        " J       0       0         0   0.00%   -inf            1248142.9          Large        0      0      0         0     0.0s",
        " T       0       0         0   0.00%   36322.8625      793439.5625       95.42%        0      0      0       191     0.0s",
        "  Timing            0.03",
        "Presolve reductions: rows 510(-2090); columns 511(-2039); nonzeros 1760(-8290)",
    ]
    minimise = HighsLog(sign=1.0, offset=10.0)
    assert minimise.bounds(lines[0]) == (None, 1248152.9)
    assert minimise.bounds(lines[1]) == (36332.8625, 793449.5625)
    assert minimise.bounds(lines[2]) is None and minimise.bounds(lines[3]) is None
    maximise = HighsLog(sign=-1.0, offset=0.0)  # HiGHS minimises -profit: its bound is -(upper bound)
    assert maximise.bounds(lines[1]) == (-36322.8625, -793439.5625)


def test_cli_progress_line_shows_elapsed_phase_incumbent_bound_and_gap():
    line = cli.ProgressLine(time.perf_counter() - 3.0)
    line(Progress(elapsed_s=2.5, phase="branch and bound", incumbent=1050.0, bound=1000.0, detail="12 nodes, 4 open"))
    text = str(line.live.renderable)
    assert "3." in text and "branch and bound: 12 nodes, 4 open" in text and "incumbent 1,050" in text and "bound 1,000" in text
    assert "gap 4.762%" in text


def test_cli_prints_no_progress_when_stderr_is_not_a_terminal():
    res = CliRunner().invoke(cli.app, ["solve", str(INSTANCES / "front_warehouse/town-12x60.json")])
    assert res.exit_code == 0 and "incumbent" not in res.stderr and "bound" not in res.stderr


@pytest.mark.parametrize("quiet", [True, False])
def test_cli_quiet_is_accepted(quiet):
    args = ["solve", str(INSTANCES / "front_warehouse/town-12x60.json"), "--format", "json"] + (["--quiet"] if quiet else [])
    assert CliRunner().invoke(cli.app, args).exit_code == 0
