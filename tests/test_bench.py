"""`ecomopt bench`: suites, the runner on every executor, resume after a kill, reports."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from models.errors import InstanceError
from optimizers.bench import compare, load_suite, read_records, run_suite, summary, to_markdown
from optimizers.bench import runner as bench_runner
from tests.conftest import ORLIB, ROOT

FILES_40 = sorted(str(p) for p in ORLIB.glob("cap[4-9]*.txt"))[:20]


def write_suite(tmp_path: Path, files: list[str], methods: str, name: str = "t", extra: str = "") -> Path:
    listed = ", ".join(json.dumps(f) for f in files)
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\n{extra}\n[options]\ntime_limit_s = 30\n\n[[instances]]\nfiles = [{listed}]\n'
        f'input_format = "orlib-cap"\nreferences = "{ORLIB / "OPTIMA.tsv"}"\n\n{methods}'
    )
    return path


HIGHS_AND_TUTORIAL = '[[methods]]\nlabel = "highs"\nmethod = "milp"\nbackend = "highs"\n\n[[methods]]\nlabel = "tutorial"\nmethod = "pulp_tutorial"\nbaseline = true\n'


def test_suite_expands_runs_with_references(tmp_path):
    suite, runs = load_suite(write_suite(tmp_path, FILES_40, HIGHS_AND_TUTORIAL, extra="seeds = [0, 1]\nrepetitions = 2"))
    assert len(runs) == 20 * 2 * 2 * 2
    assert len({r.key for r in runs}) == len(runs)
    cap41 = next(r for r in runs if r.instance == "cap41")
    assert cap41.reference == pytest.approx(1040444.375) and cap41.options["seed"] in (0, 1)


def test_capacity_lists_name_instances_as_in_the_optima_table():
    _, runs = load_suite(ROOT / "benchmarks" / "suites" / "orlib-capabc.toml")
    names = {r.instance for r in runs}
    assert {"capa_8000", "capb_5000", "capc_7250"} <= names and len(names) == 12
    assert all(r.reference is not None for r in runs)


def test_suite_mistakes_are_located(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nrepetition = 2\n[[instances]]\nfiles = "nothing-*.txt"\ninput_format = "orlib-cap"\n[[methods]]\nmethod = "milp"\n')
    with pytest.raises(InstanceError) as info:
        load_suite(path)
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("repetition:") and "repetitions" in p for p in found), found
    path.write_text('name = "x"\n[[instances]]\nfiles = "nothing-*.txt"\ninput_format = "orlib-cap"\n[[methods]]\nmethod = "milp"\n')
    with pytest.raises(InstanceError, match=r"instances\[0\].files: no file matches"):
        load_suite(path)


def test_forty_runs_killed_half_way_then_resumed(tmp_path):
    suite = write_suite(tmp_path, FILES_40, HIGHS_AND_TUTORIAL)
    out = tmp_path / "runs.jsonl"
    cmd = [sys.executable, "cli.py", "bench", "run", str(suite), "--workers", "2", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 10:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = read_records(out)
    assert 10 <= len(first) < 40
    assert out.read_bytes().endswith(b"\n")

    res = CliRunner().invoke(app, ["bench", "run", str(suite), "--workers", "2", "--out", str(out), "--resume", "--quiet"])
    assert res.exit_code == 0, res.stderr
    assert "summary" in res.stdout
    lines = out.read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]  # every line is complete JSON
    assert len(keys) == 40 and len(set(keys)) == 40
    assert {r["key"] for r in first} <= set(keys)
    rows = {r["label"]: r for r in summary(read_records(out))}
    assert rows["highs"]["match_reference"] == "20/20" and rows["highs"]["errors"] == 0


def test_partial_last_line_is_repaired_on_resume(tmp_path):
    suite = write_suite(tmp_path, FILES_40[:2], HIGHS_AND_TUTORIAL)
    out = tmp_path / "runs.jsonl"
    run_suite(load_suite(suite)[1], out, workers=1)
    with out.open("ab") as fh:
        fh.write(b'{"key": "cap41|hig')
    assert len(read_records(out)) == 4
    with pytest.raises(Exception, match="--resume"):
        run_suite(load_suite(suite)[1], out, workers=1)
    done, skipped = run_suite(load_suite(suite)[1], out, workers=1, resume=True)
    assert (done, skipped) == (0, 4)
    assert out.read_bytes().endswith(b"\n") and len(out.read_text().splitlines()) == 4


def test_dask_local_cluster_gives_the_same_records_as_the_process_pool(tmp_path):
    distributed = pytest.importorskip("distributed")
    suite = write_suite(tmp_path, FILES_40[:4], HIGHS_AND_TUTORIAL)
    _, runs = load_suite(suite)
    pool_out, dask_out = tmp_path / "pool.jsonl", tmp_path / "dask.jsonl"
    run_suite(runs, pool_out, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        run_suite(runs, dask_out, scheduler=cluster.scheduler_address)
    rows, total = compare(read_records(pool_out), read_records(dask_out))
    assert total["matched"] == len(runs) and total["same_status"] == len(runs) and total["objective_differs"] == 0


def crash(instance, backend, options):
    os._exit(7)


def sleepy(instance, backend, options):
    time.sleep(60)


def test_a_crashing_or_hanging_run_becomes_an_error_record(tmp_path, monkeypatch):
    from optimizers.registry import METHODS, Method, register

    register(Method("front_warehouse", "test-crash", "dies", crash))
    register(Method("front_warehouse", "test-sleep", "hangs", sleepy))
    monkeypatch.setattr(bench_runner, "GRACE_S", 1.0)
    try:
        methods = HIGHS_AND_TUTORIAL + '[[methods]]\nlabel = "crash"\nmethod = "test-crash"\n[[methods]]\nlabel = "sleep"\nmethod = "test-sleep"\noptions = { time_limit_s = 0.5 }\n'
        suite = write_suite(tmp_path, FILES_40[:2], methods)
        out = tmp_path / "runs.jsonl"
        run_suite(load_suite(suite)[1], out, workers=2)
        records = {r["key"]: r for r in read_records(out)}
        assert len(records) == 8
        crashed = [r for r in records.values() if r["label"] == "crash"]
        assert all(r["status"] == "error" and "died" in r["error"] for r in crashed)
        hung = [r for r in records.values() if r["label"] == "sleep"]
        assert all(r["status"] == "error" and "timed out" in r["error"] for r in hung)
        assert all(r["status"] == "optimal" for r in records.values() if r["label"] in ("highs", "tutorial"))
    finally:
        METHODS["front_warehouse"].pop("test-crash")
        METHODS["front_warehouse"].pop("test-sleep")


def test_bad_instance_is_an_error_record_not_a_crash(tmp_path):
    bad = tmp_path / "broken.txt"
    bad.write_text("2 1\n10 5\n10 x\n4 1 2\n")
    out = tmp_path / "runs.jsonl"
    run_suite(load_suite(write_suite(tmp_path, [str(bad)], HIGHS_AND_TUTORIAL))[1], out, workers=1)
    records = read_records(out)
    assert len(records) == 2 and all(r["status"] == "error" and "line 3" in r["error"] for r in records)


def test_report_and_compare_commands(tmp_path):
    suite = write_suite(tmp_path, FILES_40[:3], HIGHS_AND_TUTORIAL)
    out = tmp_path / "runs.jsonl"
    run_suite(load_suite(suite)[1], out, workers=1)
    runner = CliRunner()
    md = runner.invoke(app, ["bench", "report", str(out), "--format", "markdown"])
    assert md.exit_code == 0 and "| label | instances |" in md.stdout and "time_ratio_to_baseline" in md.stdout
    js = runner.invoke(app, ["bench", "report", str(out), "--format", "json"])
    assert {r["label"] for r in json.loads(js.stdout)["summary"]} == {"highs", "tutorial"}
    same = runner.invoke(app, ["bench", "compare", str(out), str(out), "--format", "json"])
    assert json.loads(same.stdout)["total"]["same_status"] == 6
    assert "highs" in to_markdown(read_records(out))


def test_method_options_are_checked(tmp_path):
    methods = '[[methods]]\nlabel = "highs"\nmethod = "milp"\noptions = { time_limt_s = 5 }\n'
    with pytest.raises(InstanceError, match=r"methods\[0\].options.time_limt_s: unknown key"):
        load_suite(write_suite(tmp_path, FILES_40[:1], methods))
