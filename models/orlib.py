"""Reader for OR-Library capacitated warehouse location files (cap41..cap134, capa/b/c).

Format: ``m n``; m lines ``capacity fixed_cost`` (capa/b/c write the word ``capacity``:
the capacity is then a parameter, ``--capacity N``); then per customer its demand followed
by m numbers, the cost of serving ALL of that demand from warehouse 1..m.

Mapping (formats.md): one SKU of unit volume, arc cost per unit = cost / demand, no depot,
no lost sales, no promise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.errors import InstanceError, Problem


def read_orlib_cap(text: str, *, name: str, capacity: float | None = None, single_source: bool = False) -> dict[str, Any]:
    """Turn an OR-Library ``cap`` file into a ``front_warehouse`` document."""
    tokens = text.split()

    def fail(index: int, what: str) -> InstanceError:
        if index >= len(tokens):
            return InstanceError(Problem("end of file", f"expected {what}, the file ends early"), source=name)
        return InstanceError(Problem(f"line {_line_of(text, index)}", f"expected {what} (got {tokens[index]!r})"), source=name)

    if len(tokens) < 2 or not all(t.isdigit() and int(t) > 0 for t in tokens[:2]):
        raise fail(0 if len(tokens) < 2 else 1, "two positive integers m n (warehouses, customers)")
    m, n = int(tokens[0]), int(tokens[1])
    expected = 2 + 2 * m + n * (1 + m)
    if len(tokens) != expected:
        if len(tokens) < expected:
            raise fail(len(tokens), f"{expected - 2} numbers after 'm n' for m={m}, n={n}")
        raise fail(expected, "the end of the file after the last customer")

    site_tokens = tokens[2 : 2 + 2 * m]
    if any(t.lower() == "capacity" for t in site_tokens[0::2]) and capacity is None:
        first = 2 + 2 * next(i for i, t in enumerate(site_tokens[0::2]) if t.lower() == "capacity")
        raise InstanceError(
            Problem(f"line {_line_of(text, first)}", "capacity is the word 'capacity': give it with --capacity N (capa: 8000-14000, capb/capc: 5000-8000)"),
            source=name,
        )
    site_tokens[0::2] = [str(capacity) if t.lower() == "capacity" else t for t in site_tokens[0::2]]
    sites = _numbers(site_tokens, 2, text, tokens, fail, "a number (capacity or fixed cost)").reshape(m, 2)
    body = _numbers(tokens[2 + 2 * m :], 2 + 2 * m, text, tokens, fail, "a number (demand or cost)").reshape(n, 1 + m)
    demand, cost = body[:, 0], body[:, 1:]
    per_unit = np.divide(cost, demand[:, None], out=np.zeros_like(cost), where=demand[:, None] != 0)

    site_ids = [str(i + 1) for i in range(m)]
    return {
        "problem": "front_warehouse",
        "schema_version": 1,
        "name": name,
        "description": "OR-Library capacitated warehouse location (Beasley 1990)",
        "skus": [{"id": "unit", "unit_volume": 1.0}],
        "sites": [{"id": site_ids[i], "fixed_cost": float(sites[i, 1]), "capacity": float(sites[i, 0])} for i in range(m)],
        "zones": [{"id": str(j + 1), "demand": {"unit": float(demand[j])}} for j in range(n)],
        "arcs": [
            {"site": site_ids[i], "zone": str(j + 1), "cost_per_unit": float(per_unit[j, i])} for j in range(n) for i in range(m)
        ],
        "single_source": single_source,
    }


def _numbers(part: list[str], offset: int, text: str, tokens: list[str], fail: Any, what: str) -> np.ndarray:
    try:
        return np.array(part, dtype=float)
    except ValueError:
        for k, tok in enumerate(part):
            try:
                float(tok)
            except ValueError:
                raise fail(offset + k, what) from None
        raise


def _line_of(text: str, token_index: int) -> int:
    """The 1-based line on which the token with this index stands (for messages only)."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        seen += len(line.split())
        if seen > token_index:
            return number
    return max(1, text.count("\n") + 1)
