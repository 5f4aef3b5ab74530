"""Where the users live while a method runs, and the two things methods do with them.

The users table is cut into parts (Parquet row groups, or CSV blocks). Each part is loaded
once into a :class:`Part` kept where it was loaded: in this process (work on a thread pool)
or on a Dask worker (``SolverOptions.scheduler``). Methods only call :meth:`Workers.map`,
which runs ``fn(part, *args)`` on every part and returns the small results (sums,
histograms, a few candidates) in table order, so the same code runs on one machine or on a
cluster and only per-part sums cross the network.

:func:`select` finds a threshold on a weighted set of keyed items spread over the parts (a
radix selection: four rounds of 65,536-bin histograms over 16 bits of the 64-bit keys).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.errors import UsageError
from models.incentive_assignment import Chunk, IncentiveAssignment, UniqueIds, iter_chunks, parquet_parts, read_part

BITS = 16
BINS = 1 << BITS
ROWS_PER_PART = 1_000_000


@dataclass
class Part:
    """A block of consecutive users as a method keeps it: ``data`` is what the method built
    from the chunk (hulls, or the value and cost arrays), plus what every method needs."""

    index: int  # position among the parts, in table order
    offset: int
    size: int
    data: Any
    segment: np.ndarray  # codes into segment_names, -1: none
    segment_names: list[str]
    budgeted: np.ndarray  # index into inst.segment_budgets, -1: no segment budget
    ids: Any  # the user ids (numpy int64 or a pyarrow string array)
    memo: dict[Any, Any] = field(default_factory=dict)  # a method's recomputable intermediate results


Loader = Callable[[IncentiveAssignment, Chunk], Any]


def _part(index: int, inst: IncentiveAssignment, chunk: Chunk, build: Loader) -> Part:
    return Part(index, chunk.offset, len(chunk), build(inst, chunk), chunk.segment, chunk.segment_names, chunk.budgeted, chunk.ids)


def _load_spec(spec: tuple[int, Any], inst: IncentiveAssignment, build: Loader) -> Part:
    return _part(spec[0], inst, read_part(inst, spec[1]), build)


def _call(part: Part, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(part, *args)


class Workers:
    """Parts in this process, worked on by ``threads`` threads (numpy releases the GIL)."""

    def __init__(self, inst: IncentiveAssignment, build: Loader, threads: int = 1, rows_per_part: int = ROWS_PER_PART):
        self.inst = inst
        self.pool = ThreadPoolExecutor(max(1, threads)) if threads > 1 else None
        if inst.table_path.suffix.lower() == ".parquet":
            specs = list(enumerate(parquet_parts(inst, rows_per_part)))
            self.parts = self._run(lambda spec: _load_spec(spec, inst, build), specs)
        else:  # a CSV is read in order; building the parts overlaps with reading
            if self.pool is None:
                self.parts = [_part(i, inst, chunk, build) for i, chunk in enumerate(iter_chunks(inst, rows_per_part))]
            else:
                futures = [self.pool.submit(_part, i, inst, chunk, build) for i, chunk in enumerate(iter_chunks(inst, rows_per_part))]
                self.parts = [f.result() for f in futures]
        check_unique_ids(inst, self)

    def _run(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if self.pool is None:
            return [fn(item) for item in items]
        return list(self.pool.map(fn, items))

    def map(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        return self._run(lambda part: fn(part, *args), self.parts)

    @property
    def users(self) -> int:
        return sum(p.size for p in self.parts)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


class Cluster(Workers):
    """Parts on the workers of a Dask cluster, loaded there from Parquet row groups."""

    def __init__(self, inst: IncentiveAssignment, build: Loader, address: str, rows_per_part: int = ROWS_PER_PART):
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--scheduler needs Dask: pip install 'ecomopt[dask]'") from None
        if inst.table_path.suffix.lower() != ".parquet":
            raise UsageError("--scheduler: a cluster reads the users table by Parquet row groups; convert the CSV to Parquet first")
        self.inst = inst
        self.pool = None
        try:
            self.client = Client(address, set_as_default=False, timeout="10s")
        except OSError as exc:
            raise UsageError(f"--scheduler: cannot reach {address} ({exc})") from None
        specs = list(enumerate(parquet_parts(inst, rows_per_part)))
        self.parts = self.client.map(_load_spec, specs, inst=inst, build=build, pure=False)
        self.client.gather(self.client.map(_size, self.parts, pure=False))  # raise load errors (bad cells) here
        check_unique_ids(inst, self)

    def map(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        return self.client.gather(self.client.map(_call, self.parts, fn=fn, args=args, pure=False))

    @property
    def users(self) -> int:
        return sum(self.map(_size))

    def close(self) -> None:
        self.client.close()


def _size(part: Part) -> int:
    return part.size


def workers(inst: IncentiveAssignment, build: Loader, threads: int, scheduler: str | None) -> Workers:
    """The parts loaded by ``build``: on the Dask cluster at ``scheduler`` if given, else here
    with ``threads`` threads (0: one per core)."""
    if scheduler:
        return Cluster(inst, build, scheduler)
    return Workers(inst, build, threads or os.cpu_count() or 1)


def _id_ends(part: Part) -> tuple[int, Any]:
    ids = part.ids
    increasing = isinstance(ids, np.ndarray) and (len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])))
    return part.offset, (ids[[0, -1]] if increasing and len(ids) else None)


def _ids(part: Part) -> tuple[int, Any]:
    return part.offset, part.ids


def check_unique_ids(inst: IncentiveAssignment, workers: Workers) -> None:
    """Raise a located error for a repeated user_id; increasing ids need only each part's ends."""
    ends = workers.map(_id_ends)
    if all(e is not None for _, e in ends):
        firsts_lasts = np.concatenate([e for _, e in ends]) if ends else np.zeros(0)
        if np.all(firsts_lasts[1:] > firsts_lasts[:-1]):
            return
    checker = UniqueIds()
    for offset, ids in workers.map(_ids):
        checker.add(Chunk(offset, ids, np.zeros((0, len(ids))), np.zeros((0, len(ids))), np.zeros(0, np.int32), [], np.zeros(0, np.int16)))
    checker.check(inst)


# ----------------------------------------------------------------------------- radix selection


@dataclass(frozen=True)
class Selection:
    """The threshold key k* of :func:`select`: items with key > k* weigh ``above_weight``
    (<= the capacity); adding those at k* (``tie_weight``) goes over it."""

    key: int
    above_weight: float
    above_value: float
    tie_weight: float
    tie_value: float

    @property
    def efficiency(self) -> float:
        return float(np.uint64(self.key).view(np.float64))


def radix_histogram(keys: np.ndarray, weights: np.ndarray, values: np.ndarray, prefix: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Weight and value per 16-bit digit ``(key >> shift) & 0xFFFF`` of the items whose
    higher digits equal ``prefix``."""
    keys, weights, values = keys.ravel(), weights.ravel(), values.ravel()
    if shift + BITS < 64:
        inside = (keys >> np.uint64(shift + BITS)) == np.uint64(prefix)
        keys, weights, values = keys[inside], weights[inside], values[inside]
    digit = ((keys >> np.uint64(shift)) & np.uint64(BINS - 1)).astype(np.int64)
    return np.bincount(digit, weights, BINS), np.bincount(digit, values, BINS)


def select(histogram: Callable[[int, int], tuple[np.ndarray, np.ndarray]], capacity: float) -> Selection | None:
    """The largest key k* whose items with key >= k* weigh more than ``capacity``, or None
    when all items fit. ``histogram(prefix, shift)`` sums :func:`radix_histogram` over the parts."""
    prefix, above_w, above_v = 0, 0.0, 0.0
    tie_w = tie_v = 0.0
    for shift in range(64 - BITS, -1, -BITS):
        hw, hv = histogram(prefix, shift)
        at_least = above_w + np.cumsum(hw[::-1])[::-1]  # weight of the items in digit >= b
        over = np.flatnonzero(at_least > capacity)
        if not over.size:
            if shift == 64 - BITS:
                return None
            over = np.array([np.flatnonzero(hw > 0).max(initial=0)])  # rounding: stay in the bracket
        b = int(over[-1])
        above_w += float(hw[b + 1 :].sum())
        above_v += float(hv[b + 1 :].sum())
        tie_w, tie_v = float(hw[b]), float(hv[b])
        prefix = (prefix << BITS) | b
    return Selection(prefix, above_w, above_v, tie_w, tie_v)


def summed(results: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise sum of the parts' pairs of histograms."""
    if not results:
        return np.zeros(BINS), np.zeros(BINS)
    return np.sum([r[0] for r in results], axis=0), np.sum([r[1] for r in results], axis=0)


def order_key(x: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of finite float64s (negative ones too)."""
    bits = np.ascontiguousarray(x, np.float64).view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))
