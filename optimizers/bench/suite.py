"""Benchmark suites: a TOML file naming instances, methods, options, seeds, repetitions and
reference values, expanded into one :class:`RunSpec` per run.

    name = "orlib-cap"
    repetitions = 1
    seeds = [0]
    [options]                      # SolverOptions for every run
    time_limit_s = 60
    [[instances]]
    files = "../../instances/orlib/cap*.txt"      # glob, relative to the suite file
    input_format = "orlib-cap"
    capacity = [8000, 10000]                      # optional; one run set per value
    references = "../../instances/orlib/OPTIMA.tsv"   # TSV/CSV: `instance` + reference_column
    reference_column = "optimum"
    [[methods]]
    label = "milp-highs"
    method = "milp"
    backend = "highs"
    [[methods]]
    label = "tutorial"
    method = "pulp_tutorial"
    baseline = true

An instance group may list ``methods = ["milp-highs"]`` to run only those labels.
"""

from __future__ import annotations

import csv
import glob
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from models.base import Strict, problems_from_validation
from models.errors import InstanceError, Problem
from models.io import INPUT_FORMATS, resolve_format


class SuiteOptions(Strict):
    time_limit_s: float | None = Field(60.0, gt=0)
    gap: float = Field(1e-6, ge=0, lt=1)
    threads: int = Field(1, ge=0)
    verbose: bool = False


class InstanceGroup(Strict):
    files: str | list[str]
    name: str = ""
    input_format: str = "auto"
    capacity: float | list[float] | None = None
    single_source: bool | None = None
    references: str | None = None
    reference_column: str = "optimum"
    reference: dict[str, float] = Field(default_factory=dict)
    methods: list[str] | None = Field(None, description="labels of the methods to run here (default: all)")


class MethodEntry(Strict):
    label: str = ""
    method: str | None = None
    backend: str | None = None
    baseline: bool = False
    options: dict[str, Any] = Field(default_factory=dict)


class Suite(Strict):
    name: str
    description: str = ""
    repetitions: int = Field(1, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    options: SuiteOptions = Field(default_factory=lambda: SuiteOptions.model_validate({}))
    instances: list[InstanceGroup] = Field(min_length=1)
    methods: list[MethodEntry] = Field(min_length=1)


@dataclass(frozen=True)
class RunSpec:
    """One run: an instance file with its reading options, a method, a seed, a repetition."""

    key: str
    suite: str
    group: str
    instance: str
    path: str
    input_format: str
    capacity: float | None
    single_source: bool | None
    label: str
    method: str | None
    backend: str | None
    baseline: bool
    options: dict[str, Any]
    seed: int
    rep: int
    reference: float | None


def load_suite(path: str | Path) -> tuple[Suite, list[RunSpec]]:
    """Read a suite file and expand it into runs; every problem is reported with its place."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(Problem("", f"cannot read the suite ({exc})"), source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InstanceError(Problem("", f"invalid TOML: {exc}"), source=str(path)) from None
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise InstanceError(problems_from_validation(exc), source=str(path)) from None

    problems: list[Problem] = []
    runs: list[RunSpec] = []
    labels = [m.label or _label(m) for m in suite.methods]
    if len(set(labels)) != len(labels):
        problems.append(Problem("methods", f"labels must differ (got {labels}); set `label`"))
    for m, entry in enumerate(suite.methods):
        try:
            SuiteOptions.model_validate({**suite.options.model_dump(), **entry.options})
        except ValidationError as exc:
            problems += [Problem(f"methods[{m}].options.{p.where}", p.what) for p in problems_from_validation(exc)]
    for g, group in enumerate(suite.instances):
        where = f"instances[{g}]"
        patterns = [group.files] if isinstance(group.files, str) else group.files
        files = sorted({f for p in patterns for f in glob.glob(str(path.parent / p))})
        if not files:
            problems.append(Problem(f"{where}.files", f"no file matches {patterns} (relative to {path.parent})"))
        if group.input_format not in INPUT_FORMATS:
            problems.append(Problem(f"{where}.input_format", f"unknown format {group.input_format!r} (expected one of {', '.join(INPUT_FORMATS)})"))
            continue
        unknown = sorted(set(group.methods or []) - set(labels))
        if unknown:
            problems.append(Problem(f"{where}.methods", f"unknown method labels {unknown} (known: {labels})"))
        references = dict(group.reference)
        if group.references:
            references = {**_read_references(path.parent / group.references, group.reference_column, f"{where}.references", problems), **references}
        capacities = group.capacity if isinstance(group.capacity, list) else [group.capacity]
        for file in files:
            try:
                fmt = resolve_format(Path(file), group.input_format)
            except InstanceError as exc:
                problems += [Problem(f"{where}.files", f"{file}: {p.what}") for p in exc.problems]
                continue
            for capacity in capacities:
                instance = Path(file).stem + (f"_{capacity:g}" if capacity is not None else "")
                ident = f"{group.name}/{instance}" if group.name else instance
                for entry, label in zip(suite.methods, labels):
                    if group.methods is not None and label not in group.methods:
                        continue
                    options = {**suite.options.model_dump(), **entry.options}
                    for seed in suite.seeds:
                        for rep in range(suite.repetitions):
                            runs.append(
                                RunSpec(
                                    key=f"{ident}|{label}|seed={seed}|rep={rep}",
                                    suite=suite.name, group=group.name, instance=instance, path=file,
                                    input_format=fmt, capacity=capacity, single_source=group.single_source,
                                    label=label, method=entry.method, backend=entry.backend, baseline=entry.baseline,
                                    options={**options, "seed": seed}, seed=seed, rep=rep,
                                    reference=references.get(instance),
                                )
                            )
    if problems:
        raise InstanceError(problems, source=str(path))
    return suite, runs


def _label(entry: MethodEntry) -> str:
    return "-".join(p for p in (entry.method or "default", entry.backend) if p)


def _read_references(path: Path, column: str, where: str, problems: list[Problem]) -> dict[str, float]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(where, f"cannot read {path} ({exc.strerror})"))
        return {}
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    if not rows or "instance" not in rows[0] or column not in rows[0]:
        problems.append(Problem(where, f"{path} needs columns `instance` and `{column}`"))
        return {}
    out = {}
    for row in rows:
        try:
            out[row["instance"]] = float(row[column])
        except (TypeError, ValueError):
            problems.append(Problem(where, f"{path}: instance {row['instance']!r} has no number in `{column}`"))
    return out
