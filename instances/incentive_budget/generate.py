"""Regenerate the shipped incentive_budget examples (seeded, so the files do not change).

    python instances/incentive_budget/generate.py

q3-growth.json: 3 mechanics x 3 segments with S-curves (Hill shape > 1), one exponential and
one piecewise-linear curve, viral_k between 0.1 and 0.5, a cap per segment for two segments.
ab-tests.csv: A/B arms drawn from the same curves with 4% noise, the input of `ecomopt fit`.
random/: seeded random S-curve instances for the benchmark suite (12 and 50 cells; a few with
caps per segment and per mechanic, which cross).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from models.incentive_budget import direct_users, generate  # noqa: E402
from models.io import parse_instance  # noqa: E402


def hill(m: float, h: float, s: float) -> dict:
    return {"kind": "hill", "max_users": m, "half_spend": h, "shape": s}


CELLS = [
    # id, response, viral_k, value_per_user, extra
    ("group_buy/lower_tier", hill(90_000, 250_000, 2.4), 0.45, 32.0, {}),
    ("group_buy/urban_white_collar", hill(30_000, 300_000, 1.8), 0.20, 75.0, {}),
    ("group_buy/students", hill(40_000, 150_000, 2.2), 0.40, 28.0, {}),
    ("bargain_free/lower_tier", hill(110_000, 400_000, 3.2), 0.50, 22.0, {}),
    ("bargain_free/urban_white_collar", {"kind": "exponential", "max_users": 12_000, "scale": 200_000}, 0.10, 60.0, {}),
    ("bargain_free/students", hill(50_000, 220_000, 2.8), 0.35, 20.0, {}),
    ("invite_coupon/lower_tier", {"kind": "exponential", "max_users": 45_000, "scale": 300_000}, 0.30, 30.0, {}),
    ("invite_coupon/urban_white_collar", hill(35_000, 180_000, 1.6), 0.15, 85.0, {"min_spend": 50_000}),
    ("invite_coupon/students", {"kind": "piecewise_linear", "points": [[50_000, 2_000], [100_000, 9_000], [200_000, 21_000], [400_000, 30_000]]},
     0.25, 25.0, {"max_spend": 400_000}),
]


def q3_growth() -> dict:
    cells = []
    for cell_id, response, k, value, extra in CELLS:
        mechanic, segment = cell_id.split("/")
        cells.append({"id": cell_id, "mechanic": mechanic, "segment": segment, "response": response,
                      "viral_k": k, "value_per_user": value, **extra})
    return {
        "problem": "incentive_budget", "schema_version": 1, "name": "q3-growth",
        "description": "Q3 referral budget: group-buy, bargain-for-free and invite coupons across three user segments",
        "units": {"spend": "CNY per quarter", "users": "new users per quarter"},
        "budget": 1_500_000, "objective": "users",
        "cells": cells,
        "caps": [
            {"id": "lower_tier", "cells": [c["id"] for c in cells if c["segment"] == "lower_tier"], "max_spend": 700_000},
            {"id": "students", "cells": [c["id"] for c in cells if c["segment"] == "students"], "max_spend": 350_000},
        ],
    }


def ab_tests(doc: dict, seed: int = 7) -> list[dict]:
    inst = parse_instance(doc)
    rng = np.random.default_rng(seed)
    rows = []
    for cell in inst.cells:
        if cell.response.kind == "piecewise_linear":
            continue  # measured directly; nothing to fit
        for spend in (0, 25_000, 50_000, 100_000, 200_000, 300_000, 400_000, 600_000):
            for _ in range(2):
                users = float(direct_users(cell.response, spend)) * rng.normal(1.0, 0.04)
                rows.append({"cell": cell.id, "spend": spend, "users": max(0, round(users)), "viral_k": cell.viral_k,
                             "value_per_user": cell.value_per_user})
    return rows


def main() -> None:
    doc = q3_growth()
    (HERE / "q3-growth.json").write_text(json.dumps(doc, indent=2) + "\n")
    rows = ab_tests(doc)
    with open(HERE / "ab-tests.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = HERE / "random"
    out.mkdir(exist_ok=True)
    for n, seeds, caps in ((12, range(16), False), (50, range(8), True), (12, range(4), "crossing"), (50, range(2), "crossing")):
        for seed in seeds:
            inst = generate(n, seed=seed, caps=caps)
            (out / f"{inst['name']}.json").write_text(json.dumps(inst, indent=1) + "\n")


if __name__ == "__main__":
    main()
