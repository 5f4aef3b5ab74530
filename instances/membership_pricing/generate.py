"""Regenerate the membership_pricing example built from published figures and the seeded
random tier instances of the benchmark suite (the files do not change between runs).

    python instances/membership_pricing/generate.py

prime-history.json, prime-history-logit.json: 3 tiers x 8 segments of a US marketplace
membership, numbers drawn from published figures (sources and assumptions in README.md);
the same market under max-surplus and under logit choice.
random/: seeded random menus (models.membership_pricing.generate): small ones on 10-unit fee
grids, where the grid_search baseline finishes in seconds, under both choice models; and
tiers-5x200-step3.json, 5 tiers x 200 segments on a 100-step fee grid (0..300 by 3), the
issue's speed benchmark (solved by the default method's fee-box branch and bound).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from models.io import parse_instance  # noqa: E402
from models.membership_pricing import generate  # noqa: E402

TIERS = [
    # id, min_fee, max_fee, fixed_cost (lifetime money, paid if offered), must_offer
    ("shipping", 39, 99, 0, False),  # free shipping only (a "Prime Lite")
    ("prime", 79, 179, 0, True),  # shipping + video + music: the flagship, 79/99/119/139 over its history
    ("prime-plus", 119, 259, 150_000_000, False),  # + grocery delivery, pharmacy, family sharing: partner contracts
]

# id, households (US), willingness to pay per tier, benefit cost per tier, margin uplift per tier,
# first-renewal probability per tier. Money in USD per year.
SEGMENTS = [
    ("heavy-family", 14_000_000, (120, 190, 260), (70, 95, 150), (95, 110, 150), (0.93, 0.95, 0.96)),
    ("urban-professional", 18_000_000, (110, 170, 215), (45, 65, 95), (80, 95, 120), (0.92, 0.94, 0.94)),
    ("suburban-bulk", 16_000_000, (100, 150, 200), (60, 85, 130), (75, 90, 115), (0.91, 0.93, 0.94)),
    ("streaming-first", 12_000_000, (40, 145, 160), (10, 40, 55), (20, 35, 40), (0.80, 0.90, 0.90)),
    ("deal-seeker", 20_000_000, (85, 115, 130), (45, 60, 75), (60, 70, 75), (0.85, 0.88, 0.88)),
    ("rural-shipper", 8_000_000, (115, 145, 175), (95, 110, 145), (70, 75, 85), (0.92, 0.93, 0.93)),
    ("students", 10_000_000, (65, 85, 90), (20, 30, 35), (30, 35, 35), (0.70, 0.75, 0.75)),
    ("occasional", 40_000_000, (35, 55, 60), (8, 20, 25), (25, 30, 30), (0.60, 0.65, 0.65)),
]


def prime_history(choice: dict) -> dict:
    ids = [t[0] for t in TIERS]
    name = "prime-history" if choice["model"] == "max_surplus" else "prime-history-logit"
    return {
        "problem": "membership_pricing",
        "schema_version": 1,
        "name": name,
        "description": "US marketplace membership: 3 tiers x 8 household segments, figures from CIRP surveys and Amazon's "
        "fee history (see README.md)",
        "units": {"currency": "USD", "fee": "per year", "size": "households"},
        "tiers": [
            {"id": t, "min_fee": lo, "max_fee": hi, "fee_step": 1, "fixed_cost": fixed, "must_offer": must}
            for t, lo, hi, fixed, must in TIERS
        ],
        "segments": [
            {
                "id": seg,
                "size": size,
                "willingness_to_pay": dict(zip(ids, wtp)),
                "benefit_cost": dict(zip(ids, cost)),
                "margin_uplift": dict(zip(ids, uplift)),
                "retention": dict(zip(ids, renew)),
            }
            for seg, size, wtp, cost, uplift, renew in SEGMENTS
        ],
        "discount_rate": 0.1,
        "choice": choice,
        "fee_order": ids,
        "min_fee_gap": 20,
    }


RANDOM = [
    # file stem, generate() arguments
    ("tiers-3x12-s1", dict(n_tiers=3, n_segments=12, seed=1, fee_step=10, min_fee_gap=10)),
    ("tiers-3x20-s2", dict(n_tiers=3, n_segments=20, seed=2, fee_step=10, fixed_cost=20_000)),
    ("tiers-3x30-s3", dict(n_tiers=3, n_segments=30, seed=3, fee_step=10, min_fee_gap=20, must_offer=1)),
    ("tiers-4x12-s4", dict(n_tiers=4, n_segments=12, seed=4, fee_step=10)),
    ("tiers-4x20-s5", dict(n_tiers=4, n_segments=20, seed=5, fee_step=10, min_fee_gap=10, fixed_cost=10_000)),
    ("mnl-3x8-s1", dict(n_tiers=3, n_segments=8, seed=1, fee_step=10, choice="mnl", price_sensitivity=0.05)),
    ("mnl-3x20-s2", dict(n_tiers=3, n_segments=20, seed=2, fee_step=10, min_fee_gap=10, choice="mnl", price_sensitivity=0.05)),
    ("mnl-4x12-s3", dict(n_tiers=4, n_segments=12, seed=3, fee_step=10, fixed_cost=20_000, choice="mnl", price_sensitivity=0.1)),
    ("tiers-5x200-step3", dict(n_tiers=5, n_segments=200, seed=7, fee_step=3, min_fee_gap=10, fixed_cost=20_000)),
]


def write(path: Path, doc: dict) -> None:
    parse_instance(doc)  # a generator bug must not ship a bad file
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    write(HERE / "prime-history.json", prime_history({"model": "max_surplus"}))
    write(HERE / "prime-history-logit.json", prime_history({"model": "mnl", "price_sensitivity": 0.05}))
    out = HERE / "random"
    out.mkdir(exist_ok=True)
    for stem, kwargs in RANDOM:
        write(out / f"{stem}.json", generate(max_fee=300.0, name=stem, **kwargs))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
