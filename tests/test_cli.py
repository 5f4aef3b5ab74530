"""The command line, as a planner uses it: stdout carries results only, exit codes as documented."""

import json

import pytest
from typer.testing import CliRunner

from cli import app
from models.front_warehouse import generate
from tests.conftest import INSTANCES, ORLIB

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_solve_json_is_one_document_with_the_published_optimum():
    res = run("solve", ORLIB / "cap41.txt", "--input-format", "orlib-cap", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "optimal" and doc["objective"] == pytest.approx(1040444.375, rel=1e-6)
    for key in ("schema_version", "problem", "instance", "bound", "gap", "runtime_s", "method", "backend", "solution", "evaluation"):
        assert key in doc
    assert doc["evaluation"]["violations"] == []
    assert set(doc["solution"]) >= {"open_sites", "flows", "stock"}


def test_solve_table_and_output_file(tmp_path):
    target = tmp_path / "result.json"
    res = run("solve", INSTANCES / "front_warehouse" / "town-12x60.json", "--output", target)
    assert res.exit_code == 0, res.stderr
    assert "optimal" in res.stdout and "open sites" in res.stdout and "passes evaluate()" in res.stdout
    assert json.loads(target.read_text())["status"] == "optimal"
    assert not list(tmp_path.glob(".result.json.*")), "temporary file left behind"


def test_time_limit_never_claims_optimal():
    res = run("solve", ORLIB / "capb.txt", "--input-format", "orlib-cap", "--capacity", "5000", "--time-limit", "1", "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["status"] in ("feasible", "no_solution")
    assert res.exit_code == (0 if doc["status"] == "feasible" else 3)


def test_single_source_flag():
    res = run("solve", ORLIB / "cap64.txt", "--input-format", "orlib-cap", "--single-source", "--format", "json")
    assert json.loads(res.stdout)["objective"] == pytest.approx(1053197.44, rel=1e-6)


def test_three_mistakes_exit_2_all_named_without_traceback(tmp_path):
    doc = generate(4, 10, seed=1, max_minutes=None)
    doc["sites"][2]["capacity"] = -5
    doc["arcs"][3]["zone"] = "z-nowhere"
    doc["sites"][1]["capactiy"] = 10
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    for command in ("solve", "validate"):
        res = run(command, path)
        assert res.exit_code == 2
        assert "sites[2].capacity" in res.stderr and "arcs[3].zone" in res.stderr and "sites[1].capactiy" in res.stderr
        assert "Traceback" not in res.stderr + res.stdout
        assert res.stdout == ""


def test_infeasible_instance_exits_3(tmp_path):
    doc = generate(4, 10, seed=1, max_minutes=None, depot_cost_per_unit=None, promise_minutes=None)
    # zone 1 is reachable from site 1 only, zone 2 from site 2 only, and one site may open:
    # no check before solving sees it, the solver proves it
    doc["arcs"] = [a for a in doc["arcs"] if (a["zone"], a["site"]) not in {("z-0001", "fw-002"), ("z-0001", "fw-003"), ("z-0001", "fw-004")}]
    doc["arcs"] = [a for a in doc["arcs"] if a["zone"] != "z-0002" or a["site"] == "fw-002"]
    doc["sites"] = [{**s, "capacity": 1e6} for s in doc["sites"]]
    doc["max_open_sites"] = 1
    path = tmp_path / "tight.json"
    path.write_text(json.dumps(doc))
    res = run("solve", path, "--format", "json")
    assert res.exit_code == 3, res.stderr
    assert json.loads(res.stdout)["status"] == "infeasible"


@pytest.mark.parametrize(
    "args, text",
    [
        (["--backend", "gurobi"], "cannot use backend 'gurobi'"),
        (["--method", "magic"], "unknown method"),
        (["--input-format", "xml"], "unknown format"),
        (["--capacity", "10"], "only applies"),
    ],
)
def test_bad_usage_exits_2(args, text):
    res = run("solve", INSTANCES / "front_warehouse" / "town-12x60.json", *args)
    assert res.exit_code == 2 and text in res.stderr


def test_missing_file_exits_2():
    assert run("solve", "no-such-file.json").exit_code == 2


def test_validate_schema_backends_version():
    ok = run("validate", INSTANCES / "front_warehouse" / "town-tables" / "town.toml")
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: town-12x60-tables")
    schema = run("schema", "front_warehouse")
    assert schema.exit_code == 0 and json.loads(schema.stdout)["title"] == "FrontWarehouse"
    assert run("schema", "nope").exit_code == 2
    backends = run("backends")
    assert backends.exit_code == 0 and "highs" in backends.stdout and "milp (default)" in backends.stdout
    version = run("--version")
    assert version.exit_code == 0 and version.stdout.startswith("ecomopt ")


def test_python_cli_py_works_from_a_checkout():
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "cli.py", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("ecomopt")


def test_output_into_a_missing_folder_exits_2_before_solving(tmp_path):
    res = run("solve", INSTANCES / "front_warehouse" / "town-12x60.json", "--output", tmp_path / "nope" / "r.json")
    assert res.exit_code == 2 and "--output" in res.stderr and res.stdout == ""
