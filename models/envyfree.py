"""Reader for unit-demand envy-free pricing instances (Fernandes, Ferreira, Franco, Schouery,
arXiv 1310.0038; instances/envyfree/).

Format: a first line ``n m E`` (consumers, items, valuations), then exactly E lines ``i j v``
(0-based consumer, 0-based item, valuation); pairs not listed are worth 0.

Mapping (formats.md): consumer i is segment ``c<i>`` of size 1, item j is tier ``i<j>`` with
fees in [0, the item's largest valuation] (a higher fee sells to nobody), no costs, no
uplift, no retention, no fee order: the objective is the seller's revenue.
"""

from __future__ import annotations

import math
from typing import Any

from models.errors import InstanceError, Problem


def read_envyfree(text: str, *, name: str) -> dict[str, Any]:
    """Turn an envy-free pricing file into a ``membership_pricing`` document."""
    lines = text.splitlines()

    def fail(line: int, what: str) -> InstanceError:
        return InstanceError(Problem(f"line {line}", what), source=name)

    header = lines[0].split() if lines else []
    if len(header) != 3 or not all(t.isdigit() for t in header) or int(header[0]) < 1 or int(header[1]) < 1:
        raise fail(1, f"expected 'n m E' (consumers >= 1, items >= 1, valuations >= 0) (got {lines[0] if lines else ''!r})")
    n, m, count = (int(t) for t in header)
    if len(lines) - 1 < count:
        raise InstanceError(Problem("end of file", f"the header announces {count} valuations, the file has {len(lines) - 1} lines after it"), source=name)
    wtp: list[dict[str, float]] = [{} for _ in range(n)]
    top = [0.0] * m
    for number in range(2, count + 2):
        parts = lines[number - 1].split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise fail(number, f"expected 'i j v' (got {lines[number - 1]!r})")
        i, j = int(parts[0]), int(parts[1])
        try:
            v = float(parts[2])
        except ValueError:
            raise fail(number, f"expected a valuation (got {parts[2]!r})") from None
        if i >= n or j >= m:
            raise fail(number, f"consumer {i} or item {j} out of range (n={n}, m={m}, 0-based)")
        if not math.isfinite(v) or v < 0:
            raise fail(number, f"valuation must be a finite number >= 0 (got {parts[2]})")
        key = f"i{j}"
        if key in wtp[i]:
            raise fail(number, f"consumer {i}, item {j} is listed twice")
        wtp[i][key] = v
        top[j] = max(top[j], v)
    for number in range(count + 2, len(lines) + 1):
        if lines[number - 1].strip():
            raise fail(number, f"expected the end of the file after the {count} valuations the header announces (got {lines[number - 1]!r})")
    return {
        "problem": "membership_pricing",
        "schema_version": 1,
        "name": name,
        "description": "unit-demand envy-free pricing (Fernandes et al., arXiv 1310.0038): revenue, consumers as segments of size 1",
        "tiers": [{"id": f"i{j}", "min_fee": 0.0, "max_fee": top[j]} for j in range(m)],
        "segments": [{"id": f"c{i}", "size": 1.0, "willingness_to_pay": wtp[i]} for i in range(n)],
        "choice": {"model": "max_surplus"},
    }
