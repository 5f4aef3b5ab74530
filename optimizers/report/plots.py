"""Plots of a result as PNG (matplotlib, the ``plot`` extra): per family, what a planner checks first.

- front_warehouse: a map of the sites (opened, existing, not opened, closed) and the zones
  coloured by the site serving most of their demand in the most likely scenario, with the
  promise radius around every open site; stock volume against capacity per open site.
- incentive_budget: every cell's response curve (users against spend, viral multiplier
  included) with the chosen spend marked; the budget frontier (best objective per budget
  level) with its marginal value and the instance's budget marked.
- membership_pricing: lifetime profit against each offered tier's fee (the other fees held)
  with the chosen fee marked; which tier each segment joins (shares under a logit model).
- incentive_assignment: spend and value per treatment; treated users per treatment and segment.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global backend change), so
plotting from a library call leaves the caller's matplotlib state alone.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import UsageError
from optimizers.report.tables import fmt, site_use, zones_served

#: the most bars or curves a panel draws before it shows only the largest ones
MAX_ITEMS = 40


def figure(doc: dict[str, Any], inst: Any) -> Any:
    """The result's figure (a ``matplotlib.figure.Figure``)."""
    if "levels" in doc:  # a document of `ecomopt frontier`
        fig = _new_figure(1, (8, 5))
        _frontier_panel(fig.axes[0], doc["levels"], inst)
        fig.suptitle(f"{doc['instance']}: budget frontier ({len(doc['levels'])} levels)", fontsize=11)
        return fig
    if not doc.get("solution"):
        raise UsageError(f"{doc.get('instance')}: the result has no solution to plot (status {doc.get('status')})")
    return FAMILY_PLOTS[doc["problem"]](doc, inst)


def plot(doc: dict[str, Any], inst: Any, path: str | Path) -> Path:
    """Write the result's figure to ``path`` (PNG)."""
    path = Path(path)
    path.write_bytes(png_bytes(doc, inst, dpi=110))
    return path


def png_bytes(doc: dict[str, Any], inst: Any, dpi: int = 90) -> bytes:
    buffer = io.BytesIO()
    figure(doc, inst).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _new_figure(panels: int, size: tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("plots need matplotlib: pip install 'ecomopt[plot]'") from None
    fig = Figure(figsize=size, layout="constrained")
    fig.subplots(1, panels, squeeze=False)
    return fig


def short_number(v: float) -> str:
    """A tick label: 250 k, 1.5 M, 86 bn (instead of a shared 1e10 factor)."""
    for above, size, unit in ((1e9, 1e9, " bn"), (1e6, 1e6, " M"), (1e4, 1e3, " k")):
        if abs(v) >= above:
            return f"{v / size:,.4g}{unit}"
    return f"{v:,.4g}"


def _short_numbers(*axes: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    for axis in axes:
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: short_number(v)))


def _title(fig: Any, doc: dict[str, Any]) -> None:
    gap = doc.get("gap")
    gap_text = "" if gap is None else ", gap 0" if gap < 1e-12 else f", gap {gap:.2%}" if gap >= 1e-4 else f", gap {gap:.0e}"
    fig.suptitle(f"{doc['instance']}: {doc['status']}, objective {fmt(doc['objective'])}{gap_text}", fontsize=11)


# ------------------------------------------------------------------------------ front warehouse


def front_warehouse(doc: dict[str, Any], inst: Any) -> Any:
    fig = _new_figure(2, (14, 6.5))
    ax_map, ax_use = fig.axes
    solution = doc["solution"]
    colours = _colours(solution["open_sites"])
    if all(s.x is not None and s.y is not None for s in inst.sites) and all(z.x is not None and z.y is not None for z in inst.zones):
        _network_map(ax_map, solution, inst, colours)
    else:
        _zones_per_site(ax_map, solution, colours)
    _stock_use(ax_use, solution, inst, colours)
    _title(fig, doc)
    return fig


def _colours(site_ids: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    palette = [c for name in ("tab10", "Dark2", "Set2", "tab20b") for c in colormaps[name].colors]  # type: ignore[attr-defined]
    return {i: palette[k % len(palette)] for k, i in enumerate(site_ids)}


def _main_scenario(inst: Any) -> str:
    if not inst.scenarios:
        return "base"
    return max(inst.scenarios, key=lambda s: s.probability).id


def serving_site(solution: dict[str, Any], inst: Any) -> dict[str, str]:
    """Per zone, the site serving most of its units in the most likely scenario
    ("depot" or "lost" when neither site serves more)."""
    scenario = _main_scenario(inst)
    units: dict[str, dict[str, float]] = {}
    for f in solution["flows"]:
        if f["scenario"] == scenario and f["units"] > 0:
            by_site = units.setdefault(f["zone"], {})
            by_site[f["site"]] = by_site.get(f["site"], 0.0) + f["units"]
    return {zone: max(by_site, key=by_site.__getitem__) for zone, by_site in units.items()}


def _network_map(ax: Any, solution: dict[str, Any], inst: Any, colours: dict[str, Any]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    serving = serving_site(solution, inst)
    zx = np.array([z.x for z in inst.zones], dtype=float)
    zy = np.array([z.y for z in inst.zones], dtype=float)
    grey = (0.75, 0.75, 0.75)
    zone_colour = [colours.get(serving.get(z.id, ""), grey) for z in inst.zones]
    size = 18 if len(inst.zones) <= 2000 else 4
    ax.scatter(zx, zy, s=size, c=zone_colour, marker="o", linewidths=0, alpha=0.8, zorder=2)

    radius = promise_radius(inst)
    opened = set(solution["open_sites"])
    big = len(opened) <= 60  # many open sites: smaller markers
    for s in inst.sites:
        if s.id in opened:
            marker = "s" if s.status == "open" else "*"
            ax.scatter([s.x], [s.y], s=(140 if marker == "*" else 70) if big else 30, marker=marker, color=colours[s.id], edgecolors="black", linewidths=0.8, zorder=4)
            if radius.get(s.id):
                ax.add_patch(Circle((s.x, s.y), radius[s.id], fill=False, linestyle="--", linewidth=0.8, edgecolor=colours[s.id], alpha=0.7, zorder=3))
        elif s.status == "closed":
            ax.scatter([s.x], [s.y], s=40, marker="x", color="dimgray", zorder=3)
        else:
            ax.scatter([s.x], [s.y], s=40, marker="^", facecolors="none", edgecolors="dimgray", linewidths=0.8, zorder=3)
    handles = [
        Line2D([], [], marker="*", linestyle="", markersize=12, markerfacecolor="white", markeredgecolor="black", label="opened"),
        Line2D([], [], marker="s", linestyle="", markersize=8, markerfacecolor="white", markeredgecolor="black", label="existing (open)"),
        Line2D([], [], marker="^", linestyle="", markersize=7, markerfacecolor="none", markeredgecolor="dimgray", label="candidate, not opened"),
        Line2D([], [], marker="x", linestyle="", markersize=7, color="dimgray", label="closed"),
        Line2D([], [], marker="o", linestyle="", markersize=5, color=grey, label="zone served by the depot or lost"),
    ]
    if radius:
        how = "" if inst.travel is not None else ", to the farthest zone within it"
        handles.append(Line2D([], [], linestyle="--", color="black", linewidth=0.8, label=f"promise radius ({inst.service.promise_minutes:g} min{how})"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=7, frameon=False)
    ax.set_aspect("equal", adjustable="datalim")
    scenario = _main_scenario(inst)
    ax.set_title("network: zones coloured by serving site" + (f" (scenario {scenario})" if inst.scenarios else ""), fontsize=10)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def promise_radius(inst: Any) -> dict[str, float]:
    """Per site, the distance it reaches within the promise: from the travel speed, or (arcs
    given with minutes) the distance to its farthest zone within the promise."""
    if inst.service is None:
        return {}
    promise = inst.service.promise_minutes
    if inst.travel is not None:
        speed = inst.travel.minutes_per_distance
        return {s.id: promise / speed for s in inst.sites} if speed > 0 else {}
    where = {z.id: (z.x, z.y) for z in inst.zones}
    reach: dict[str, float] = {}
    for s in inst.sites:
        reach[s.id] = 0.0
    sites = {s.id: s for s in inst.sites}
    for a in inst.arcs or ():
        if a.minutes is not None and a.minutes <= promise:
            s, (x, y) = sites[a.site], where[a.zone]
            reach[a.site] = max(reach[a.site], float(np.hypot(x - s.x, y - s.y)))
    return {i: r for i, r in reach.items() if r > 0}


def _zones_per_site(ax: Any, solution: dict[str, Any], colours: dict[str, Any]) -> None:
    """Without coordinates: zones each open site serves (no map can be drawn)."""
    zones = zones_served(solution)
    ids = sorted(colours, key=lambda i: -len(zones.get(i, ())))[:MAX_ITEMS]
    ax.barh(ids[::-1], [len(zones.get(i, ())) for i in ids[::-1]], color=[colours[i] for i in ids[::-1]])
    ax.set_title("zones served per open site (the instance has no coordinates: no map)", fontsize=10)
    ax.set_xlabel("zones")
    ax.tick_params(axis="y", labelsize=7)


def _stock_use(ax: Any, solution: dict[str, Any], inst: Any, colours: dict[str, Any]) -> None:
    use = site_use(solution, inst)
    capacity = {s.id: s.capacity for s in inst.sites}
    ids = sorted(solution["open_sites"], key=lambda i: -use.get(i, (0.0, 0))[0])
    shown = ids[:MAX_ITEMS][::-1]
    used = [use.get(i, (0.0, 0))[0] for i in shown]
    ax.barh(shown, [capacity[i] for i in shown], color="0.9", edgecolor="0.6", linewidth=0.5, label="capacity")
    ax.barh(shown, used, color=[colours[i] for i in shown], label="stock volume")
    for k, i in enumerate(shown):
        if capacity[i] > 0:
            ax.text(capacity[i], k, f" {used[k] / capacity[i]:.0%}", va="center", fontsize=7)
    more = f" (the {MAX_ITEMS} fullest of {len(ids)})" if len(ids) > MAX_ITEMS else ""
    ax.set_title(f"stock volume use per open site{more}", fontsize=10)
    ax.set_xlabel("volume")
    ax.margins(x=0.08)
    _short_numbers(ax.xaxis)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="lower right", fontsize=7)


# ------------------------------------------------------------------------------ incentive budget


def incentive_budget(doc: dict[str, Any], inst: Any, levels: list[dict[str, Any]] | None = None) -> Any:
    fig = _new_figure(2, (14, 6))
    ax_curves, ax_frontier = fig.axes
    _response_curves(ax_curves, doc["solution"], inst)
    if inst.objective == "min_spend":
        ax_frontier.text(0.5, 0.5, "the budget frontier is for objectives users and value\n(this instance minimises spend for a target)",
                         ha="center", va="center", transform=ax_frontier.transAxes)
        ax_frontier.set_axis_off()
    else:
        _frontier_panel(ax_frontier, levels if levels is not None else budget_frontier(inst), inst)
    _title(fig, doc)
    return fig


def _response_curves(ax: Any, solution: dict[str, Any], inst: Any) -> None:
    from models.incentive_budget import direct_users

    cells = sorted(inst.cells, key=lambda c: -solution["users"][c.id])[:MAX_ITEMS]
    top = max([inst.budget, *(solution["spend"][c.id] for c in cells)]) or 1.0
    for cell in cells:
        end = min(top, cell.max_spend) if cell.max_spend is not None else top
        xs = np.linspace(0.0, end, 200)
        line = ax.plot(xs, direct_users(cell.response, xs) * cell.multiplier, linewidth=1.2, label=cell.id)[0]
        x = solution["spend"][cell.id]
        ax.plot([x], [solution["users"][cell.id]], marker="o", markersize=6, color=line.get_color(), markeredgecolor="black")
    if len(cells) <= 15:
        ax.legend(fontsize=7, loc="upper left")
    more = f" (the {MAX_ITEMS} largest of {len(inst.cells)})" if len(inst.cells) > MAX_ITEMS else ""
    ax.set_title(f"response curves with the chosen spend (dots){more}", fontsize=10)
    ax.set_xlabel("spend")
    ax.set_ylabel("users (viral referrals included)")
    _short_numbers(ax.xaxis, ax.yaxis)


_frontiers: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (instance digest, points): levels, for a plot and its report


def budget_frontier(inst: Any, points: int = 8) -> list[dict[str, Any]]:
    """The best plan at budget levels from a quarter to twice the instance's budget (computed
    once per instance in a process: a plot and the report that embeds it share it)."""
    from optimizers.incentive_budget.exact import frontier
    from optimizers.registry import instance_digest
    from optimizers.result import SolverOptions

    key = (instance_digest(inst), points)
    if key not in _frontiers:
        budget = inst.budget or 1.0
        levels = sorted({budget * f for f in np.linspace(0.25, 2.0, points)} | {budget})
        _frontiers[key] = frontier(inst, levels, SolverOptions(gap=1e-4, time_limit_s=10.0))
    return _frontiers[key]


def _frontier_panel(ax: Any, levels: list[dict[str, Any]], inst: Any) -> None:
    rows = [r for r in levels if r.get("value") is not None or r.get("users") is not None]
    key = "value" if inst.objective == "value" else "users"
    xs = [r["budget"] for r in rows]
    ax.plot(xs, [r[key] for r in rows], marker="o", color="tab:blue", label=f"best {key}")
    ax.axvline(inst.budget, color="black", linestyle=":", linewidth=1, label=f"this budget ({fmt(inst.budget)})")
    ax.set_xlabel("budget")
    ax.set_ylabel(f"best {key}", color="tab:blue")
    _short_numbers(ax.xaxis, ax.yaxis)
    marginal = [(r["budget"], r["marginal_value"]) for r in rows if r.get("marginal_value") is not None]
    if marginal:
        twin = ax.twinx()
        twin.plot(*zip(*marginal), marker="s", linestyle="--", color="tab:red", label="marginal value")
        twin.set_ylabel(f"marginal value ({key} per extra unit of budget)", color="tab:red")
        twin.set_ylim(bottom=0)
        twin.legend(loc="lower right", fontsize=7)
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title("budget frontier and marginal value", fontsize=10)


# ------------------------------------------------------------------------------ membership pricing


def membership_pricing(doc: dict[str, Any], inst: Any) -> Any:
    fig = _new_figure(2, (14, 6))
    ax_profit, ax_choice = fig.axes
    solution = doc["solution"]
    _profit_curves(ax_profit, solution, inst, doc["objective"])
    _segment_choices(ax_choice, solution, inst)
    _title(fig, doc)
    return fig


def _profit_curves(ax: Any, solution: dict[str, Any], inst: Any, objective: float | None) -> None:
    from models.membership_pricing import profit_curve

    curves = solution.get("profit_curve") or {t: profit_curve(inst, solution["fees"], t) for t in solution["fees"]}
    for tier, points in curves.items():
        fees = np.array([p["fee"] for p in points])
        profit = np.array([p["profit"] for p in points])
        feasible = np.array([p["feasible"] for p in points])
        line = ax.plot(fees, profit, linewidth=1.2, label=tier)[0]
        if (~feasible).any():
            ax.scatter(fees[~feasible], profit[~feasible], s=18, facecolors="none", edgecolors=line.get_color(), zorder=3)
        if tier in solution["fees"] and objective is not None:
            ax.plot([solution["fees"][tier]], [objective], marker="*", markersize=13, color=line.get_color(), markeredgecolor="black", zorder=4)
    ax.set_title("lifetime profit against each tier's fee (others held); stars: the plan, hollow: breaks the fee order", fontsize=9)
    ax.set_xlabel("fee per year")
    ax.set_ylabel("lifetime profit")
    _short_numbers(ax.yaxis)
    ax.legend(fontsize=7)


def _segment_choices(ax: Any, solution: dict[str, Any], inst: Any) -> None:
    tiers = [t.id for t in inst.tiers]
    colours = dict(zip(tiers, _colours(tiers).values()))
    size = {s.id: s.size for s in inst.segments}
    shares = solution.get("shares") or {
        s: ({c: 1.0} if c is not None else {"none": 1.0}) for s, c in (solution.get("choices") or {}).items()
    }
    segments = sorted(shares, key=lambda s: -size.get(s, 0.0))[:MAX_ITEMS][::-1]
    left = np.zeros(len(segments))
    for tier in [*tiers, "none"]:
        width = np.array([size[s] * shares[s].get(tier, 0.0) for s in segments])
        if width.any():
            ax.barh(segments, width, left=left, color=colours.get(tier, "0.85"), label="no membership" if tier == "none" else tier)
            left += width
    ax.set_title("who joins which tier (customers per segment" + (", logit shares)" if solution.get("shares") else ")"), fontsize=10)
    ax.set_xlabel("customers")
    _short_numbers(ax.xaxis)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")


# ------------------------------------------------------------------------------ incentive assignment


def incentive_assignment(doc: dict[str, Any], inst: Any) -> Any:
    solution = doc["solution"]
    segments = solution.get("segments") or {}
    fig = _new_figure(2 if segments else 1, (14 if segments else 8, 6))
    _by_treatment(fig.axes[0], solution)
    if segments:
        _by_segment(fig.axes[1], solution)
    _title(fig, doc)
    return fig


def _by_treatment(ax: Any, solution: dict[str, Any]) -> None:
    names = list(solution["treatments"])
    rows = [solution["treatments"][t] for t in names]
    at = np.arange(len(names))
    ax.bar(at - 0.2, [r["spend"] for r in rows], width=0.4, color="tab:orange", label="spend")
    ax.bar(at + 0.2, [r["value"] for r in rows], width=0.4, color="tab:green", label="value")
    for k, r in enumerate(rows):
        ax.text(k, max(r["spend"], r["value"]), f"{r['users']:,} users\n{r['value'] / r['spend']:.2f} per unit" if r["spend"] else f"{r['users']:,} users",
                ha="center", va="bottom", fontsize=7)
    ax.set_xticks(at, names, rotation=20, fontsize=8)
    ax.margins(y=0.12)
    _short_numbers(ax.yaxis)
    ax.set_title(f"spend and value by treatment ({solution['treated']:,} of {solution['users']:,} users treated)", fontsize=10)
    ax.legend(fontsize=7)


def _by_segment(ax: Any, solution: dict[str, Any]) -> None:
    names = list(solution["treatments"])
    colours = _colours(names)
    segments = sorted(solution["segments"], key=lambda s: -solution["segments"][s]["treated"])[:MAX_ITEMS][::-1]
    left = np.zeros(len(segments))
    for t in names:
        width = np.array([solution["segments"][s]["by_treatment"].get(t, 0) for s in segments], dtype=float)
        ax.barh(segments, width, left=left, color=colours[t], label=t)
        left += width
    ax.set_title("treated users per segment and treatment", fontsize=10)
    ax.set_xlabel("users")
    _short_numbers(ax.xaxis)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")


FAMILY_PLOTS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "front_warehouse": front_warehouse,
    "incentive_budget": incentive_budget,
    "membership_pricing": membership_pricing,
    "incentive_assignment": incentive_assignment,
}
