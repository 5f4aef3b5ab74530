"""Referral budget: response curves per mechanic x segment, the best split of a budget, and
what one more unit of budget buys.

    python docs/examples/referral_budget.py
"""

from models import parse_instance
from optimizers import solve
from optimizers.incentive_budget.exact import frontier

cells = []
for mechanic, scale in (("group_buy", 1.0), ("bargain_free", 0.7), ("invite_coupon", 0.4)):
    for segment, size in (("students", 40_000), ("lower_tier", 90_000)):
        cells.append({
            "id": f"{mechanic}/{segment}",
            "mechanic": mechanic,
            "segment": segment,
            "response": {"kind": "hill", "max_users": size * scale, "half_spend": 150_000, "shape": 1.8},
            "viral_k": 0.3,  # each acquired user brings 0.3 more: 1 / (1 - 0.3) users in all
        })
quarter = parse_instance({
    "problem": "incentive_budget",
    "schema_version": 1,
    "name": "example-referral",
    "budget": 600_000,
    "objective": "users",
    "cells": cells,
    "caps": [{"id": "students", "cells": [c["id"] for c in cells if c["segment"] == "students"], "max_spend": 250_000}],
})

result = solve(quarter).raise_for_status()
print(f"{result.status.value}: {result.objective:,.0f} users, bound {result.bound:,.0f}")
for cell, spend in result.solution["spend"].items():  # keyed by cell id
    if spend > 0:
        print(f"  {cell:28s} {spend:>10,.0f}  ->  {result.solution['users'][cell]:>8,.0f} users")
print(f"one more unit of budget buys {result.solution['marginal_value']:.4f} users")

for level in frontier(quarter, [300_000, 600_000, 900_000]):  # the budget frontier
    print(f"  budget {level['budget']:>9,.0f}: {level['users']:>8,.0f} users ({level['status']})")

bigger = quarter.model_copy(update={"budget": 700_000})  # next quarter: start from this plan
print("next quarter:", f"{solve(bigger, warm_start=result.to_dict()).objective:,.0f} users")
