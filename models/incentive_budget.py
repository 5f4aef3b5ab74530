"""The ``incentive_budget`` family: how much of the growth budget each referral mechanic x
user segment cell gets.

Each cell's directly acquired users follow a response curve of its spend x (``hill``,
``exponential``, ``logistic`` or ``piecewise_linear`` from experiments); referrals multiply
them by 1 / (1 - viral_k). Objectives: ``users`` (max total users), ``value`` (max
sum value_per_user * users - spend), ``min_spend`` (cheapest plan reaching ``target_users``).
Constraints: min_spend <= x <= max_spend per cell, total <= budget, each cap's cells
together <= its max_spend, x a multiple of ``step`` when given.

Schema, the curve functions the solvers and ``evaluate()`` share, ``evaluate()`` and a
seeded generator of S-curve instances.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, field_validator, model_validator

from models.base import DISCRIMINATOR_TAGS, Envelope, Evaluation, Id, Strict, duplicate_ids, exceeds, raw_ids
from models.errors import Problem

PROBLEM = "incentive_budget"
KINDS = ("hill", "exponential", "logistic", "piecewise_linear")
DISCRIMINATOR_TAGS.update(KINDS)


class Hill(Strict):
    """max_users * x^shape / (half_spend^shape + x^shape); shape > 1 is an S-curve."""

    kind: Literal["hill"]
    max_users: NonNegativeFloat
    half_spend: PositiveFloat
    shape: float = Field(gt=0.0, le=50.0)


class Exponential(Strict):
    """max_users * (1 - exp(-x / scale))."""

    kind: Literal["exponential"]
    max_users: NonNegativeFloat
    scale: PositiveFloat


class Logistic(Strict):
    """A logistic curve through (0, 0): max_users * (s(x) - s(0)) / (1 - s(0)) with
    s(x) = 1 / (1 + exp(-(x - midpoint) / width))."""

    kind: Literal["logistic"]
    max_users: NonNegativeFloat
    midpoint: NonNegativeFloat
    width: PositiveFloat


class PiecewiseLinear(Strict):
    """Measured points [[spend, users], ...], linear between them, flat after the last;
    (0, 0) is implied."""

    kind: Literal["piecewise_linear"]
    points: list[tuple[NonNegativeFloat, NonNegativeFloat]] = Field(min_length=1)

    @field_validator("points")
    @classmethod
    def _increasing(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for a, b in zip(points, points[1:]):
            if b[0] <= a[0]:
                raise ValueError(f"spends must increase from point to point (got {a[0]:g} then {b[0]:g})")
        if points[0][0] == 0 and points[0][1] != 0:
            raise ValueError(f"the curve starts at (0, 0); a point at spend 0 must have 0 users (got {points[0][1]:g})")
        return points


Response = Annotated[Union[Hill, Exponential, Logistic, PiecewiseLinear], Field(discriminator="kind")]


class Cell(Strict):
    id: Id
    mechanic: str | None = None
    segment: str | None = None
    response: Response
    viral_k: float = Field(0.0, description="referred users per acquired user, in [0, 1)")
    value_per_user: NonNegativeFloat = 0.0
    min_spend: NonNegativeFloat = 0.0
    max_spend: NonNegativeFloat | None = None

    @field_validator("viral_k")
    @classmethod
    def _viral_below_one(cls, k: float) -> float:
        if not 0 <= k < 1:
            raise ValueError(f"must be in [0, 1): total users = direct / (1 - viral_k), which is unbounded at 1 or more (got {k:g})")
        return k

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Cell:
        if self.max_spend is not None and self.min_spend > self.max_spend:
            raise ValueError(f"min_spend {self.min_spend:,.6g} > max_spend {self.max_spend:,.6g}")
        return self

    @property
    def multiplier(self) -> float:
        """Total users per directly acquired user."""
        return 1.0 / (1.0 - self.viral_k)


class Cap(Strict):
    id: Id
    cells: list[Id] = Field(min_length=1)
    max_spend: NonNegativeFloat


class IncentiveBudget(Envelope):
    problem: Literal["incentive_budget"]
    budget: NonNegativeFloat
    objective: Literal["users", "value", "min_spend"] = "users"
    target_users: PositiveFloat | None = Field(None, description="objective min_spend: users to reach")
    cells: list[Cell] = Field(min_length=1)
    caps: list[Cap] = Field(default_factory=list)
    step: PositiveFloat | None = Field(None, description="spend must be a multiple of it")


def sense(inst: IncentiveBudget) -> str:
    """Direction of the objective: users and value are maximised, spend minimised."""
    return "min" if inst.objective == "min_spend" else "max"


# ----------------------------------------------------------------------------- curves


# The smooth curves and their slopes, elementwise over parameter and spend arrays (x >= 0).
PARAMS = {"hill": ("max_users", "half_spend", "shape"), "exponential": ("max_users", "scale"), "logistic": ("max_users", "midpoint", "width")}


def _hill(x, m, h, s):
    with np.errstate(divide="ignore", over="ignore"):
        ratio = (h / np.where(x > 0, x, 1.0)) ** s
    return np.where(x > 0, m / (1.0 + ratio), 0.0)


def _hill_slope(x, m, h, s):
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        r = (x / h) ** s
        inner = np.nan_to_num(m * s * r / (x * (1.0 + r) ** 2), nan=0.0, posinf=np.inf)
    at_zero = np.where(s > 1, 0.0, np.where(s == 1, m / h, np.inf))  # S-curves start flat; shape < 1 vertical
    return np.where(x > 0, inner, at_zero)


def _exponential(x, m, scale):
    return m * -np.expm1(-x / scale)


def _exponential_slope(x, m, scale):
    return m / scale * np.exp(-x / scale)


def _logistic(x, m, mid, width):
    s0 = _sigmoid(-mid / width)
    return m * (_sigmoid((x - mid) / width) - s0) / (1.0 - s0)


def _logistic_slope(x, m, mid, width):
    s0, sx = _sigmoid(-mid / width), _sigmoid((x - mid) / width)
    return m * sx * (1.0 - sx) / (width * (1.0 - s0))


Curve = Callable[..., np.ndarray]
SMOOTH: dict[str, tuple[Curve, Curve]] = {
    "hill": (_hill, _hill_slope), "exponential": (_exponential, _exponential_slope), "logistic": (_logistic, _logistic_slope),
}


def direct_users(response: Any, spend: np.ndarray | float) -> np.ndarray:
    """Directly acquired users at ``spend`` (vectorised)."""
    x = np.maximum(np.asarray(spend, dtype=float), 0.0)
    if response.kind == "piecewise_linear":
        xs, ys = pwl_points(response)
        return np.interp(x, xs, ys)
    return SMOOTH[response.kind][0](x, *(getattr(response, k) for k in PARAMS[response.kind]))


def slope(response: Any, spend: np.ndarray | float) -> np.ndarray:
    """d(direct users)/d(spend), the right derivative for piecewise-linear curves."""
    x = np.maximum(np.asarray(spend, dtype=float), 0.0)
    if response.kind == "piecewise_linear":
        xs, ys = pwl_points(response)
        slopes = np.append(np.diff(ys) / np.diff(xs), 0.0)
        return slopes[np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(slopes) - 1)]
    return SMOOTH[response.kind][1](x, *(getattr(response, k) for k in PARAMS[response.kind]))


class Curves:
    """All cells' curves evaluated at once: one numpy call per kind instead of one per cell."""

    def __init__(self, cells: list[Cell]):
        self.n = len(cells)
        self.kinds: list[tuple[str, np.ndarray, list[np.ndarray]]] = []  # kind, cells, parameter arrays
        for kind, names in PARAMS.items():
            idx = np.array([i for i, c in enumerate(cells) if c.response.kind == kind], dtype=np.int64)
            if len(idx):
                self.kinds.append((kind, idx, [np.array([getattr(cells[i].response, k) for i in idx], dtype=float) for k in names]))
        self.pwl = [(i, c.response) for i, c in enumerate(cells) if c.response.kind == "piecewise_linear"]

    def users(self, spend: np.ndarray) -> np.ndarray:
        """Direct users of every cell at its spend."""
        return self._each(spend, 0, direct_users)

    def slope(self, spend: np.ndarray) -> np.ndarray:
        """d(direct users)/d(spend) of every cell at its spend (right derivative)."""
        return self._each(spend, 1, slope)

    def _each(self, spend: np.ndarray, which: int, one: Callable[[Any, np.ndarray], np.ndarray]) -> np.ndarray:
        x = np.maximum(np.asarray(spend, dtype=float), 0.0)
        out = np.zeros(self.n)
        for kind, idx, params in self.kinds:
            out[idx] = SMOOTH[kind][which](x[idx], *params)
        for i, resp in self.pwl:
            out[i] = float(one(resp, x[i]))
        return out


def inflection(response: Any) -> float:
    """Spend where a smooth curve turns from convex to concave (0: concave throughout)."""
    if response.kind == "hill" and response.shape > 1:
        s = response.shape
        return float(response.half_spend * ((s - 1) / (s + 1)) ** (1 / s))
    if response.kind == "logistic":
        return float(response.midpoint)
    return 0.0


def saturation(response: Any) -> float:
    """Supremum of direct users over all spends."""
    if response.kind == "piecewise_linear":
        return float(max(y for _, y in response.points))
    return float(response.max_users)


def pwl_points(response: PiecewiseLinear) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints with (0, 0) prepended when the data start later."""
    pts = [(0.0, 0.0)] + [p for p in response.points if p[0] > 0]
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def _sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def upper_spend(inst: IncentiveBudget, cell: Cell) -> float:
    """The most a cell can spend: its max_spend, the budget, the caps it is in."""
    limit = inst.budget if cell.max_spend is None else min(cell.max_spend, inst.budget)
    for cap in inst.caps:
        if cell.id in cap.cells:
            limit = min(limit, cap.max_spend)
    return limit


def lowest_spend(inst: IncentiveBudget, cell: Cell) -> float:
    """min_spend, rounded up to the step."""
    if inst.step is None:
        return cell.min_spend
    return math.ceil(cell.min_spend / inst.step - 1e-9) * inst.step


# ----------------------------------------------------------------------------- checks


def cross_check(raw: dict[str, Any]) -> list[Problem]:
    """Reference and consistency checks on the raw document (run even when fields fail)."""
    problems = duplicate_ids(raw.get("cells"), "cells") + duplicate_ids(raw.get("caps"), "caps")
    cells = raw_ids(raw.get("cells"))
    caps = raw.get("caps")
    for c, cap in enumerate(caps if isinstance(caps, list) else []):
        members = cap.get("cells") if isinstance(cap, dict) else None
        seen: set[str] = set()
        for m, cell in enumerate(members if isinstance(members, list) else []):
            if not isinstance(cell, str):
                continue
            if cells and cell not in cells:
                problems.append(Problem(f"caps[{c}].cells[{m}]", f"unknown cell '{cell}'{_known(cells)}"))
            if cell in seen:
                problems.append(Problem(f"caps[{c}].cells[{m}]", f"cell '{cell}' is listed twice"))
            seen.add(cell)
    objective, target = raw.get("objective", "users"), raw.get("target_users")
    if objective == "min_spend" and target is None:
        problems.append(Problem("target_users", "required with objective 'min_spend' (the users the cheapest plan must reach)"))
    if objective in ("users", "value") and target is not None:
        problems.append(Problem("target_users", f"only used with objective 'min_spend' (objective is '{objective}')"))
    return problems


def feasibility_check(inst: IncentiveBudget) -> list[Problem]:
    """Checks that prove infeasibility before any solver runs, quoting the numbers."""
    problems: list[Problem] = []
    lows = {c.id: lowest_spend(inst, c) for c in inst.cells}
    rounded = " (rounded up to the step)" if inst.step else ""
    total_low = math.fsum(lows.values())
    if exceeds(total_low, inst.budget):
        problems.append(Problem("budget", f"the cells' min_spend add up to {total_low:,.6g}{rounded}, above the budget {inst.budget:,.6g}"))
    for c, cap in enumerate(inst.caps):
        low = math.fsum(lows[i] for i in cap.cells)
        if exceeds(low, cap.max_spend):
            problems.append(Problem(f"caps[{c}].max_spend", f"{cap.max_spend:,.6g} is below the min_spend of its cells, {low:,.6g}{rounded}"))
    for i, cell in enumerate(inst.cells):
        if inst.step is not None and cell.max_spend is not None and exceeds(lows[cell.id], cell.max_spend):
            problems.append(
                Problem(f"cells[{i}]", f"no multiple of step {inst.step:g} lies in [min_spend {cell.min_spend:g}, max_spend {cell.max_spend:g}]")
            )
    if inst.objective == "min_spend" and inst.target_users is not None:
        reach = 0.0
        for cell in inst.cells:
            top = upper_spend(inst, cell)
            if cell.response.kind == "piecewise_linear":
                xs, ys = pwl_points(cell.response)
                grid = np.append(xs[xs <= top], top)
                reach += float(direct_users(cell.response, grid).max()) * cell.multiplier
            else:
                reach += float(direct_users(cell.response, top)) * cell.multiplier
        if inst.target_users >= reach * (1 + 1e-12):
            problems.append(
                Problem(
                    "target_users",
                    f"{inst.target_users:,.6g} users cannot be reached: every cell at its most (max_spend, budget, caps) "
                    f"brings {reach:,.6g} users, viral included",
                )
            )
    return problems


def _known(ids: set[str]) -> str:
    names = sorted(ids)
    return f" (known: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"


# ----------------------------------------------------------------------------- evaluate


def evaluate(inst: IncentiveBudget, solution: dict[str, Any]) -> Evaluation:
    """Recompute users, value and spend of a plan ``{"spend": {cell: amount}, ...}`` and
    list every violated constraint. Cells absent from ``spend`` spend 0."""
    violations: list[str] = []
    spend_in = solution.get("spend") if isinstance(solution, dict) else None
    if not isinstance(spend_in, dict):
        return Evaluation(objective=math.nan, violations=["spend: missing (expected cell id -> amount)"])
    ids = {c.id for c in inst.cells}
    violations += [f"spend.{k}: unknown cell" for k in spend_in if k not in ids]
    spend: dict[str, float] = {}
    users: dict[str, float] = {}
    for cell in inst.cells:
        raw = spend_in.get(cell.id, 0.0)
        x = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else math.nan
        if not math.isfinite(x):
            violations.append(f"spend.{cell.id}: not a finite number (got {raw!r})")
            x = 0.0
        spend[cell.id] = x
        users[cell.id] = float(direct_users(cell.response, x)) * cell.multiplier
        if cell.min_spend - x > 1e-6 * max(1.0, cell.min_spend):
            violations.append(f"spend.{cell.id}: {x:,.6g} below min_spend {cell.min_spend:,.6g}")
        if x < 0:
            violations.append(f"spend.{cell.id}: negative ({x:g})")
        if cell.max_spend is not None and exceeds(x, cell.max_spend):
            violations.append(f"spend.{cell.id}: {x:,.6g} above max_spend {cell.max_spend:,.6g}")
        if inst.step is not None and abs(x / inst.step - round(x / inst.step)) > 1e-6:
            violations.append(f"spend.{cell.id}: {x:,.6g} is not a multiple of step {inst.step:g}")
    total_spend = math.fsum(spend.values())
    if exceeds(total_spend, inst.budget):
        violations.append(f"budget: total spend {total_spend:,.6g} > budget {inst.budget:,.6g}")
    for cap in inst.caps:
        used = math.fsum(spend[c] for c in cap.cells)
        if exceeds(used, cap.max_spend):
            violations.append(f"caps.{cap.id}: spend {used:,.6g} > max_spend {cap.max_spend:,.6g}")
    total_users = math.fsum(users.values())
    total_value = math.fsum(c.value_per_user * users[c.id] for c in inst.cells) - total_spend
    if inst.objective == "min_spend" and inst.target_users is not None and exceeds(inst.target_users, total_users):
        violations.append(f"target_users: the plan reaches {total_users:,.6g} users, below the target {inst.target_users:,.6g}")
    reported = solution.get("users")
    if isinstance(reported, dict):
        for cell_id, value in reported.items():
            if cell_id in users and isinstance(value, (int, float)) and abs(value - users[cell_id]) > 1e-6 * max(1.0, abs(users[cell_id])):
                violations.append(f"users.{cell_id}: reported {value:,.6g}, recomputed {users[cell_id]:,.6g}")
    objective = {"users": total_users, "value": total_value, "min_spend": total_spend}[inst.objective]
    return Evaluation(
        objective=objective,
        violations=violations,
        details={"total_users": total_users, "total_spend": total_spend, "total_value": total_value},
    )


def plan(inst: IncentiveBudget, spend: dict[str, float], marginal_value: float | None) -> dict[str, Any]:
    """The solution document of a spend plan: spend, users (viral included), marginal value."""
    users = {c.id: float(direct_users(c.response, spend[c.id])) * c.multiplier for c in inst.cells}
    return {"spend": {c.id: float(spend[c.id]) for c in inst.cells}, "users": users, "marginal_value": marginal_value}


# ----------------------------------------------------------------------------- generator

MECHANICS = ("group_buy", "bargain_free", "invite_coupon", "one_yuan_deal", "cash_reward", "gift_reward")
SEGMENTS = ("lower_tier", "urban_white_collar", "students", "new_parents", "seniors", "rural")


def generate(
    n_cells: int = 12,
    *,
    seed: int = 0,
    shape: tuple[float, float] = (1.5, 4.0),
    budget_share: float = 0.35,
    caps: bool | str = False,
    objective: str = "users",
) -> dict[str, Any]:
    """A seeded random instance with Hill S-curves and spend allowed from zero.

    Half-spends vary tenfold across cells and the budget is ``budget_share`` of their sum,
    so some cells are best left at zero: the situation where local methods stall.
    ``caps`` (True or "segments") adds a cap per segment at 40% of the budget;
    "crossing" also one per mechanic at 35%, so caps overlap without nesting.
    """
    rng = np.random.default_rng(seed)
    cells = []
    n_seg = max(1, math.ceil(math.sqrt(n_cells)))
    for i in range(n_cells):
        mechanic = MECHANICS[i // n_seg % len(MECHANICS)]
        segment = SEGMENTS[i % n_seg % len(SEGMENTS)]
        half = float(rng.uniform(20_000, 200_000))
        cells.append(
            {
                "id": f"{mechanic}-{i // n_seg}/{segment}-{i % n_seg}",
                "mechanic": mechanic,
                "segment": segment,
                "response": {
                    "kind": "hill",
                    "max_users": round(float(half / rng.uniform(3.0, 30.0)), 1),
                    "half_spend": round(half, 1),
                    "shape": round(float(rng.uniform(*shape)), 3),
                },
                "viral_k": round(float(rng.uniform(0.1, 0.5)), 3),
                "value_per_user": round(float(rng.uniform(15.0, 60.0)), 2),
                "min_spend": 0,
            }
        )
    budget = round(budget_share * sum(c["response"]["half_spend"] for c in cells), -3)  # type: ignore[index]
    doc: dict[str, Any] = {
        "problem": PROBLEM,
        "schema_version": 1,
        "name": f"random-{n_cells}-s{seed}",
        "budget": budget,
        "objective": objective,
        "cells": cells,
    }
    if caps:
        segments = sorted({str(c["segment"]) for c in cells})
        doc["caps"] = [
            {"id": seg, "cells": [c["id"] for c in cells if c["segment"] == seg], "max_spend": round(0.4 * budget, -3)} for seg in segments
        ]
    if caps == "crossing":
        mechanics = sorted({str(c["mechanic"]) for c in cells})
        doc["caps"] += [
            {"id": m, "cells": [c["id"] for c in cells if c["mechanic"] == m], "max_spend": round(0.35 * budget, -3)} for m in mechanics
        ]
        doc["name"] += "-crossing"
    return doc
