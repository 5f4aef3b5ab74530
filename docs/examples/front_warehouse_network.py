"""Front-warehouse network: build an instance in code, solve it, read the plan by ids, and
start next week's solve from this week's plan.

    python docs/examples/front_warehouse_network.py [OUTPUT_FOLDER]
"""

import logging
import sys
from pathlib import Path

from models import evaluate, parse_instance
from optimizers import SolverOptions, solve

logging.basicConfig(level=logging.WARNING)  # the library logs through logging; --verbose in the CLI is INFO
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")

# A small city: 4 candidate sites, 12 zones on a grid, one SKU group, a 30-minute promise.
sites = [
    {"id": "north", "fixed_cost": 9000, "capacity": 900, "x": 5, "y": 15},
    {"id": "south", "fixed_cost": 8000, "capacity": 900, "x": 5, "y": 2},
    {"id": "east", "fixed_cost": 7000, "capacity": 700, "x": 14, "y": 8},
    {"id": "centre", "fixed_cost": 12000, "capacity": 1500, "x": 8, "y": 8, "status": "open"},  # already running
]
zones = [{"id": f"z{i:02d}", "x": 2 + 4 * (i % 4), "y": 2 + 5 * (i // 4), "demand": {"daily": 140 + 20 * (i % 3)}} for i in range(12)]


def city(demand_factor: float) -> dict:
    return {
        "problem": "front_warehouse",
        "schema_version": 1,
        "name": f"example-city-x{demand_factor:g}",
        "skus": [{"id": "daily", "unit_volume": 1.0, "holding_cost": 0.2}],
        "sites": sites,
        "zones": [{**z, "demand": {k: v * demand_factor for k, v in z["demand"].items()}} for z in zones],
        "travel": {"cost_per_unit_distance": 0.8, "minutes_per_distance": 3.0, "max_minutes": 45},
        "depot": {"cost_per_unit": 12.0},
        "service": {"promise_minutes": 30, "min_share_within_promise": 0.9},
    }


def show(p):  # a progress callback: phase, incumbent, bound and elapsed time as the solve goes
    if p.phase == "done":
        print(f"  {p.elapsed_s:.2f} s: done, objective {p.incumbent:,.0f}, bound {p.bound:,.0f}", file=sys.stderr)


this_week = parse_instance(city(1.0))  # validates and reports every problem with its location
result = solve(this_week, options=SolverOptions(time_limit_s=60), on_progress=show)
result.raise_for_status()
print(f"{result.status.value}: cost {result.objective:,.2f}, bound {result.bound:,.2f}, gap {result.gap:.1e}")
print("open sites:", ", ".join(result.solution["open_sites"]))
served_by = {}
for flow in result.solution["flows"]:  # flows are keyed by site, zone, SKU and scenario ids
    served_by.setdefault(flow["zone"], set()).add(flow["site"])
print("zone z00 is served by", sorted(served_by["z00"]))
assert evaluate(this_week, result.solution).feasible  # the re-check that uses no solver

# Next week demand is 15% higher: start from this week's plan (its sites and stock are priced
# on the new demand first, so the answer is never worse than keeping the plan).
next_week = parse_instance(city(1.15))
again = solve(next_week, warm_start=result.to_dict())
carried = again.meta["warm_start"]  # what was kept from this week, or why nothing could be
print(f"next week: {again.status.value}, cost {again.objective:,.2f}, open {', '.join(again.solution['open_sites'])}; "
      f"warm start: {carried.get('kept') or carried.get('reason')}")

try:  # plots and the HTML report need the plot extra: pip install 'ecomopt[plot]'
    from optimizers.report import html_report, plot

    plot(again.to_dict(), next_week, out / "network.png")
    (out / "network.html").write_text(html_report(again.to_dict(), next_week), encoding="utf-8")
    print("wrote", out / "network.png", "and", out / "network.html")
except ImportError:
    print("no plot: pip install 'ecomopt[plot]'")
