"""Membership tiers: the fees that maximise lifetime profit when customers pick the tier that
gives them the most surplus.

    python docs/examples/membership_tiers.py
"""

from models import parse_instance
from models.membership_pricing import profit_curve
from optimizers import solve

segments = [
    ("light", 500_000, {"silver": 55, "gold": 60}, {"silver": 10, "gold": 20}),
    ("family", 300_000, {"silver": 80, "gold": 130}, {"silver": 25, "gold": 45}),
    ("heavy", 100_000, {"silver": 110, "gold": 220}, {"silver": 60, "gold": 150}),
]
market = parse_instance({
    "problem": "membership_pricing",
    "schema_version": 1,
    "name": "example-tiers",
    "tiers": [
        {"id": "silver", "min_fee": 29, "max_fee": 99, "fee_step": 5},
        {"id": "gold", "min_fee": 59, "max_fee": 199, "fee_step": 5, "fixed_cost": 1_000_000},
    ],
    "segments": [
        {"id": name, "size": size, "willingness_to_pay": wtp, "benefit_cost": cost,
         "margin_uplift": {"silver": 20, "gold": 35}, "retention": {"silver": 0.8, "gold": 0.88}}
        for name, size, wtp, cost in segments
    ],
    "discount_rate": 0.1,
    "fee_order": ["silver", "gold"],
})

result = solve(market).raise_for_status()
print(f"{result.status.value}: lifetime profit {result.objective:,.0f} (bound {result.bound:,.0f})")
print("fees:", result.solution["fees"])  # keyed by tier id
for segment, tier in result.solution["choices"].items():  # keyed by segment id
    print(f"  {segment:8s} joins {tier or 'no tier'}")
best = max(profit_curve(market, result.solution["fees"], "gold"), key=lambda p: p["profit"])
print(f"gold's fee moved alone: best at {best['fee']:g}")
