"""A plan gathered from the parts: the choice per user in table order and its totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.incentive_assignment import IncentiveAssignment, Totals
from optimizers.incentive_assignment.parts import Part


def summarize(inst: IncentiveAssignment, part: Part, choice: np.ndarray, value: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, Totals]:
    """What a part sends back: its users' choices and their totals."""
    return choice, Totals().add(inst, choice, value, cost, part.segment, part.segment_names)


@dataclass
class Plan:
    choice: np.ndarray  # int8 per user in table order: treatment index, -1 for none
    totals: Totals

    @classmethod
    def gather(cls, results: list[tuple[np.ndarray, Totals]]) -> Plan:
        totals = Totals()
        for _, t in results:
            totals.merge(t)
        choice = np.concatenate([c for c, _ in results]) if results else np.zeros(0, np.int8)
        return cls(choice, totals)

    @property
    def value(self) -> float:
        return self.totals.value

    def solution(self, inst: IncentiveAssignment) -> dict[str, Any]:
        """The JSON summary: spend, value, users per treatment and per segment."""
        out = self.totals.summary()
        if inst.segment_budgets:
            out["segment_budgets"] = {s: {"budget": b, "spend": self.totals.segment_spend(s)} for s, b in inst.segment_budgets.items()}
        out["budget"] = inst.budget
        return out
