"""Is `--time-limit` honoured? The whole `ecomopt solve` command (start-up and loading included)
on the largest shipped instance of every family, under a limit T, must end within 1.1 T + 1 s
with a status that claims no more than it proved.

    python benchmarks/time_limits.py [--limit 10] [--repeats 3]

Prints a markdown table (median wall seconds of the repeats, the allowance, the statuses);
exit 1 if a median misses the allowance. A measurement, not a test: the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
I = "instances"
CASES = [  # (family, what, arguments after `ecomopt solve`)
    ("front_warehouse", "city core 500 x 20,000 (lagrangian)", [f"{I}/front_warehouse/city/city-core-500x20000.json"]),
    ("front_warehouse", "city peak 40 x 400 x 20 SKUs, 2 scenarios (milp, HiGHS)", [f"{I}/front_warehouse/city-peak-40x400x20.json"]),
    ("front_warehouse", "same, benders", [f"{I}/front_warehouse/city-peak-40x400x20.json", "--method", "benders"]),
    ("front_warehouse", "capa-8000, milp on HiGHS", [f"{I}/orlib/capa.txt", "--input-format", "orlib-cap", "--capacity", "8000", "--method", "milp"]),
    ("front_warehouse", "capb-5000 single-source (lagrangian)", [f"{I}/orlib/capb.txt", "--input-format", "orlib-cap", "--capacity", "5000", "--single-source"]),
    ("incentive_budget", "50 cells, crossing caps (exact: PWL MILP)", [f"{I}/incentive_budget/random/random-50-s1-crossing.json", "--gap", "0"]),
    ("membership_pricing", "envy-free mixed-rc 150 x 250 (MILP)", [f"{I}/envyfree/mixed-rc/rc-b=150-i=250.5.txt", "--input-format", "envyfree"]),
    ("membership_pricing", "5 tiers x 200 segments (boxes)", [f"{I}/membership_pricing/random/tiers-5x200-step3.json", "--gap", "0"]),
    ("incentive_assignment", "new-user-push, Parquet (dual)", [f"{I}/incentive_assignment/new-user-push.json", "--gap", "0"]),
]


def run(args: list[str], limit: float) -> tuple[float, str, float | None]:
    cmd = [sys.executable, str(ROOT / "cli.py"), "solve", *args, "--time-limit", f"{limit:g}", "--format", "json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    try:
        doc = json.loads(proc.stdout)
        return wall, doc["status"], doc.get("gap")
    except (json.JSONDecodeError, KeyError):
        return wall, f"exit {proc.returncode}: {proc.stderr.strip()[-120:]}", None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    allowed = 1.1 * a.limit + 1.0
    print(f"`python benchmarks/time_limits.py --limit {a.limit:g} --repeats {a.repeats}`: allowance 1.1 x {a.limit:g} + 1 = {allowed:.1f} s\n")
    print("| family | instance | wall s (median) | runs | status | gap | within |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    missed = 0
    for family, what, args in CASES:
        runs = [run(args, a.limit) for _ in range(a.repeats)]
        walls = [w for w, _, _ in runs]
        median = statistics.median(walls)
        statuses = ", ".join(sorted({s for _, s, _ in runs}))
        gaps = [g for _, _, g in runs if g is not None]
        ok = median <= allowed
        missed += not ok
        gap = f"{max(gaps):.2e}" if gaps else "-"
        print(f"| {family} | {what} | {median:.2f} | {', '.join(f'{w:.2f}' for w in walls)} | {statuses} | {gap} | {'yes' if ok else 'NO'} |", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
