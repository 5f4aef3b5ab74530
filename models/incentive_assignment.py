"""The ``incentive_assignment`` family: which incentive each user gets.

Users u, treatments t (plus "none": value 0, cost 0), x_ut in {0, 1}:

    max  sum_ut value_ut x_ut
    s.t. sum_t x_ut <= 1                       every user gets at most one treatment
         sum_ut cost_ut x_ut <= budget
         sum_u x_ut <= limit_t                 treatments with a limit (gift stock)
         sum_{u in s, t} cost_ut x_ut <= B_s   segments with a budget

The users live in a table (CSV or Parquet) with ``user_id``, optional ``segment`` and
``value_<T>`` / ``cost_<T>`` per treatment; it is read in chunks and never held as text.
This module holds the schema, the chunked table reader (every bad cell reported with its
column and row), ``evaluate()`` of a plan (in memory or as a written plan table), the plan
writer and a seeded generator of realistic user tables.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, NonNegativeInt

from models.base import Envelope, Evaluation, Id, Strict, duplicate_ids, exceeds
from models.errors import InstanceError, Problem

PROBLEM = "incentive_assignment"
TABLE_SUFFIXES = (".csv", ".parquet")
NONE = -1  # the choice code of "no treatment"


class Treatment(Strict):
    id: Id
    limit: NonNegativeInt | None = Field(None, description="at most this many users get it (e.g. gift stock)")


class UsersTable(Strict):
    table: str = Field(description="CSV or Parquet file, relative to the instance file")


class IncentiveAssignment(Envelope):
    problem: Literal["incentive_assignment"]
    budget: NonNegativeFloat
    treatments: list[Treatment] = Field(min_length=1)
    users: UsersTable
    segment_budgets: dict[str, NonNegativeFloat] = Field(default_factory=dict)

    @property
    def treatment_ids(self) -> list[str]:
        return [t.id for t in self.treatments]

    @property
    def limits(self) -> np.ndarray:
        """Per treatment: its limit, or +inf."""
        return np.array([math.inf if t.limit is None else float(t.limit) for t in self.treatments])

    @property
    def coupled(self) -> bool:
        """True when more than the one budget constrains the plan."""
        return bool(self.segment_budgets) or any(t.limit is not None for t in self.treatments)

    @property
    def table_path(self) -> Path:
        return Path(self.users.table)


def sense(inst: IncentiveAssignment) -> str:
    return "max"


# ----------------------------------------------------------------------------- loading


def cross_check(raw: dict[str, Any]) -> list[Problem]:
    problems = duplicate_ids(raw.get("treatments"), "treatments")
    treatments = raw.get("treatments")
    for i, t in enumerate(treatments if isinstance(treatments, list) else []):
        ident = t.get("id") if isinstance(t, dict) else None
        if isinstance(ident, str) and ident.strip() != ident:
            problems.append(Problem(f"treatments[{i}].id", f"leading or trailing spaces (got {ident!r})"))
    return problems


def resolve_table(doc: dict[str, Any], base_dir: Path, allow_outside: bool = False) -> list[Problem]:
    """Point ``users.table`` at its file (relative to the instance's folder, which it must not
    leave unless ``allow_outside``) and check that the file has the columns the treatments
    need. Rewrites ``doc`` in place."""
    from models.io import outside_folder

    users = doc.get("users")
    if not isinstance(users, dict) or not isinstance(users.get("table"), str):
        return []  # the schema reports it
    name = users["table"]
    path = Path(name) if Path(name).is_absolute() else base_dir / name
    where = "users.table"
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return [Problem(where, f"only .csv and .parquet tables are read (got {name!r})")]
    if not allow_outside and (outside := outside_folder(path, base_dir)):
        return [Problem(where, outside)]
    if not path.is_file():
        return [Problem(where, f"file not found: {path}")]
    doc["users"] = {**users, "table": str(path)}
    try:
        columns, has_rows = table_columns(path), table_has_rows(path)
    except InstanceError as exc:
        return exc.problems
    problems = []
    if "user_id" not in columns:
        problems.append(Problem(where, f"{path.name}: no user_id column (columns: {_listed(columns)})"))
    treatments = doc.get("treatments")
    for i, t in enumerate(treatments if isinstance(treatments, list) else []):
        ident = t.get("id") if isinstance(t, dict) else None
        if not isinstance(ident, str):
            continue
        for col in (f"value_{ident}", f"cost_{ident}"):
            if col not in columns:
                problems.append(Problem(f"treatments[{i}]", f"{path.name} has no column {col} (columns: {_listed(columns)})"))
    if not problems and not has_rows:
        problems.append(Problem(where, f"{path.name} has no users (a header and no rows)"))
    if doc.get("segment_budgets") and "segment" not in columns:
        problems.append(Problem("segment_budgets", f"{path.name} has no segment column to apply them to"))
    return problems


def _listed(columns: list[str]) -> str:
    return ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")


def table_columns(path: Path) -> list[str]:
    """Column names of a CSV or Parquet table, from its header only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            return list(pq.read_schema(path).names)
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = fh.readline()
        return [c.strip() for c in next(csv.reader([header], delimiter=_delimiter(header)), [])]
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as exc:
        raise InstanceError(Problem("users.table", f"cannot read {path.name}: {exc}")) from None


def table_has_rows(path: Path) -> bool:
    """Whether the table has a row after its header (Parquet: from its metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            return bool(pq.read_metadata(path).num_rows)
        with path.open(encoding="utf-8-sig", newline="") as fh:
            fh.readline()
            return any(line.strip() for line in iter(fh.readline, ""))
    except (OSError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise InstanceError(Problem("users.table", f"cannot read {path.name}: {exc}")) from None


def _delimiter(header: str) -> str:
    return max((",", ";", "\t"), key=header.count)


def feasibility_check(inst: IncentiveAssignment) -> list[Problem]:
    return []  # "none" for everybody is always feasible


# ----------------------------------------------------------------------------- the table, chunk by chunk


@dataclass
class Chunk:
    """A block of consecutive users: rows ``offset .. offset + len - 1`` of the table."""

    offset: int
    ids: Any  # numpy int64 array, or a pyarrow string array
    value: np.ndarray  # (T, m): treatment by user, so each treatment's column is contiguous
    cost: np.ndarray  # (T, m)
    segment: np.ndarray  # (m,) codes into segment_names, -1: no segment
    segment_names: list[str]
    budgeted: np.ndarray  # (m,) index into inst.segment_budgets, -1: no segment budget

    def __len__(self) -> int:
        return self.value.shape[1]


@dataclass(frozen=True)
class Part:
    """A piece of the table a worker reads on its own: Parquet row groups [start, stop)."""

    path: str
    row_groups: tuple[int, ...]
    offset: int
    rows: int


def parquet_parts(inst: IncentiveAssignment, rows_per_part: int = 1_000_000) -> list[Part]:
    """The table's row groups, gathered into parts of about ``rows_per_part`` rows."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(inst.table_path).metadata
    parts, groups, offset, rows = [], [], 0, 0
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= rows_per_part or g == meta.num_row_groups - 1:
            parts.append(Part(str(inst.table_path), tuple(groups), offset, rows))
            offset += rows
            groups, rows = [], 0
    return parts


def read_part(inst: IncentiveAssignment, part: Part) -> Chunk:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _columns(inst, part.path)
    dictionary = ["segment"] if "segment" in columns else None
    try:
        table = pq.ParquetFile(part.path, read_dictionary=dictionary).read_row_groups(list(part.row_groups), columns=columns, use_threads=False)
    except (OSError, pa.ArrowException) as exc:  # a damaged file: its pages cannot be decoded
        where = f"rows {part.offset + 1}-{part.offset + part.rows}"
        raise InstanceError(Problem("users.table", f"cannot read {Path(part.path).name} ({where}): {str(exc).splitlines()[0]}")) from None
    return to_chunk(inst, table, part.offset)


def iter_chunks(inst: IncentiveAssignment, rows: int = 1_000_000) -> Iterator[Chunk]:
    """The users table in order, ``rows`` users at a time (Parquet by row groups)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = inst.table_path
    if path.suffix.lower() == ".parquet":
        for part in parquet_parts(inst, rows):
            yield read_part(inst, part)
        return
    with path.open(encoding="utf-8-sig", newline="") as fh:
        delimiter = _delimiter(fh.readline())
    header = table_columns(path)
    types = {c: pa.float64() for c in _columns(inst, str(path)) if c.startswith(("value_", "cost_"))}
    types["segment"] = pa.string()
    if "user_id" in header:
        types["user_id"] = pa.string()
    offset = 0
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24, encoding="utf-8"),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            # only an empty cell is missing: "NA", "null" or "nan" are a segment's or user's name, or a NaN to refuse
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=_columns(inst, str(path)), null_values=[""],
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
        for batch in reader:
            table = pa.Table.from_batches([batch])
            yield to_chunk(inst, table, offset)
            offset += table.num_rows
    except pa.ArrowInvalid as exc:
        raise InstanceError(Problem("users.table", _csv_error(path, delimiter, header, types, exc))) from None
    except (OSError, pa.ArrowException) as exc:
        raise InstanceError(Problem("users.table", f"cannot read {path.name}: {str(exc).splitlines()[0]}")) from None


def _csv_error(path: Path, delimiter: str, header: list[str], types: dict[str, Any], exc: Exception) -> str:
    """Locate the cell pyarrow could not convert (its message names neither the column nor
    the line): scan the file for the first cell of a number column that is not a number."""
    numeric = [i for i, c in enumerate(header) if c in types and c.startswith(("value_", "cost_"))]
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)
        for row in reader:
            for i in numeric:
                cell = row[i].strip() if i < len(row) else ""
                if not cell:
                    continue
                try:
                    float(cell)
                except ValueError:
                    return f"{path.name} line {reader.line_num} column {header[i]}: not a number (got {cell!r})"
    return f"{path.name}: {str(exc).splitlines()[0]}"


def _columns(inst: IncentiveAssignment, path: str) -> list[str]:
    cols = ["user_id"] + [f"{kind}_{t}" for t in inst.treatment_ids for kind in ("value", "cost")]
    if "segment" in table_columns(Path(path)):
        cols.append("segment")
    return cols


def row_name(inst: IncentiveAssignment, row: int) -> str:
    """How a planner finds a row: the CSV line (header is line 1) or the Parquet row (1-based)."""
    if inst.table_path.suffix.lower() == ".csv":
        return f"{inst.table_path.name} line {row + 2}"
    return f"{inst.table_path.name} row {row + 1}"


def to_chunk(inst: IncentiveAssignment, table: Any, offset: int) -> Chunk:
    """Check a block of rows (missing, NaN, infinite or negative numbers) and convert it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    T = len(inst.treatments)
    m = table.num_rows
    value = np.empty((T, m))
    cost = np.empty((T, m))
    for j, t in enumerate(inst.treatment_ids):
        for kind, out in (("value", value), ("cost", cost)):
            name = f"{kind}_{t}"
            column = table.column(name)
            if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
                raise InstanceError(Problem("users.table", f"{inst.table_path.name} column {name}: numbers expected (got {column.type})"))
            if column.null_count:
                row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
                raise InstanceError(Problem("users.table", f"{row_name(inst, offset + row)} column {name}: empty cell"))
            out[j] = column.to_numpy(zero_copy_only=False)
            bad = ~np.isfinite(out[j]) | ((out[j] < 0) if kind == "cost" else False)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                what = "must be >= 0" if np.isfinite(out[j, row]) else "not a finite number"
                raise InstanceError(Problem("users.table", f"{row_name(inst, offset + row)} column {name}: {what} (got {out[j, row]!r})"))
    ids = table.column("user_id").combine_chunks()
    if ids.null_count:
        row = int(np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))[0])
        raise InstanceError(Problem("users.table", f"{row_name(inst, offset + row)} column user_id: empty cell"))
    if pa.types.is_integer(ids.type):
        ids = ids.to_numpy().astype(np.int64, copy=False)
    elif not pa.types.is_string(ids.type) and not pa.types.is_large_string(ids.type):
        ids = pc.cast(ids, pa.string())
    names: list[str] = []
    codes = np.full(m, -1, dtype=np.int32)
    budgeted = np.full(m, -1, dtype=np.int16)
    if "segment" in table.column_names:
        seg = table.column("segment").combine_chunks()
        if not pa.types.is_dictionary(seg.type):
            seg = pc.cast(seg, pa.string()).dictionary_encode()
        names = [str(s) for s in seg.dictionary.to_pylist()]
        codes = seg.indices.fill_null(-1).to_numpy().astype(np.int32)
        budget_index = {s: k for k, s in enumerate(inst.segment_budgets)}
        lookup = np.array([budget_index.get(s, -1) for s in names] + [-1], dtype=np.int16)
        budgeted = lookup[codes]  # code -1 picks the trailing -1
    return Chunk(offset, ids, value, cost, codes, names, budgeted)


def chosen(table: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """Per user, the entry of ``table`` (treatment, user) for its choice; 0 for none."""
    pick = np.maximum(choice, 0).astype(np.intp)[None, :]
    return np.where(choice >= 0, np.take_along_axis(table, pick, 0)[0], 0.0)


def totals_of(inst: IncentiveAssignment, chunks: list[Chunk], choice: np.ndarray) -> Totals:
    """The totals of a plan over chunks held in memory."""
    totals = Totals()
    for c in chunks:
        part = choice[c.offset : c.offset + len(c)]
        totals.add(inst, part, chosen(c.value, part), chosen(c.cost, part), c.segment, c.segment_names)
    return totals


class UniqueIds:
    """Finds a repeated user_id across chunks. Increasing integer ids (the common case) are
    checked chunk by chunk; anything else is gathered and checked at the end."""

    def __init__(self) -> None:
        self.last: Any = None
        self.sorted = True
        self.kept: list[Any] = []
        self.offsets: list[int] = []

    def add(self, chunk: Chunk) -> None:
        ids = chunk.ids
        self.kept.append(ids)
        self.offsets.append(chunk.offset)
        if not isinstance(ids, np.ndarray) or not self.sorted or len(ids) == 0:
            self.sorted = False
            return
        if (self.last is not None and ids[0] <= self.last) or not bool(np.all(ids[1:] > ids[:-1])):
            self.sorted = False
        self.last = ids[-1]
        if self.sorted:
            self.kept, self.offsets = [], []  # nothing to keep: increasing so far

    def check(self, inst: IncentiveAssignment) -> None:
        if self.sorted or not self.kept:
            return
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = np.concatenate([np.arange(len(ids)) + off for ids, off in zip(self.kept, self.offsets)])
        allids = pa.chunked_array([pa.array(ids) for ids in self.kept])
        encoded = pc.dictionary_encode(allids).combine_chunks()
        codes = encoded.indices.to_numpy()
        if len(encoded.dictionary) == len(codes):
            return
        counts = np.bincount(codes)
        dup = int(np.flatnonzero(counts > 1)[0])
        first, second = rows[np.flatnonzero(codes == dup)[:2]]
        raise InstanceError(Problem("users.table", f"{row_name(inst, int(second))} column user_id: duplicate id {encoded.dictionary[dup].as_py()!r} "
                                                   f"(first at {row_name(inst, int(first))})"))


# ----------------------------------------------------------------------------- evaluate


@dataclass
class Totals:
    """Users, cost and value per (segment name, treatment); "none" counted too."""

    users: int = 0
    value: float = 0.0
    cost: float = 0.0
    by_treatment: dict[str, list[float]] = field(default_factory=dict)  # t -> [users, cost, value]
    by_segment: dict[str, list[float]] = field(default_factory=dict)  # s -> [users treated, cost, value]
    by_pair: dict[tuple[str, str], int] = field(default_factory=dict)  # (s, t) -> users

    def add(self, inst: IncentiveAssignment, choice: np.ndarray, value: np.ndarray, cost: np.ndarray,
            segment: np.ndarray, segment_names: list[str]) -> Totals:
        """Count a block of users: their choices and the value and cost of what they got."""
        m = len(choice)
        treated = choice >= 0
        self.users += m
        self.value += float(np.sum(value))  # pairwise summation: ~1e-16 relative per term
        self.cost += float(np.sum(cost))
        T = len(inst.treatments)
        code = np.where(treated, choice, T).astype(np.int64)
        n_t = np.bincount(code, minlength=T + 1)
        c_t = np.bincount(code, weights=cost, minlength=T + 1)
        v_t = np.bincount(code, weights=value, minlength=T + 1)
        for j, t in enumerate(inst.treatment_ids + ["none"]):
            row = self.by_treatment.setdefault(t, [0, 0.0, 0.0])
            row[0] += int(n_t[j])
            row[1] += float(c_t[j])
            row[2] += float(v_t[j])
        if segment_names:
            S = len(segment_names)
            seg = np.where(segment >= 0, segment, S).astype(np.int64)
            n_s = np.bincount(seg, weights=treated, minlength=S + 1)
            c_s = np.bincount(seg, weights=cost, minlength=S + 1)
            v_s = np.bincount(seg, weights=value, minlength=S + 1)
            pairs = np.bincount(seg * (T + 1) + code, minlength=(S + 1) * (T + 1)).reshape(S + 1, T + 1)
            for k, s in enumerate(segment_names):
                row = self.by_segment.setdefault(s, [0, 0.0, 0.0])
                row[0] += int(n_s[k])
                row[1] += float(c_s[k])
                row[2] += float(v_s[k])
                for j, t in enumerate(inst.treatment_ids):
                    if pairs[k, j]:
                        self.by_pair[s, t] = self.by_pair.get((s, t), 0) + int(pairs[k, j])
        return self

    def merge(self, other: Totals) -> Totals:
        self.users += other.users
        self.value += other.value
        self.cost += other.cost
        for mine, theirs in ((self.by_treatment, other.by_treatment), (self.by_segment, other.by_segment)):
            for k, row in theirs.items():
                into = mine.setdefault(k, [0, 0.0, 0.0])
                for i in range(3):
                    into[i] += row[i]
        for pair, n in other.by_pair.items():
            self.by_pair[pair] = self.by_pair.get(pair, 0) + n
        return self

    def segment_spend(self, segment: str) -> float:
        return self.by_segment.get(segment, [0, 0.0, 0.0])[1]

    def treatment_users(self, treatment: str) -> int:
        return int(self.by_treatment.get(treatment, [0])[0])

    def summary(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "treated": self.users - int(self.by_treatment.get("none", [0])[0]),
            "spend": self.cost,
            "value": self.value,
            "treatments": {t: {"users": int(r[0]), "spend": r[1], "value": r[2]} for t, r in self.by_treatment.items() if t != "none"},
            "segments": {s: {"treated": int(r[0]), "spend": r[1], "value": r[2],
                             "by_treatment": {t: n for (s2, t), n in self.by_pair.items() if s2 == s}}
                         for s, r in sorted(self.by_segment.items())},
        }


def evaluate(inst: IncentiveAssignment, solution: dict[str, Any]) -> Evaluation:
    """Re-read the users table and recompute value, spend, counts per treatment and spend per
    segment of a plan, listing every violated constraint. The plan is ``solution["choice"]``
    (an in-memory array of treatment indices in table order, -1 for none) or the table
    ``solution["plan_file"]`` (``user_id``, ``treatment``) written by :func:`write_plan`."""
    violations: list[str] = []
    if isinstance(solution.get("choice"), np.ndarray):
        choice = solution["choice"]
    elif isinstance(solution.get("plan_file"), str):
        choice, problems = read_plan(inst, Path(solution["plan_file"]))
        violations += problems
    else:
        return Evaluation(objective=math.nan, violations=["no plan: expected 'choice' (in memory) or 'plan_file'"])
    totals = Totals()
    ids = UniqueIds()
    seen = 0
    for chunk, part_totals, bad_row in _checked_chunks(inst, choice):
        ids.add(chunk)
        seen += len(chunk)
        if bad_row is not None:
            violations.append(f"{row_name(inst, bad_row)}: treatment index out of range")
        totals.merge(part_totals)
    ids.check(inst)
    if seen != len(choice):
        violations.append(f"the plan has {len(choice):,} users, the table {seen:,}")
    if exceeds(totals.cost, inst.budget):
        violations.append(f"budget: spend {totals.cost:,.6g} > budget {inst.budget:,.6g}")
    for t in inst.treatments:
        n = totals.treatment_users(t.id)
        if t.limit is not None and n > t.limit:
            violations.append(f"treatments.{t.id}: {n:,} users > limit {t.limit:,}")
    for s, cap in inst.segment_budgets.items():
        spent = totals.segment_spend(s)
        if exceeds(spent, cap):
            violations.append(f"segment_budgets.{s}: spend {spent:,.6g} > {cap:,.6g}")
    summary = totals.summary()
    details = {k: summary[k] for k in ("users", "treated", "spend")}
    missing = sorted(set(inst.segment_budgets) - set(totals.by_segment))
    if missing:
        details["segment_budgets_without_users"] = missing
    return Evaluation(objective=totals.value, violations=violations, details=details)


def _checked_chunks(inst: IncentiveAssignment, choice: np.ndarray) -> Iterator[tuple[Chunk, Totals, int | None]]:
    """Each chunk of the table (ids only kept) with the totals of its users' choices and the
    first row whose choice is out of range; Parquet row groups are read on two threads."""

    def check(chunk: Chunk) -> tuple[Chunk, Totals, int | None]:
        part = choice[chunk.offset : chunk.offset + len(chunk)]
        totals, bad_row = Totals(), None
        if len(part) == len(chunk):
            bad = (part < NONE) | (part >= len(inst.treatments))
            if bad.any():
                bad_row = chunk.offset + int(np.flatnonzero(bad)[0])
                part = np.where(bad, NONE, part)
            totals.add(inst, part, chosen(chunk.value, part), chosen(chunk.cost, part), chunk.segment, chunk.segment_names)
        empty = np.zeros((0, len(chunk)))
        return Chunk(chunk.offset, chunk.ids, empty, empty, chunk.segment[:0], [], chunk.budgeted[:0]), totals, bad_row

    if inst.table_path.suffix.lower() != ".parquet":
        yield from (check(chunk) for chunk in iter_chunks(inst))
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        yield from pool.map(lambda part: check(read_part(inst, part)), parquet_parts(inst))


def read_plan(inst: IncentiveAssignment, path: Path) -> tuple[np.ndarray, list[str]]:
    """A written plan as treatment indices in the users table's order, matched by user_id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    users = pa.chunked_array([pa.array(c.ids) for c in iter_chunks(inst)])
    plan = _read_any(path, ["user_id", "treatment"], users.type)
    plan_ids = plan.column("user_id")
    if plan_ids.type != users.type:
        plan_ids, users = pc.cast(plan_ids, pa.string()), pc.cast(users, pa.string())
    position = pc.index_in(users, value_set=plan_ids.combine_chunks()).to_numpy(zero_copy_only=False)
    problems = []
    if plan.num_rows != len(users):
        problems.append(f"{path.name}: {plan.num_rows:,} rows for {len(users):,} users")
    names = plan.column("treatment").combine_chunks()
    names = pc.fill_null(pc.cast(names, pa.string()), "")
    encoded = pc.dictionary_encode(names)
    index = {t: j for j, t in enumerate(inst.treatment_ids)} | {"": NONE}
    labels = encoded.dictionary.to_pylist()
    unknown = [t for t in labels if t not in index]
    if unknown:
        problems.append(f"{path.name}: unknown treatment {unknown[0]!r}")
    lookup = np.array([index.get(t, NONE) for t in labels] + [NONE], dtype=np.int8)
    per_row = lookup[encoded.indices.to_numpy()]
    missing = np.isnan(position) if position.dtype.kind == "f" else np.zeros(len(position), bool)
    if missing.any():
        problems.append(f"{path.name}: no row for user {users[int(np.flatnonzero(missing)[0])].as_py()!r}")
    choice = np.where(missing, NONE, per_row[np.where(missing, 0, position).astype(np.int64)]).astype(np.int8)
    return choice, problems


def _read_any(path: Path, columns: list[str], id_type: Any) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path, columns=columns)
        types = {"treatment": pa.string(), "user_id": id_type}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=columns, column_types=types, null_values=[""],
                                                                        strings_can_be_null=True))
    except (OSError, pa.ArrowException) as exc:
        raise InstanceError(Problem("plan", f"cannot read {path}: {exc}")) from None


# ----------------------------------------------------------------------------- the plan table


def write_plan(inst: IncentiveAssignment, choice: np.ndarray, path: str | Path) -> int:
    """Write ``user_id, treatment`` (empty for none) chunk by chunk to .parquet or .csv, via a
    temporary file and a rename, so a crash never leaves half a plan. Returns the rows."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    parquet = path.suffix.lower() == ".parquet"
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InstanceError(Problem("--plan", f"the plan is written as .parquet or .csv (got {path.name})"))
    labels = pa.array(inst.treatment_ids + [""], pa.string())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    rows = 0
    writer: Any = None
    try:
        for chunk in iter_chunks(inst):
            part = choice[chunk.offset : chunk.offset + len(chunk)]
            code = np.where(part >= 0, part, len(inst.treatments)).astype(np.int32)
            treatment = pa.DictionaryArray.from_arrays(pa.array(code), labels)
            table = pa.table({"user_id": pa.array(chunk.ids), "treatment": treatment if parquet else treatment.cast(pa.string())})
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema) if parquet else pacsv.CSVWriter(tmp, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        if writer is not None:
            writer.close()
            writer = None
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
    return rows


# ----------------------------------------------------------------------------- generator

SEGMENTS = {  # name: (share, mean order value, base purchase probability, coupon sensitivity)
    "new_users": (0.20, 60.0, 0.04, 2.4),
    "lower_tier": (0.30, 45.0, 0.10, 2.0),
    "urban_white_collar": (0.20, 120.0, 0.18, 0.8),
    "students": (0.15, 40.0, 0.12, 1.8),
    "lapsed": (0.15, 80.0, 0.03, 1.5),
}
TREATMENTS = {  # name: (face value in yuan, kind)
    "coupon_3": (3.0, "coupon"),
    "coupon_5": (5.0, "coupon"),
    "coupon_10": (10.0, "coupon"),
    "cashback_8": (8.0, "cashback"),
    "free_gift": (12.0, "gift"),
}
MARGIN = 0.25


def generate_users(n_users: int, *, seed: int = 0, treatments: tuple[str, ...] = tuple(TREATMENTS), chunk: int = 1_000_000) -> Iterator[dict[str, np.ndarray]]:
    """Seeded realistic users, ``chunk`` at a time: per user an order value and a base purchase
    probability by segment, a heterogeneous coupon sensitivity (log-normal), a purchase
    probability under each treatment rising with its face value relative to the order value,
    ``value_T`` = incremental margin (uplift x order value x margin) and ``cost_T`` = face
    value x probability of redeeming it (users who would buy anyway redeem too)."""
    names = list(SEGMENTS)
    share = np.array([SEGMENTS[s][0] for s in names])
    for start in range(0, n_users, chunk):
        m = min(chunk, n_users - start)
        rng = np.random.default_rng([seed, start])
        seg = rng.choice(len(names), size=m, p=share / share.sum())
        aov = np.array([SEGMENTS[s][1] for s in names])[seg] * rng.lognormal(0.0, 0.5, m)
        base = np.clip(np.array([SEGMENTS[s][2] for s in names])[seg] * rng.lognormal(0.0, 0.4, m), 0.001, 0.9)
        sens = np.array([SEGMENTS[s][3] for s in names])[seg] * rng.lognormal(0.0, 0.7, m)
        cols: dict[str, np.ndarray] = {"user_id": np.arange(start, start + m, dtype=np.int64) * 7 + 100_000_003, "segment": np.array(names)[seg]}
        for t in treatments:
            face, kind = TREATMENTS.get(t, (5.0, "coupon"))
            pull = sens * face / aov * (1.4 if kind == "gift" else 1.0)
            p = 1.0 - (1.0 - base) * np.exp(-pull)
            uplift = (p - base) * rng.lognormal(0.0, 0.2, m)
            redeem = p * (0.6 if kind == "cashback" else 1.0)  # cash-back paid only on completed orders
            cols[f"value_{t}"] = np.round(uplift * aov * MARGIN, 6)
            cols[f"cost_{t}"] = np.round(face * redeem * (0.5 if kind == "gift" else 1.0), 6)  # a gift costs half its face value
        yield cols


def write_users(path: str | Path, n_users: int, *, seed: int = 0, treatments: tuple[str, ...] = tuple(TREATMENTS), row_group: int = 1_000_000) -> Path:
    """Write :func:`generate_users` to a .parquet (row groups of ``row_group``) or .csv file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    writer: Any = None
    for cols in generate_users(n_users, seed=seed, treatments=treatments, chunk=row_group):
        table = pa.table({k: pa.array(v).dictionary_encode() if k == "segment" and path.suffix == ".parquet" else pa.array(v) for k, v in cols.items()})
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema) if path.suffix == ".parquet" else pacsv.CSVWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return path


def generate(
    path: str | Path,
    n_users: int,
    *,
    seed: int = 0,
    budget_share: float = 0.3,
    treatments: tuple[str, ...] = tuple(TREATMENTS),
    limits: dict[str, int] | None = None,
    segment_budget_shares: dict[str, float] | None = None,
    table: str = "parquet",
) -> dict[str, Any]:
    """Write a users table next to ``path`` and return the instance document (also written to
    ``path``). The budget is ``budget_share`` of what giving every user their most valuable
    treatment would cost; segment budgets are shares of the budget."""
    import json

    path = Path(path)
    table_path = path.with_name(f"{path.stem}-users.{table}")
    write_users(table_path, n_users, seed=seed, treatments=treatments)
    full = 0.0
    for cols in generate_users(n_users, seed=seed, treatments=treatments):
        v = np.stack([cols[f"value_{t}"] for t in treatments], axis=1)
        c = np.stack([cols[f"cost_{t}"] for t in treatments], axis=1)
        full += float(c[np.arange(len(v)), v.argmax(axis=1)].sum())
    budget = round(budget_share * full, 2)
    doc: dict[str, Any] = {
        "problem": PROBLEM, "schema_version": 1, "name": path.stem, "budget": budget,
        "treatments": [{"id": t, **({"limit": limits[t]} if limits and t in limits else {})} for t in treatments],
        "users": {"table": table_path.name},
    }
    if segment_budget_shares:
        doc["segment_budgets"] = {s: round(share * budget, 2) for s, share in segment_budget_shares.items()}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc
