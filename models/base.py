"""Pieces every problem family shares: the strict schema base, the file envelope, the
evaluation record, and turning pydantic errors into located :class:`Problem` lines."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from models.errors import Problem

Id = Annotated[str, StringConstraints(min_length=1)]

#: Relative tolerance of every feasibility check in ``evaluate()``: an amount violates a
#: constraint when it exceeds the limit by more than ``TOLERANCE * max(1, |limit|)``.
TOLERANCE = 1e-6

_KNOWN_KEYS: set[str] = set()

#: Tag values of discriminated unions (e.g. response kinds): pydantic puts them in error
#: locations, planners do not expect them there. Families add theirs.
DISCRIMINATOR_TAGS: set[str] = set()


class Strict(BaseModel):
    """Schema base: unknown keys are errors, NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _KNOWN_KEYS.update(cls.model_fields)


class Envelope(Strict):
    """The keys every instance file starts with."""

    schema_version: int = 1
    name: str = "unnamed"
    description: str | None = None
    units: dict[str, str] | None = None


@dataclass
class Evaluation:
    """What ``evaluate()`` found: the recomputed objective and every violated constraint."""

    objective: float
    violations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "feasible": self.feasible,
            "violations": list(self.violations),
            **self.details,
        }


def exceeds(amount: float, limit: float) -> bool:
    """True when ``amount`` is above ``limit`` by more than the evaluation tolerance."""
    return amount - limit > TOLERANCE * max(1.0, abs(limit))


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_from_validation(error: ValidationError) -> list[Problem]:
    """One :class:`Problem` per pydantic error, worded for a planner, not a programmer."""
    problems = []
    for err in error.errors():
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            close = difflib.get_close_matches(key, sorted(_KNOWN_KEYS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(Problem(format_loc(loc), f"unknown key{hint}"))
            continue
        if kind == "missing":
            problems.append(Problem(format_loc(loc), "required key is missing"))
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif msg.startswith("Input should be"):
            msg = "must be" + msg[len("Input should be") :]
        got = f" (got {_short(err['input'])})" if "input" in err and not isinstance(err["input"], (dict, list)) and "(got " not in msg else ""
        problems.append(Problem(format_loc(loc), f"{msg}{got}"))
    return problems


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the member type name of a union into the location ("list[Site]");
    # planners think in keys and indexes only.
    return isinstance(part, str) and ("[" in part or part in {"float", "int", "str", "bool"} or part in DISCRIMINATOR_TAGS)


def duplicate_ids(items: Any, where: str) -> list[Problem]:
    """Problems for repeated ``id`` values in a raw list of dicts (tolerates malformed items)."""
    seen: dict[str, int] = {}
    problems = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        ident = item.get("id") if isinstance(item, dict) else None
        if not isinstance(ident, str):
            continue
        if ident in seen:
            problems.append(
                Problem(f"{where}[{index}].id", f"duplicate id '{ident}' (first at {where}[{seen[ident]}])")
            )
        else:
            seen[ident] = index
    return problems


def raw_ids(items: Any) -> set[str]:
    """The string ids in a raw list of dicts, skipping malformed items."""
    if not isinstance(items, list):
        return set()
    return {i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)}
