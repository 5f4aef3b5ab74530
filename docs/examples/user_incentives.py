"""User-level incentives: which coupon each user gets under a budget, from a users table of
predicted value and cost per treatment (CSV here; Parquet scales to hundreds of millions).

    python docs/examples/user_incentives.py [OUTPUT_FOLDER]
"""

import csv
import sys
from pathlib import Path

import numpy as np

from models import load_instance
from optimizers import solve

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
rng = np.random.default_rng(7)
treatments = ("coupon_5", "cashback_8")
with open(out / "users.csv", "w", newline="") as fh:  # one row per user: value_<t> and cost_<t> per treatment
    writer = csv.writer(fh)
    writer.writerow(["user_id", "segment", *[f"{kind}_{t}" for t in treatments for kind in ("value", "cost")]])
    for user in range(2_000):
        segment = "new" if user % 3 == 0 else "active"
        row = []
        for cost in (1.0, 2.4):  # coupon_5, cashback_8
            row += [round(float(rng.gamma(2.0, 1.2 if segment == "new" else 0.8) * cost), 4), round(cost * rng.uniform(0.6, 1.0), 4)]
        writer.writerow([user, segment, *row])
(out / "push.json").write_text("""{
  "problem": "incentive_assignment", "schema_version": 1, "name": "example-push",
  "budget": 1500,
  "treatments": [{"id": "coupon_5"}, {"id": "cashback_8", "limit": 300}],
  "users": {"table": "users.csv"}
}""")

push = load_instance(out / "push.json")  # the table is read in chunks while solving
result = solve(push).raise_for_status()
plan = result.solution
print(f"{result.status.value}: value {result.objective:,.1f}, bound {result.bound:,.1f}; "
      f"{plan['treated']:,} of {plan['users']:,} users treated, spend {plan['spend']:,.1f} of {plan['budget']:,.1f}")
for name, row in plan["treatments"].items():
    print(f"  {name:11s} {row['users']:>5,} users  spend {row['spend']:>8,.1f}  value {row['value']:>8,.1f}")
choice = result.attachments["choice"]  # per user, in table order: treatment index or -1
print("first users' treatments:", [treatments[c] if c >= 0 else "-" for c in choice[:8]])
