"""Instance files are data: tables may not leave the instance's folder unless the user says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _town_with_sites_outside(tmp_path: Path, reference: str) -> Path:
    inside = tmp_path / "instance"
    inside.mkdir()
    for item in (ROOT / "instances" / "front_warehouse" / "town-tables").iterdir():
        shutil.copy(item, inside / item.name)
    shutil.move(inside / "sites.csv", tmp_path / "sites.csv")
    toml = inside / "town.toml"
    toml.write_text(toml.read_text().replace('"sites.csv"', json.dumps(reference)))
    return toml


def test_a_table_outside_the_folder_is_refused_unless_allowed(tmp_path):
    toml = _town_with_sites_outside(tmp_path, "../sites.csv")
    refused = runner.invoke(app, ["validate", str(toml)])
    assert refused.exit_code == 2
    assert "sites.table" in refused.stderr and "outside the instance's folder" in refused.stderr and "--allow-outside-tables" in refused.stderr
    allowed = runner.invoke(app, ["validate", str(toml), "--allow-outside-tables"])
    assert allowed.exit_code == 0, allowed.stderr


def test_an_absolute_table_path_elsewhere_is_refused(tmp_path):
    toml = _town_with_sites_outside(tmp_path, str(tmp_path / "sites.csv"))
    assert runner.invoke(app, ["validate", str(toml)]).exit_code == 2


def test_a_users_table_outside_the_folder_is_refused_unless_allowed(tmp_path):
    inside = tmp_path / "instance"
    inside.mkdir()
    shutil.copy(ROOT / "instances" / "incentive_assignment" / "coupons-csv-users.csv", tmp_path / "users.csv")
    doc = json.loads((ROOT / "instances" / "incentive_assignment" / "coupons-csv.json").read_text())
    doc["users"] = {"table": "../users.csv"}
    path = inside / "coupons.json"
    path.write_text(json.dumps(doc))
    refused = runner.invoke(app, ["validate", str(path)])
    assert refused.exit_code == 2 and "users.table" in refused.stderr and "outside the instance's folder" in refused.stderr
    assert runner.invoke(app, ["validate", str(path), "--allow-outside-tables"]).exit_code == 0


def test_tables_in_a_subfolder_are_fine(tmp_path):
    (tmp_path / "tables").mkdir()
    for item in (ROOT / "instances" / "front_warehouse" / "town-tables").iterdir():
        shutil.copy(item, (tmp_path / "tables" if item.suffix == ".csv" else tmp_path) / item.name)
    toml = tmp_path / "town.toml"
    text = toml.read_text()
    for name in ("sites", "zones", "arcs"):
        text = text.replace(f'"{name}.csv"', f'"tables/{name}.csv"')
    toml.write_text(text)
    result = runner.invoke(app, ["validate", str(toml)])
    assert result.exit_code == 0, result.stderr


def test_numbers_beyond_what_solvers_resolve_are_warned_about(tmp_path):
    from models.front_warehouse import generate

    doc = generate(4, 8, seed=1, max_minutes=None, promise_minutes=None)
    for site in doc["sites"]:
        site["capacity"] *= 1e13  # capacities in micro-units
        site["fixed_cost"] *= 1e13
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["solve", str(path), "--method", "milp", "--format", "json"])
    assert result.exit_code in (0, 3), result.stderr
    assert "warning:" in result.stderr and "above 1e+12" in result.stderr
    assert json.loads(result.stdout)["meta"]["warnings"]


def test_a_model_too_big_for_the_memory_available_is_refused_before_building(monkeypatch):
    import pytest

    from models import UsageError, load_instance
    from optimizers import memory, solve

    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    inst = load_instance(ROOT / "instances" / "front_warehouse" / "metro-40x400.json")
    with pytest.raises(UsageError, match=r"extensive-form MILP \(about [\d,]+ columns, [\d,]+ nonzeros\) would need about \d+ MB to build and solve; 1 MB are available"):
        solve(inst, method="milp")
