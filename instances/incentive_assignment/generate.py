"""Regenerate the shipped incentive_assignment examples, or the benchmark tables.

    python instances/incentive_assignment/generate.py            # the shipped examples
    python instances/incentive_assignment/generate.py --bench    # benchmarks/data/ (10M and 1M users, ~1 GB)

new-user-push.json: the format's example: 20,000 users in five segments, five treatments
(3, 5 and 10 yuan coupons, 8 yuan cash-back, a free gift limited to 1,500), a budget of 30%
of what everyone's best treatment would cost, and budgets on the lower-tier and new-user
segments. Users in users.parquet.
coupons-csv.json: 5,000 users, one budget, users in a CSV file.
Seeded: rerunning reproduces the files.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from models.incentive_assignment import generate  # noqa: E402

BENCH = ROOT / "benchmarks" / "data"


def examples() -> None:
    generate(HERE / "new-user-push.json", 20_000, seed=11, limits={"free_gift": 1_500},
             segment_budget_shares={"lower_tier": 0.2, "new_users": 0.25})
    generate(HERE / "coupons-csv.json", 5_000, seed=12, table="csv")


def bench() -> None:
    BENCH.mkdir(exist_ok=True)
    generate(BENCH / "users-10m.json", 10_000_000, seed=1)
    generate(BENCH / "users-1m-coupled.json", 1_000_000, seed=2, limits={"free_gift": 60_000},
             segment_budget_shares={"lower_tier": 0.2, "new_users": 0.25})


if __name__ == "__main__":
    bench() if "--bench" in sys.argv[1:] else examples()
