"""Reading instance files: JSON, TOML, foreign formats, and tables named by relative path.

Every problem found is reported in one :class:`InstanceError`, each with its location.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from models import front_warehouse, incentive_assignment, incentive_budget, membership_pricing
from models.base import Evaluation, problems_from_validation
from models.envyfree import read_envyfree
from models.errors import InstanceError, Problem
from models.orlib import read_orlib_cap


@dataclass(frozen=True)
class Family:
    """What the loader needs to know about a problem family."""

    schema: type[BaseModel]
    cross_check: Callable[[dict[str, Any]], list[Problem]]
    feasibility_check: Callable[[Any], list[Problem]]
    evaluate: Callable[[Any, Any], Evaluation]
    table_keys: tuple[str, ...] = ()
    sense: Callable[[Any], str] = lambda instance: "min"  # "min" or "max": the direction of the objective
    resolve_tables: Callable[[dict[str, Any], Path, bool], list[Problem]] = lambda doc, base_dir, outside: []  # tables read by the solver, not here


FAMILIES: dict[str, Family] = {
    front_warehouse.PROBLEM: Family(
        schema=front_warehouse.FrontWarehouse,
        cross_check=front_warehouse.cross_check,
        feasibility_check=front_warehouse.feasibility_check,
        evaluate=front_warehouse.evaluate,
        table_keys=front_warehouse.TABLE_KEYS,
    ),
    incentive_budget.PROBLEM: Family(
        schema=incentive_budget.IncentiveBudget,
        cross_check=incentive_budget.cross_check,
        feasibility_check=incentive_budget.feasibility_check,
        evaluate=incentive_budget.evaluate,
        sense=incentive_budget.sense,
    ),
    incentive_assignment.PROBLEM: Family(
        schema=incentive_assignment.IncentiveAssignment,
        cross_check=incentive_assignment.cross_check,
        feasibility_check=incentive_assignment.feasibility_check,
        evaluate=incentive_assignment.evaluate,
        sense=incentive_assignment.sense,
        resolve_tables=incentive_assignment.resolve_table,
    ),
    membership_pricing.PROBLEM: Family(
        schema=membership_pricing.MembershipPricing,
        cross_check=membership_pricing.cross_check,
        feasibility_check=membership_pricing.feasibility_check,
        evaluate=membership_pricing.evaluate,
        sense=lambda instance: "max",  # lifetime profit
    ),
}

INPUT_FORMATS = ("auto", "json", "toml", "orlib-cap", "envyfree")


def load_instance(
    path: str | Path,
    *,
    input_format: str = "auto",
    capacity: float | None = None,
    single_source: bool | None = None,
    allow_outside_tables: bool = False,
) -> BaseModel:
    """Read and validate an instance file.

    ``input_format``: ``auto`` (by extension: .json, .toml), ``json``, ``toml``, or
    ``orlib-cap`` (OR-Library capacitated warehouse location; ``capacity`` substitutes the
    word `capacity` in capa/capb/capc). ``single_source`` overrides the file's field.
    Tables must lie in the file's folder (or below it) unless ``allow_outside_tables``.
    """
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InstanceError(Problem("", f"cannot read the file ({exc.strerror})"), source=source) from None
    try:
        text = data.decode("utf-8-sig")  # a BOM, as spreadsheet exports write, is not content
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InstanceError(Problem(f"line {line}", "not UTF-8 text"), source=source) from None
    return loads_instance(
        text, input_format=resolve_format(path, input_format), name=path.stem, source=source,
        base_dir=path.parent, capacity=capacity, single_source=single_source, allow_outside_tables=allow_outside_tables,
    )


def resolve_format(path: Path, input_format: str = "auto") -> str:
    """The concrete input format of ``path`` (``auto`` goes by the extension)."""
    if input_format != "auto":
        return input_format
    fmt = {".json": "json", ".toml": "toml"}.get(path.suffix.lower(), "")
    if not fmt:
        raise InstanceError(
            Problem("", f"cannot tell the format from the extension '{path.suffix}'; pass --input-format ({', '.join(INPUT_FORMATS[1:])})"),
            source=str(path),
        )
    return fmt


def loads_instance(
    text: str,
    *,
    input_format: str,
    name: str = "instance",
    source: str | None = None,
    base_dir: Path | None = None,
    capacity: float | None = None,
    single_source: bool | None = None,
    allow_outside_tables: bool = False,
) -> BaseModel:
    """Validate an instance given as text (what batch workers receive instead of a path)."""
    source = source or name
    if input_format in ("orlib-cap", "envyfree"):
        try:
            doc = read_orlib_cap(text, name=name, capacity=capacity, single_source=bool(single_source)) if input_format == "orlib-cap" else read_envyfree(text, name=name)
        except InstanceError as exc:  # the readers know the instance's name, not its file
            raise InstanceError(exc.problems, source=source) from None
    elif input_format in ("json", "toml"):
        doc = _parse_text(text, input_format, source)
        if capacity is not None:
            raise InstanceError(Problem("--capacity", "only applies to --input-format orlib-cap"), source=source)
    else:
        raise InstanceError(Problem("--input-format", f"unknown format {input_format!r} (expected one of {', '.join(INPUT_FORMATS)})"), source=source)
    if single_source is not None and isinstance(doc, dict):
        doc["single_source"] = single_source
    return parse_instance(doc, source=source, base_dir=base_dir, allow_outside_tables=allow_outside_tables)


def parse_instance(doc: Any, *, source: str = "<instance>", base_dir: Path | None = None, allow_outside_tables: bool = False) -> BaseModel:
    """Validate a document (already parsed JSON/TOML) into its family's schema. Tables are
    named relative to ``base_dir`` (the instance file's folder; default the current one) and
    must not leave it unless ``allow_outside_tables`` (or no ``base_dir`` is given)."""
    if not isinstance(doc, dict):
        raise InstanceError(Problem("", f"the document must be an object (got {type(doc).__name__})"), source=source)
    tag = doc.get("problem")
    if not isinstance(tag, str) or tag not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        raise InstanceError(Problem("problem", f"unknown or missing problem tag (got {tag!r}; expected one of {known})"), source=source)
    family = FAMILIES[tag]
    doc = dict(doc)
    problems: list[Problem] = []
    tables: dict[str, str] = {}
    outside_ok = allow_outside_tables or base_dir is None  # a document built in code has no folder
    unreadable: set[str] = set()  # tables that could not be read: their own problem says why
    for key in family.table_keys:
        ref = doc.get(key)
        if isinstance(ref, dict) and set(ref) == {"table"}:
            rows, table_problems = _read_table(ref["table"], base_dir or Path("."), key, outside_ok)
            problems += table_problems
            doc[key] = rows
            if table_problems:
                unreadable.add(key)
            else:
                tables[key] = str(ref["table"])

    problems += family.resolve_tables(doc, base_dir or Path("."), outside_ok)
    problems += family.cross_check(doc)
    instance = None
    try:
        instance = family.schema.model_validate(doc)
    except ValidationError as exc:
        found = [p for p in problems_from_validation(exc) if p.where.split(".")[0].split("[")[0] not in unreadable]
        problems = found + problems
    if instance is not None and not problems:
        problems += family.feasibility_check(instance)
    if problems:
        raise InstanceError([_locate_in_table(p, tables) for p in problems], source=source)
    return instance  # type: ignore[return-value]


def evaluate(instance: BaseModel, solution: Any) -> Evaluation:
    """Recompute the objective of ``solution`` and list violations, without any solver."""
    return FAMILIES[instance.problem].evaluate(instance, solution)  # type: ignore[attr-defined]


def _parse_text(text: str, fmt: str, source: str) -> Any:
    if fmt == "json":
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise InstanceError(Problem(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}"), source=source) from None
        except ValueError as exc:
            raise InstanceError(Problem("", str(exc)), source=source) from None
        except RecursionError:
            raise InstanceError(Problem("", "invalid JSON: nested too deeply"), source=source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InstanceError(Problem("", f"invalid TOML: {exc}"), source=source) from None
    except RecursionError:
        raise InstanceError(Problem("", "invalid TOML: nested too deeply"), source=source) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows (got {name})")


def outside_folder(path: Path, base_dir: Path) -> str | None:
    """Why a table that leaves the instance's folder (``..``, an absolute path or a link
    elsewhere) is refused, or None when it stays inside: instance files from others must not
    read arbitrary files."""
    try:
        path.resolve().relative_to(base_dir.resolve())
        return None
    except ValueError:
        return f"{path} is outside the instance's folder {base_dir.resolve()}; move the table next to the instance, or pass --allow-outside-tables"


def _read_table(name: Any, base_dir: Path, key: str, allow_outside: bool = False) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Rows of a CSV table as dicts. Columns ``demand_<sku>`` gather into ``demand``; empty
    cells are absent keys; numbers stay text and are converted by the schema."""
    if not isinstance(name, str):
        return [], [Problem(f"{key}.table", f"must be a file name (got {name!r})")]
    path = base_dir / name
    if not allow_outside and (outside := outside_folder(path, base_dir)):
        return [], [Problem(f"{key}.table", outside)]
    if path.suffix.lower() != ".csv":
        return [], [Problem(f"{key}.table", f"only .csv tables are read (got {name!r})")]
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = fh.readline()
            fh.seek(0)
            # commas, or the semicolons and tabs some spreadsheet locales write
            delimiter = max((",", ";", "\t"), key=header.count)
            reader = csv.DictReader(fh, delimiter=delimiter)
            rows, problems = [], []
            for row in reader:
                item: dict[str, Any] = {}
                for col, cell in row.items():
                    if col is None:
                        problems.append(Problem(f"{key}.table", f"{name} line {reader.line_num}: more cells than the header has columns"))
                        continue
                    if cell is None or cell == "":
                        continue
                    col = col.strip()
                    if col.startswith("demand_"):
                        item.setdefault("demand", {})[col[len("demand_") :]] = cell
                    else:
                        item[col] = cell
                if key == "zones":
                    item.setdefault("demand", {})
                rows.append(item)
            return rows, problems
    except FileNotFoundError:
        return [], [Problem(f"{key}.table", f"file not found: {path}")]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], [Problem(f"{key}.table", f"cannot read {path}: {exc}")]


def _locate_in_table(problem: Problem, tables: dict[str, str]) -> Problem:
    """Add the table file and line to problems located in a list read from a table."""
    for key, name in tables.items():
        if problem.where == key:  # the table as a whole (e.g. it has no rows)
            return Problem(f"{key} ({name})", problem.what)
        prefix = f"{key}["
        if problem.where.startswith(prefix):
            index = problem.where[len(prefix) :].split("]", 1)[0]
            if index.isdigit():
                return Problem(f"{problem.where} ({name} line {int(index) + 2})", problem.what)
    return problem
