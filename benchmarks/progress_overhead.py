"""What following a solve costs: each case is solved with and without an ``on_progress``
callback (the one the CLI's progress line uses is no dearer than a list append: it draws at
most every 0.1 s), alternately, and the medians are compared. With a listener, HiGHS solves
models of 10,000 nonzeros or more in a child whose log it reads (without one, from 100,000).

    python benchmarks/progress_overhead.py [--repeats 3] [--output benchmarks/results/progress-overhead.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import load_instance  # noqa: E402
from optimizers import solve  # noqa: E402

CASES = [  # (what, instance, load options, method)
    ("capa-8000, lagrangian (subgradient and B&B updates)", "instances/orlib/capa.txt", {"input_format": "orlib-cap", "capacity": 8000}, None),
    ("suburb peak 25 x 200, 2 scenarios, milp (HiGHS log from a child)", "instances/front_warehouse/suburb-peak-25x200.json", {}, None),
    ("prime-tiers, fee boxes", "instances/membership_pricing/prime-tiers.json", {}, None),
    ("new-user-push, dual bundle", "instances/incentive_assignment/new-user-push.json", {}, None),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rows = ["| case | without (median s) | with (median s) | ratio | updates seen | same objective |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for what, path, load, method in CASES:
        inst = load_instance(ROOT / path, **load)
        plain, followed, updates, same = [], [], 0, True
        for _ in range(args.repeats):
            began = time.perf_counter()
            a = solve(inst, method=method)
            plain.append(time.perf_counter() - began)
            seen: list = []
            began = time.perf_counter()
            b = solve(inst, method=method, on_progress=seen.append)
            followed.append(time.perf_counter() - began)
            updates = len(seen)
            same &= a.objective is not None and b.objective is not None and abs(a.objective - b.objective) <= 1e-6 * max(1.0, abs(a.objective))
        p, f = statistics.median(plain), statistics.median(followed)
        rows.append(f"| {what} | {p:.2f} | {f:.2f} | {f / p:.2f} | {updates} | {'yes' if same else 'NO'} |")
        print(rows[-1], flush=True)
    text = ("## Progress reports: overhead\n\n"
            f"`python benchmarks/progress_overhead.py --repeats {args.repeats}` on {platform.processor() or platform.machine()}, "
            f"{time.strftime('%Y-%m-%d')}; solves in one process, with and without a callback, alternating.\n\n" + "\n".join(rows) + "\n\n")
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
