"""Each user's upper concave hull of (cost, value) over "none" (0, 0) and the treatments.

The LP relaxation of the assignment lets a user take a mix of treatments; its best mixes lie
on the upper concave hull of the user's points, and moving along the hull from (0, 0) is a
sequence of segments with decreasing efficiency (value gained per unit of cost). With one
budget, the LP optimum takes every segment whose efficiency is above one global threshold
and part of the segments at it (Sinha and Zoltners, 1979).

Arrays are laid out (segment, user) so that every step is a pass over contiguous rows.
``key`` is a segment's efficiency as an order-preserving integer (the bits of a positive
float64; 0 pads), strictly decreasing along a user's hull.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Hulls:
    key: np.ndarray  # (H, m) uint64, efficiency bits, strictly decreasing down a column; 0: no segment
    dcost: np.ndarray  # (H, m) cost added by the segment
    dvalue: np.ndarray  # (H, m) value added by the segment
    vertex: np.ndarray  # (H, m) int8: the treatment at the segment's end

    def __len__(self) -> int:
        return self.key.shape[1]

    @property
    def nbytes(self) -> int:
        return self.key.nbytes + self.dcost.nbytes + self.dvalue.nbytes + self.vertex.nbytes


BLOCK = 8192  # users per step: the temporaries stay in cache (3x faster than whole chunks)


def upper_hulls(value: np.ndarray, cost: np.ndarray) -> Hulls:
    """Hulls of users given ``value`` and ``cost`` laid out (treatment, user), costs >= 0."""
    T, m = value.shape
    out = Hulls(np.zeros((T, m), np.uint64), np.zeros((T, m)), np.zeros((T, m)), np.full((T, m), -1, np.int8))
    height = 0
    for start in range(0, m, BLOCK):
        stop = min(m, start + BLOCK)
        height = max(height, _wrap(value[:, start:stop], cost[:, start:stop], out, start))
    out = Hulls(out.key[:height], out.dcost[:height], out.dvalue[:height], out.vertex[:height])
    # Rounding can make a later slope equal an earlier one; keep keys strictly decreasing.
    for j in range(1, height):
        cap = np.where(out.key[j] > 0, out.key[j - 1] - np.uint64(1), np.uint64(0))
        np.minimum(out.key[j], cap, out=out.key[j])
    return out


def _wrap(V: np.ndarray, C: np.ndarray, out: Hulls, offset: int) -> int:
    """Gift-wrapping from (0, 0) for a block of users: the next vertex is the point of
    steepest slope from the current one among those right of and above it (the farthest on
    ties, so collinear middle points drop out); a free treatment has infinite efficiency.
    Writes the segments into ``out`` at columns ``offset + user``; returns the hull height."""
    T, m = V.shape
    users = np.arange(m)
    cur_c = np.zeros(m)
    cur_v = np.zeros(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        for step in range(T):
            gain = V - cur_v
            run = C - cur_c
            slope = gain / run  # run == 0 < gain: +inf
            slope[(gain <= 0) | (run < 0)] = -np.inf
            best = slope.max(axis=0)
            go = best > -np.inf
            far = np.where(slope == best, C, -1.0)
            pick = far.argmax(axis=0)
            best_c = far.max(axis=0)
            best_v = np.take_along_axis(V, pick[None, :], axis=0)[0]
            if not go.all():
                if not go.any():
                    return step
                users, best, best_c, best_v, pick, cur_c, cur_v = (a[go] for a in (users, best, best_c, best_v, pick, cur_c, cur_v))
                V, C = np.compress(go, V, axis=1), np.compress(go, C, axis=1)
            block = slice(offset, offset + m)
            if len(users) == m:
                out.key[step, block] = best.view(np.uint64)
                out.dcost[step, block] = best_c - cur_c
                out.dvalue[step, block] = best_v - cur_v
                out.vertex[step, block] = pick
            else:  # scatter in a small buffer, then one contiguous copy
                for row, data in ((out.key, best.view(np.uint64)), (out.dcost, best_c - cur_c), (out.dvalue, best_v - cur_v), (out.vertex, pick)):
                    buffer = np.zeros(m, row.dtype) if row is not out.vertex else np.full(m, -1, np.int8)
                    buffer[users] = data
                    row[step, block] = buffer
            cur_c, cur_v = best_c, best_v
    return T
