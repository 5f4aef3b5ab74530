"""The `ecomopt` command: parse -> call the library -> render -> exit code. Nothing else.

Exit codes: 0 a solution (optimal or feasible); 3 no solution (infeasible, unbounded,
no_solution); 2 bad usage or bad input; 1 internal error.
"""

from __future__ import annotations

import os
import sys
import time

#: when the `ecomopt` process began loading the command: its --time-limit counts these imports
#: (imported by anything else, as by tests, a command's clock starts at its call)
_IMPORTED_AT = [time.perf_counter()] if os.path.basename(sys.argv[0]) in ("ecomopt", "cli.py") else []

import json
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from functools import wraps
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from models import FAMILIES, INPUT_FORMATS, EcomoptError, InstanceError, UsageError, load_instance
from models.errors import NumericsWarning

app = typer.Typer(
    name="ecomopt",
    help="Operations optimization for e-commerce planners: front-warehouse networks, incentive budgets, membership pricing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables written to a file or pipe get room instead of the 80 columns rich assumes there.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


def _version() -> str:
    try:
        return metadata.version("ecomopt")
    except metadata.PackageNotFoundError:
        return "0+checkout"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ecomopt {_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Operations optimization for e-commerce planners."""


def _guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into located messages and exit codes; never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except InstanceError as exc:
            err.print(exc.render(), markup=False)
            raise typer.Exit(2) from None
        except EcomoptError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted", markup=False)
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
            if os.environ.get("ECOMOPT_DEBUG"):
                raise
            err.print(f"internal error: {type(exc).__name__}: {exc} (set ECOMOPT_DEBUG=1 for the traceback)", markup=False)
            raise typer.Exit(1) from None

    return wrapper


InstancePath = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Instance file (.json, .toml, or a foreign format with --input-format).")]
InputFormat = Annotated[str, typer.Option("--input-format", help=f"One of: {', '.join(INPUT_FORMATS)}. auto goes by the extension.")]
Capacity = Annotated[Optional[float], typer.Option("--capacity", help="orlib-cap only: the capacity of every site in capa/capb/capc (their files say `capacity`).", min=0)]
SingleSource = Annotated[Optional[bool], typer.Option("--single-source/--multi-source", help="Override the instance's single_source field (foreign formats carry none).", show_default=False)]
OutsideTables = Annotated[bool, typer.Option("--allow-outside-tables", help="Read tables the instance names outside its own folder (refused by default: instance files may come from others).")]


@app.command()
@_guarded
def solve(
    instance: InstancePath,
    method: Annotated[Optional[str], typer.Option(help="Solution method; default: the family's best (see `ecomopt backends`).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="MILP backend: highs, scip, cbc, cpsat.")] = None,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Wall-clock seconds for the whole command, start-up, loading and writing included (the method gets what is left, less about the loading time for checking and writing). The best solution found so far is returned with status `feasible` and a bound.", min=0.01)] = None,
    gap: Annotated[float, typer.Option(help="Relative optimality gap: `optimal` means proven within it.", min=0.0, max=0.999)] = 1e-6,
    threads: Annotated[int, typer.Option(help="Solver threads (0: the backend decides). HiGHS and SCIP use one.", min=0)] = 1,
    seed: Annotated[int, typer.Option(help="Random seed passed to the backend.", min=0)] = 0,
    input_format: InputFormat = "auto",
    capacity: Capacity = None,
    single_source: SingleSource = None,
    allow_outside_tables: OutsideTables = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table: for people; json: exactly one JSON document on stdout.")] = OutputFormat.table,
    output: Annotated[Optional[Path], typer.Option(help="Also write the JSON result to this file (atomically).", dir_okay=False)] = None,
    plan: Annotated[Optional[Path], typer.Option(help="incentive_assignment: write the per-user plan (user_id, treatment) to this .parquet or .csv file, chunk by chunk and atomically.", dir_okay=False)] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="incentive_assignment: run on the Dask cluster at this address (tcp://host:8786); the users table must be Parquet. Needs pip install 'ecomopt\\[dask]'.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the solver's log on stderr.")] = False,
) -> None:
    """Solve an instance and print the solution with its status, objective, bound and gap.

    \b
    Examples:
      ecomopt solve instances/front_warehouse/metro-40x400.json
      ecomopt solve instances/orlib/cap41.txt --input-format orlib-cap --format json
      ecomopt solve instances/orlib/capa.txt --input-format orlib-cap --capacity 8000 --time-limit 60
      ecomopt solve instances/incentive_assignment/new-user-push.json --threads 2 --plan plan.parquet
    """
    started = _IMPORTED_AT.pop() if _IMPORTED_AT else time.perf_counter()
    from optimizers import SolverOptions
    from optimizers import solve as run_solve
    from optimizers.stopping import stop_on_sigint

    for name, path in (("--output", output), ("--plan", plan)):
        if path is not None and not path.resolve().parent.is_dir():
            raise UsageError(f"{name}: folder {path.resolve().parent} does not exist")
    if plan is not None and plan.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"--plan: the plan is written as .parquet or .csv (got {plan.name})")

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=NumericsWarning)  # shown once, plainly, from the result below
    with stop_on_sigint():  # Ctrl-C (even while loading): the method wraps up and its best plan is written as usual
        loading = time.perf_counter()
        inst = load_instance(instance, input_format=input_format, capacity=capacity, single_source=single_source, allow_outside_tables=allow_outside_tables)
        loaded_s = time.perf_counter() - loading
        if (plan is not None or scheduler is not None) and inst.problem != "incentive_assignment":
            raise UsageError(f"{'--plan' if plan is not None else '--scheduler'}: only for incentive_assignment instances (this is {inst.problem})")
        left = None
        if time_limit is not None:  # checking and writing the result take about what loading took: keep that back
            left = time_limit - (time.perf_counter() - started)
            left = max(0.05, left - min(loaded_s, 0.25 * left))
        options = SolverOptions(time_limit_s=left, gap=gap, threads=threads, seed=seed, verbose=verbose, scheduler=scheduler)
        result = run_solve(inst, method=method, backend=backend, options=options)
    document = result.to_dict()
    if plan is not None and result.status.has_solution:
        from models.incentive_assignment import write_plan

        try:
            rows = write_plan(inst, result.attachments["choice"], plan)
        except OSError as exc:
            raise UsageError(f"--plan: cannot write {plan} ({exc.strerror})") from None
        document["solution"]["plan_file"] = str(plan)
        if output_format is OutputFormat.table:
            err.print(f"wrote the plan of {rows:,} users to {plan}", markup=False)
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        _render(document, inst)
    if output is not None:
        try:
            write_atomic(output, json.dumps(document, indent=2) + "\n")
        except OSError as exc:
            raise UsageError(f"--output: cannot write {output} ({exc.strerror})") from None
    if result.message and result.status.value != "optimal" and output_format is OutputFormat.table:
        err.print(f"note: {result.message}", markup=False)
    for text in result.meta.get("warnings", []):
        err.print(f"warning: {text}", markup=False)
    for name in result.meta.get("ignored_options", []):
        err.print(f"note: backend {result.backend} has no {name} option; --{name} was ignored", markup=False)
    raise typer.Exit(result.status.exit_code)


@app.command()
@_guarded
def validate(instance: InstancePath, input_format: InputFormat = "auto", capacity: Capacity = None, single_source: SingleSource = None,
             allow_outside_tables: OutsideTables = False) -> None:
    """Check an instance file and list every problem with its location (exit 2 if any)."""
    inst = load_instance(instance, input_format=input_format, capacity=capacity, single_source=single_source, allow_outside_tables=allow_outside_tables)
    sizes = ", ".join(f"{len(v)} {k}" for k, v in inst.model_dump().items() if isinstance(v, list))
    out.print(f"ok: {inst.name} ({inst.problem}; {sizes})", markup=False)


@app.command()
@_guarded
def schema(problem: Annotated[str, typer.Argument(help=f"One of: {', '.join(FAMILIES)}.")]) -> None:
    """Print the JSON Schema of a problem family's instance files."""
    if problem not in FAMILIES:
        err.print(f"problem: unknown problem '{problem}' (known: {', '.join(FAMILIES)})", markup=False)
        raise typer.Exit(2)
    sys.stdout.write(json.dumps(FAMILIES[problem].schema.model_json_schema(), indent=2) + "\n")


@app.command()
@_guarded
def backends() -> None:
    """List the MILP backends, whether they are installed here, and the methods per family."""
    from optimizers import DEFAULT_METHOD, METHODS, backend_info

    table = Table(title="backends")
    for col in ("backend", "installed", "version", "what it is"):
        table.add_column(col)
    for info in backend_info():
        table.add_row(info.name, "yes" if info.installed else "no", info.version, info.description)
    out.print(table)
    methods = Table(title="methods")
    for col in ("problem", "method", "backends (default first)", "what it is"):
        methods.add_column(col)
    for problem, registered in METHODS.items():
        for name, m in registered.items():
            label = name + (" (default)" if DEFAULT_METHOD.get(problem) == name else " (default where it applies)" if m.preferred else "")
            order = [m.default_backend] + [b for b in m.backends if b != m.default_backend] if m.default_backend else list(m.backends)
            methods.add_row(problem, label, ", ".join(order) or "-", m.description)
    out.print(methods)


bench_app = typer.Typer(help="Batch runs over instance sets: run a suite, report it, compare two runs.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


class ReportFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


@bench_app.command("run")
@_guarded
def bench_run(
    suite_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Suite file (TOML): instances, methods, options, seeds, references.")],
    workers: Annotated[int, typer.Option(help="Worker processes (1: in this process). One solver thread each.", min=1)] = 2,
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (tcp://host:8786); default $DASK_SCHEDULER_ADDRESS. Needs the Dask extra: pip install 'ecomopt\\[dask]'.")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="JSONL file, one record per finished run (default: bench-<suite>.jsonl).", dir_okay=False)] = None,
    resume: Annotated[bool, typer.Option(help="Continue --out: skip runs it already records.")] = False,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Override every run's time limit (seconds).", min=0.01)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a benchmark suite; every finished run is appended to the JSONL file at once.

    \b
    Examples:
      ecomopt bench run benchmarks/suites/smoke.toml
      ecomopt bench run benchmarks/suites/orlib-cap.toml --workers 2 --out cap.jsonl --resume
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from optimizers.bench import load_suite, read_records, run_suite, summary

    suite, runs = load_suite(suite_file)
    if time_limit is not None:
        runs = [replace(r, options={**r.options, "time_limit_s": time_limit}) for r in runs]
    out_path = out_file or Path(f"bench-{suite.name}.jsonl")
    if not out_path.resolve().parent.is_dir():
        raise UsageError(f"--out: folder {out_path.resolve().parent} does not exist")
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    command = f"ecomopt bench run {suite_file} --workers {workers}" + (f" --time-limit {time_limit:g}" if time_limit else "")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=quiet or not err.is_terminal)
    with progress:
        task = progress.add_task(suite.name, total=len(runs))
        counts = {"error": 0}

        def tick(record: dict) -> None:
            counts["error"] += record["status"] == "error"
            progress.update(task, advance=1, description=f"{suite.name} ({counts['error']} errors)" if counts["error"] else suite.name)

        done, skipped = run_suite(runs, out_path, workers=workers, scheduler=scheduler, resume=resume, on_record=tick, command=command)
        progress.update(task, completed=len(runs))
    records = [r for r in read_records(out_path) if r["suite"] == suite.name] if out_path.exists() else []
    _render_rows(summary(records), "summary: " + suite.name)
    err.print(f"{done} runs done, {skipped} already recorded; records in {out_path}", markup=False)


@bench_app.command("report")
@_guarded
def bench_report(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="JSONL files written by `bench run`.")],
    output_format: Annotated[ReportFormat, typer.Option("--format", help="table, json, or markdown (for RESULTS.md).")] = ReportFormat.table,
    output: Annotated[Optional[Path], typer.Option(help="Write the report to this file (atomically) instead of stdout.", dir_okay=False)] = None,
) -> None:
    """Summarise benchmark records: per method and per instance, with ratios to the baseline."""
    from optimizers.bench import per_instance, read_records, summary, to_markdown

    records = [r for f in files for r in read_records(f)]
    if not records:
        raise UsageError(f"no records in {', '.join(map(str, files))}")
    if output_format is ReportFormat.markdown:
        text = "# Benchmark results\n\nRegenerate: `make bench-results` (runs the suites, then `ecomopt bench report ... --format markdown`).\n\n" + to_markdown(records)
    elif output_format is ReportFormat.json:
        text = json.dumps({"summary": summary(records), "instances": per_instance(records)}, indent=2)
    else:
        _render_rows(per_instance(records), "per instance")
        _render_rows(summary(records), "summary")
        return
    if output is not None:
        write_atomic(output, text + "\n")
    else:
        sys.stdout.write(text + "\n")


@bench_app.command("compare")
@_guarded
def bench_compare(
    a: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The reference JSONL (before).")],
    b: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The JSONL to compare (after).")],
    output_format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
) -> None:
    """Compare two runs of the same suite run by run: statuses, objectives, time ratio b/a."""
    from optimizers.bench import compare, read_records

    rows, total = compare(read_records(a), read_records(b))
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps({"runs": rows, "total": total}, indent=2) + "\n")
        return
    _render_rows(rows, f"{a} vs {b}")
    _render_rows([total], "total")


def _render_rows(rows: list[dict], title: str) -> None:
    from optimizers.bench.report import fmt

    if not rows:
        out.print(f"{title}: nothing to show", markup=False)
        return
    columns = [c for c in rows[0] if c not in ("suite", "group", "baseline") or len({r.get(c) for r in rows}) > 1]
    table = Table(title=title)
    for col in columns:
        table.add_column(col.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(fmt(row.get(c)) for c in columns))
    out.print(table)


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and a rename: never a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result is an ordinary file
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    return str(value)


def _render(doc: dict[str, Any], inst: Any) -> None:
    summary = Table(title=f"{doc['problem']}: {doc['instance']}", show_header=False)
    summary.add_column("key", style="bold")
    summary.add_column("value")
    gap = doc["gap"]
    rows = [
        ("status", doc["status"]),
        ("objective", _fmt(doc["objective"])),
        ("bound", _fmt(doc["bound"])),
        ("gap", "-" if gap is None else "0" if gap < 1e-12 else f"{gap:.3%}" if gap >= 1e-5 else f"{gap:.1e}"),
        ("time", f"{doc['runtime_s']:.2f} s"),
        ("method", f"{doc['method']} ({doc['backend']})" if doc["backend"] else doc["method"]),
    ]
    evaluation = doc.get("evaluation")
    if evaluation:
        rows.append(("re-checked", "passes evaluate()" if evaluation["feasible"] else f"{len(evaluation['violations'])} violations"))
    for key, value in rows:
        summary.add_row(key, value)
    out.print(summary)
    if doc["solution"] and doc["problem"] == "front_warehouse":
        _render_front_warehouse(doc, inst)
    if doc["solution"] and doc["problem"] == "incentive_budget":
        _render_incentive_budget(doc, inst)
    if doc["solution"] and doc["problem"] == "membership_pricing":
        _render_membership_pricing(doc)
    if doc["solution"] and doc["problem"] == "incentive_assignment":
        _render_incentive_assignment(doc)


def _render_incentive_assignment(doc: dict[str, Any]) -> None:
    solution = doc["solution"]
    table = Table(title=f"{solution['treated']:,} of {solution['users']:,} users treated; spend {_fmt(solution['spend'])} of {_fmt(solution['budget'])}")
    for col in ("treatment", "users", "spend", "value", "value per unit spent"):
        table.add_column(col, justify="left" if col == "treatment" else "right")
    for name, row in solution["treatments"].items():
        table.add_row(name, f"{row['users']:,}", _fmt(row["spend"]), _fmt(row["value"]), _fmt(row["value"] / row["spend"]) if row["spend"] else "-")
    table.add_row("total", f"{solution['treated']:,}", _fmt(solution["spend"]), _fmt(solution["value"]),
                  _fmt(solution["value"] / solution["spend"]) if solution["spend"] else "-", style="bold")
    out.print(table)
    segments = solution.get("segments") or {}
    if segments and len(segments) <= 50:
        budgets = solution.get("segment_budgets") or {}
        names = list(solution["treatments"])
        seg = Table(title="by segment: users per treatment, spend (and budget), value")
        for col in ("segment", *names, "spend", "budget", "value"):
            seg.add_column(col, justify="left" if col == "segment" else "right")
        for name, row in segments.items():
            budget = budgets.get(name, {}).get("budget")
            seg.add_row(name, *(f"{row['by_treatment'].get(t, 0):,}" for t in names), _fmt(row["spend"]), _fmt(budget), _fmt(row["value"]))
        out.print(seg)


def _render_front_warehouse(doc: dict[str, Any], inst: Any) -> None:
    solution, evaluation = doc["solution"], doc["evaluation"] or {}
    volume = {k.id: k.unit_volume for k in inst.skus}
    sites = {s.id: s for s in inst.sites}
    stocked: dict[str, float] = {}
    units: dict[tuple[str, str], float] = {}
    for s in solution["stock"]:
        stocked[s["site"]] = stocked.get(s["site"], 0.0) + s["units"] * volume[s["sku"]]
        units[s["site"], s["sku"]] = units.get((s["site"], s["sku"]), 0.0) + s["units"]
    zones: dict[str, set[str]] = {}
    for f in solution["flows"]:
        zones.setdefault(f["site"], set()).add(f["zone"])
    table = Table(title=f"{len(solution['open_sites'])} open sites")
    for col, justify in (("site", "left"), ("status", "left"), ("fixed cost", "right"), ("zones served", "right"), ("SKUs", "right"),
                         ("stock volume", "right"), ("capacity", "right"), ("use", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for site_id in solution["open_sites"]:
        site = sites[site_id]
        used = stocked.get(site_id, 0.0)
        use = f"{used / site.capacity:.0%}" if site.capacity else "-"
        n_skus = sum(1 for (i, _), q in units.items() if i == site_id and q > 0)
        table.add_row(site_id, site.status, _fmt(site.fixed_cost), str(len(zones.get(site_id, ()))), str(n_skus), _fmt(used), _fmt(site.capacity), use)
    out.print(table)
    skus = [k.id for k in inst.skus]
    if 1 < len(skus) <= 12 and solution["open_sites"]:
        grid = Table(title="stock (units) by site and SKU")
        grid.add_column("site")
        for k in skus:
            grid.add_column(k, justify="right")
        for site_id in solution["open_sites"]:
            grid.add_row(site_id, *[_fmt(units.get((site_id, k))) if units.get((site_id, k)) else "-" for k in skus])
        out.print(grid)
    costs = Table(title="expected cost", show_header=False)
    costs.add_column("key", style="bold")
    costs.add_column("value", justify="right")
    for key in ("fixed_cost", "holding_cost", "transport_cost", "transfer_cost", "depot_and_lost_cost"):
        if key in evaluation:
            costs.add_row(key.replace("_", " "), _fmt(evaluation.get(key)))
    out.print(costs)
    scenarios = evaluation.get("scenarios") or {}
    if scenarios:
        per = Table(title="per scenario")
        for col in ("scenario", "probability", "demand", "within promise", "from depot", "lost units", "transport", "depot + lost", "transfers", "cost"):
            per.add_column(col, justify="left" if col == "scenario" else "right")
        for name, sc in scenarios.items():
            per.add_row(name, f"{sc['probability']:.3g}", _fmt(sc["demand"]), f"{sc['share_within_promise']:.1%}", f"{sc['depot_share']:.1%}",
                        _fmt(sc["lost_units"]), _fmt(sc["transport_cost"]), _fmt(sc["depot_cost"] + sc["lost_sale_cost"]),
                        _fmt(sc["transfer_cost"]), _fmt(sc["cost"]))
        out.print(per)
    mean = (doc.get("meta") or {}).get("mean_plan")
    if mean:
        if mean.get("vss") is not None:
            out.print(f"value of the stochastic solution: {_fmt(mean['vss'])} ({mean['vss_share']:.1%} of the mean-demand plan's "
                      f"{_fmt(mean['cost_in_scenarios'])} when run through the scenarios)")
        elif mean.get("note"):
            out.print(f"value of the stochastic solution: {mean['note']}")
        elif mean.get("reason"):
            out.print(f"value of the stochastic solution not computed: {mean['reason']}")


def _render_incentive_budget(doc: dict[str, Any], inst: Any) -> None:
    solution, evaluation = doc["solution"], doc["evaluation"] or {}
    spent = sum(solution["spend"].values()) or 1.0
    table = Table(title=f"spend by cell (budget {_fmt(inst.budget)})")
    for col in ("cell", "mechanic", "segment", "spend", "share", "users", "users per 1k spend"):
        table.add_column(col, justify="left" if col in ("cell", "mechanic", "segment") else "right")
    for cell in inst.cells:
        x, users = solution["spend"][cell.id], solution["users"][cell.id]
        table.add_row(cell.id, cell.mechanic or "-", cell.segment or "-", _fmt(x), f"{x / spent:.1%}", _fmt(users),
                      _fmt(1000 * users / x) if x > 0 else "-")
    out.print(table)
    totals = Table(title="totals", show_header=False)
    totals.add_column("key", style="bold")
    totals.add_column("value", justify="right")
    for key in ("total_spend", "total_users", "total_value"):
        totals.add_row(key.replace("_", " "), _fmt(evaluation.get(key)))
    unit = "spend per extra target user" if inst.objective == "min_spend" else f"{inst.objective} per extra unit of budget"
    totals.add_row(f"marginal value ({unit})", _fmt(solution.get("marginal_value")))
    out.print(totals)


def _render_membership_pricing(doc: dict[str, Any]) -> None:
    solution = doc["solution"]
    tiers = solution.get("tiers") or {}
    table = Table(title=f"{len(solution['fees'])} tiers offered (lifetime values)")
    columns = ("tier", "fee", "members", "fee revenue", "benefit cost", "uplift margin", "fixed cost", "lifetime profit")
    for col in columns:
        table.add_column(col, justify="left" if col == "tier" else "right")
    keys = ("fee_revenue", "benefit_cost", "uplift_margin", "fixed_cost", "lifetime_profit")
    if len(tiers) <= 30:
        for tier, row in tiers.items():
            table.add_row(tier, _fmt(row["fee"]), _fmt(row["members"]), *(_fmt(row[k]) for k in keys))
    totals = [sum(row[k] for row in tiers.values()) for k in keys]
    table.add_row("total", "", _fmt(sum(row["members"] for row in tiers.values())), *(_fmt(v) for v in totals), style="bold")
    out.print(table)
    segments = solution.get("segments") or {}
    if not segments or len(segments) > 50:
        return
    seg = Table(title="segments: choice, surplus, lifetime weight and break-even fee of the chosen tier")
    for col in ("segment", "joins", "surplus", "lifetime weight", "break-even fee", "note"):
        seg.add_column(col, justify="left" if col in ("segment", "joins", "note") else "right")
    for name, row in segments.items():
        tier = row.get("choice")
        if tier is None:
            seg.add_row(name, "-", _fmt(row.get("surplus")), "-", "-", "")
            continue
        fee = solution["fees"].get(tier)
        even = (row.get("break_even_fee") or {}).get(tier)
        note = "costs more than it pays (adverse selection)" if even is not None and fee is not None and even > fee else ""
        seg.add_row(name, tier, _fmt(row.get("surplus")), _fmt((row.get("lifetime_weight") or {}).get(tier)), _fmt(even), note)
    out.print(seg)


def _parse_budgets(text: str) -> list[float]:
    """START:STOP:STEP (STOP included when on the step) or a comma-separated list."""
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0] or min(parts) < 0:
                raise ValueError
            start, stop, step = parts
            count = int((stop - start) / step + 1e-9) + 1
            if count > 1000:
                raise UsageError(f"--budgets: {count} levels; at most 1000")
            return [start + i * step for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values or min(values) < 0:
            raise ValueError
        return values
    except ValueError:
        raise UsageError(f"--budgets: expected START:STOP:STEP with 0 <= START <= STOP and STEP > 0, or a list a,b,c (got {text!r})") from None


@app.command()
@_guarded
def frontier(
    instance: InstancePath,
    budgets: Annotated[str, typer.Option("--budgets", help="START:STOP:STEP (e.g. 200000:2000000:100000) or a list a,b,c.")],
    gap: Annotated[float, typer.Option(help="Relative gap under which a level counts as optimal.", min=0.0, max=0.999)] = 1e-6,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table, or json (one document on stdout).")] = OutputFormat.table,
    output: Annotated[Optional[Path], typer.Option(help="Also write the JSON document to this file (atomically).", dir_okay=False)] = None,
) -> None:
    """incentive_budget: the best plan at every budget level, with users, value, marginal value and gap.

    One dynamic program per budget octave (levels within a factor 2) gives every level in
    it; each level is then polished and certified on its own.

    \b
    Example:
      ecomopt frontier instances/incentive_budget/q3-growth.json --budgets 250000:2000000:250000
    """
    from optimizers import SolverOptions
    from optimizers.incentive_budget.exact import frontier as sweep

    levels = _parse_budgets(budgets)
    inst = load_instance(instance)
    if inst.problem != "incentive_budget":
        raise UsageError(f"frontier: only for incentive_budget instances (this is {inst.problem})")
    if output is not None and not output.resolve().parent.is_dir():
        raise UsageError(f"--output: folder {output.resolve().parent} does not exist")
    started = time.perf_counter()
    rows = sweep(inst, levels, SolverOptions(gap=gap), on_level=lambda r: err.print(f"budget {_fmt(r['budget'])}: {r['status']}", markup=False) if err.is_terminal else None)
    document = {"schema_version": 1, "problem": inst.problem, "instance": inst.name, "objective": inst.objective,
                "runtime_s": time.perf_counter() - started, "levels": rows}
    if output is not None:
        write_atomic(output, json.dumps(document, indent=2) + "\n")
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    table = Table(title=f"budget frontier: {inst.name} (objective {inst.objective})")
    for col in ("budget", "status", "spend", "users", "value", "marginal value", "gap"):
        table.add_column(col, justify="left" if col == "status" else "right")
    for r in rows:
        g = r["gap"]
        table.add_row(_fmt(r["budget"]), r["status"], _fmt(r.get("spend")), _fmt(r.get("users")), _fmt(r.get("value")),
                      _fmt(r.get("marginal_value")), "-" if g is None else f"{g:.1e}")
    out.print(table)
    err.print(f"{len(rows)} levels in {document['runtime_s']:.2f} s; marginal value = {inst.objective} gained per extra unit of budget", markup=False)


class FitKind(str, Enum):
    auto = "auto"
    hill = "hill"
    exponential = "exponential"


class Objective(str, Enum):
    users = "users"
    value = "value"
    min_spend = "min_spend"


@app.command()
@_guarded
def fit(
    data: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with columns cell, spend, users (direct users per A/B arm or period); optional per-cell columns mechanic, segment, viral_k, value_per_user, min_spend, max_spend.")],
    budget: Annotated[float, typer.Option(help="Budget of the instance written.", min=0)],
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the incentive_budget instance here (JSON, atomically).", dir_okay=False)] = None,
    kind: Annotated[FitKind, typer.Option(help="Curve kind; auto picks hill or exponential by AICc.")] = FitKind.auto,
    objective: Annotated[Objective, typer.Option(help="Objective of the instance written.")] = Objective.users,
    target_users: Annotated[Optional[float], typer.Option(help="With --objective min_spend: users to reach.", min=0)] = None,
    step: Annotated[Optional[float], typer.Option(help="Spend granularity of the instance written.", min=0)] = None,
    viral_k: Annotated[float, typer.Option(help="viral_k for cells without a viral_k column value.", min=0.0, max=0.999999)] = 0.0,
    value_per_user: Annotated[float, typer.Option(help="value_per_user for cells without a column value.", min=0.0)] = 0.0,
    cap_at_tested: Annotated[bool, typer.Option(help="Set max_spend to the largest tested spend where the table gives none (no extrapolation).")] = False,
    max_rel_ci: Annotated[float, typer.Option(help="Refuse a fit whose 95% CI half-width exceeds this share of max_users or half_spend/scale.", min=0.0)] = 1.0,
    min_saturation: Annotated[float, typer.Option(help="Refuse a fit that reaches less than this share of max_users at the largest tested spend.", min=0.0, max=1.0)] = 0.5,
    name: Annotated[Optional[str], typer.Option(help="Instance name (default: the CSV's file name).")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table, or json (fits and instance on stdout).")] = OutputFormat.table,
) -> None:
    """Fit a response curve per cell from A/B-test data and write an incentive_budget instance.

    Prints each cell's curve with 95% confidence intervals and fit error; refuses (exit 2)
    cells whose data cannot support a curve, saying which arms would help.

    \b
    Example:
      ecomopt fit instances/incentive_budget/ab-tests.csv --budget 1500000 --viral-k 0.3 --out plan.json
    """
    from models import parse_instance
    from optimizers.incentive_budget.fit import fit_table, read_ab_table, to_instance

    if out_file is not None and not out_file.resolve().parent.is_dir():
        raise UsageError(f"--out: folder {out_file.resolve().parent} does not exist")
    table_data = read_ab_table(data)
    fits = fit_table(table_data, kind=kind.value, max_rel_ci=max_rel_ci, min_saturation=min_saturation)
    doc = to_instance(table_data, fits, name=name or data.stem, budget=budget, objective=objective.value, target_users=target_users,
                      step=step, default_viral_k=viral_k, default_value_per_user=value_per_user)
    if cap_at_tested:
        for cell in doc["cells"]:
            cell.setdefault("max_spend", float(max(table_data.cell(cell["id"]).spend)))
    parse_instance(doc, source=f"instance fitted from {data}")
    if out_file is not None:
        write_atomic(out_file, json.dumps(doc, indent=2) + "\n")
    if output_format is OutputFormat.json:
        fitted = [{"cell": f.cell, "kind": f.kind, "params": f.params, "ci95": f.ci95, "rmse": f.rmse, "r2": f.r2,
                   "n_points": f.n_points, "n_levels": f.n_levels} for f in fits]
        sys.stdout.write(json.dumps({"fits": fitted, "instance": doc}, indent=2) + "\n")
    else:
        table = Table(title=f"response curves fitted from {data.name}")
        for col in ("cell", "kind", "parameters (95% CI)", "rmse", "r²", "points / levels"):
            table.add_column(col, overflow="fold")
        for f in fits:
            params = "; ".join(f"{k} {_fmt(v)} [{_fmt(f.ci95[k][0])}, {_fmt(f.ci95[k][1])}]" for k, v in f.params.items())
            table.add_row(f.cell, f.kind, params, _fmt(f.rmse), f"{f.r2:.3f}", f"{f.n_points} / {f.n_levels}")
        out.print(table)
    if out_file is not None:
        err.print(f"wrote {out_file}: {len(doc['cells'])} cells, budget {_fmt(budget)}; solve it with `ecomopt solve {out_file}`", markup=False)
    elif output_format is OutputFormat.table:
        err.print("note: no --out given; the instance was not written", markup=False)


if __name__ == "__main__":
    app()
