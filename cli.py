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
import shlex
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
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


class ProgressLine:
    """The line on stderr while a solve runs: elapsed time, phase, incumbent, bound, gap.
    Drawn from the solving thread at each update (no thread of its own: a solver child may
    only be forked from a process without other threads)."""

    def __init__(self, started: float):
        from rich.live import Live

        self.started = started
        self.live = Live(console=err, auto_refresh=False, transient=True, redirect_stdout=False)

    def __enter__(self) -> ProgressLine:
        self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.stop()

    def __call__(self, p: Any) -> None:
        from rich.text import Text

        from optimizers.report.tables import fmt_gap

        def short(v: float) -> str:
            return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:,.6g}"

        parts = [f"{time.perf_counter() - self.started:7.1f} s"]
        if p.gap is not None:
            parts.append(f"gap {fmt_gap(p.gap)}")
        if p.incumbent is not None:
            parts.append(f"incumbent {short(p.incumbent)}")
        if p.bound is not None:
            parts.append(f"bound {short(p.bound)}")
        parts.append((p.phase or "starting") + (f": {p.detail}" if p.detail else ""))
        self.live.update(Text("  ".join(parts), overflow="ellipsis", no_wrap=True), refresh=True)


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
    warm_start: Annotated[Optional[Path], typer.Option("--warm-start", help="An earlier result (e.g. last week's --output): its open sites, spend or fees are priced on this instance; the method starts from them where it can, and the answer is never worse.", exists=True, dir_okay=False)] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the solution to this PNG file (needs pip install 'ecomopt\\[plot]'; drawn after the solve, outside --time-limit); see `ecomopt plot --help`.", dir_okay=False)] = None,
    plan: Annotated[Optional[Path], typer.Option(help="incentive_assignment: write the per-user plan (user_id, treatment) to this .parquet or .csv file, chunk by chunk and atomically.", dir_okay=False)] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="incentive_assignment: run on the Dask cluster at this address (tcp://host:8786); the users table must be Parquet. Needs pip install 'ecomopt\\[dask]'.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the solver's log on stderr.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line on stderr (there is none when stderr is not a terminal).")] = False,
) -> None:
    """Solve an instance and print the solution with its status, objective, bound and gap.

    While it runs, stderr shows the elapsed time, the method's phase, the best plan's objective
    (incumbent), the bound and the gap (a terminal only; --quiet or --verbose turn it off).

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
    if plot is not None:
        _check_png(plot, "--plot")  # its suffix and folder
    if plan is not None and plan.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"--plan: the plan is written as .parquet or .csv (got {plan.name})")

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=NumericsWarning)  # shown once, plainly, from the result below
    earlier = None if warm_start is None else _read_result(warm_start)
    line = None if quiet or verbose or not err.is_terminal else ProgressLine(started)
    with stop_on_sigint(), (line or nullcontext()):  # Ctrl-C (even while loading): the method wraps up and its best plan is written as usual
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
        result = run_solve(inst, method=method, backend=backend, options=options, on_progress=line, warm_start=earlier)
    document = result.to_dict()
    if os.path.basename(sys.argv[0]) in ("ecomopt", "cli.py"):  # the command as typed, for `ecomopt report`'s "reproduce"
        document["meta"]["command"] = shlex.join(["ecomopt", *sys.argv[1:]])
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
    if plot is not None and result.status.has_solution:
        _write_plot(document, inst, plot, quiet=output_format is OutputFormat.json)
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


ResultPath = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A result file of `ecomopt solve --output` (or `ecomopt frontier --output`).")]
SolvedInstance = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The instance it was solved on (with the same --input-format/--capacity flags).")]


@app.command("plot")
@_guarded
def plot_command(
    result: ResultPath,
    instance: SolvedInstance,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG file to write (default: the result's name with .png).", dir_okay=False)] = None,
    input_format: InputFormat = "auto",
    capacity: Capacity = None,
    single_source: SingleSource = None,
    allow_outside_tables: OutsideTables = False,
) -> None:
    """Draw a result as a PNG (needs pip install 'ecomopt\\[plot]').

    \b
    front_warehouse: a map of the sites (opened, existing, not opened,
      closed) and the zones coloured by serving site, with the promise
      radius; stock volume use per open site.
    incentive_budget: every cell's response curve with the chosen spend;
      the budget frontier with its marginal value (for a frontier
      document, the frontier alone).
    membership_pricing: lifetime profit against each tier's fee with the
      chosen fee marked; who joins which tier.
    incentive_assignment: spend and value by treatment; treated users by
      segment and treatment.

    \b
    Example:
      ecomopt solve instances/front_warehouse/metro-40x400.json --output metro.json
      ecomopt plot metro.json instances/front_warehouse/metro-40x400.json -o metro.png
    """
    doc = _read_result(result)
    inst = load_instance(instance, input_format=input_format, capacity=capacity, single_source=single_source, allow_outside_tables=allow_outside_tables)
    _check_solved_on(doc, inst, result, instance)
    target = output or result.with_suffix(".png")
    _check_png(target, "--output")
    _write_plot(doc, inst, target, quiet=False)


@app.command("report")
@_guarded
def report_command(
    result: ResultPath,
    instance: SolvedInstance,
    html_file: Annotated[Path, typer.Option("--html", help="HTML file to write: one self-contained file (inline styles, the plot embedded), to forward.", dir_okay=False)],
    with_plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Embed the plot (needs matplotlib; without it the report says so).")] = True,
    input_format: InputFormat = "auto",
    capacity: Capacity = None,
    single_source: SingleSource = None,
    allow_outside_tables: OutsideTables = False,
) -> None:
    """Write a self-contained HTML report of a result: summary, key figures, plot, tables,
    assumptions, status with bound and gap, and the command that reproduces it.

    \b
    Example:
      ecomopt solve instances/membership_pricing/prime-tiers.json --output tiers.json
      ecomopt report tiers.json instances/membership_pricing/prime-tiers.json --html tiers.html
    """
    from optimizers.report import html_report

    doc = _read_result(result, need_solution=False)  # a report also explains a result without a plan
    if not html_file.resolve().parent.is_dir():
        raise UsageError(f"--html: folder {html_file.resolve().parent} does not exist")
    inst = load_instance(instance, input_format=input_format, capacity=capacity, single_source=single_source, allow_outside_tables=allow_outside_tables)
    _check_solved_on(doc, inst, result, instance)
    with _result_errors(result):
        text = html_report(doc, inst, instance_path=str(instance), with_plot=with_plot)
    try:
        write_atomic(html_file, text)
    except OSError as exc:
        raise UsageError(f"--html: cannot write {html_file} ({exc.strerror})") from None
    err.print(f"wrote {html_file}", markup=False)


def _read_result(path: Path, need_solution: bool = True) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a result file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg} (expected the JSON of `ecomopt solve --output`)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("problem"), str) or not ("solution" in doc or "levels" in doc):
        raise UsageError(f"{path}: not a result document (expected the JSON of `ecomopt solve --output` or `ecomopt frontier --output`)")
    if need_solution and "levels" not in doc and not doc.get("solution"):
        raise UsageError(f"{path}: the result has no solution (status {doc.get('status')})")
    return doc


def _check_solved_on(doc: dict[str, Any], inst: Any, result: Path, instance: Path) -> None:
    """The instance given must be the one the result was solved on (same problem, same digest)."""
    from optimizers.registry import instance_digest

    if doc["problem"] != inst.problem:
        raise UsageError(f"{instance}: the instance is {inst.problem}, but {result} is a result of {doc['problem']}")
    digest = (doc.get("meta") or {}).get("instance_sha256")
    if digest is not None and digest != instance_digest(inst):
        raise UsageError(f"{instance}: not the instance {result} was solved on (its sha256 differs; foreign formats need the same "
                         "--input-format, --capacity and --single-source flags as the solve)")


@contextmanager
def _result_errors(result: Path | None) -> Iterator[None]:
    """A result document edited by hand (ids or fields not as `ecomopt solve` writes them): exit 2, not a traceback."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        where = f"{result}: " if result is not None else ""
        raise UsageError(f"{where}the result document is not as `ecomopt solve` writes it ({type(exc).__name__}: {exc})") from None


def _check_png(path: Path, option: str) -> None:
    if path.suffix.lower() != ".png":
        raise UsageError(f"{option}: plots are written as .png (got {path.name})")
    if not path.resolve().parent.is_dir():
        raise UsageError(f"{option}: folder {path.resolve().parent} does not exist")


def _write_plot(doc: dict[str, Any], inst: Any, path: Path, quiet: bool) -> None:
    from optimizers.report.plots import png_bytes

    with _result_errors(None):
        data = png_bytes(doc, inst, dpi=110)
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror})") from None
    if not quiet:
        err.print(f"wrote {path}", markup=False)


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


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write via a temporary file in the same folder and a rename: never a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result is an ordinary file
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(value: Any) -> str:
    from optimizers.report.tables import fmt

    return fmt(value)


def _render(doc: dict[str, Any], inst: Any) -> None:
    from optimizers.report import tables

    for table in tables(doc, inst):
        _print_table(table)


def _print_table(t: Any) -> None:
    """A :class:`optimizers.report.Table` as a rich table on stdout (or its note as a line)."""
    if not t.columns:
        out.print(t.note, markup=False)
        return
    table = Table(title=t.title, show_header=t.header)
    for k, col in enumerate(t.columns):
        table.add_column(col, justify="left" if t.is_label(k) else "right", style="bold" if not t.header and k == 0 else None)
    for k, row in enumerate(t.rows):
        table.add_row(*row, style="bold" if t.total and k == len(t.rows) - 1 else None)
    out.print(table)


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
