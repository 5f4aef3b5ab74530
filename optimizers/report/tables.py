"""The tables a planner reads for a result: one list of :class:`Table` per result document,
rendered by the CLI (rich, on stdout) and by the HTML report alike.

Each family's function takes the JSON result document (``Result.to_dict()``) and the instance
it was solved on, and returns the tables in reading order; text lines that are not tables
(e.g. the value of the stochastic solution) come as :class:`Table` with no columns and one
``note``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    labels: tuple[str, ...] = ()  # columns of text (left-aligned; default: the first); the rest are numbers
    total: bool = False  # the last row is a total (bold)
    header: bool = True  # False: a key/value list
    note: str = ""

    def is_label(self, k: int) -> bool:
        return self.columns[k] in self.labels if self.labels else k == 0


def fmt(value: Any) -> str:
    """A number for people: 6 significant digits, thousands separated; '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    return str(value)


def fmt_gap(gap: float | None) -> str:
    if gap is None:
        return "-"
    return "0" if gap < 1e-12 else f"{gap:.3%}" if gap >= 1e-5 else f"{gap:.1e}"


def summary(doc: dict[str, Any]) -> Table:
    rows = [
        ["status", doc["status"]],
        ["objective", fmt(doc["objective"])],
        ["bound", fmt(doc["bound"])],
        ["gap", fmt_gap(doc["gap"])],
        ["time", f"{doc['runtime_s']:.2f} s"],
        ["method", f"{doc['method']} ({doc['backend']})" if doc["backend"] else doc["method"]],
    ]
    evaluation = doc.get("evaluation")
    if evaluation:
        rows.append(["re-checked", "passes evaluate()" if evaluation["feasible"] else f"{len(evaluation['violations'])} violations"])
    return Table(f"{doc['problem']}: {doc['instance']}", ["key", "value"], rows, labels=("key", "value"), header=False)


def tables(doc: dict[str, Any], inst: Any) -> list[Table]:
    """The summary, then the family's tables (none when the result has no solution)."""
    out = [summary(doc)]
    if doc.get("solution"):
        out += FAMILY_TABLES[doc["problem"]](doc, inst)
    return out


def front_warehouse(doc: dict[str, Any], inst: Any) -> list[Table]:
    solution, evaluation = doc["solution"], doc["evaluation"] or {}
    sites = {s.id: s for s in inst.sites}
    use = site_use(solution, inst)
    zones = zones_served(solution)
    out = []
    sites_table = Table(f"{len(solution['open_sites'])} open sites",
                        ["site", "status", "fixed cost", "zones served", "SKUs", "stock volume", "capacity", "use"], labels=("site", "status"))
    for site_id in solution["open_sites"]:
        site, (used, n_skus) = sites[site_id], use.get(site_id, (0.0, 0))
        share = f"{used / site.capacity:.0%}" if site.capacity else "-"
        sites_table.rows.append([site_id, site.status, fmt(site.fixed_cost), str(len(zones.get(site_id, ()))), str(n_skus), fmt(used),
                                 fmt(site.capacity), share])
    out.append(sites_table)
    skus = [k.id for k in inst.skus]
    if 1 < len(skus) <= 12 and solution["open_sites"]:
        units: dict[tuple[str, str], float] = {}
        for s in solution["stock"]:
            units[s["site"], s["sku"]] = units.get((s["site"], s["sku"]), 0.0) + s["units"]
        grid = Table("stock (units) by site and SKU", ["site", *skus])
        for site_id in solution["open_sites"]:
            grid.rows.append([site_id, *[fmt(units.get((site_id, k))) if units.get((site_id, k)) else "-" for k in skus]])
        out.append(grid)
    costs = Table("expected cost", ["key", "value"], header=False)
    for key in ("fixed_cost", "holding_cost", "transport_cost", "transfer_cost", "depot_and_lost_cost"):
        if key in evaluation:
            costs.rows.append([key.replace("_", " "), fmt(evaluation.get(key))])
    out.append(costs)
    scenarios = evaluation.get("scenarios") or {}
    if scenarios:
        per = Table("per scenario", ["scenario", "probability", "demand", "within promise", "from depot", "lost units", "transport",
                                     "depot + lost", "transfers", "cost"])
        for name, sc in scenarios.items():
            per.rows.append([name, f"{sc['probability']:.3g}", fmt(sc["demand"]), f"{sc['share_within_promise']:.1%}", f"{sc['depot_share']:.1%}",
                             fmt(sc["lost_units"]), fmt(sc["transport_cost"]), fmt(sc["depot_cost"] + sc["lost_sale_cost"]),
                             fmt(sc["transfer_cost"]), fmt(sc["cost"])])
        out.append(per)
    mean = (doc.get("meta") or {}).get("mean_plan")
    if mean:
        if mean.get("vss") is not None:
            text = (f"value of the stochastic solution: {fmt(mean['vss'])} ({mean['vss_share']:.1%} of the mean-demand plan's "
                    f"{fmt(mean['cost_in_scenarios'])} when run through the scenarios)")
        elif mean.get("note"):
            text = f"value of the stochastic solution: {mean['note']}"
        else:
            text = f"value of the stochastic solution not computed: {mean.get('reason', 'no reason given')}"
        out.append(Table("value of the stochastic solution", note=text))
    return out


def zones_served(solution: dict[str, Any]) -> dict[str, set[str]]:
    """Per site (or "depot", "lost"), the zones it serves in any scenario."""
    zones: dict[str, set[str]] = {}
    for f in solution["flows"]:
        zones.setdefault(f["site"], set()).add(f["zone"])
    return zones


def site_use(solution: dict[str, Any], inst: Any) -> dict[str, tuple[float, int]]:
    """Per site with stock: (stock volume, number of SKUs stocked)."""
    volume = {k.id: k.unit_volume for k in inst.skus}
    used: dict[str, float] = {}
    skus: dict[str, set[str]] = {}
    for s in solution["stock"]:
        if s["units"] > 0:
            used[s["site"]] = used.get(s["site"], 0.0) + s["units"] * volume[s["sku"]]
            skus.setdefault(s["site"], set()).add(s["sku"])
    return {i: (v, len(skus[i])) for i, v in used.items()}


def incentive_budget(doc: dict[str, Any], inst: Any) -> list[Table]:
    solution, evaluation = doc["solution"], doc["evaluation"] or {}
    spent = sum(solution["spend"].values()) or 1.0
    cells = Table(f"spend by cell (budget {fmt(inst.budget)})", ["cell", "mechanic", "segment", "spend", "share", "users", "users per 1k spend"], labels=("cell", "mechanic", "segment"))
    for cell in inst.cells:
        x, users = solution["spend"][cell.id], solution["users"][cell.id]
        cells.rows.append([cell.id, cell.mechanic or "-", cell.segment or "-", fmt(x), f"{x / spent:.1%}", fmt(users),
                           fmt(1000 * users / x) if x > 0 else "-"])
    totals = Table("totals", ["key", "value"], header=False)
    for key in ("total_spend", "total_users", "total_value"):
        totals.rows.append([key.replace("_", " "), fmt(evaluation.get(key))])
    unit = "spend per extra target user" if inst.objective == "min_spend" else f"{inst.objective} per extra unit of budget"
    totals.rows.append([f"marginal value ({unit})", fmt(solution.get("marginal_value"))])
    return [cells, totals]


def membership_pricing(doc: dict[str, Any], inst: Any) -> list[Table]:
    solution = doc["solution"]
    tiers = solution.get("tiers") or {}
    keys = ("fee_revenue", "benefit_cost", "uplift_margin", "fixed_cost", "lifetime_profit")
    table = Table(f"{len(solution['fees'])} tiers offered (lifetime values)",
                  ["tier", "fee", "members", "fee revenue", "benefit cost", "uplift margin", "fixed cost", "lifetime profit"], total=True)
    if len(tiers) <= 30:
        for tier, row in tiers.items():
            table.rows.append([tier, fmt(row["fee"]), fmt(row["members"]), *(fmt(row[k]) for k in keys)])
    totals = [sum(row[k] for row in tiers.values()) for k in keys]
    table.rows.append(["total", "", fmt(sum(row["members"] for row in tiers.values())), *(fmt(v) for v in totals)])
    out = [table]
    segments = solution.get("segments") or {}
    if not segments or len(segments) > 50:
        return out
    seg = Table("segments: choice, surplus, lifetime weight and break-even fee of the chosen tier",
                ["segment", "joins", "surplus", "lifetime weight", "break-even fee", "note"], labels=("segment", "joins", "note"))
    for name, row in segments.items():
        tier = row.get("choice")
        if tier is None:
            seg.rows.append([name, "-", fmt(row.get("surplus")), "-", "-", ""])
            continue
        fee = solution["fees"].get(tier)
        even = (row.get("break_even_fee") or {}).get(tier)
        note = "costs more than it pays (adverse selection)" if even is not None and fee is not None and even > fee else ""
        seg.rows.append([name, tier, fmt(row.get("surplus")), fmt((row.get("lifetime_weight") or {}).get(tier)), fmt(even), note])
    out.append(seg)
    return out


def incentive_assignment(doc: dict[str, Any], inst: Any) -> list[Table]:
    solution = doc["solution"]
    per_unit = lambda row: fmt(row["value"] / row["spend"]) if row["spend"] else "-"  # noqa: E731
    table = Table(f"{solution['treated']:,} of {solution['users']:,} users treated; spend {fmt(solution['spend'])} of {fmt(solution['budget'])}",
                  ["treatment", "users", "spend", "value", "value per unit spent"], total=True)
    for name, row in solution["treatments"].items():
        table.rows.append([name, f"{row['users']:,}", fmt(row["spend"]), fmt(row["value"]), per_unit(row)])
    table.rows.append(["total", f"{solution['treated']:,}", fmt(solution["spend"]), fmt(solution["value"]), per_unit(solution)])
    out = [table]
    segments = solution.get("segments") or {}
    if segments and len(segments) <= 50:
        budgets = solution.get("segment_budgets") or {}
        names = list(solution["treatments"])
        seg = Table("by segment: users per treatment, spend (and budget), value", ["segment", *names, "spend", "budget", "value"])
        for name, row in segments.items():
            budget = budgets.get(name, {}).get("budget")
            seg.rows.append([name, *(f"{row['by_treatment'].get(t, 0):,}" for t in names), fmt(row["spend"]), fmt(budget), fmt(row["value"])])
        out.append(seg)
    return out


FAMILY_TABLES = {
    "front_warehouse": front_warehouse,
    "incentive_budget": incentive_budget,
    "membership_pricing": membership_pricing,
    "incentive_assignment": incentive_assignment,
}
