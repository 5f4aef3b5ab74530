"""The open boxes of a best-first branch and bound (maximisation), shared by the fee-box
searches of ``boxes.py`` and ``mnl.py``.

Boxes wait by their upper bound; a box whose bound cannot beat the incumbent by the relative
gap is set aside, and the largest such bound is kept (``dropped``): with the best open bound
it makes the search's bound.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any


class BestFirst:
    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.best = -math.inf  # the incumbent's value, set by the search
        self.dropped = -math.inf
        self._heap: list[tuple[Any, ...]] = []
        self._counter = itertools.count()

    def threshold(self) -> float:
        """A box must bound above this to be worth opening."""
        return self.best + self.gap * max(1.0, abs(self.best)) if self.best > -math.inf else -math.inf

    def push(self, bound: float, *box: Any) -> None:
        if bound > self.threshold():
            heapq.heappush(self._heap, (-bound, next(self._counter), *box))
        else:
            self.drop(bound)

    def drop(self, bound: float) -> None:
        self.dropped = max(self.dropped, bound)

    def done(self) -> bool:
        """No open box can beat the incumbent by the gap."""
        return not self._heap or -self._heap[0][0] <= self.threshold()

    def pop(self, size: int) -> list[tuple[Any, ...]]:
        """Up to ``size`` of the best boxes worth opening, each as its pushed fields."""
        batch: list[tuple[Any, ...]] = []
        while len(batch) < size and not self.done():
            batch.append(heapq.heappop(self._heap)[2:])
        return batch

    @property
    def open_bound(self) -> float:
        return -self._heap[0][0] if self._heap else -math.inf
