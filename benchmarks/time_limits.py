"""Are limits honoured? (1) The whole `ecomopt solve` command (start-up and loading included)
on the largest shipped instance of every family, under `--time-limit T`, must end within
1.1 T + 1 s with a status that claims no more than it proved. (2) A capa solve sent SIGINT
(Ctrl-C) after 2 s must exit within 2 s more with a `feasible` (or `optimal`) result on stdout
and in `--output`.

    python benchmarks/time_limits.py [--limit 10] [--repeats 3] [--output benchmarks/results/time-limits.md]

Prints markdown tables (median wall seconds of the repeats, the allowance, the statuses);
exit 1 if a median misses its allowance. A measurement, not a test: the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
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
    ("front_warehouse", "capa-8000, PuLP tutorial model on CBC (baseline)", [f"{I}/orlib/capa.txt", "--input-format", "orlib-cap", "--capacity", "8000", "--method", "pulp_tutorial"]),
    ("incentive_assignment", "new-user-push, Parquet (dual)", [f"{I}/incentive_assignment/new-user-push.json", "--gap", "0"]),
    ("incentive_assignment", "new-user-push, Parquet (milp, SCIP)", [f"{I}/incentive_assignment/new-user-push.json", "--method", "milp", "--gap", "0"]),
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


def interrupted(after: float) -> tuple[float, str, bool]:
    """Seconds from SIGINT to exit, the status printed, and whether --output holds the same result."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        cmd = [sys.executable, str(ROOT / "cli.py"), "solve", f"{I}/orlib/capa.txt", "--input-format", "orlib-cap", "--capacity", "8000",
               "--format", "json", "--output", str(out)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(after)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate()
        took = time.perf_counter() - sent
        try:
            doc = json.loads(stdout)
            return took, doc["status"], out.exists() and json.loads(out.read_text()) == doc
        except (json.JSONDecodeError, KeyError):
            return took, f"exit {proc.returncode}", False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="also write the tables to this markdown file")
    a = parser.parse_args()
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    allowed = 1.1 * a.limit + 1.0
    say("## time limits and Ctrl-C")
    say()
    say(f"Reproduce: `python benchmarks/time_limits.py --limit {a.limit:g} --repeats {a.repeats}` "
        f"({os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; {time.strftime('%Y-%m-%d')})")
    say()
    say(f"`ecomopt solve FILE --time-limit {a.limit:g} --format json`, whole command: allowance 1.1 x {a.limit:g} + 1 = {allowed:.1f} s.")
    say()
    say("| family | instance | wall s (median) | runs | status | gap | within |")
    say("| --- | --- | --- | --- | --- | --- | --- |")
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
        say(f"| {family} | {what} | {median:.2f} | {', '.join(f'{w:.2f}' for w in walls)} | {statuses} | {gap} | {'yes' if ok else 'NO'} |")
    say()
    say("capa-8000 (default method), SIGINT 2 s after the start: seconds from the signal to exit (allowance 2 s).")
    say()
    say("| run | s after SIGINT | status | --output = stdout |")
    say("| --- | --- | --- | --- |")
    took = []
    for rep in range(max(3, a.repeats)):
        seconds, status, same = interrupted(2.0)
        took.append(seconds)
        say(f"| {rep + 1} | {seconds:.2f} | {status} | {'yes' if same else 'no'} |")
    median = statistics.median(took)
    missed += median > 2.0
    say(f"| median | {median:.2f} | | |")
    say()
    if a.output is not None:
        a.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
