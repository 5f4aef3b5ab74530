"""Plots, the HTML report and the tables behind both, on the shipped examples."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from models import load_instance
from optimizers import SolverOptions, solve
from optimizers.report import html_report, plot, tables
from optimizers.report.plots import budget_frontier, promise_radius, serving_site, short_number

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ROOT / "instances"
runner = CliRunner()

EXAMPLES = {
    "town": "front_warehouse/town-12x60.json",
    "suburb-peak": "front_warehouse/suburb-peak-25x200.json",  # solved once for the session (conftest)
    "q3-growth": "incentive_budget/q3-growth.json",
    "prime-tiers": "membership_pricing/prime-tiers.json",
    "prime-logit": "membership_pricing/prime-history-logit.json",
    "new-user-push": "incentive_assignment/new-user-push.json",
}


@pytest.fixture(scope="module")
def solved(suburb_peak) -> dict[str, tuple[dict, object]]:
    out = {"suburb-peak": (suburb_peak[1], suburb_peak[0])}
    for name, rel in EXAMPLES.items():
        if name not in out:
            inst = load_instance(INSTANCES / rel)
            out[name] = (solve(inst, options=SolverOptions(time_limit_s=60)).to_dict(), inst)
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def distinct_colours(path: Path) -> int:
    from matplotlib.image import imread

    pixels = (imread(path)[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return len(np.unique(pixels[:: max(1, len(pixels) // 200_000)], axis=0))


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_shipped_example_plots_to_a_non_trivial_png(solved, tmp_path, name):
    doc, inst = solved[name]
    assert doc["solution"], doc["status"]
    path = plot(doc, inst, tmp_path / f"{name}.png")
    width, height = png_size(path)
    assert width >= 800 and height >= 500
    assert path.stat().st_size > 20_000
    assert distinct_colours(path) > 50  # curves, bars and markers in several colours, not a blank canvas


def test_tick_labels_are_short_and_right():
    assert [short_number(v) for v in (0, 950, 9_999, 12_500, 350_000, 1_500_000, 8.6e10, -2e4)] == [
        "0", "950", "9,999", "12.5 k", "350 k", "1.5 M", "86 bn", "-20 k"]


def test_zones_are_coloured_by_the_site_serving_most_of_their_demand(solved):
    doc, inst = solved["suburb-peak"]
    serving = serving_site(doc["solution"], inst)
    opened = set(doc["solution"]["open_sites"])
    assert set(serving.values()) <= opened | {"depot", "lost"}
    main = max(inst.scenarios, key=lambda s: s.probability).id
    for zone, site in list(serving.items())[:30]:
        units: dict[str, float] = {}
        for f in doc["solution"]["flows"]:
            if f["zone"] == zone and f["scenario"] == main:
                units[f["site"]] = units.get(f["site"], 0.0) + f["units"]
        assert units[site] == max(units.values())


def test_promise_radius_from_the_travel_speed_or_the_farthest_zone_within_the_promise():
    town = load_instance(INSTANCES / "front_warehouse/town-12x60.json")
    metro = load_instance(INSTANCES / "front_warehouse/metro-40x400.json")
    if town.travel is not None:
        assert set(promise_radius(town).values()) == {town.service.promise_minutes / town.travel.minutes_per_distance}
    assert metro.travel is None and metro.arcs
    radius = promise_radius(metro)
    site = metro.sites[0]
    zones = {z.id: z for z in metro.zones}
    within = [np.hypot(zones[a.zone].x - site.x, zones[a.zone].y - site.y) for a in metro.arcs
              if a.site == site.id and a.minutes is not None and a.minutes <= metro.service.promise_minutes]
    assert radius[site.id] == pytest.approx(max(within))


def test_an_instance_without_coordinates_plots_zones_per_site_instead_of_a_map(tmp_path):
    inst = load_instance(INSTANCES / "orlib/cap41.txt", input_format="orlib-cap")
    doc = solve(inst).to_dict()
    path = plot(doc, inst, tmp_path / "cap41.png")
    assert png_size(path)[0] >= 800 and distinct_colours(path) > 10


def test_budget_frontier_rises_and_its_marginal_value_falls_at_the_budget(solved):
    doc, inst = solved["q3-growth"]
    levels = budget_frontier(inst, points=5)
    users = [r["users"] for r in levels]
    assert users == sorted(users)
    at_budget = next(r for r in levels if r["budget"] == inst.budget)
    assert at_budget["users"] == pytest.approx(doc["objective"], rel=1e-4)


def test_tables_cover_what_the_planner_reads(solved):
    doc, inst = solved["suburb-peak"]
    titles = [t.title for t in tables(doc, inst)]
    assert titles[0].startswith("front_warehouse") and "per scenario" in titles and "expected cost" in titles
    doc, inst = solved["prime-tiers"]
    tier_table = tables(doc, inst)[1]
    assert tier_table.total and tier_table.rows[-1][0] == "total"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("name", ["town", "q3-growth", "prime-tiers", "new-user-push"])
def test_html_report_is_self_contained_and_complete(solved, name):
    doc, inst = solved[name]
    text = html_report(doc, inst, instance_path=f"instances/{EXAMPLES[name]}")
    parsed = _Collect()
    parsed.feed(text)
    assert parsed.refs and all(r.startswith("data:image/png;base64,") for r in parsed.refs)  # the plot, embedded
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert not re.search(r"https?://|url\(", text)
    body = " ".join(parsed.text)
    for words in ("Summary", "Solver status, bound and gap", "The plan", "Assumptions", "Reproduce", doc["status"]):
        assert words in body
    assert f"ecomopt solve instances/{EXAMPLES[name]} --method {doc['method']}" in body


def test_report_of_a_result_without_a_plan_says_why(tmp_path):
    from test_infeasibility import two_towns

    path, result, page = tmp_path / "two-towns.json", tmp_path / "result.json", tmp_path / "result.html"
    path.write_text(json.dumps(two_towns(max_open_sites=1)))
    assert runner.invoke(app, ["solve", str(path), "--method", "milp", "--output", str(result)]).exit_code == 3
    assert runner.invoke(app, ["report", str(result), str(path), "--html", str(page)]).exit_code == 0
    text = page.read_text()
    assert "Proven infeasible" in text and "max_open_sites" in text and "<img" not in text
    res = runner.invoke(app, ["plot", str(result), str(path)])
    assert res.exit_code == 2 and "has no solution" in res.stderr


def test_html_report_explains_a_time_limited_result(tmp_path):
    inst = load_instance(INSTANCES / "orlib/capa.txt", input_format="orlib-cap", capacity=8000)
    doc = solve(inst, options=SolverOptions(time_limit_s=2)).to_dict()
    text = html_report(doc, inst, with_plot=False)
    if doc["status"] == "feasible":
        assert "not proven optimal" in text and "cost below" in text
    assert "No plot" not in text and "<img" not in text


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None, reason="no headless Chromium here")
def test_html_report_renders_in_headless_chromium_offline(solved, tmp_path):
    doc, inst = solved["suburb-peak"]
    page = tmp_path / "report.html"
    page.write_text(html_report(doc, inst), encoding="utf-8")
    shot = tmp_path / "shot.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9", f"--screenshot={shot}",
                    "--window-size=1200,2400", page.as_uri()], check=True, capture_output=True, timeout=120)
    assert png_size(shot) == (1200, 2400) and distinct_colours(shot) > 50


def test_cli_solve_plot_then_plot_and_report(tmp_path):
    instance = str(INSTANCES / "front_warehouse/town-12x60.json")
    result, png = tmp_path / "town.json", tmp_path / "town.png"
    res = runner.invoke(app, ["solve", instance, "--output", str(result), "--plot", str(png)])
    assert res.exit_code == 0, res.stderr
    assert png_size(png)[0] >= 800
    again = tmp_path / "again.png"
    res = runner.invoke(app, ["plot", str(result), instance, "-o", str(again)])
    assert res.exit_code == 0 and again.read_bytes()[:4] == b"\x89PNG"
    page = tmp_path / "town.html"
    res = runner.invoke(app, ["report", str(result), instance, "--html", str(page)])
    assert res.exit_code == 0 and "<!DOCTYPE html>" in page.read_text()


def test_cli_frontier_document_plots(tmp_path):
    instance = str(INSTANCES / "incentive_budget/q3-growth.json")
    frontier = tmp_path / "frontier.json"
    assert runner.invoke(app, ["frontier", instance, "--budgets", "500000:2000000:500000", "--output", str(frontier)]).exit_code == 0
    res = runner.invoke(app, ["plot", str(frontier), instance])
    assert res.exit_code == 0 and png_size(frontier.with_suffix(".png"))[0] >= 600


def test_cli_plot_and_report_refuse_bad_input_with_located_messages(tmp_path):
    town = str(INSTANCES / "front_warehouse/town-12x60.json")
    result = tmp_path / "town.json"
    assert runner.invoke(app, ["solve", town, "--output", str(result)]).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"problem": ')
    not_result = tmp_path / "instance.json"
    not_result.write_text(Path(town).read_text())
    edited = tmp_path / "edited.json"
    doc = json.loads(result.read_text())
    doc["solution"]["open_sites"] = ["no-such-site"]
    edited.write_text(json.dumps(doc))
    cases = [
        (["plot", str(result), str(INSTANCES / "front_warehouse/metro-40x400.json")], "not the instance"),
        (["plot", str(result), str(INSTANCES / "incentive_budget/q3-growth.json")], "result of front_warehouse"),
        (["plot", str(bad), town], "line 1"),
        (["plot", str(not_result), town], "not a result document"),
        (["plot", str(result), town, "-o", str(tmp_path / "x.jpg")], ".png"),
        (["plot", str(result), town, "-o", str(tmp_path / "no" / "x.png")], "does not exist"),
        (["report", str(result), town, "--html", str(tmp_path / "no" / "x.html")], "does not exist"),
        (["plot", str(edited), town], "not as `ecomopt solve` writes it"),
        (["solve", town, "--plot", str(tmp_path / "x.svg")], ".png"),
    ]
    for args, words in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.stderr, res.exception)
        assert words in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)


def test_without_matplotlib_the_plot_asks_for_the_extra_and_the_report_says_so(tmp_path, monkeypatch):
    town = INSTANCES / "front_warehouse/town-12x60.json"
    result = tmp_path / "town.json"
    assert runner.invoke(app, ["solve", str(town), "--output", str(result)]).exit_code == 0
    for module in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = runner.invoke(app, ["plot", str(result), str(town)])
    assert res.exit_code == 2 and "pip install 'ecomopt[plot]'" in res.stderr
    page = tmp_path / "town.html"
    res = runner.invoke(app, ["report", str(result), str(town), "--html", str(page)])
    assert res.exit_code == 0 and "No plot: plots need matplotlib" in page.read_text()
