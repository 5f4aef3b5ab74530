"""Backend comparison for the front-warehouse MILP on OR-Library cap41..cap134.

Every backend solves every instance in the same run (order rotated per repetition), so
machine noise hits all alike. Reports the median per-instance time over the repetitions,
summed over instances, and the ratio to HiGHS. (`ecomopt bench` will take this over.)

    python benchmarks/orlib_backends.py --repeat 3 --time-limit 30 [--single-source] [--backends highs,scip,cbc,cpsat]

A run stopped by the time limit counts with the limit as its time and is not `optimal`.
"""

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import load_instance  # noqa: E402
from optimizers import SolverOptions, Status, solve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--single-source", action="store_true")
    parser.add_argument("--backends", default="highs,scip,cbc,cpsat")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per solve")
    args = parser.parse_args()
    backends = args.backends.split(",")
    table = "SS_OPTIMA.tsv" if args.single_source else "OPTIMA.tsv"
    with open(ROOT / "instances/orlib" / table, newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if not r["capacity"]]
    times: dict[str, dict[str, list[float]]] = {b: {r["instance"]: [] for r in rows} for b in backends}
    failures = []
    options = SolverOptions(time_limit_s=args.time_limit)
    for rep in range(args.repeat):
        for row in rows:
            inst = load_instance(ROOT / "instances/orlib" / row["file"], input_format="orlib-cap", single_source=args.single_source or None)
            optimum = float(row["ss_optimum" if args.single_source else "optimum"])
            order = backends[rep % len(backends):] + backends[: rep % len(backends)]
            for backend in order:
                start = time.perf_counter()
                result = solve(inst, backend=backend, options=options)
                times[backend][row["instance"]].append(time.perf_counter() - start)
                if result.status is not Status.OPTIMAL or abs(result.objective - optimum) > 1e-6 * optimum:
                    failures.append((backend, row["instance"], result.status.value, result.objective))
        print(f"repetition {rep + 1}/{args.repeat} done", file=sys.stderr, flush=True)
    solved = {b: len(rows) * args.repeat - sum(1 for f in failures if f[0] == b) for b in backends}
    totals = {b: sum(statistics.median(t) for t in times[b].values()) for b in backends}
    worst = {b: max(statistics.median(t) for t in times[b].values()) for b in backends}
    base = totals[backends[0]]
    kind = "single-source" if args.single_source else "multi-source"
    print(f"| backend | {kind} instances | runs optimal at the published value | sum of median times (s) | slowest instance (s) | ratio to {backends[0]} |")
    print("|---|---|---|---|---|---|")
    for b in backends:
        print(f"| {b} | {len(rows)} | {solved[b]}/{len(rows) * args.repeat} | {totals[b]:.2f} | {worst[b]:.2f} | {totals[b] / base:.2f} |")
    for f in failures:
        print("FAILED", *f)


if __name__ == "__main__":
    main()
