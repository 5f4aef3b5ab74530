"""Regenerate the shipped front-warehouse examples (seeded): python instances/front_warehouse/generate.py"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from models.front_warehouse import cornuejols, generate  # noqa: E402

HERE = Path(__file__).parent
COMMON = dict(promise_minutes=30, min_share_within_promise=0.9, max_minutes=30, cost_per_unit_km=2.0, capacity_ratio=8.0)
EXAMPLES = {
    # a city: 40 candidate sites (4 already open, 1 unavailable), 400 zones, 2 SKUs, depot fallback
    "metro-40x400": dict(n_sites=40, n_zones=400, n_skus=2, seed=2, open_sites=4, closed_sites=1, **COMMON),
    # a suburb planned for an ordinary day and a Double-11 peak at 2.2x demand
    "suburb-peak-25x200": dict(
        n_sites=25, n_zones=200, n_skus=2, seed=3, open_sites=2,
        scenarios=[("normal", 0.8, 1.0), ("peak-double-11", 0.2, 2.2)], **{**COMMON, "capacity_ratio": 3.0},
    ),
    # a small town for tests and the TOML/CSV example
    "town-12x60": dict(n_sites=12, n_zones=60, n_skus=1, seed=4, max_open_sites=5, **COMMON),
    # one stock plan for 20 SKU groups (volumes 0.2-5) on an ordinary day and a 2.5x peak with
    # 30% of peak demand sold in advance; rent is a small share of a day's cost
    "city-peak-40x400x20": dict(
        n_sites=40, n_zones=400, n_skus=20, seed=5, sku_groups=True, rent_scale=0.1, capacity_ratio=2.0,
        promise_minutes=30, min_share_within_promise=0.9, max_minutes=45,
        scenarios=[
            {"id": "normal", "probability": 0.85, "demand_factor": 1.0},
            {"id": "peak-double-11", "probability": 0.15, "demand_factor": 2.5, "presale_share": 0.3},
        ],
    ),
}


def _scenarios(presale: float, transfers: bool) -> list[dict]:
    peak: dict = {"id": "peak", "probability": 0.15, "demand_factor": 2.5, "presale_share": presale}
    if transfers:
        peak.update(transfer_cost_per_unit=1.0, transfer_max_minutes=20)
    return [{"id": "normal", "probability": 0.6, "demand_factor": 1.0}, {"id": "weekend", "probability": 0.25, "demand_factor": 1.4}, peak]


# the benchmark suite benchmarks/suites/fw-scenarios.toml: three scenarios, pre-sale, transfers
SCENARIO_SUITE = {
    f"scen-{i}x{j}x{k}{'-transfers' if transfers else ''}-s{seed}": dict(
        n_sites=i, n_zones=j, n_skus=k, seed=seed, sku_groups=True, rent_scale=0.1, capacity_ratio=2.0, side_km=20.0,
        promise_minutes=30, min_share_within_promise=0.8, max_minutes=40, scenarios=_scenarios(0.3, transfers),
    )
    for (i, j, k, transfers) in ((8, 40, 3, False), (8, 40, 3, True), (12, 100, 5, False), (20, 200, 8, True))
    for seed in (1, 2)
}

# The location core at city scale: 500 candidate sites, 20,000 zones, one SKU, every zone served
# within a 30-minute promise (arcs up to 30 minutes at 4 minutes per km, derived from coordinates
# by `travel`: about 1.7 million arcs, a 1.5 MB file).
CITY_CORE = {
    "city-core-500x20000": dict(
        n_sites=500, n_zones=20000, n_skus=1, seed=1, promise_minutes=None, max_minutes=30, minutes_per_km=4.0,
        depot_cost_per_unit=None, capacity_ratio=3.0, derive_arcs=True,
    ),
}

# The scale of issue 6's acceptance: 60 sites, 1,000 zones, 20 SKU groups, the three scenarios
# above (pre-sale in the peak, no transfers), arcs derived from coordinates (about 54,000 arcs,
# a million arc-SKU pairs per scenario); benchmarks/suites/fw-scenarios-large.toml
LARGE_SCENARIOS = {
    "scen-60x1000x20-s1": dict({**SCENARIO_SUITE["scen-12x100x5-s1"], "n_sites": 60, "n_zones": 1000, "n_skus": 20, "derive_arcs": True}),
}

# Random capacitated location instances of Cornuejols, Sridharan and Thizy (1991): the location
# core (one SKU, every site to every zone) at capacity ratios 3, 5 and 10.
CORNUEJOLS = [(n, m, ratio, 1) for n, m in ((100, 1000), (200, 2000)) for ratio in (3, 5, 10)]


if __name__ == "__main__":
    (HERE / "cornuejols").mkdir(exist_ok=True)
    for n, m, ratio, seed in CORNUEJOLS:
        doc = cornuejols(n, m, ratio=ratio, seed=seed)
        (HERE / "cornuejols" / f"{doc['name']}.json").write_text(json.dumps(doc) + "\n")
    for folder, examples in ((HERE, EXAMPLES), (HERE / "scenarios", SCENARIO_SUITE), (HERE / "city", CITY_CORE),
                             (HERE / "scenarios-large", LARGE_SCENARIOS)):
        folder.mkdir(exist_ok=True)
        for name, kw in examples.items():
            doc = generate(name=name, **kw)
            (folder / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
            print("wrote", folder / f"{name}.json")
