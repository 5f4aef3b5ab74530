"""Reader for OR-Library capacitated warehouse location files (cap41..cap134, capa/b/c).

Format: ``m n``; m lines ``capacity fixed_cost`` (capa/b/c write the word ``capacity``:
the capacity is then a parameter, ``--capacity N``); then per customer its demand followed
by m numbers, the cost of serving ALL of that demand from warehouse 1..m.

Mapping (formats.md): one SKU of unit volume, arc cost per unit = cost / demand, no depot,
no lost sales, no promise.
"""

from __future__ import annotations

from typing import Any

from models.errors import InstanceError, Problem


def read_orlib_cap(
    text: str, *, name: str, capacity: float | None = None, single_source: bool = False
) -> dict[str, Any]:
    """Turn an OR-Library ``cap`` file into a ``front_warehouse`` document."""
    tokens = _tokens(text)
    pos = 0

    def take(what: str, allow_word: bool = False) -> tuple[float | str, int]:
        nonlocal pos
        if pos >= len(tokens):
            raise InstanceError(Problem("end of file", f"expected {what}, the file ends early"), source=name)
        line, tok = tokens[pos]
        pos += 1
        if allow_word and tok.lower() == "capacity":
            return "capacity", line
        try:
            return float(tok), line
        except ValueError:
            raise InstanceError(Problem(f"line {line}", f"expected {what} (got {tok!r})"), source=name) from None

    m, _ = take("the number of warehouses")
    n, _ = take("the number of customers")
    if not (float(m).is_integer() and float(n).is_integer() and m > 0 and n > 0):
        raise InstanceError(Problem("line 1", f"expected two positive integers m n (got {m:g} {n:g})"), source=name)
    m, n = int(m), int(n)

    sites = []
    for i in range(m):
        cap, line = take(f"the capacity of warehouse {i + 1}", allow_word=True)
        fixed, _ = take(f"the fixed cost of warehouse {i + 1}")
        if cap == "capacity":
            if capacity is None:
                raise InstanceError(
                    Problem(f"line {line}", "capacity is the word 'capacity': give it with --capacity N (capa: 8000-14000, capb/capc: 5000-8000)"),
                    source=name,
                )
            cap = capacity
        sites.append({"id": str(i + 1), "fixed_cost": fixed, "capacity": cap})

    zones, arcs = [], []
    for j in range(n):
        demand, _ = take(f"the demand of customer {j + 1}")
        zone = str(j + 1)
        zones.append({"id": zone, "demand": {"unit": demand}})
        for i in range(m):
            cost, _ = take(f"the cost of customer {j + 1} from warehouse {i + 1}")
            per_unit = cost / demand if demand else 0.0  # type: ignore[operator]
            arcs.append({"site": str(i + 1), "zone": zone, "cost_per_unit": per_unit})
    if pos != len(tokens):
        line, tok = tokens[pos]
        raise InstanceError(Problem(f"line {line}", f"unexpected data after the last customer (got {tok!r})"), source=name)
    return {
        "problem": "front_warehouse",
        "schema_version": 1,
        "name": name,
        "description": "OR-Library capacitated warehouse location (Beasley 1990)",
        "skus": [{"id": "unit", "unit_volume": 1.0}],
        "sites": sites,
        "zones": zones,
        "arcs": arcs,
        "single_source": single_source,
    }


def _tokens(text: str) -> list[tuple[int, str]]:
    return [(n, tok) for n, line in enumerate(text.splitlines(), start=1) for tok in line.split()]
