"""Fuzz the CLI with bad input of every kind, for every family and input format.

Each case writes an instance (and its tables) to a fresh folder, spoils it and runs
`ecomopt validate` (or `solve`, where tables are only read while solving). Every run must
end with exit 0 (the spoilt input is still valid), 2 (a message on stderr that names the
file and where in it) or, for solve, 3; never exit 1, a traceback or an internal error.
Each test counts the bad inputs it tried and requires a minimum, so the suite cannot pass by
trying nothing. Runs are derandomized (the same cases every time); set ECOMOPT_FUZZ_RANDOM=1
to explore new ones.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import app
from models.front_warehouse import generate

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ROOT / "instances"
RANDOM = bool(os.environ.get("ECOMOPT_FUZZ_RANDOM"))
runner = CliRunner()
TRIED: dict[str, Counter[str]] = {}  # test -> outcomes, for the total at the end
COMMAND = typer.main.get_command(app)  # built once: typer's own runner rebuilds it every call


def fuzz_settings(examples: int) -> Callable[[Any], Any]:
    return settings(max_examples=examples, deadline=None, derandomize=not RANDOM, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


# ----------------------------------------------------------------------------- spoilers

JUNK_VALUES = [None, True, False, 0, -1, -1e-9, 1e308, 10**400, float("nan"), float("inf"), float("-inf"), "", "x", "NaN", "1e999",
               "sku-01", "fw-001", "z-0001", "silver", "gold", "cell-01", "nope", [], {}, [1, 2], {"table": "missing.csv"},
               {"table": "../outside.csv"}, "\u00e9\u4e2d", "a" * 300]
junk = st.recursive(
    st.sampled_from(JUNK_VALUES) | st.integers(-10**15, 10**15) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=5,
)
TABLE_CELLS = ["", "nan", "NaN", "inf", "-inf", "-1", "-0.5", "1e400", "abc", "1,5", "\u00e9", "0", "1e308", " ", "None", "null", "#N/A"]


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, prefix + (index,))
    return found


def spoil_document(data: st.DataObject, doc: dict[str, Any]) -> dict[str, Any]:
    """Replace, delete, duplicate or empty places of a document; rename ids it refers to."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        places = [p for p in paths(doc) if p]
        if not places:
            break
        path = data.draw(st.sampled_from(places))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key, value = path[-1], parent[path[-1]]
        action = data.draw(st.sampled_from(["junk", "junk", "delete", "duplicate", "empty", "dangling", "scale"]))
        if action == "junk":
            parent[key] = copy.deepcopy(data.draw(junk))
        elif action == "delete":
            del parent[key]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(value))  # a repeated list item: repeated ids
        elif action == "empty" and isinstance(value, (list, dict)):
            parent[key] = type(value)()
        elif action == "dangling" and isinstance(value, str):
            parent[key] = value + "-unknown"
        elif action == "scale" and isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[key] = value * data.draw(st.sampled_from([-1, 0, 1e9, 1e-9, 1e300]))
        elif isinstance(parent, dict):
            parent[key] = copy.deepcopy(data.draw(junk))
    return doc


def spoil_bytes(data: st.DataObject, raw: bytes) -> bytes:
    """Damage a file as editors, downloads and spreadsheets do."""
    action = data.draw(st.sampled_from(["truncate", "bytes", "not-utf8", "deep", "empty", "bom", "nul"]))
    at = data.draw(st.integers(0, max(0, len(raw) - 1)))
    if action == "truncate":
        return raw[:at]
    if action == "bytes":
        return raw[:at] + data.draw(st.binary(min_size=1, max_size=6)) + raw[at + 1:]
    if action == "not-utf8":
        return raw[:at] + b"\xff\xfe\xe9" + raw[at:]
    if action == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    if action == "empty":
        return b""
    if action == "bom":
        return b"\xef\xbb\xbf" + raw[:at]
    return raw[:at] + b"\x00" + raw[at:]


def spoil_table(data: st.DataObject, path: Path) -> None:
    """Drop a column, spoil a cell, repeat or drop a row, add a cell, or damage the file."""
    action = data.draw(st.sampled_from(["cell", "cell", "cell", "drop-column", "repeat-row", "drop-rows", "extra-cell", "bytes", "missing", "header-only"]))
    if action == "missing":
        path.unlink()
        return
    if action == "bytes":
        path.write_bytes(spoil_bytes(data, path.read_bytes()))
        return
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    header, body = rows[0], rows[1:]
    if action == "cell" and body:
        r, c = data.draw(st.integers(0, len(body) - 1)), data.draw(st.integers(0, len(header) - 1))
        body[r][c] = data.draw(st.sampled_from(TABLE_CELLS) | st.text(max_size=5))
    elif action == "drop-column":
        c = data.draw(st.integers(0, len(header) - 1))
        header.pop(c)
        for row in body:
            row.pop(c)
    elif action == "repeat-row" and body:
        body.append(list(body[data.draw(st.integers(0, len(body) - 1))]))
    elif action == "drop-rows":
        body = body[: data.draw(st.integers(0, len(body)))]
    elif action == "extra-cell" and body:
        body[data.draw(st.integers(0, len(body) - 1))].append("1")
    elif action == "header-only":
        body = []
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header] + body)
    path.write_text(buffer.getvalue(), encoding="utf-8")


# ----------------------------------------------------------------------------- the check


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def run(self, args: list[str], name: str, allowed: tuple[int, ...] = (0, 2)) -> None:
        result = runner.invoke(COMMAND, args)
        stderr = result.stderr
        detail = f"{args}: exit {result.exit_code}\n{stderr[-2000:]}"
        folder = str(Path(args[2] if args[0] == "bench" else args[1]).parent)
        assert result.exception is None or isinstance(result.exception, SystemExit), detail + repr(result.exception)
        assert result.exit_code in allowed, detail
        assert "Traceback" not in stderr and "internal error" not in stderr, detail
        if result.exit_code == 2:
            assert name in stderr or folder in stderr or "--" in stderr, "the message must name the file: " + detail
            self.counts["bad"] += 1
        else:
            self.counts[f"exit {result.exit_code}"] += 1
            if args[0] == "validate":  # still valid: then it must also solve (or be refused, or proven infeasible)
                self.run(["solve", *args[1:], "--time-limit", "10", "--format", "json"], name, allowed=(0, 2, 3))


def write_json(folder: Path, name: str, doc: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(doc, allow_nan=True), encoding="utf-8")
    return path


def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("case", numbered=True)


def fuzz(tmp_path_factory: pytest.TempPathFactory, examples: int, minimum: int, case: Callable[[st.DataObject, Path, Tally], None]) -> Tally:
    tally = Tally()

    @fuzz_settings(examples)
    @given(st.data())
    def each(data: st.DataObject) -> None:
        folder = fresh(tmp_path_factory)
        try:
            case(data, folder, tally)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    each()
    TRIED[case.__qualname__.split(".")[0]] = tally.counts
    print(case.__qualname__.split(".")[0], dict(tally.counts))
    assert tally.counts["bad"] >= minimum, tally.counts
    return tally


def document_or_bytes(data: st.DataObject, folder: Path, name: str, doc: dict[str, Any]) -> Path:
    path = write_json(folder, name, spoil_document(data, doc))
    if data.draw(st.integers(0, 4)) == 0:
        path.write_bytes(spoil_bytes(data, path.read_bytes()))
    return path


# ----------------------------------------------------------------------------- families

FRONT_WAREHOUSE = generate(3, 5, seed=2, n_skus=2, max_minutes=None, max_skus=1, lost_sale_cost=9.0, scenarios=[
    {"id": "normal", "probability": 0.7},
    {"id": "peak", "probability": 0.3, "demand_factor": 2.0, "presale_share": 0.3, "transfer_cost_per_unit": 0.5,
     "transfer_max_minutes": 30, "min_share_within_promise": 0.5, "demand_overrides": [{"zone": "z-0001", "sku": "sku-02", "units": 4}]},
])


def test_front_warehouse_documents(tmp_path_factory):
    def case(data, folder, tally):
        tally.run(["validate", str(document_or_bytes(data, folder, "fw.json", FRONT_WAREHOUSE))], "fw.json")

    fuzz(tmp_path_factory, 700, 600, case)


def test_front_warehouse_toml_and_tables(tmp_path_factory):
    source = INSTANCES / "front_warehouse" / "town-tables"

    def case(data, folder, tally):
        for item in source.iterdir():
            shutil.copy(item, folder / item.name)
        target = data.draw(st.sampled_from(["town.toml", "sites.csv", "zones.csv", "arcs.csv"]))
        if target == "town.toml":
            (folder / target).write_bytes(spoil_bytes(data, (folder / target).read_bytes()))
        else:
            spoil_table(data, folder / target)
        tally.run(["validate", str(folder / "town.toml")], "town.toml" if target == "town.toml" else target)

    fuzz(tmp_path_factory, 300, 240, case)


def test_incentive_budget_documents(tmp_path_factory):
    base = json.loads((INSTANCES / "incentive_budget" / "q3-growth.json").read_text())

    def case(data, folder, tally):
        tally.run(["validate", str(document_or_bytes(data, folder, "budget.json", base))], "budget.json")

    fuzz(tmp_path_factory, 450, 370, case)


def test_membership_pricing_documents(tmp_path_factory):
    base = json.loads((INSTANCES / "membership_pricing" / "prime-tiers.json").read_text())

    def case(data, folder, tally):
        tally.run(["validate", str(document_or_bytes(data, folder, "tiers.json", base))], "tiers.json")

    fuzz(tmp_path_factory, 450, 330, case)


ASSIGNMENT = {"problem": "incentive_assignment", "schema_version": 1, "name": "fuzz", "budget": 20.0,
              "treatments": [{"id": "coupon"}, {"id": "gift", "limit": 3}], "segment_budgets": {"new": 5.0},
              "users": {"table": "users.csv"}}
USERS = "user_id,segment,value_coupon,cost_coupon,value_gift,cost_gift\n" + "".join(
    f"{100 + u},{'new' if u % 2 else 'old'},{1 + u % 3},{0.5 + u % 4},{2 + u % 5},{1 + u % 2}\n" for u in range(12))


def test_incentive_assignment_documents_and_tables(tmp_path_factory):
    def case(data, folder, tally):
        (folder / "users.csv").write_text(USERS, encoding="utf-8")
        if data.draw(st.booleans()):
            spoil_table(data, folder / "users.csv")
            path, name = write_json(folder, "assign.json", ASSIGNMENT), "users.csv"
        else:
            path, name = document_or_bytes(data, folder, "assign.json", ASSIGNMENT), "assign.json"
        tally.run(["solve", str(path), "--method", "dual", "--format", "json", "--time-limit", "20"], name, allowed=(0, 2, 3))

    fuzz(tmp_path_factory, 250, 180, case)


def test_incentive_assignment_parquet(tmp_path_factory):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    good = pacsv.read_csv(io.BytesIO(USERS.encode()))

    def case(data, folder, tally):
        table = good
        action = data.draw(st.sampled_from(["drop-column", "nan", "strings", "duplicate", "bytes", "empty"]))
        column = data.draw(st.sampled_from(table.column_names))
        if action == "drop-column":
            table = table.drop([column])
        elif action == "nan":
            values = table.column(column).to_pylist()
            values[data.draw(st.integers(0, len(values) - 1))] = data.draw(st.sampled_from([None, float("nan"), float("inf"), -1.0]))
            if pa.types.is_string(table.column(column).type):
                values = [v if isinstance(v, str) else None for v in values]
            table = table.set_column(table.column_names.index(column), column, pa.array(values))
        elif action == "strings":
            table = table.set_column(table.column_names.index(column), column, pa.array([str(v) + "x" for v in table.column(column).to_pylist()]))
        elif action == "duplicate":
            table = pa.concat_tables([table, table.slice(0, 1)])
        elif action == "empty":
            table = table.slice(0, 0)
        pq.write_table(table, folder / "users.parquet")
        if action == "bytes":
            raw = (folder / "users.parquet").read_bytes()
            (folder / "users.parquet").write_bytes(spoil_bytes(data, raw))
        path = write_json(folder, "assign.json", {**ASSIGNMENT, "users": {"table": "users.parquet"}})
        tally.run(["solve", str(path), "--method", "dual", "--format", "json", "--time-limit", "20"], "users.parquet", allowed=(0, 2, 3))

    fuzz(tmp_path_factory, 120, 85, case)


def test_foreign_formats(tmp_path_factory):
    orlib = (INSTANCES / "orlib" / "cap41.txt").read_text()
    envy = (INSTANCES / "envyfree" / "rc" / "rc-n=100.7.txt").read_text()

    def case(data, folder, tally):
        fmt, text = data.draw(st.sampled_from([("orlib-cap", orlib), ("envyfree", envy)]))
        tokens = text.split()
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(tokens) - 1))
            action = data.draw(st.sampled_from(["junk", "delete", "repeat", "cut"]))
            if action == "junk":
                tokens[at] = data.draw(st.sampled_from(["-1", "nan", "inf", "1e400", "x", "0", "1.5", "99999999999", ""]))
            elif action == "delete":
                tokens.pop(at)
            elif action == "repeat":
                tokens.insert(at, tokens[at])
            else:
                tokens = tokens[:at]
            if not tokens:
                tokens = ["0"]
        path = folder / "case.txt"
        path.write_text(" ".join(tokens) if fmt == "envyfree" and data.draw(st.booleans()) else "\n".join(tokens), encoding="utf-8")
        if data.draw(st.integers(0, 5)) == 0:
            path.write_bytes(spoil_bytes(data, path.read_bytes()))
        tally.run(["validate", str(path), "--input-format", fmt], "case.txt")

    fuzz(tmp_path_factory, 300, 260, case)


SUITE = """name = "fuzz"
description = "one small instance"
repetitions = 1
seeds = [0]

[options]
time_limit_s = 5
gap = 1e-6

[[instances]]
files = ["{orlib}/cap41.txt"]
input_format = "orlib-cap"
references = "{orlib}/OPTIMA.tsv"
reference_column = "optimum"

[[methods]]
label = "milp-highs"
method = "milp"
backend = "highs"
baseline = true
""".format(orlib=INSTANCES / "orlib")


def test_suite_files(tmp_path_factory):
    def case(data, folder, tally):
        lines = SUITE.splitlines()
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(lines) - 1))
            if "=" in lines[at] and data.draw(st.booleans()):
                key = lines[at].split("=")[0]
                lines[at] = key + "= " + data.draw(st.sampled_from(['"x"', "-1", "nan", "inf", "[]", "{}", "1e400", '"../../nowhere/*.json"', "true", '"orlib-cap"', '["a", 1]']))
            else:
                lines.pop(at)
        path = folder / "suite.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        if data.draw(st.integers(0, 5)) == 0:
            path.write_bytes(spoil_bytes(data, path.read_bytes()))
        tally.run(["bench", "run", str(path), "--out", str(folder / "out.jsonl"), "--workers", "1", "--quiet"], "suite.toml", allowed=(0, 2))

    fuzz(tmp_path_factory, 100, 60, case)


def test_at_least_2000_bad_inputs_in_all():
    if len(TRIED) < 8:
        pytest.skip("counts the whole module's cases; run all of tests/test_fuzz.py")
    assert sum(c["bad"] for c in TRIED.values()) >= 2000, TRIED
