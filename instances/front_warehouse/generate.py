"""Regenerate the shipped front-warehouse examples (seeded): python instances/front_warehouse/generate.py"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from models.front_warehouse import generate  # noqa: E402

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
}

if __name__ == "__main__":
    for name, kw in EXAMPLES.items():
        doc = generate(name=name, **kw)
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print("wrote", HERE / f"{name}.json")
