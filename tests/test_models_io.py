"""Loading and validating instance files: every problem reported once, with its location."""

import json
import subprocess
import sys

import pytest

from models import InstanceError, load_instance, parse_instance
from models.front_warehouse import generate
from models.io import FAMILIES
from tests.conftest import INSTANCES, ORLIB, ROOT


def small_doc() -> dict:
    return generate(4, 10, seed=1, max_minutes=None)


def problems_of(doc, tmp_path=None) -> list[str]:
    with pytest.raises(InstanceError) as info:
        parse_instance(doc, base_dir=tmp_path)
    return [str(p) for p in info.value.problems]


def test_three_mistakes_reported_together_with_locations():
    doc = small_doc()
    doc["sites"][2]["capacity"] = -5
    doc["arcs"][3]["zone"] = "z-nowhere"
    doc["sites"][1]["capactiy"] = 10
    found = problems_of(doc)
    assert any(p.startswith("sites[2].capacity:") and "-5" in p for p in found), found
    assert any(p.startswith("arcs[3].zone:") and "z-nowhere" in p for p in found), found
    assert any(p.startswith("sites[1].capactiy:") and "did you mean 'capacity'" in p for p in found), found
    assert len(found) == 3, found


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d["sites"].append(dict(d["sites"][0])), "sites[4].id"),
        (lambda d: d["zones"][0]["demand"].update({"ghost": 3}), "zones[0].demand.ghost"),
        (lambda d: d.update(lost_sale_cost={"ghost": 1.0}), "lost_sale_cost.ghost"),
        (lambda d: d["arcs"].append(dict(d["arcs"][0])), "arcs[40]"),
        (lambda d: d["arcs"][0].update(site="nope"), "arcs[0].site"),
        (lambda d: d["sites"][0].update(status="maybe"), "sites[0].status"),
        (lambda d: d.update(scenarios=[{"id": "a", "probability": 0.5}]), "scenarios"),
        (lambda d: d["service"].update(min_share_within_promise=1.5), "service.min_share_within_promise"),
        (lambda d: d["arcs"][1].pop("minutes"), "arcs[1].minutes"),
        (lambda d: d.pop("arcs"), "arcs"),
        (lambda d: d.update(skus=[]), "skus"),
        (lambda d: d["zones"][2].update(demand={"sku-01": float("nan")}), "zones[2].demand.sku-01"),
        (lambda d: d["sites"][0].update(id=7), "sites[0].id"),
        (lambda d: d.update(max_open_sites=0, sites=[{**s, "status": "open"} for s in d["sites"]]), "max_open_sites"),
    ],
)
def test_each_mistake_is_located(mutate, where):
    doc = small_doc()
    mutate(doc)
    found = problems_of(doc)
    assert any(p.startswith(where) for p in found), found


def test_infeasible_capacity_quotes_numbers():
    doc = small_doc()
    doc.pop("depot")
    for site in doc["sites"]:
        site["capacity"] = 1.0
    found = problems_of(doc)
    assert any("may open (4) < volume of demand" in p for p in found), found


def test_file_level_errors(tmp_path):
    cases = {
        "broken.json": b'{"problem": "front_warehouse",',
        "latin1.json": '{"name": "caf\xe9"}'.encode("latin-1"),
        "list.json": b"[1, 2]",
        "tag.json": b'{"problem": "vrp"}',
        "nan.json": b'{"problem": "front_warehouse", "max_open_sites": NaN}',
        "bad.toml": b"problem = [",
        "instance.yaml": b"problem: front_warehouse",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(InstanceError) as info:
            load_instance(path)
        assert str(path) in str(info.value), name
        assert info.value.problems, name


def test_tables_csv_and_their_errors(tmp_path):
    inst = load_instance(INSTANCES / "front_warehouse" / "town-tables" / "town.toml")
    reference = load_instance(INSTANCES / "front_warehouse" / "town-12x60.json")
    assert inst.sites == reference.sites and inst.zones == reference.zones and inst.arcs == reference.arcs

    doc = small_doc()
    doc["zones"] = {"table": "zones.csv"}
    (tmp_path / "zones.csv").write_text("id,x,y,demand_sku-01\nz-0001,1,2,5\nz-0002,1,2,minus\n")
    found = problems_of(doc, tmp_path)
    assert any("zones[1].demand.sku-01 (zones.csv line 3)" in p for p in found), found
    doc["zones"] = {"table": "missing.csv"}
    assert any(p.startswith("zones.table: file not found") for p in problems_of(doc, tmp_path))


def test_orlib_reader_maps_costs_per_unit():
    inst = load_instance(ORLIB / "cap41.txt", input_format="orlib-cap")
    assert len(inst.sites) == 16 and len(inst.zones) == 50 and len(inst.arcs) == 800
    first = inst.zones[0].demand["unit"]
    raw = (ORLIB / "cap41.txt").read_text().split()
    demand, cost = float(raw[2 + 2 * 16]), float(raw[2 + 2 * 16 + 1])
    assert first == demand and inst.arcs[0].cost_per_unit == pytest.approx(cost / demand)


def test_orlib_capacity_word_needs_capacity_option(tmp_path):
    with pytest.raises(InstanceError, match="--capacity"):
        load_instance(ORLIB / "capa.txt", input_format="orlib-cap")
    short = tmp_path / "short.txt"
    short.write_text("2 1\n10 5\n10 x\n4 1 2\n")
    with pytest.raises(InstanceError, match="line 3"):
        load_instance(short, input_format="orlib-cap")


def test_models_does_not_import_solver_libraries():
    code = "import sys, models; models.load_instance(sys.argv[1]); " \
           "bad = [m for m in ('ortools', 'pulp', 'scipy.optimize', 'optimizers') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code, str(INSTANCES / "front_warehouse" / "town-12x60.json")],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("problem", sorted(FAMILIES))
def test_shipped_schema_matches_the_code(problem):
    def shape(schema: dict) -> dict:
        # keys and required keys per object: what a user relies on, and stable across pydantic versions
        objects = {"": schema, **schema.get("$defs", {})}
        return {name: (sorted(d.get("properties", {})), sorted(d.get("required", []))) for name, d in objects.items()}

    shipped = json.loads((INSTANCES / "schema" / f"{problem}.json").read_text())
    assert shape(shipped) == shape(FAMILIES[problem].schema.model_json_schema()), "run `make schemas`"


def test_orlib_truncated_file(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("2 1\n10 5\n10 3\n4 1\n")
    with pytest.raises(InstanceError, match="ends early"):
        load_instance(short, input_format="orlib-cap")


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.update(lost_sale_cost=5), "lost_sale_cost"),
        (lambda d: d.update(zones="oops"), "zones"),
        (lambda d: d["arcs"].append(5), "arcs[40]"),
        (lambda d: d.update(sites={"table": 5}), "sites.table"),
        (lambda d: d.update(depot=[]), "depot"),
    ],
)
def test_malformed_structures_are_located_not_crashes(mutate, where):
    doc = small_doc()
    mutate(doc)
    found = problems_of(doc)
    assert any(p.startswith(where) for p in found), found
    assert not any(p.startswith("sites:") for p in found if where == "sites.table"), found


def test_byte_order_marks_from_spreadsheets_are_accepted(tmp_path):
    doc = small_doc()
    rows = ["id,x,y,demand_sku-01"] + [f"{z['id']},{z['x']},{z['y']},{z['demand']['sku-01']}" for z in doc["zones"]]
    (tmp_path / "zones.csv").write_bytes("\n".join(rows).encode("utf-8-sig"))
    doc["zones"] = {"table": "zones.csv"}
    path = tmp_path / "bom.json"
    path.write_bytes(json.dumps(doc).encode("utf-8-sig"))
    assert len(load_instance(path).zones) == 10


def test_semicolon_tables_and_overlong_rows(tmp_path):
    doc = small_doc()
    rows = ["id;x;y;demand_sku-01"] + [f"{z['id']};{z['x']};{z['y']};{z['demand']['sku-01']}" for z in doc["zones"]]
    (tmp_path / "zones.csv").write_text("\n".join(rows))
    doc["zones"] = {"table": "zones.csv"}
    assert len(parse_instance(doc, base_dir=tmp_path).zones) == 10
    (tmp_path / "zones.csv").write_text("\n".join(rows[:3] + [rows[3] + ";7"] + rows[4:]))
    assert any("zones.csv line 4: more cells" in p for p in problems_of(doc, tmp_path))
