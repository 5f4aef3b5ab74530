"""Max-plus knapsack over spend units, with caps that nest (a laminar family) handled as
groups.

Data: cells i with tables v_i[j] (objective when cell i spends j units above its minimum);
groups G (the caps, and the budget as the root) with limits L_G in units, any two groups
either disjoint or nested.

    D_G(k) = max sum_{i in G} v_i[j_i]  s.t.  sum_{i in G} j_i <= min(k, L_G)

is computed bottom-up: a group's table is the max-plus convolution of its children's tables,
D(k) = max_{j <= k} (D_prev(k - j) + v[j]), which keeps "at most k units" semantics. One
convolution costs O(K J) and is done in blocks of j with numpy; the argmax of every
convolution is kept so a plan is read back for any k: one DP serves every budget level of
a frontier octave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

BLOCK = 64  # rows of j per numpy block


@dataclass
class Table:
    """``values[k]``: the best objective of the node with at most k units. A leaf (a cell)
    holds ``values[j]`` for spending exactly ``units[j]`` units (all units 0.. when None)."""

    values: np.ndarray
    cell: int | None = None
    steps: list[tuple[Table, np.ndarray]] = field(default_factory=list)
    units: np.ndarray | None = None

    def plan(self, k: int, out: dict[int, int]) -> None:
        """Write the units of every cell under this node for budget k into ``out``."""
        if self.cell is not None:
            out[self.cell] = k
            return
        k = min(k, len(self.values) - 1)
        for child, arg in reversed(self.steps):
            j = int(arg[k])
            child.plan(j, out)
            k -= j


def convolve(cur: np.ndarray, item: np.ndarray, track: bool = True, units: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """new[k] = max_j cur[k - u_j] + item[j] over items with u_j <= k, with the argmax u_j
    (not tracked, and half the work, when only the values are needed). ``units`` u_j are
    0, 1, 2, ... when None."""
    K = len(cur) - 1
    if units is None:
        units = np.arange(len(item))
    keep = units <= K
    units, item = units[keep], item[keep]
    if not len(units):
        return np.full(K + 1, -np.inf), np.zeros(K + 1, np.int32)
    J = int(units.max())
    padded = np.concatenate([np.full(J, -np.inf), cur])
    windows = np.lib.stride_tricks.sliding_window_view(padded, K + 1)  # windows[J - u] = cur shifted by u
    new = np.full(K + 1, -np.inf)
    arg = np.zeros(K + 1, np.int32)
    block = max(1, min(BLOCK, (1 << 21) // (K + 1)))
    for start in range(0, len(units), block):
        js = units[start : start + block]
        cand = windows[J - js] + item[start : start + block, None]
        if not track:
            np.maximum(new, cand.max(axis=0), out=new)
            continue
        best = cand.argmax(axis=0)
        val = cand[best, np.arange(K + 1)]
        better = val > new
        new[better] = val[better]
        arg[better] = js[best[better]]
    return new, arg


def group(children: list[Table], limit: int, track: bool = True) -> Table:
    """The table of a group whose children together use at most ``limit`` units."""
    cur = np.zeros(limit + 1)
    steps = []
    for child in children:
        cur, arg = convolve(cur, child.values if child.units is not None else child.values[: limit + 1], track, child.units)
        steps.append((child, arg))
    return Table(values=cur, steps=steps)


def is_laminar(sets: list[frozenset[int]]) -> bool:
    return all(not (a & b) or a <= b or b <= a for i, a in enumerate(sets) for b in sets[i + 1 :])


Leaf = np.ndarray | tuple[np.ndarray, np.ndarray]  # values by unit 0.., or (units, values)


def solve_tree(leaves: list[Leaf], caps: list[tuple[frozenset[int], int]], budget_units: int, track: bool = True,
               adjust: list[Callable[[np.ndarray], np.ndarray] | None] | None = None) -> Table:
    """The root table for cells ``leaves`` (exact-units tables, dense or sparse), laminar
    ``caps`` (cells, limit in units) and the budget. Caps are nested by size: each goes under the smallest
    cap that contains it. ``adjust[c]``, when given, rewrites cap c's table before it joins
    its parent (the bound adds the value of the cap's money left above the floors)."""
    order = sorted(range(len(caps)), key=lambda c: len(caps[c][0]))
    owner: dict[int, int] = {}  # cell or cap -> smallest cap containing it (by position in order)
    tables: dict[int, Table] = {}
    for pos, c in enumerate(order):
        members, limit = caps[c]
        kids = [tables.pop(q) for q in list(tables) if caps[order[q]][0] <= members]
        kids += [_leaf(leaves[i], i) for i in sorted(members) if i not in owner]
        for i in members:
            owner.setdefault(i, pos)
        tables[pos] = group(kids, max(0, limit), track)
        if adjust is not None and adjust[c] is not None:
            tables[pos].values = adjust[c](tables[pos].values)  # type: ignore[misc]
    top = list(tables.values()) + [_leaf(leaves[i], i) for i in range(len(leaves)) if i not in owner]
    return group(top, budget_units, track)


def _leaf(leaf: Leaf, cell: int) -> Table:
    if isinstance(leaf, tuple):
        return Table(values=leaf[1], cell=cell, units=leaf[0])
    return Table(values=leaf, cell=cell)
