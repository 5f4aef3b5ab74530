"""The ``front_warehouse`` family: which front warehouses to open, which zones each serves
within the delivery promise, and how much of each SKU each one stocks.

Schema (see instances/schema/front_warehouse.json and the README), the numeric view the
solvers and ``evaluate()`` share (:func:`network`), the solution type, ``evaluate()``, and
a seeded instance generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat

from models.base import (
    TOLERANCE,
    Envelope,
    Evaluation,
    Id,
    Strict,
    duplicate_ids,
    exceeds,
    raw_ids,
)
from models.errors import Problem

PROBLEM = "front_warehouse"
DEPOT = "depot"
LOST = "lost"
TABLE_KEYS = ("sites", "zones", "arcs")


class Sku(Strict):
    id: Id
    unit_volume: PositiveFloat = 1.0
    holding_cost: NonNegativeFloat = Field(0.0, description="per unit placed per period")


class Site(Strict):
    id: Id
    fixed_cost: NonNegativeFloat = Field(description="per planning period")
    capacity: NonNegativeFloat = Field(description="storage volume")
    x: float | None = None
    y: float | None = None
    status: Literal["candidate", "open", "closed"] = "candidate"


class Zone(Strict):
    id: Id
    x: float | None = None
    y: float | None = None
    demand: dict[Id, NonNegativeFloat] = Field(description="units per period, by SKU id")


class Arc(Strict):
    site: Id
    zone: Id
    cost_per_unit: NonNegativeFloat
    minutes: NonNegativeFloat | None = None


class Travel(Strict):
    """Derive arcs from coordinates (Euclidean) when ``arcs`` is omitted."""

    cost_per_unit_distance: NonNegativeFloat
    minutes_per_distance: NonNegativeFloat
    max_minutes: PositiveFloat | None = Field(None, description="longer arcs do not exist")


class Depot(Strict):
    cost_per_unit: NonNegativeFloat


class Service(Strict):
    promise_minutes: NonNegativeFloat
    min_share_within_promise: float = Field(ge=0.0, le=1.0)


class Scenario(Strict):
    id: Id
    probability: float = Field(gt=0.0, le=1.0)
    demand_factor: NonNegativeFloat = 1.0


class FrontWarehouse(Envelope):
    problem: Literal["front_warehouse"]
    skus: list[Sku] = Field(min_length=1)
    sites: list[Site] = Field(min_length=1, description='a list, or {"table": "sites.csv"}')
    zones: list[Zone] = Field(min_length=1, description='a list, or {"table": "zones.csv"}')
    arcs: list[Arc] | None = Field(None, description='a list, or {"table": "arcs.csv"}')
    travel: Travel | None = None
    depot: Depot | None = None
    lost_sale_cost: dict[Id, NonNegativeFloat] = Field(default_factory=dict)
    service: Service | None = None
    max_open_sites: NonNegativeInt | None = None
    single_source: bool = False
    scenarios: list[Scenario] | None = Field(None, min_length=1)


# ----------------------------------------------------------------------------- checks


def cross_check(raw: dict[str, Any]) -> list[Problem]:
    """Reference and consistency checks on the raw document.

    Runs even when field validation failed, so one pass reports every problem; it skips
    items too malformed to read.
    """
    problems: list[Problem] = []
    for key in ("skus", "sites", "zones", "scenarios"):
        problems += duplicate_ids(raw.get(key), key)
    skus, sites, zones = raw_ids(raw.get("skus")), raw_ids(raw.get("sites")), raw_ids(raw.get("zones"))

    for j, zone in enumerate(_dicts(raw.get("zones"))):
        demand = zone.get("demand")
        for sku in demand if isinstance(demand, dict) else {}:
            if skus and sku not in skus:
                problems.append(Problem(f"zones[{j}].demand.{sku}", f"unknown sku '{sku}'{_known(skus)}"))
    lost = raw.get("lost_sale_cost")
    for sku in lost if isinstance(lost, dict) else {}:
        if skus and sku not in skus:
            problems.append(Problem(f"lost_sale_cost.{sku}", f"unknown sku '{sku}'{_known(skus)}"))

    arcs = raw.get("arcs")
    arc_list = arcs if isinstance(arcs, list) else []
    site_of = [arc.get("site") if isinstance(arc, dict) else None for arc in arc_list]
    zone_of = [arc.get("zone") if isinstance(arc, dict) else None for arc in arc_list]
    if sites:
        problems += [Problem(f"arcs[{a}].site", f"unknown site '{v}'") for a, v in enumerate(site_of) if isinstance(v, str) and v not in sites]
    if zones:
        problems += [Problem(f"arcs[{a}].zone", f"unknown zone '{v}'") for a, v in enumerate(zone_of) if isinstance(v, str) and v not in zones]
    # (site, zone) of each arc; None where either is not a string (field validation says why)
    ends = [(i, j) if isinstance(i, str) and isinstance(j, str) else None for i, j in zip(site_of, zone_of)]
    known = [e for e in ends if e is not None]
    if len(set(known)) < len(known):  # locate duplicates only when there are some
        first: dict[tuple[str, str], int] = {}
        for a, e in enumerate(ends):
            if e is None:
                continue
            if e in first:
                problems.append(Problem(f"arcs[{a}]", f"duplicate arc {e[0]} -> {e[1]} (first at arcs[{first[e]}])"))
            else:
                first[e] = a
    if raw.get("service") is not None:
        problems += [
            Problem(f"arcs[{a}].minutes", "required when `service` sets a promise")
            for a, arc in enumerate(arc_list) if isinstance(arc, dict) and arc.get("minutes") is None
        ]

    if arcs is None:
        if raw.get("travel") is None:
            problems.append(Problem("arcs", "give `arcs`, or `travel` to derive them from coordinates"))
        else:
            for key in ("sites", "zones"):
                for i, item in enumerate(_dicts(raw.get(key))):
                    if item.get("x") is None or item.get("y") is None:
                        problems.append(Problem(f"{key}[{i}]", "x and y are needed to derive arcs from `travel`"))
    elif raw.get("travel") is not None:
        problems.append(Problem("travel", "give `arcs` or `travel`, not both"))

    scenarios = list(_dicts(raw.get("scenarios")))
    probs = [s.get("probability") for s in scenarios]
    if scenarios and all(isinstance(p, (int, float)) for p in probs):
        total = math.fsum(probs)  # type: ignore[arg-type]
        if abs(total - 1.0) > 1e-6:
            problems.append(Problem("scenarios", f"probabilities must sum to 1 (got {total:.6g})"))
    return problems


def feasibility_check(inst: FrontWarehouse) -> list[Problem]:
    """Checks that prove infeasibility before any solver runs, quoting the numbers."""
    problems: list[Problem] = []
    net = network(inst)
    must_open = int(net.must_open.sum())
    if inst.max_open_sites is not None and must_open > inst.max_open_sites:
        problems.append(
            Problem("max_open_sites", f"{must_open} sites have status 'open' but at most {inst.max_open_sites} may be open")
        )
    fallback = net.has_depot | net.lost_allowed  # per sku
    reachable = np.zeros(len(inst.zones), bool)
    reachable[net.arc_zone] = True
    for j, k in zip(*np.nonzero((net.demand > 0) & ~reachable[:, None] & ~fallback[None, :])):
        problems.append(
            Problem(f"zones[{j}].demand.{net.sku_ids[k]}", f"{net.demand[j, k]:g} units with no arc from a usable site, no depot and no lost-sale cost")
        )
    volume = net.peak_volume_needing_sites()
    if volume > 0:
        capacity = float(net.capacity[~net.closed].sum())
        if exceeds(volume, capacity):
            problems.append(
                Problem("sites", f"total capacity {capacity:,.6g} < volume of demand that must be served {volume:,.6g}: no feasible solution")
            )
    if inst.service and inst.service.min_share_within_promise > 0:
        within = net.arc_minutes <= inst.service.promise_minutes
        covered = np.zeros(len(inst.zones), bool)
        covered[net.arc_zone[within]] = True
        share = float(net.demand[covered].sum() / max(net.demand.sum(), 1e-300))
        if share < inst.service.min_share_within_promise - TOLERANCE:
            problems.append(
                Problem(
                    "service.min_share_within_promise",
                    f"only {share:.4g} of demand lies within {inst.service.promise_minutes:g} minutes of any usable site "
                    f"(asked {inst.service.min_share_within_promise:g})",
                )
            )
    return problems


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _known(ids: set[str]) -> str:
    names = sorted(ids)
    return f" (known: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"


# ----------------------------------------------------------------------------- numeric view


@dataclass(frozen=True)
class Network:
    """Arrays indexed by position, shared by the formulations and ``evaluate()``.

    Arcs from closed sites are dropped; arcs come from ``arcs`` or are derived by ``travel``.
    """

    site_ids: list[str]
    zone_ids: list[str]
    sku_ids: list[str]
    scenario_ids: list[str]
    fixed_cost: np.ndarray  # (I,)
    capacity: np.ndarray  # (I,) volume
    must_open: np.ndarray  # (I,) bool
    closed: np.ndarray  # (I,) bool
    volume: np.ndarray  # (K,)
    holding: np.ndarray  # (K,)
    demand: np.ndarray  # (J, K) base demand
    probability: np.ndarray  # (W,)
    factor: np.ndarray  # (W,)
    arc_site: np.ndarray  # (A,) int
    arc_zone: np.ndarray  # (A,) int
    arc_cost: np.ndarray  # (A,) per unit
    arc_minutes: np.ndarray  # (A,)
    has_depot: bool
    depot_cost: float
    lost_allowed: np.ndarray  # (K,) bool
    lost_cost: np.ndarray  # (K,)
    within_promise: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (A,) bool

    def scenario_demand(self, w: int) -> np.ndarray:
        return self.demand * self.factor[w]

    def peak_volume_needing_sites(self) -> float:
        """Stock volume the peak scenario needs at sites: demand of SKUs with no depot and no
        lost sales to fall back on (0 when there is a depot)."""
        if self.has_depot or not len(self.factor):
            return 0.0
        hard = ~self.lost_allowed
        return float((self.demand[:, hard] * self.volume[hard]).sum() * self.factor.max())


def network(inst: FrontWarehouse) -> Network:
    site_ids = [s.id for s in inst.sites]
    zone_ids = [z.id for z in inst.zones]
    sku_ids = [k.id for k in inst.skus]
    site_pos = {s: i for i, s in enumerate(site_ids)}
    zone_pos = {z: j for j, z in enumerate(zone_ids)}
    sku_pos = {k: i for i, k in enumerate(sku_ids)}
    closed = np.array([s.status == "closed" for s in inst.sites])

    demand = np.zeros((len(zone_ids), len(sku_ids)))
    for j, zone in enumerate(inst.zones):
        for sku, units in zone.demand.items():
            demand[j, sku_pos[sku]] = units

    if inst.arcs is not None:
        a_site = np.array([site_pos[a.site] for a in inst.arcs], dtype=np.int64)
        a_zone = np.array([zone_pos[a.zone] for a in inst.arcs], dtype=np.int64)
        a_cost = np.array([a.cost_per_unit for a in inst.arcs], dtype=float)
        a_min = np.array([np.inf if a.minutes is None else a.minutes for a in inst.arcs], dtype=float)
    else:
        assert inst.travel is not None
        sx = np.array([s.x for s in inst.sites], dtype=float)
        sy = np.array([s.y for s in inst.sites], dtype=float)
        zx = np.array([z.x for z in inst.zones], dtype=float)
        zy = np.array([z.y for z in inst.zones], dtype=float)
        dist = np.hypot(sx[:, None] - zx[None, :], sy[:, None] - zy[None, :])
        minutes = dist * inst.travel.minutes_per_distance
        keep = np.ones_like(dist, bool) if inst.travel.max_minutes is None else minutes <= inst.travel.max_minutes
        a_site, a_zone = np.nonzero(keep)
        a_cost = dist[keep] * inst.travel.cost_per_unit_distance
        a_min = minutes[keep]
    usable = ~closed[a_site] if a_site.size else np.zeros(0, bool)
    a_site, a_zone, a_cost, a_min = a_site[usable], a_zone[usable], a_cost[usable], a_min[usable]

    scenarios = inst.scenarios or [Scenario(id="base", probability=1.0, demand_factor=1.0)]
    promise = inst.service.promise_minutes if inst.service else np.inf
    return Network(
        site_ids=site_ids,
        zone_ids=zone_ids,
        sku_ids=sku_ids,
        scenario_ids=[s.id for s in scenarios],
        fixed_cost=np.array([s.fixed_cost for s in inst.sites], dtype=float),
        capacity=np.array([s.capacity for s in inst.sites], dtype=float),
        must_open=np.array([s.status == "open" for s in inst.sites]),
        closed=closed,
        volume=np.array([k.unit_volume for k in inst.skus], dtype=float),
        holding=np.array([k.holding_cost for k in inst.skus], dtype=float),
        demand=demand,
        probability=np.array([s.probability for s in scenarios], dtype=float),
        factor=np.array([s.demand_factor for s in scenarios], dtype=float),
        arc_site=a_site.astype(np.int64),
        arc_zone=a_zone.astype(np.int64),
        arc_cost=a_cost.astype(float),
        arc_minutes=a_min.astype(float),
        has_depot=inst.depot is not None,
        depot_cost=inst.depot.cost_per_unit if inst.depot else 0.0,
        lost_allowed=np.array([k in inst.lost_sale_cost for k in sku_ids]),
        lost_cost=np.array([inst.lost_sale_cost.get(k, 0.0) for k in sku_ids], dtype=float),
        within_promise=a_min <= promise,
    )


# ----------------------------------------------------------------------------- solution


@dataclass(frozen=True)
class Flow:
    site: str  # a site id, or "depot" / "lost"
    zone: str
    sku: str
    scenario: str
    units: float


@dataclass(frozen=True)
class Stock:
    site: str
    sku: str
    units: float


@dataclass
class FrontWarehouseSolution:
    open_sites: list[str]
    flows: list[Flow]
    stock: list[Stock] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "open_sites": list(self.open_sites),
            "flows": [vars(f) for f in self.flows],
            "stock": [vars(s) for s in self.stock],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontWarehouseSolution:
        return cls(
            open_sites=list(data["open_sites"]),
            flows=[Flow(**f) for f in data.get("flows", [])],
            stock=[Stock(**s) for s in data.get("stock", [])],
        )


# ----------------------------------------------------------------------------- evaluate


def evaluate(inst: FrontWarehouse, solution: FrontWarehouseSolution | dict[str, Any]) -> Evaluation:
    """Recompute the cost of ``solution`` and list every violated constraint. No solver.

    Stock not given in the solution is taken as the most a site ships of a SKU in any
    scenario (the least stock that covers every scenario).
    """
    if isinstance(solution, dict):
        solution = FrontWarehouseSolution.from_dict(solution)
    net = network(inst)
    site_pos = {s: i for i, s in enumerate(net.site_ids)}
    zone_pos = {z: j for j, z in enumerate(net.zone_ids)}
    sku_pos = {k: i for i, k in enumerate(net.sku_ids)}
    scen_pos = {w: i for i, w in enumerate(net.scenario_ids)}
    arc_pos = {(int(i), int(j)): a for a, (i, j) in enumerate(zip(net.arc_site, net.arc_zone))}
    I, J, K, W = len(net.site_ids), len(net.zone_ids), len(net.sku_ids), len(net.scenario_ids)
    bad: list[str] = []

    is_open = np.zeros(I, bool)
    for s in solution.open_sites:
        if s not in site_pos:
            bad.append(f"open_sites: unknown site '{s}'")
        elif net.closed[site_pos[s]]:
            bad.append(f"open_sites: site '{s}' has status 'closed'")
        else:
            is_open[site_pos[s]] = True
    for missing in np.flatnonzero(net.must_open & ~is_open):
        bad.append(f"open_sites: site '{net.site_ids[missing]}' has status 'open' and must stay open")
    if inst.max_open_sites is not None and is_open.sum() > inst.max_open_sites:
        bad.append(f"open_sites: {int(is_open.sum())} sites open, limit is {inst.max_open_sites}")

    served = np.zeros((W, J, K))  # everything that reached the zone
    shipped = np.zeros((W, I, K))  # per site
    within = np.zeros(W)
    transport = np.zeros(W)
    depot_units = np.zeros(W)
    lost_units = np.zeros(W)
    penalty = np.zeros(W)
    sources: dict[int, set[int]] = {}  # zone -> sites that serve it, over all scenarios
    for n, f in enumerate(solution.flows):
        where = f"flows[{n}]"
        j, k, w = zone_pos.get(f.zone), sku_pos.get(f.sku), scen_pos.get(f.scenario)
        if j is None or k is None or w is None:
            bad.append(f"{where}: unknown zone, sku or scenario ({f.zone}, {f.sku}, {f.scenario})")
            continue
        if not math.isfinite(f.units) or f.units < -TOLERANCE:
            bad.append(f"{where}.units: must be a finite number >= 0 (got {f.units})")
            continue
        served[w, j, k] += f.units
        if f.site == DEPOT:
            if not net.has_depot:
                bad.append(f"{where}: the instance has no depot")
            depot_units[w] += f.units
            penalty[w] += f.units * net.depot_cost
        elif f.site == LOST:
            if not net.lost_allowed[k]:
                bad.append(f"{where}: sku '{f.sku}' has no lost-sale cost, its demand must be served")
            lost_units[w] += f.units
            penalty[w] += f.units * net.lost_cost[k]
        else:
            i = site_pos.get(f.site)
            a = arc_pos.get((i, j)) if i is not None else None
            if i is None or a is None:
                bad.append(f"{where}: no arc {f.site} -> {f.zone}")
                continue
            if not is_open[i] and f.units > TOLERANCE:
                bad.append(f"{where}: site '{f.site}' ships but is not open")
            shipped[w, i, k] += f.units
            transport[w] += f.units * net.arc_cost[a]
            if net.within_promise[a]:
                within[w] += f.units
            if f.units > TOLERANCE:
                sources.setdefault(j, set()).add(i)

    for w in range(W):
        need = net.scenario_demand(w)
        for zj, zk in zip(*np.nonzero(np.abs(served[w] - need) > TOLERANCE * np.maximum(1.0, need))):
            bad.append(
                f"zone '{net.zone_ids[zj]}', sku '{net.sku_ids[zk]}', scenario '{net.scenario_ids[w]}': "
                f"{served[w, zj, zk]:.6g} units delivered (demand {need[zj, zk]:.6g})"
            )

    stock = shipped.max(axis=0) if W else np.zeros((I, K))
    if solution.stock:
        stock = np.zeros((I, K))
        for n, item in enumerate(solution.stock):
            si, sk = site_pos.get(item.site), sku_pos.get(item.sku)
            if si is None or sk is None:
                bad.append(f"stock[{n}]: unknown site or sku ({item.site}, {item.sku})")
                continue
            if item.units < -TOLERANCE:
                bad.append(f"stock[{n}].units: must be >= 0 (got {item.units})")
            if item.units > TOLERANCE and not is_open[si]:
                bad.append(f"stock[{n}]: site '{item.site}' holds stock but is not open")
            stock[si, sk] += item.units
        for sw, si, sk in zip(*np.nonzero(shipped - stock[None] > TOLERANCE * np.maximum(1.0, stock[None]))):
            bad.append(
                f"site '{net.site_ids[si]}', sku '{net.sku_ids[sk]}', scenario '{net.scenario_ids[sw]}': "
                f"ships {shipped[sw, si, sk]:.6g} units but stocks {stock[si, sk]:.6g}"
            )
    volume_used = stock @ net.volume
    for site in range(I):
        if exceeds(volume_used[site], net.capacity[site] if is_open[site] else 0.0):
            bad.append(f"site '{net.site_ids[site]}': stock volume {volume_used[site]:.6g} > capacity {net.capacity[site]:.6g}")

    total_demand = net.demand.sum() * net.factor
    share = within / np.maximum(total_demand, 1e-300)
    if inst.service:
        need_share = inst.service.min_share_within_promise
        for w in range(W):
            if within[w] < need_share * total_demand[w] - TOLERANCE * max(1.0, total_demand[w]):
                bad.append(
                    f"scenario '{net.scenario_ids[w]}': {share[w]:.6g} of demand served within "
                    f"{inst.service.promise_minutes:g} minutes (promise share {need_share:g})"
                )
    if inst.single_source:
        for j, sites in sorted(sources.items()):
            if len(sites) > 1:
                names = ", ".join(net.site_ids[i] for i in sorted(sites))
                bad.append(f"zone '{net.zone_ids[j]}': served by {names} (single_source allows one site)")

    fixed = float(net.fixed_cost[is_open].sum())
    holding = float((stock * net.holding[None, :]).sum())
    expected = float(net.probability @ (transport + penalty))
    details = {
        "fixed_cost": fixed,
        "holding_cost": holding,
        "transport_cost": float(net.probability @ transport),
        "depot_and_lost_cost": float(net.probability @ penalty),
        "open_sites": int(is_open.sum()),
        "share_within_promise": {net.scenario_ids[w]: float(share[w]) for w in range(W)},
        "depot_units": {net.scenario_ids[w]: float(depot_units[w]) for w in range(W)},
        "lost_units": {net.scenario_ids[w]: float(lost_units[w]) for w in range(W)},
    }
    return Evaluation(objective=fixed + holding + expected, violations=bad, details=details)


# ----------------------------------------------------------------------------- generator


def generate(
    n_sites: int = 40,
    n_zones: int = 400,
    *,
    seed: int = 0,
    n_skus: int = 1,
    capacity_ratio: float = 3.0,
    side_km: float = 30.0,
    promise_minutes: float | None = 30.0,
    min_share_within_promise: float = 0.9,
    minutes_per_km: float = 2.5,
    cost_per_unit_km: float = 0.4,
    max_minutes: float | None = 60.0,
    depot_cost_per_unit: float | None = 25.0,
    open_sites: int = 0,
    closed_sites: int = 0,
    max_open_sites: int | None = None,
    scenarios: list[tuple[str, float, float]] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A seeded random city as a plain instance document (validate with ``parse_instance``).

    Zones and sites lie in a ``side_km`` square, zones denser near the centre; demand is
    lognormal; fixed costs grow with capacity; total site capacity is ``capacity_ratio``
    times the demand volume (Cornuejols et al. style). Arcs exist up to ``max_minutes``.
    """
    rng = np.random.default_rng(seed)
    centre = side_km / 2
    zx = np.clip(rng.normal(centre, side_km / 4, n_zones), 0, side_km)
    zy = np.clip(rng.normal(centre, side_km / 4, n_zones), 0, side_km)
    sx, sy = rng.uniform(0, side_km, n_sites), rng.uniform(0, side_km, n_sites)
    skus = [
        {"id": f"sku-{k + 1:02d}", "unit_volume": round(float(rng.uniform(0.5, 2.0)), 2), "holding_cost": round(float(rng.uniform(0.0, 0.5)), 2)}
        for k in range(n_skus)
    ]
    demand = np.round(rng.lognormal(3.0, 0.6, (n_zones, n_skus)), 1)
    total_volume = float((demand * np.array([s["unit_volume"] for s in skus])).sum())
    peak = max((f for _, _, f in scenarios), default=1.0) if scenarios else 1.0
    cap = rng.uniform(0.6, 1.4, n_sites)
    cap = np.round(cap / cap.sum() * capacity_ratio * total_volume * peak, 0)
    # rent: dearer towards the centre, so the network trades fixed cost against distance
    rent = 6.0 + 8.0 * np.exp(-(((sx - centre) ** 2 + (sy - centre) ** 2) / (side_km / 3) ** 2))
    fixed = np.round(cap * rent * rng.uniform(0.8, 1.2, n_sites), 0)
    status = ["candidate"] * n_sites
    for i in range(open_sites):
        status[i] = "open"
    for i in range(open_sites, open_sites + closed_sites):
        status[i] = "closed"

    dist = np.hypot(sx[:, None] - zx[None, :], sy[:, None] - zy[None, :])
    minutes = dist * minutes_per_km
    arcs = []
    for i, j in zip(*np.nonzero(minutes <= (max_minutes if max_minutes is not None else np.inf))):
        arcs.append(
            {"site": f"fw-{i + 1:03d}", "zone": f"z-{j + 1:04d}", "cost_per_unit": round(float(1.0 + cost_per_unit_km * dist[i, j]), 3), "minutes": round(float(minutes[i, j]), 1)}
        )
    doc: dict[str, Any] = {
        "problem": PROBLEM,
        "schema_version": 1,
        "name": name or f"city-{n_sites}x{n_zones}-s{seed}",
        "skus": skus,
        "sites": [
            {"id": f"fw-{i + 1:03d}", "fixed_cost": float(fixed[i]), "capacity": float(cap[i]), "x": round(float(sx[i]), 3), "y": round(float(sy[i]), 3), "status": status[i]}
            for i in range(n_sites)
        ],
        "zones": [
            {"id": f"z-{j + 1:04d}", "x": round(float(zx[j]), 3), "y": round(float(zy[j]), 3), "demand": {s["id"]: float(demand[j, k]) for k, s in enumerate(skus)}}
            for j in range(n_zones)
        ],
        "arcs": arcs,
    }
    if depot_cost_per_unit is not None:
        doc["depot"] = {"cost_per_unit": depot_cost_per_unit}
    if promise_minutes is not None:
        doc["service"] = {"promise_minutes": promise_minutes, "min_share_within_promise": min_share_within_promise}
    if max_open_sites is not None:
        doc["max_open_sites"] = max_open_sites
    if scenarios:
        doc["scenarios"] = [{"id": i, "probability": p, "demand_factor": f} for i, p, f in scenarios]
    return doc
