"""Run a suite on any ``concurrent.futures.Executor``: a process pool (default), in-process,
or a Dask cluster. Each finished run is appended to a JSONL file and flushed at once, so a
crash or Ctrl-C loses nothing finished; ``resume`` skips runs already recorded.

Workers receive instance *text*, never paths, so they need no shared file system.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
import tomllib
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from models.errors import UsageError
from optimizers.bench.suite import RunSpec

#: A run may overrun its solver time limit by this much before it is recorded as timed out.
GRACE_FACTOR, GRACE_S = 1.5, 60.0


def make_task(run: RunSpec) -> dict[str, Any]:
    """The picklable payload a worker receives: the run and the instance as text.

    JSON/TOML instances that name tables are read here and sent inlined."""
    from models.io import load_instance

    text = Path(run.path).read_text(encoding="utf-8")
    fmt = run.input_format
    if fmt in ("json", "toml"):
        doc = json.loads(text) if fmt == "json" else tomllib.loads(text)
        if isinstance(doc, dict) and any(isinstance(v, dict) and set(v) == {"table"} for v in doc.values()):
            instance = load_instance(run.path, input_format=fmt, single_source=run.single_source)
            text, fmt = instance.model_dump_json(exclude_none=True), "json"
    return {"run": asdict(run), "text": text, "input_format": fmt}


def execute(task: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point: load, solve, and return one plain record. Never raises."""
    run = RunSpec(**task["run"])
    started = time.perf_counter()
    try:
        from models.io import loads_instance
        from optimizers import SolverOptions, solve

        instance = loads_instance(
            task["text"], input_format=task["input_format"], name=Path(run.path).stem, source=run.path,
            capacity=run.capacity, single_source=run.single_source,
        )
        result = solve(instance, method=run.method, backend=run.backend, options=SolverOptions(**run.options))
        evaluation = result.evaluation or {}
        from models.io import FAMILIES

        record = {
            "sense": FAMILIES[result.problem].sense(instance),
            "status": result.status.value, "objective": result.objective, "bound": result.bound, "gap": result.gap,
            "runtime_s": result.runtime_s, "method": result.method, "backend": result.backend,
            "feasible": evaluation.get("feasible"), "error": result.message if result.status.value == "error" else None,
        }
    except Exception as exc:  # a failed run is a record, not the end of the batch
        record = {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    record["wall_s"] = time.perf_counter() - started
    record["host"] = socket.gethostname()
    return finish(run, record)


def finish(run: RunSpec, record: dict[str, Any]) -> dict[str, Any]:
    """Complete a record with the run's identity and the gap to the reference value."""
    objective, reference = record.get("objective"), run.reference
    ref_gap = None
    if objective is not None and reference is not None:
        ref_gap = (objective - reference) / max(1.0, abs(reference))
    return {
        "key": run.key, "suite": run.suite, "group": run.group, "instance": run.instance, "label": run.label,
        "baseline": run.baseline, "seed": run.seed, "rep": run.rep, "reference": reference, "ref_gap": ref_gap,
        "time_limit_s": run.options.get("time_limit_s"),
        "method": run.method, "backend": run.backend,
        "status": "error", "objective": None, "bound": None, "gap": None, "runtime_s": None,
        **{k: v for k, v in record.items() if v is not None},  # what the run found fills the defaults
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class InlineExecutor(Executor):
    """Runs each task at submission, in this process (``--workers 1``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@dataclass
class Workers:
    """Where runs execute: an executor, how many runs it takes at once, and whether it can
    be rebuilt (a process pool can; a crashed or hung task then costs only a restart)."""

    executor: Executor
    slots: int
    rebuild: Callable[[], Executor] | None = None
    close: Callable[[], None] = lambda: None

    def restart(self) -> None:
        assert self.rebuild is not None
        _kill(self.executor)
        self.executor = self.rebuild()


def make_workers(workers: int, scheduler: str | None) -> Workers:
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--scheduler needs Dask: pip install 'ecomopt[dask]'") from None
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise UsageError(f"--scheduler: cannot reach {scheduler} ({exc})") from None
        slots = max(1, sum(client.nthreads().values()))
        return Workers(client.get_executor(pure=False), slots, close=client.close)
    if workers <= 1:
        return Workers(InlineExecutor(), 1)

    def pool() -> Executor:
        return ProcessPoolExecutor(max_workers=workers, initializer=_one_thread)

    return Workers(pool(), workers, rebuild=pool)


def _one_thread() -> None:
    # One solver thread per worker: numeric libraries must not oversubscribe the cores.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


class JsonlSink:
    """Appends one JSON line per record, flushed and synced at once."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.done: set[str] = set()
        if path.exists() and path.stat().st_size:
            if not resume:
                raise UsageError(f"--out: {path} already has results; pass --resume to continue it or choose another file")
            self.done = {r["key"] for r in read_records(path, repair=True)}
        self.fh: Any = None  # opened at the first record: a run that never starts leaves no file

    def write(self, record: dict[str, Any]) -> None:
        if self.fh is None:
            self.fh = self.path.open("a", encoding="utf-8")
        self.fh.write(json.dumps(record) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def read_records(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The complete records of a JSONL file; a partial last line (a crash mid-write) is
    dropped, and with ``repair`` cut from the file so appending continues cleanly."""
    data = path.read_bytes()
    good = data[: data.rfind(b"\n") + 1]
    if repair and len(good) != len(data):
        with path.open("r+b") as fh:
            fh.truncate(len(good))
    records = []
    for line in good.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "key" in record:
            records.append(record)
    return records


def run_suite(
    runs: Iterable[RunSpec],
    out: Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    resume: bool = False,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    command: str = "",
) -> tuple[int, int]:
    """Run everything not yet in ``out``. Returns (runs done now, runs skipped as recorded)."""
    sink = JsonlSink(out, resume)
    todo = deque(r for r in runs if r.key not in sink.done)
    skipped = len(sink.done)
    pool = make_workers(workers, scheduler)
    stamp = {"command": command, "machine": machine()}
    inflight: dict[Future, tuple[RunSpec, float]] = {}
    # When a worker dies, every run then in flight fails with it; those runs become suspects
    # and are retried one at a time, so only the run that kills a worker alone is blamed.
    suspects: set[str] = set()
    done = 0

    def record(rec: dict[str, Any]) -> None:
        nonlocal done
        sink.write({**rec, **stamp})
        done += 1
        if on_record:
            on_record(rec)

    def alone() -> bool:
        return len(inflight) == 1 and next(iter(inflight.values()))[0].key in suspects

    try:
        while todo or inflight:
            while todo and len(inflight) < pool.slots and not alone():
                if todo[0].key in suspects and inflight:
                    break  # a suspect runs by itself
                run = todo.popleft()
                try:
                    task = make_task(run)
                except Exception as exc:
                    record(finish(run, {"error": f"cannot read the instance: {exc}"}))
                    continue
                try:
                    future = pool.executor.submit(execute, task)
                except BrokenProcessPool:  # a worker died since the last look: rebuild first
                    todo.appendleft(run)
                    if not inflight and pool.rebuild is not None:
                        pool.restart()
                        continue
                    break
                inflight[future] = (run, time.monotonic())
            was_alone = alone()
            finished, _ = wait(list(inflight), timeout=1.0, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                run, _start = inflight.pop(future)
                try:
                    record(future.result())
                except BrokenProcessPool:
                    broken = True
                    if was_alone or pool.rebuild is None:
                        record(finish(run, {"error": "the worker process died while running this (crash or out of memory)"}))
                    else:
                        suspects.add(run.key)
                        todo.appendleft(run)
                except Exception as exc:
                    record(finish(run, {"error": f"{type(exc).__name__}: {exc}"}))
            now = time.monotonic()
            for future, (run, start) in list(inflight.items()):
                limit = run.options.get("time_limit_s")
                if limit is not None and now - start > limit * GRACE_FACTOR + GRACE_S:
                    inflight.pop(future)
                    future.cancel()
                    record(finish(run, {"error": f"timed out: no answer after {now - start:.0f} s (time limit {limit} s)", "wall_s": now - start}))
                    broken = broken or pool.rebuild is not None
            if broken and pool.rebuild is not None:
                for run, _start in inflight.values():
                    todo.appendleft(run)
                inflight.clear()
                pool.restart()
    finally:
        _kill(pool.executor) if inflight else pool.executor.shutdown(wait=True)
        pool.close()
        sink.close()
    return done, skipped


def _kill(executor: Executor) -> None:
    """Stop an executor now, ending its worker processes (hung or not)."""
    processes = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        process.kill()
    executor.shutdown(wait=False, cancel_futures=True)


def machine() -> dict[str, Any]:
    versions = {}
    for dist in ("ecomopt", "numpy", "scipy", "ortools", "pulp", "pydantic"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "versions": versions,
    }
