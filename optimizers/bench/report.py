"""Tables from benchmark records: per instance and method, a summary per method with time
ratios to the suite's baseline, and a comparison of two runs of the same suite."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

#: An objective within this relative distance of the reference value "matches" it.
MATCH_TOL = 1e-6


def _median(values: list[Any]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _geomean(values: list[Any]) -> float | None:
    positive = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in positive) / len(positive)) if positive else None


def _time(rec: dict[str, Any]) -> float | None:
    """The time a run took: solver time, or wall time for errors and timeouts."""
    return rec.get("runtime_s") if rec.get("runtime_s") is not None else rec.get("wall_s")


def per_instance(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (suite, group, instance, label), aggregated over seeds and repetitions."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["suite"], r.get("group", ""), r["instance"], r["label"]].append(r)
    rows = []
    for (suite, group, instance, label), recs in sorted(groups.items()):
        statuses = sorted({r["status"] for r in recs})
        objectives = [r["objective"] for r in recs if r.get("objective") is not None]
        rows.append(
            {
                "suite": suite, "group": group, "instance": instance, "label": label,
                "baseline": any(r.get("baseline") for r in recs), "runs": len(recs),
                "status": "/".join(statuses), "objective": _median(objectives), "sense": recs[0].get("sense", "min"),
                "bound": _median([r.get("bound") for r in recs]), "gap": _median([r.get("gap") for r in recs]),
                "reference": recs[0].get("reference"),
                "ref_gap": _median([r.get("ref_gap") for r in recs]),
                "time_s": _median([_time(r) for r in recs]),
                "errors": sum(r["status"] == "error" for r in recs),
                "optimal_runs": sum(r["status"] == "optimal" for r in recs),
            }
        )
    return rows


def summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (suite, instance group, label): counts, times, and the time ratio and
    objective gain against the baseline label on the same instances."""
    rows = per_instance(records)
    by_label: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_label[row["suite"], row["group"], row["label"]].append(row)
    baseline_of = {row["suite"]: row["label"] for row in rows if row["baseline"]}
    out = []
    for (suite, group, label), items in by_label.items():
        base = baseline_of.get(suite)
        ratio = None
        better = None
        if base and base != label and (suite, group, base) in by_label:
            base_rows = by_label[suite, group, base]
            base_time = {r["instance"]: r["time_s"] for r in base_rows}
            ratios = [r["time_s"] / base_time[r["instance"]] for r in items if base_time.get(r["instance"]) and r["time_s"]]
            ratio = _geomean(ratios)
            better = _better_than(items, {(r["group"], r["instance"]): r for r in base_rows})
        with_ref = [r for r in items if r["reference"] is not None]
        out.append(
            {
                "suite": suite, "group": group, "label": label, "baseline": label == base, "instances": len(items),
                "runs": sum(r["runs"] for r in items),
                "optimal": sum(r["optimal_runs"] for r in items),
                "match_reference": f"{sum(r['ref_gap'] is not None and abs(r['ref_gap']) <= MATCH_TOL for r in with_ref)}/{len(with_ref)}",
                "beat_reference": f"{sum(_beats(r) for r in with_ref)}/{len(with_ref)}",
                "errors": sum(r["errors"] for r in items),
                "median_time_s": _median([r["time_s"] for r in items]),
                "total_time_s": sum(r["time_s"] or 0.0 for r in items),
                "time_ratio_to_baseline": ratio,
                **(better or {}),
            }
        )
    return out


def _beats(row: dict[str, Any]) -> bool:
    """Better than a best-known reference (in the objective's direction) by more than MATCH_TOL."""
    gap = row["ref_gap"]
    return gap is not None and (gap if row.get("sense") == "max" else -gap) > MATCH_TOL


def _better_than(items: list[dict[str, Any]], base: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """How a label's objectives compare with the baseline's on the same instances: the
    median relative improvement (positive: better, whichever the objective's direction),
    and on how many instances it is better by more than 1e-6 and by at least 1%."""
    gains = []
    for r in items:
        b = base.get((r["group"], r["instance"]))
        if b is None or r["objective"] is None or b["objective"] is None:
            continue
        sign = 1.0 if r.get("sense") == "max" else -1.0
        gains.append(sign * (r["objective"] - b["objective"]) / max(1.0, abs(b["objective"])))
    if not gains:
        return {}
    return {
        "median_gain_vs_baseline": statistics.median(gains),
        "better_vs_baseline": f"{sum(g > 1e-6 for g in gains)}/{len(gains)}",
        "better_1pct": f"{sum(g >= 0.01 for g in gains)}/{len(gains)}",
        "worse_vs_baseline": f"{sum(g < -1e-6 for g in gains)}/{len(gains)}",
    }


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Runs present in both, matched by key: status and objective side by side, time ratio b/a."""
    index_b = {r["key"]: r for r in b}
    rows = []
    for ra in a:
        rb = index_b.get(ra["key"])
        if rb is None:
            continue
        oa, ob = ra.get("objective"), rb.get("objective")
        diff = None if oa is None or ob is None else (ob - oa) / max(1.0, abs(oa))
        ta, tb = _time(ra), _time(rb)
        rows.append(
            {
                "key": ra["key"], "status_a": ra["status"], "status_b": rb["status"], "objective_a": oa, "objective_b": ob,
                "objective_diff": diff, "time_a": ta, "time_b": tb, "time_ratio": tb / ta if ta and tb else None,
            }
        )
    total = {
        "matched": len(rows), "only_in_a": len(a) - len(rows), "only_in_b": len(b) - len(rows),
        "same_status": sum(r["status_a"] == r["status_b"] for r in rows),
        "objective_differs": sum(r["objective_diff"] is not None and abs(r["objective_diff"]) > MATCH_TOL for r in rows),
        "time_ratio_geomean": _geomean([r["time_ratio"] for r in rows]),
    }
    return rows, total


# "optimal" counts runs proven optimal; "beat_reference" those better than a best-known value;
# "match_reference" counts instances whose best
# objective is within MATCH_TOL of the reference value.
SUMMARY_COLUMNS = ["group", "label", "instances", "runs", "optimal", "match_reference", "beat_reference", "errors", "median_time_s", "total_time_s", "time_ratio_to_baseline",
                   "median_gain_vs_baseline", "better_1pct", "worse_vs_baseline"]
INSTANCE_COLUMNS = ["instance", "label", "status", "objective", "reference", "ref_gap", "gap", "time_s"]


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e7:
            return f"{value:.3g}" if abs(value) < 1e-3 else f"{value:,.2f}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.2f}"
    return str(value)


def to_markdown(records: list[dict[str, Any]], *, instances: bool = True) -> str:
    """A self-describing report: machine, versions, dates, commands, then per suite a
    summary (with time ratios to the baseline) and the per-instance table."""
    lines = []
    suites = sorted({r["suite"] for r in records})
    for suite in suites:
        recs = [r for r in records if r["suite"] == suite]
        machine = recs[0].get("machine", {})
        commands = sorted({r.get("command", "") for r in recs if r.get("command")})
        dates = sorted(r["finished_at"] for r in recs if r.get("finished_at"))
        lines += [f"## {suite}", ""]
        if commands:
            lines += ["Reproduce:", "", "```", *commands, "```", ""]
        if machine:
            versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
            lines.append(f"Machine: {machine.get('cpus')} CPUs, {machine.get('platform')}, Python {machine.get('python')}; {versions}.")
        if dates:
            lines.append(f"Runs finished {dates[0]} to {dates[-1]}.")
        lines.append("")
        lines += _md_table(summary(recs), SUMMARY_COLUMNS)
        if instances:
            lines += ["", "<details><summary>per instance (medians over seeds and repetitions)</summary>", ""]
            lines += _md_table(per_instance(recs), INSTANCE_COLUMNS)
            lines += ["", "</details>"]
        lines.append("")
    return "\n".join(lines)


def _md_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        out.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return out
