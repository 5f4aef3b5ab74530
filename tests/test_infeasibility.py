"""Infeasibility is explained: cheap checks before solving quote numbers; when the solver
proves it, the result names the constraint family that, relaxed alone, leaves a plan."""

from __future__ import annotations

import pytest

from models import InstanceError
from optimizers import solve
from optimizers.result import Status


def two_towns(**extra) -> dict:
    """Two sites, each within the promise of one zone only; each zone wants two SKUs."""
    sites = [{"id": s, "fixed_cost": 10.0, "capacity": 100.0, "status": "candidate"} for s in ("a", "b")]
    zones = [{"id": z, "demand": {"box": 10.0, "bag": 5.0}} for z in ("near-a", "near-b")]
    arcs = [{"site": "a", "zone": "near-a", "cost_per_unit": 1.0, "minutes": 10}, {"site": "a", "zone": "near-b", "cost_per_unit": 3.0, "minutes": 50},
            {"site": "b", "zone": "near-b", "cost_per_unit": 1.0, "minutes": 10}, {"site": "b", "zone": "near-a", "cost_per_unit": 3.0, "minutes": 50}]
    return {"problem": "front_warehouse", "schema_version": 1, "name": "two-towns", "skus": [{"id": "box", "unit_volume": 1.0}, {"id": "bag", "unit_volume": 1.0}],
            "sites": sites, "zones": zones, "arcs": arcs, "service": {"promise_minutes": 30, "min_share_within_promise": 1.0}, **extra}


def test_an_unreachable_promise_is_refused_before_solving_with_its_numbers():
    doc = two_towns()
    doc["sites"][1]["status"] = "closed"
    with pytest.raises(InstanceError, match=r"only 0.5 of demand lies within 30 minutes"):
        solve(doc, method="milp")


def test_too_few_open_sites_for_the_promise_are_named():
    result = solve(two_towns(max_open_sites=1), method="milp")
    assert result.status is Status.INFEASIBLE
    assert "max_open_sites" in result.message and "the promise share" in result.message


def test_the_family_the_solver_proves_responsible_is_named():
    doc = two_towns()
    for site in doc["sites"]:
        site["max_skus"] = 1  # every zone wants two SKUs within the promise from its one near site
    result = solve(doc, method="milp")
    assert result.status is Status.INFEASIBLE
    assert "max_skus per site" in result.message and "the promise share" in result.message
    assert "site capacities" not in result.message and "max_open_sites" not in result.message
