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
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

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
    max_skus: PositiveInt | None = Field(None, description="at most this many SKUs stocked here")


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
    cost_per_unit_by_sku: dict[Id, NonNegativeFloat] = Field(default_factory=dict, description="overrides cost_per_unit")


class Service(Strict):
    promise_minutes: NonNegativeFloat
    min_share_within_promise: float = Field(ge=0.0, le=1.0)


class DemandOverride(Strict):
    """Scenario demand of one zone and/or one SKU (both omitted: every zone and SKU)."""

    zone: Id | None = None
    sku: Id | None = None
    factor: NonNegativeFloat | None = Field(None, description="times base demand (instead of demand_factor)")
    units: NonNegativeFloat | None = Field(None, description="absolute units (zone and sku required)")


class Scenario(Strict):
    id: Id
    probability: float = Field(gt=0.0, le=1.0)
    demand_factor: NonNegativeFloat = 1.0
    demand_overrides: list[DemandOverride] = Field(default_factory=list, description="applied in order, later ones win")
    min_share_within_promise: float | None = Field(None, ge=0.0, le=1.0, description="overrides service's share")
    presale_share: float = Field(0.0, ge=0.0, le=1.0, description="share of demand known early and stocked for it")
    transfer_cost_per_unit: NonNegativeFloat | None = Field(None, description="allows transfers between open sites")
    transfer_max_minutes: NonNegativeFloat | None = Field(None, description="only between sites this close")


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
    transfer_minutes_per_distance: PositiveFloat | None = Field(
        None, description="minutes between sites per unit of coordinate distance (default: travel's)"
    )


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
    problems += _unknown_skus(raw.get("lost_sale_cost"), "lost_sale_cost", skus)

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

    depot = raw.get("depot")
    problems += _unknown_skus(depot.get("cost_per_unit_by_sku") if isinstance(depot, dict) else None, "depot.cost_per_unit_by_sku", skus)

    scenarios = raw.get("scenarios")
    scenario_list = scenarios if isinstance(scenarios, list) else []
    probs = [s.get("probability") if isinstance(s, dict) else None for s in scenario_list]
    if scenario_list and all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in probs):
        total = math.fsum(probs)  # type: ignore[arg-type]
        if abs(total - 1.0) > 1e-6:
            problems.append(Problem("scenarios", f"probabilities must sum to 1 (got {total:.6g})"))
    for w, sc in enumerate(scenario_list):
        if isinstance(sc, dict):
            problems += _scenario_checks(raw, sc, f"scenarios[{w}]", skus, zones)
    return problems


def _unknown_skus(by_sku: Any, where: str, skus: set[str]) -> list[Problem]:
    """Keys of a per-SKU mapping that name no SKU."""
    keys = by_sku if isinstance(by_sku, dict) else {}
    return [Problem(f"{where}.{sku}", f"unknown sku '{sku}'{_known(skus)}") for sku in keys if skus and sku not in skus]


def _scenario_checks(raw: dict[str, Any], sc: dict[str, Any], where: str, skus: set[str], zones: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    overrides = sc.get("demand_overrides")
    for n, o in enumerate(overrides if isinstance(overrides, list) else []):
        if not isinstance(o, dict):
            continue
        at = f"{where}.demand_overrides[{n}]"
        if isinstance(o.get("zone"), str) and zones and o["zone"] not in zones:
            problems.append(Problem(f"{at}.zone", f"unknown zone '{o['zone']}'"))
        if isinstance(o.get("sku"), str) and skus and o["sku"] not in skus:
            problems.append(Problem(f"{at}.sku", f"unknown sku '{o['sku']}'{_known(skus)}"))
        if (o.get("factor") is None) == (o.get("units") is None):
            problems.append(Problem(at, "give exactly one of `factor` and `units`"))
        elif o.get("units") is not None and (o.get("zone") is None or o.get("sku") is None):
            problems.append(Problem(at, "`units` sets one zone's demand of one SKU: give `zone` and `sku`"))
    if sc.get("transfer_max_minutes") is not None:
        if sc.get("transfer_cost_per_unit") is None:
            problems.append(Problem(f"{where}.transfer_max_minutes", "set `transfer_cost_per_unit` to allow transfers"))
        travel = raw.get("travel")
        if raw.get("transfer_minutes_per_distance") is None and not isinstance(travel, dict):
            problems.append(
                Problem(f"{where}.transfer_max_minutes", "give `transfer_minutes_per_distance` (or `travel`) to know minutes between sites")
            )
        for i, site in enumerate(_dicts(raw.get("sites"))):
            if site.get("x") is None or site.get("y") is None:
                problems.append(Problem(f"sites[{i}]", "x and y are needed to limit transfers by minutes"))
                break
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
    wanted = net.scen_demand.max(axis=0) if len(net.scenario_ids) else net.demand
    for j, k in zip(*np.nonzero((wanted > 0) & ~reachable[:, None] & ~fallback[None, :])):
        problems.append(
            Problem(f"zones[{j}].demand.{net.sku_ids[k]}", f"{wanted[j, k]:g} units with no arc from a usable site, no depot and no lost-sale cost")
        )
    volume = net.peak_volume_needing_sites()
    if volume > 0:
        capacity = _best_capacity(net, inst.max_open_sites, np.ones(len(net.site_ids), bool))
        if exceeds(volume, capacity):
            problems.append(
                Problem("sites", f"the capacity of the sites that may open ({capacity:,.6g}) < volume of demand that must be served {volume:,.6g}: no feasible solution")
            )
    if inst.service is not None:
        problems += _promise_checks(inst, net)
    return problems


def _best_capacity(net: Network, max_open: int | None, eligible: np.ndarray) -> float:
    """Most volume any allowed set of open sites among ``eligible`` can hold."""
    free = np.sort(net.capacity[eligible & ~net.closed & ~net.must_open])[::-1]
    fixed = float(net.capacity[eligible & net.must_open].sum())
    if max_open is not None:
        free = free[: max(0, max_open - int(net.must_open.sum()))]
    return fixed + float(free.sum())


def _promise_checks(inst: FrontWarehouse, net: Network) -> list[Problem]:
    """The promise share must be reachable by the demand within the promise of some site,
    and the volume of that share must fit in the sites that can open."""
    assert inst.service is not None
    problems = []
    within = net.within_promise
    covered = np.zeros(len(net.zone_ids), bool)
    covered[net.arc_zone[within]] = True
    promise_sites = np.zeros(len(net.site_ids), bool)
    promise_sites[net.arc_site[within]] = True
    any_transfers = any(len(f) for f in net.transfer_from)
    capacity = _best_capacity(net, inst.max_open_sites, np.ones_like(promise_sites) if any_transfers else promise_sites)
    for w, scenario in enumerate(net.scenario_ids):
        share = float(net.promise_share[w])
        d = net.scen_demand[w]
        total = float(d.sum())
        if share <= 0 or total <= 0:
            continue
        where = "service.min_share_within_promise" if (inst.scenarios is None or inst.scenarios[w].min_share_within_promise is None) else f"scenarios[{w}].min_share_within_promise"
        label = "" if inst.scenarios is None else f" in scenario '{scenario}'"
        reachable = d[covered].sum(axis=0)  # (K,) units within the promise of some usable site
        if float(reachable.sum()) < share * total * (1 - TOLERANCE):
            problems.append(
                Problem(where, f"only {reachable.sum() / total:.4g} of demand{label} lies within {inst.service.promise_minutes:g} minutes of any usable site (asked {share:g})")
            )
            continue
        # least volume that carries the share: the smallest SKUs first
        need, volume = share * total, 0.0
        for k in np.argsort(net.volume, kind="stable"):
            take = min(need, float(reachable[k]))
            volume += take * net.volume[k]
            need -= take
        if exceeds(volume, capacity):
            problems.append(
                Problem(where, f"serving {share:g} of demand{label} within the promise needs stock volume {volume:,.6g} but the sites that can open hold at most {capacity:,.6g}")
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
    max_skus: np.ndarray  # (I,) int, 0 = no limit
    volume: np.ndarray  # (K,)
    holding: np.ndarray  # (K,)
    demand: np.ndarray  # (J, K) base demand
    scen_demand: np.ndarray  # (W, J, K) demand in each scenario
    probability: np.ndarray  # (W,)
    promise_share: np.ndarray  # (W,) least share served within the promise
    presale: np.ndarray  # (W,) share of demand known early
    transfer_cost: np.ndarray  # (W,) per unit; nan = no transfers in that scenario
    transfer_from: list[np.ndarray]  # per scenario: allowed (from, to) site pairs
    transfer_to: list[np.ndarray]
    arc_site: np.ndarray  # (A,) int
    arc_zone: np.ndarray  # (A,) int
    arc_cost: np.ndarray  # (A,) per unit
    arc_minutes: np.ndarray  # (A,)
    has_depot: bool
    depot_cost: np.ndarray  # (K,) per unit
    lost_allowed: np.ndarray  # (K,) bool
    lost_cost: np.ndarray  # (K,)
    within_promise: np.ndarray  # (A,) bool

    def scenario_demand(self, w: int) -> np.ndarray:
        return self.scen_demand[w]

    @property
    def fallback_cost(self) -> np.ndarray:
        """(K,) cheapest way not to serve a unit from a site: depot or lost sale (inf: none)."""
        depot = self.depot_cost if self.has_depot else np.full(len(self.sku_ids), np.inf)
        return np.minimum(depot, np.where(self.lost_allowed, self.lost_cost, np.inf))

    def peak_volume_needing_sites(self) -> float:
        """Stock volume the largest scenario needs at sites: demand of SKUs with no depot and
        no lost sales to fall back on (0 when there is a depot)."""
        if self.has_depot or not len(self.scenario_ids):
            return 0.0
        hard = ~self.lost_allowed
        return float(max((d[:, hard].sum(axis=0) @ self.volume[hard] for d in self.scen_demand), default=0.0))


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
        sx, sy = _coordinates(inst.sites)
        zx, zy = _coordinates(inst.zones)
        dist = np.hypot(sx[:, None] - zx[None, :], sy[:, None] - zy[None, :])
        minutes = dist * inst.travel.minutes_per_distance
        keep = np.ones_like(dist, bool) if inst.travel.max_minutes is None else minutes <= inst.travel.max_minutes
        a_site, a_zone = np.nonzero(keep)
        a_cost = dist[keep] * inst.travel.cost_per_unit_distance
        a_min = minutes[keep]
    usable = ~closed[a_site] if a_site.size else np.zeros(0, bool)
    a_site, a_zone, a_cost, a_min = a_site[usable], a_zone[usable], a_cost[usable], a_min[usable]

    scenarios = inst.scenarios or [Scenario.model_validate({"id": "base", "probability": 1.0})]
    scen_demand = np.stack([_scenario_demand(demand, sc, zone_pos, sku_pos) for sc in scenarios])
    service_share = inst.service.min_share_within_promise if inst.service else 0.0
    promise = inst.service.promise_minutes if inst.service else np.inf
    transfer_from, transfer_to = _transfer_links(inst, scenarios, closed)
    depot_cost = np.zeros(len(sku_ids))
    if inst.depot is not None:
        depot_cost = np.array([inst.depot.cost_per_unit_by_sku.get(k, inst.depot.cost_per_unit) for k in sku_ids], dtype=float)
    return Network(
        site_ids=site_ids,
        zone_ids=zone_ids,
        sku_ids=sku_ids,
        scenario_ids=[s.id for s in scenarios],
        fixed_cost=np.array([s.fixed_cost for s in inst.sites], dtype=float),
        capacity=np.array([s.capacity for s in inst.sites], dtype=float),
        must_open=np.array([s.status == "open" for s in inst.sites]),
        closed=closed,
        max_skus=np.array([s.max_skus or 0 for s in inst.sites], dtype=np.int64),
        volume=np.array([k.unit_volume for k in inst.skus], dtype=float),
        holding=np.array([k.holding_cost for k in inst.skus], dtype=float),
        demand=demand,
        scen_demand=scen_demand,
        probability=np.array([s.probability for s in scenarios], dtype=float),
        promise_share=np.array(
            [service_share if s.min_share_within_promise is None else s.min_share_within_promise for s in scenarios], dtype=float
        )
        if inst.service
        else np.zeros(len(scenarios)),
        presale=np.array([s.presale_share for s in scenarios], dtype=float),
        transfer_cost=np.array([np.nan if s.transfer_cost_per_unit is None else s.transfer_cost_per_unit for s in scenarios]),
        transfer_from=transfer_from,
        transfer_to=transfer_to,
        arc_site=a_site.astype(np.int64),
        arc_zone=a_zone.astype(np.int64),
        arc_cost=a_cost.astype(float),
        arc_minutes=a_min.astype(float),
        has_depot=inst.depot is not None,
        depot_cost=depot_cost,
        lost_allowed=np.array([k in inst.lost_sale_cost for k in sku_ids]),
        lost_cost=np.array([inst.lost_sale_cost.get(k, 0.0) for k in sku_ids], dtype=float),
        within_promise=a_min <= promise,
    )


def _coordinates(items: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.array([i.x for i in items], dtype=float), np.array([i.y for i in items], dtype=float)


def _scenario_demand(demand: np.ndarray, sc: Scenario, zone_pos: dict[str, int], sku_pos: dict[str, int]) -> np.ndarray:
    out = demand * sc.demand_factor
    for o in sc.demand_overrides:
        rows = slice(None) if o.zone is None else zone_pos[o.zone]
        cols = slice(None) if o.sku is None else sku_pos[o.sku]
        out[rows, cols] = o.units if o.units is not None else demand[rows, cols] * (o.factor or 0.0)
    return out


def site_minutes(inst: FrontWarehouse) -> np.ndarray | None:
    """(I, I) minutes between sites from their coordinates, or None when they cannot be known."""
    per_distance = inst.transfer_minutes_per_distance or (inst.travel.minutes_per_distance if inst.travel else None)
    if per_distance is None or any(s.x is None or s.y is None for s in inst.sites):
        return None
    sx, sy = _coordinates(inst.sites)
    return np.hypot(sx[:, None] - sx[None, :], sy[:, None] - sy[None, :]) * per_distance


def _transfer_links(inst: FrontWarehouse, scenarios: list[Scenario], closed: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per scenario, the ordered pairs of usable sites that may transfer stock."""
    n = len(inst.sites)
    usable = ~closed[:, None] & ~closed[None, :] & ~np.eye(n, dtype=bool)
    minutes = site_minutes(inst) if any(s.transfer_max_minutes is not None for s in scenarios) else None
    froms, tos = [], []
    for sc in scenarios:
        if sc.transfer_cost_per_unit is None:
            allowed = np.zeros((n, n), bool)
        elif sc.transfer_max_minutes is None:
            allowed = usable
        else:
            assert minutes is not None  # cross_check asks for coordinates
            allowed = usable & (minutes <= sc.transfer_max_minutes)
        f, t = np.nonzero(allowed)
        froms.append(f.astype(np.int64))
        tos.append(t.astype(np.int64))
    return froms, tos


# ----------------------------------------------------------------------------- solution


@dataclass(frozen=True)
class Flow:
    site: str  # a site id, or "depot" / "lost"
    zone: str
    sku: str
    scenario: str
    units: float
    presale: bool = False  # served from stock placed for known pre-sale orders


@dataclass(frozen=True)
class Stock:
    site: str
    sku: str
    units: float


@dataclass(frozen=True)
class Transfer:
    source: str
    target: str
    sku: str
    scenario: str
    units: float


@dataclass
class FrontWarehouseSolution:
    open_sites: list[str]
    flows: list[Flow]
    stock: list[Stock] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        flows = [{k: v for k, v in vars(f).items() if k != "presale" or v} for f in self.flows]
        doc: dict[str, Any] = {"open_sites": list(self.open_sites), "flows": flows, "stock": [vars(s) for s in self.stock]}
        if self.transfers:
            doc["transfers"] = [{"from": t.source, "to": t.target, "sku": t.sku, "scenario": t.scenario, "units": t.units} for t in self.transfers]
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontWarehouseSolution:
        return cls(
            open_sites=list(data["open_sites"]),
            flows=[Flow(**f) for f in data.get("flows", [])],
            stock=[Stock(**s) for s in data.get("stock", [])],
            transfers=[Transfer(t["from"], t["to"], t["sku"], t["scenario"], t["units"]) for t in data.get("transfers", [])],
        )


# ----------------------------------------------------------------------------- evaluate


def evaluate(inst: FrontWarehouse, solution: FrontWarehouseSolution | dict[str, Any]) -> Evaluation:
    """Recompute the cost of ``solution`` and list every violated constraint. No solver.

    Stock not given in the solution is taken as the most a site needs of a SKU in any
    scenario (the least stock that covers every scenario). Pre-sale flows use stock placed
    for them in their scenario (holding cost weighted by the scenario's probability); it
    shares the site's volume with the plan's stock.
    """
    if isinstance(solution, dict):
        solution = FrontWarehouseSolution.from_dict(solution)
    net = network(inst)
    site_pos = {s: i for i, s in enumerate(net.site_ids)}
    zone_pos = {z: j for j, z in enumerate(net.zone_ids)}
    sku_pos = {k: i for i, k in enumerate(net.sku_ids)}
    scen_pos = {w: i for i, w in enumerate(net.scenario_ids)}
    I, J, K, W = len(net.site_ids), len(net.zone_ids), len(net.sku_ids), len(net.scenario_ids)
    arc_keys = net.arc_site.astype(np.int64) * J + net.arc_zone
    arc_order = np.argsort(arc_keys, kind="stable")
    arc_keys = arc_keys[arc_order]

    def arc_pos(i: int, j: int) -> int | None:  # the arc i -> j (a sorted array: city-scale arc lists are millions long)
        at = int(np.searchsorted(arc_keys, i * J + j))
        return int(arc_order[at]) if at < len(arc_keys) and arc_keys[at] == i * J + j else None

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
    presale_in = np.zeros((W, J, K))  # of which from pre-sale stock
    shipped = np.zeros((W, I, K))  # per site, from the plan's stock (net of transfers below)
    presale_stock = np.zeros((W, I, K))
    within = np.zeros(W)
    transport, transfer_cost, depot_units, lost_units = np.zeros(W), np.zeros(W), np.zeros(W), np.zeros(W)
    depot_cost, lost_cost = np.zeros(W), np.zeros(W)
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
        if f.site in (DEPOT, LOST) and f.presale:
            bad.append(f"{where}: only a site ships from pre-sale stock")
        if f.site == DEPOT:
            if not net.has_depot:
                bad.append(f"{where}: the instance has no depot")
            depot_units[w] += f.units
            depot_cost[w] += f.units * net.depot_cost[k]
        elif f.site == LOST:
            if not net.lost_allowed[k]:
                bad.append(f"{where}: sku '{f.sku}' has no lost-sale cost, its demand must be served")
            lost_units[w] += f.units
            lost_cost[w] += f.units * net.lost_cost[k]
        else:
            i = site_pos.get(f.site)
            a = arc_pos(i, j) if i is not None else None
            if i is None or a is None:
                bad.append(f"{where}: no arc {f.site} -> {f.zone}")
                continue
            if not is_open[i] and f.units > TOLERANCE:
                bad.append(f"{where}: site '{f.site}' ships but is not open")
            if f.presale:
                presale_stock[w, i, k] += f.units
                presale_in[w, j, k] += f.units
            else:
                shipped[w, i, k] += f.units
            transport[w] += f.units * net.arc_cost[a]
            if net.within_promise[a]:
                within[w] += f.units
            if f.units > TOLERANCE:
                sources.setdefault(j, set()).add(i)

    for w in range(W):
        need = net.scen_demand[w]
        for zj, zk in zip(*np.nonzero(np.abs(served[w] - need) > TOLERANCE * np.maximum(1.0, need))):
            bad.append(
                f"zone '{net.zone_ids[zj]}', sku '{net.sku_ids[zk]}', scenario '{net.scenario_ids[w]}': "
                f"{served[w, zj, zk]:.6g} units delivered (demand {need[zj, zk]:.6g})"
            )
        cap = net.presale[w] * need
        for zj, zk in zip(*np.nonzero(presale_in[w] - cap > TOLERANCE * np.maximum(1.0, cap))):
            bad.append(
                f"zone '{net.zone_ids[zj]}', sku '{net.sku_ids[zk]}', scenario '{net.scenario_ids[w]}': "
                f"{presale_in[w, zj, zk]:.6g} pre-sale units delivered (pre-sale demand {cap[zj, zk]:.6g})"
            )

    links = [set(zip(f.tolist(), t.tolist())) for f, t in zip(net.transfer_from, net.transfer_to)]
    for n, t in enumerate(solution.transfers):
        where = f"transfers[{n}]"
        src, dst, k, w = site_pos.get(t.source), site_pos.get(t.target), sku_pos.get(t.sku), scen_pos.get(t.scenario)
        if src is None or dst is None or k is None or w is None:
            bad.append(f"{where}: unknown site, sku or scenario ({t.source}, {t.target}, {t.sku}, {t.scenario})")
            continue
        if not math.isfinite(t.units) or t.units < -TOLERANCE:
            bad.append(f"{where}.units: must be a finite number >= 0 (got {t.units})")
            continue
        if (src, dst) not in links[w]:
            bad.append(f"{where}: scenario '{t.scenario}' allows no transfer {t.source} -> {t.target}")
            continue
        if t.units > TOLERANCE and not (is_open[src] and is_open[dst]):
            bad.append(f"{where}: transfers run between open sites only")
        shipped[w, src, k] += t.units  # leaves the source's stock ...
        shipped[w, dst, k] -= t.units  # ... and covers the target's shipments
        transfer_cost[w] += t.units * net.transfer_cost[w]

    stock = np.maximum(shipped.max(axis=0), 0.0) if W else np.zeros((I, K))
    if solution.stock:
        stock = np.zeros((I, K))
        for n, item in enumerate(solution.stock):
            si, sk = site_pos.get(item.site), sku_pos.get(item.sku)
            if si is None or sk is None:
                bad.append(f"stock[{n}]: unknown site or sku ({item.site}, {item.sku})")
                continue
            if not math.isfinite(item.units) or item.units < -TOLERANCE:
                bad.append(f"stock[{n}].units: must be a finite number >= 0 (got {item.units})")
                continue
            if item.units > TOLERANCE and not is_open[si]:
                bad.append(f"stock[{n}]: site '{item.site}' holds stock but is not open")
            stock[si, sk] += item.units
        for sw, si, sk in zip(*np.nonzero(shipped - stock[None] > TOLERANCE * np.maximum(1.0, stock[None]))):
            bad.append(
                f"site '{net.site_ids[si]}', sku '{net.sku_ids[sk]}', scenario '{net.scenario_ids[sw]}': "
                f"needs {shipped[sw, si, sk]:.6g} units (shipped + transferred out - in) but stocks {stock[si, sk]:.6g}"
            )
    volume_used = stock @ net.volume
    peak_volume = volume_used + (presale_stock @ net.volume).max(axis=0) if W else volume_used
    for site in range(I):
        limit = net.capacity[site] if is_open[site] else 0.0
        if exceeds(peak_volume[site], limit):
            extra = "" if peak_volume[site] == volume_used[site] else " (with pre-sale stock)"
            bad.append(f"site '{net.site_ids[site]}': stock volume{extra} {peak_volume[site]:.6g} > capacity {net.capacity[site]:.6g}")
        if net.max_skus[site] and int((stock[site] > TOLERANCE).sum()) > net.max_skus[site]:
            bad.append(f"site '{net.site_ids[site]}': stocks {int((stock[site] > TOLERANCE).sum())} SKUs, max_skus is {net.max_skus[site]}")

    total_demand = net.scen_demand.sum(axis=(1, 2))
    share = within / np.maximum(total_demand, 1e-300)
    if inst.service:
        for w in range(W):
            need_share = net.promise_share[w]
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
    presale_holding = (presale_stock * net.holding[None, None, :]).sum(axis=(1, 2))
    per_scenario = transport + depot_cost + lost_cost + transfer_cost + presale_holding
    p = net.probability
    ids = net.scenario_ids
    details = {
        "fixed_cost": fixed,
        "holding_cost": holding + float(p @ presale_holding),
        "transport_cost": float(p @ transport),
        "transfer_cost": float(p @ transfer_cost),
        "depot_and_lost_cost": float(p @ (depot_cost + lost_cost)),
        "open_sites": int(is_open.sum()),
        "share_within_promise": {ids[w]: float(share[w]) for w in range(W)},
        "depot_units": {ids[w]: float(depot_units[w]) for w in range(W)},
        "lost_units": {ids[w]: float(lost_units[w]) for w in range(W)},
        "scenarios": {
            ids[w]: {
                "probability": float(p[w]),
                "demand": float(total_demand[w]),
                "share_within_promise": float(share[w]),
                "depot_share": float(depot_units[w] / max(total_demand[w], 1e-300)),
                "lost_units": float(lost_units[w]),
                "transport_cost": float(transport[w]),
                "depot_cost": float(depot_cost[w]),
                "lost_sale_cost": float(lost_cost[w]),
                "transfer_cost": float(transfer_cost[w]),
                "presale_holding_cost": float(presale_holding[w]),
                "cost": float(per_scenario[w]),
            }
            for w in range(W)
        },
    }
    return Evaluation(objective=fixed + holding + float(p @ per_scenario), violations=bad, details=details)


# ----------------------------------------------------------------------------- generator


def beyond_location_core(inst: FrontWarehouse) -> list[str]:
    """What takes an instance beyond the location core (one SKU, one scenario, every zone
    served by the sites, no promise share, no limit on open sites): empty when it is the core."""
    extras = {
        "several SKUs": len(inst.skus) > 1,
        "scenarios": bool(inst.scenarios and len(inst.scenarios) > 1),
        "a depot": inst.depot is not None,
        "lost sales": bool(inst.lost_sale_cost),
        "a promise share": inst.service is not None and inst.service.min_share_within_promise > 0,
        "max_open_sites": inst.max_open_sites is not None,
    }
    return [name for name, present in extras.items() if present]


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
    lost_sale_cost: float | None = None,
    open_sites: int = 0,
    closed_sites: int = 0,
    max_open_sites: int | None = None,
    max_skus: int | None = None,
    rent_scale: float = 1.0,
    sku_groups: bool = False,
    scenarios: list[tuple[str, float, float]] | list[dict[str, Any]] | None = None,
    name: str | None = None,
    derive_arcs: bool = False,
) -> dict[str, Any]:
    """A seeded random city as a plain instance document (validate with ``parse_instance``).

    Zones and sites lie in a ``side_km`` square, zones denser near the centre; demand is
    lognormal per zone and SKU, volumes 0.5-2. With ``sku_groups`` a zone's demand of a SKU
    is its size (lognormal) times the SKU's popularity, with noise, and volumes span 0.2-5
    (small fast movers to bulky goods), holding cost growing with volume. Fixed
    costs grow with capacity and towards the centre (``rent_scale`` < 1 for networks where
    rent is a small share of the cost, as for daily city plans); total site capacity is
    ``capacity_ratio`` times the demand volume of the largest scenario (Cornuejols et al.
    style). Arcs exist up to ``max_minutes``, listed (cost 1 + ``cost_per_unit_km`` x km) or,
    with ``derive_arcs``, left to ``travel`` (cost ``cost_per_unit_km`` x km), which keeps
    city-scale files small. ``scenarios`` are (id, probability, factor)
    tuples or full scenario documents (pre-sale, transfers, overrides).
    """
    rng = np.random.default_rng(seed)
    centre = side_km / 2
    zx = np.clip(rng.normal(centre, side_km / 4, n_zones), 0, side_km)
    zy = np.clip(rng.normal(centre, side_km / 4, n_zones), 0, side_km)
    sx, sy = rng.uniform(0, side_km, n_sites), rng.uniform(0, side_km, n_sites)
    if sku_groups:
        volumes = np.round(np.exp(rng.uniform(np.log(0.2), np.log(5.0), n_skus)), 2).astype(float)
        popularity = rng.dirichlet(np.full(n_skus, 2.0)) * n_skus
        size = rng.lognormal(3.0, 0.6, n_zones)
        demand = np.round(size[:, None] * popularity[None, :] * rng.lognormal(0.0, 0.3, (n_zones, n_skus)), 1)
        holding = np.round(rng.uniform(0.05, 0.5, n_skus) * volumes, 3)
    else:
        drawn = [(round(float(rng.uniform(0.5, 2.0)), 2), round(float(rng.uniform(0.0, 0.5)), 2)) for _ in range(n_skus)]
        volumes = np.array([v for v, _ in drawn], dtype=float)
        holding = np.array([h for _, h in drawn], dtype=float)
        demand = np.round(rng.lognormal(3.0, 0.6, (n_zones, n_skus)), 1)
    skus = [{"id": f"sku-{k + 1:02d}", "unit_volume": float(volumes[k]), "holding_cost": float(holding[k])} for k in range(n_skus)]
    docs = [_scenario_doc(sc) for sc in scenarios] if scenarios else []
    peak = max((d.get("demand_factor", 1.0) for d in docs), default=1.0)
    total_volume = float((demand @ volumes).sum())
    cap = rng.uniform(0.6, 1.4, n_sites)
    cap = np.round(cap / cap.sum() * capacity_ratio * total_volume * peak, 0)
    # rent: dearer towards the centre, so the network trades fixed cost against distance
    rent = 6.0 + 8.0 * np.exp(-(((sx - centre) ** 2 + (sy - centre) ** 2) / (side_km / 3) ** 2))
    fixed = np.round(cap * rent * rent_scale * rng.uniform(0.8, 1.2, n_sites), 0)
    status = ["candidate"] * n_sites
    for i in range(open_sites):
        status[i] = "open"
    for i in range(open_sites, open_sites + closed_sites):
        status[i] = "closed"

    arcs = []
    if not derive_arcs:
        dist = np.hypot(sx[:, None] - zx[None, :], sy[:, None] - zy[None, :])
        minutes = dist * minutes_per_km
        for i, j in zip(*np.nonzero(minutes <= (max_minutes if max_minutes is not None else np.inf))):
            arcs.append(
                {"site": f"fw-{i + 1:03d}", "zone": f"z-{j + 1:04d}", "cost_per_unit": round(float(1.0 + cost_per_unit_km * dist[i, j]), 3), "minutes": round(float(minutes[i, j]), 1)}
            )
    sites = []
    for i in range(n_sites):
        site: dict[str, Any] = {"id": f"fw-{i + 1:03d}", "fixed_cost": float(fixed[i]), "capacity": float(cap[i]), "x": round(float(sx[i]), 3), "y": round(float(sy[i]), 3), "status": status[i]}
        if max_skus is not None:
            site["max_skus"] = max_skus
        sites.append(site)
    doc: dict[str, Any] = {
        "problem": PROBLEM,
        "schema_version": 1,
        "name": name or f"city-{n_sites}x{n_zones}-s{seed}",
        "skus": skus,
        "sites": sites,
        "zones": [
            {"id": f"z-{j + 1:04d}", "x": round(float(zx[j]), 3), "y": round(float(zy[j]), 3), "demand": {s["id"]: float(demand[j, k]) for k, s in enumerate(skus)}}
            for j in range(n_zones)
        ],
    }
    if derive_arcs:
        doc["travel"] = {"cost_per_unit_distance": cost_per_unit_km, "minutes_per_distance": minutes_per_km, "max_minutes": max_minutes}
    else:
        doc["arcs"] = arcs
    if depot_cost_per_unit is not None:
        doc["depot"] = {"cost_per_unit": depot_cost_per_unit}
    if lost_sale_cost is not None:
        doc["lost_sale_cost"] = {s["id"]: lost_sale_cost for s in skus}
    if promise_minutes is not None:
        doc["service"] = {"promise_minutes": promise_minutes, "min_share_within_promise": min_share_within_promise}
    if max_open_sites is not None:
        doc["max_open_sites"] = max_open_sites
    if any(d.get("transfer_max_minutes") is not None for d in docs):
        doc["transfer_minutes_per_distance"] = minutes_per_km
    if docs:
        doc["scenarios"] = docs
    return doc


def _scenario_doc(sc: tuple[str, float, float] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(sc, dict):
        return dict(sc)
    name, probability, factor = sc
    return {"id": name, "probability": probability, "demand_factor": factor}


def cornuejols(n_sites: int, n_zones: int, *, ratio: float, seed: int = 0) -> dict[str, Any]:
    """A random capacitated location instance of Cornuejols, Sridharan and Thizy (1991), as
    used across the literature: sites and zones uniform in the unit square, demand U[5, 35],
    capacities U[10, 160] scaled so that total capacity = ``ratio`` x total demand, fixed
    cost U[0, 90] + U[100, 110] x sqrt(capacity), and serving a unit costs 10 x distance
    (arcs from coordinates, every site to every zone)."""
    rng = np.random.default_rng([seed, n_sites, n_zones, int(ratio * 1000)])
    sx, sy, zx, zy = rng.random(n_sites), rng.random(n_sites), rng.random(n_zones), rng.random(n_zones)
    demand = np.round(rng.uniform(5, 35, n_zones), 3)
    capacity = rng.uniform(10, 160, n_sites)
    capacity = np.round(capacity * ratio * demand.sum() / capacity.sum(), 3)
    fixed = np.round(rng.uniform(0, 90, n_sites) + rng.uniform(100, 110, n_sites) * np.sqrt(capacity), 3)
    return {
        "problem": PROBLEM, "schema_version": 1, "name": f"cornuejols-{n_sites}x{n_zones}-r{ratio:g}-s{seed}",
        "skus": [{"id": "unit"}],
        "sites": [{"id": f"s{i + 1}", "fixed_cost": float(fixed[i]), "capacity": float(capacity[i]), "x": round(float(sx[i]), 6), "y": round(float(sy[i]), 6)}
                  for i in range(n_sites)],
        "zones": [{"id": f"c{j + 1}", "x": round(float(zx[j]), 6), "y": round(float(zy[j]), 6), "demand": {"unit": float(demand[j])}} for j in range(n_zones)],
        "travel": {"cost_per_unit_distance": 10.0, "minutes_per_distance": 1.0},
    }
