"""One budget: the LP relaxation solved exactly by one threshold on hull efficiencies, and an
integral plan from it.

With hull segments j of user u (efficiency e_j = dvalue_j / dcost_j, decreasing along the
hull), the LP relaxation

    max sum_u sum_j dvalue_uj y_uj   s.t.  sum_uj dcost_uj y_uj <= B,  1 >= y_u1 >= y_u2 >= ... >= 0

is a fractional knapsack: take segments by decreasing efficiency until the budget is spent.
Its optimum is  LP = V(e > e*) + e* (B - C(e > e*)),  e* the efficiency at which the
cumulative cost first exceeds B, found by radix selection over the parts (no sort, no
bisection). LP is the bound. The plan takes every segment with e > e*, then segments at e*
in table order while they fit, then the most efficient next segments that still fit; it
leaves less than one segment's value on the table.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.incentive_assignment import NONE, Chunk, IncentiveAssignment
from optimizers import progress
from optimizers.incentive_assignment.hull import Hulls, upper_hulls
from optimizers.incentive_assignment.parts import BITS, Part, Selection, Workers, radix_histogram, select, summed
from optimizers.incentive_assignment.plan import Plan, summarize
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status

log = logging.getLogger(__name__)
FILL_CANDIDATES = 64  # per part, for the last bit of budget


def build(inst: IncentiveAssignment, chunk: Chunk) -> Hulls:
    return upper_hulls(chunk.value, chunk.cost)


def _totals(part: Part) -> tuple[float, float]:
    h: Hulls = part.data
    return float(h.dcost.sum()), float(h.dvalue.sum())


def _histogram(part: Part, prefix: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """The radix histogram of the part's segments; the segments inside the bracket are kept
    for the next, narrower round."""
    h: Hulls = part.data
    items = (h.key.ravel(), h.dcost.ravel(), h.dvalue.ravel())
    memo = part.memo.get("bracket")
    if memo is not None and memo[0] == (prefix >> BITS, shift + BITS):
        items = memo[1]
    if shift + BITS < 64:
        inside = (items[0] >> np.uint64(shift + BITS)) == np.uint64(prefix)
        items = tuple(a[inside] for a in items)
        part.memo["bracket"] = ((prefix, shift), items)
    return radix_histogram(*items, prefix, shift)


@dataclass
class Taken:
    """A part's plan at a threshold: segments per user, what they add up to, and each
    user's next segment (key 0 when none is left)."""

    count: np.ndarray
    spend: np.ndarray
    value: np.ndarray
    next_key: np.ndarray
    next_cost: np.ndarray
    next_value: np.ndarray

    @classmethod
    def at(cls, h: Hulls, count: np.ndarray) -> Taken:
        H, m = h.key.shape
        spend, value = np.zeros(m), np.zeros(m)
        for j in range(H):
            on = count > j
            spend += np.where(on, h.dcost[j], 0.0)
            value += np.where(on, h.dvalue[j], 0.0)
        t = cls(count, spend, value, np.zeros(m, np.uint64), np.zeros(m), np.zeros(m))
        t._next(np.arange(m), h)
        return t

    def _next(self, users: np.ndarray, h: Hulls) -> None:
        H = h.key.shape[0]
        row = self.count[users]
        left = row < H
        users, row = users[left], row[left]
        self.next_key[users] = h.key[row, users]
        self.next_cost[users] = h.dcost[row, users]
        self.next_value[users] = h.dvalue[row, users]
        gone = np.flatnonzero(self.count >= H) if H else np.arange(len(self.count))
        self.next_key[gone] = 0

    def advance(self, users: np.ndarray, h: Hulls) -> None:
        """Take the next segment of ``users``."""
        self.count[users] += 1
        self.spend[users] += self.next_cost[users]
        self.value[users] += self.next_value[users]
        self.next_key[users] = 0
        self.next_cost[users] = 0.0
        self.next_value[users] = 0.0
        self._next(users, h)


def _above(part: Part, key: int) -> Taken:
    """The segments strictly above the threshold key (keys decrease down a column); remembered."""
    memo = part.memo.get("above")
    if memo is None or memo[0] != key:
        part.memo.pop("bracket", None)
        memo = part.memo["above"] = (key, Taken.at(part.data, (part.data.key > np.uint64(key)).sum(axis=0, dtype=np.int64)))
    return memo[1]


def _tie_cost(part: Part, key: int) -> float:
    t = _above(part, key)
    return float(t.next_cost[t.next_key == np.uint64(key)].sum())


def _with_ties(part: Part, key: int, tie_budget: float) -> Taken:
    """Above the threshold, plus the ties in table order within ``tie_budget``; remembered
    (in place of the plan above the threshold)."""
    memo = part.memo.get("ties")
    if memo is not None and memo[0] == (key, tie_budget):
        return memo[1]
    t = _above(part, key)
    del part.memo["above"]
    tied = np.flatnonzero(t.next_key == np.uint64(key))
    if len(tied) and tie_budget > 0:
        t.advance(tied[np.cumsum(t.next_cost[tied]) <= tie_budget * (1 + 1e-12)], part.data)
    part.memo["ties"] = ((key, tie_budget), t)
    return t


def _candidates(part: Part, key: int, tie_budgets: list[float], room: float) -> tuple[float, list[tuple[int, float, int]]]:
    """This part's spend after the ties, and its most efficient next segments costing <= room."""
    t = _with_ties(part, key, tie_budgets[part.index])
    ok = np.flatnonzero((t.next_key > 0) & (t.next_cost <= room) & (t.next_value > 0))
    if len(ok) > FILL_CANDIDATES:
        ok = ok[np.argpartition(t.next_key[ok], len(ok) - FILL_CANDIDATES)[-FILL_CANDIDATES:]]
    return float(t.spend.sum()), [(int(t.next_key[u]), float(t.next_cost[u]), int(u)) for u in ok]


def _finish(part: Part, inst: IncentiveAssignment, key: int, tie_budgets: list[float], extra: list[list[int]]) -> tuple[np.ndarray, Any]:
    h: Hulls = part.data
    t = _with_ties(part, key, tie_budgets[part.index])
    if extra[part.index]:
        t.advance(np.asarray(extra[part.index], np.int64), h)
    choice = np.full(part.size, NONE, np.int8)
    has = np.flatnonzero(t.count > 0)
    if len(has):
        choice[has] = h.vertex[t.count[has] - 1, has]
    part.memo.clear()
    return summarize(inst, part, choice, t.value, t.spend)


def solve(inst: IncentiveAssignment, workers: Workers, options: SolverOptions, started: float) -> MethodOutput:
    """The LP bound and the plan for one budget (limits and segment budgets are not seen here)."""
    n = len(workers.parts)
    progress.update("threshold search on the value per unit spent")
    selection = select(lambda prefix, shift: summed(workers.map(_histogram, prefix, shift)), inst.budget)
    log.info("threshold found after %.2f s", time.perf_counter() - started)
    progress.update("ties and fill")
    if selection is None:  # the budget does not bind: every user gets their best treatment
        key, tie_budgets = 0, [0.0] * n
        extra: list[list[int]] = [[] for _ in range(n)]
        bound = float(sum(v for _, v in workers.map(_totals)))
    else:
        key = selection.key
        bound = selection.above_value + selection.efficiency * (inst.budget - selection.above_weight)
        tie_budgets = _share_ties(workers, selection, inst.budget)
        extra = _fill(workers, key, tie_budgets, inst.budget, inst.budget - selection.above_weight)
    log.info("ties and fill done after %.2f s", time.perf_counter() - started)
    plan = Plan.gather(workers.map(_finish, inst, key, tie_budgets, extra))
    bound = max(bound, plan.value)
    status = Status.OPTIMAL if bound - plan.value <= options.gap * max(1.0, abs(plan.value)) else Status.FEASIBLE
    meta = {"lp_bound": bound, "threshold_efficiency": None if selection is None else selection.efficiency}
    return MethodOutput(status, plan.value, bound, plan.solution(inst), meta=meta, attachments={"choice": plan.choice})


def _share_ties(workers: Workers, selection: Selection, budget: float) -> list[float]:
    """Tie budget per part: what the segments above the threshold leave, to the ties in table order."""
    room = budget - selection.above_weight
    budgets = []
    for cost in workers.map(_tie_cost, selection.key):
        budgets.append(min(max(room, 0.0), cost))
        room -= cost
    return budgets


def _fill(workers: Workers, key: int, tie_budgets: list[float], budget: float, room: float) -> list[list[int]]:
    """Spend what the ties leave on the most efficient next segments that fit (greedy)."""
    found = workers.map(_candidates, key, tie_budgets, room)
    left = budget - sum(spent for spent, _ in found)
    extra: list[list[int]] = [[] for _ in found]
    for _, cost, p, u in sorted(((-k, c, p, u) for p, (_, cands) in enumerate(found) for k, c, u in cands)):
        if cost <= left:
            extra[p].append(u)
            left -= cost
    return extra
