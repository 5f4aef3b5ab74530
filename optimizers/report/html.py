"""A self-contained HTML report of a result, to forward: one file with inline CSS and the
plot embedded as a data URI, so it opens anywhere without network access.

Sections: summary and key figures; what the status, bound and gap mean for this result; the
plot (when matplotlib is installed); the result's tables; the assumptions (the instance's
parameters); warnings; how to reproduce it.
"""

from __future__ import annotations

import base64
import datetime as dt
from html import escape
from typing import Any

from models.errors import UsageError
from optimizers.report.tables import Table, fmt, fmt_gap, tables

#: lists of the instance with at most this many items are shown whole under assumptions
SMALL_LIST = 20

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1d2330; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d5d9e0; }
h3 { font-size: 1rem; margin: 1.2rem 0 0.4rem; } .sub { color: #5b6475; margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 0.8rem; } .figure { border: 1px solid #d5d9e0; border-radius: 6px; padding: 0.6rem 1rem; min-width: 9rem; }
.figure .k { color: #5b6475; font-size: 0.8rem; } .figure .v { font-size: 1.2rem; font-weight: 600; }
table { border-collapse: collapse; margin: 0.4rem 0 1rem; font-size: 0.85rem; } th, td { border-bottom: 1px solid #e4e7ec; padding: 0.25rem 0.6rem; }
th { background: #f3f5f8; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; } tr.total td { font-weight: 600; }
.status-optimal { color: #176b2c; } .status-feasible { color: #8a5a00; } .status-error, .status-infeasible, .status-no_solution, .status-unbounded { color: #a1261b; }
img { max-width: 100%; border: 1px solid #e4e7ec; } pre { background: #f3f5f8; padding: 0.6rem; overflow-x: auto; } .warn { color: #8a5a00; }
"""


def html_report(doc: dict[str, Any], inst: Any, *, instance_path: str | None = None, with_plot: bool = True) -> str:
    """The report as one HTML document (a string)."""
    if "levels" in doc:
        raise UsageError("report: this is a budget frontier document; the report is for a result of `ecomopt solve` (plot the frontier with `ecomopt plot`)")
    parts = [f"<h1>{escape(doc['instance'])}: {escape(doc['problem'].replace('_', ' '))}</h1>",
             f"<p class='sub'>ecomopt {escape(str((doc.get('meta') or {}).get('versions', {}).get('ecomopt', '')))} report, "
             f"made {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>"]
    parts += ["<h2>Summary</h2>", _key_figures(doc), f"<p>{escape(status_text(doc, inst))}</p>"]
    if with_plot and doc.get("solution"):
        parts.append(_plot_section(doc, inst))
    all_tables = tables(doc, inst)
    parts.append("<h2>Solver status, bound and gap</h2>" + _table(all_tables[0]))
    if len(all_tables) > 1:
        parts.append("<h2>The plan</h2>" + "".join(_table(t) for t in all_tables[1:]))
    parts.append("<h2>Assumptions (the instance)</h2>" + assumptions(inst))
    warnings = list((doc.get("meta") or {}).get("warnings", []))
    violations = (doc.get("evaluation") or {}).get("violations", [])
    if warnings or violations:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li class='warn'>{escape(w)}</li>" for w in [*warnings, *violations]) + "</ul>")
    parts.append("<h2>Reproduce</h2>" + _reproduce(doc, instance_path))
    title = escape(f"{doc['instance']}: {doc['status']}")
    return f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def status_text(doc: dict[str, Any], inst: Any) -> str:
    """What the status, bound and gap of this result mean, in a sentence or two."""
    from optimizers.registry import maximises

    status, gap = doc["status"], doc.get("gap")
    tolerance = (doc.get("options") or {}).get("gap", 1e-6)
    better = "value above" if maximises(inst) else "cost below"
    text = {
        "optimal": f"Proven optimal within the relative gap tolerance {tolerance:g}: no plan has a {better} the bound {fmt(doc['bound'])}.",
        "feasible": (f"A plan, not proven optimal (a time limit or a stop came first). The bound {fmt(doc['bound'])} proves no plan has a {better} it, "
                     f"so this plan is within {fmt_gap(gap)} of the best." if gap is not None else "A plan, without a proven bound."),
        "infeasible": "Proven infeasible: no plan meets every constraint.",
        "unbounded": "Unbounded: the objective can improve without limit (the data miss a cost or a cap).",
        "no_solution": "A limit was reached before any plan was found." + (f" Bound: {fmt(doc['bound'])}." if doc.get("bound") is not None else ""),
        "error": "The result failed its independent re-check (evaluate()); do not use it.",
    }.get(status, status)
    if doc.get("evaluation"):
        text += (" The plan was re-checked without any solver (evaluate()): it meets every constraint and its objective matches."
                 if doc["evaluation"].get("feasible") else " The re-check found violations (below).")
    if doc.get("message"):
        text += f" Solver: {doc['message']}."
    return text


def _key_figures(doc: dict[str, Any]) -> str:
    figures = [("status", f"<span class='status-{escape(doc['status'])}'>{escape(doc['status'])}</span>"),
               ("objective", escape(fmt(doc["objective"]))), ("bound", escape(fmt(doc["bound"]))), ("gap", escape(fmt_gap(doc.get("gap")))),
               ("time", f"{doc['runtime_s']:.2f} s")]
    figures += [(k, escape(v)) for k, v in family_figures(doc)]
    return "<div class='figures'>" + "".join(f"<div class='figure'><div class='k'>{escape(k)}</div><div class='v'>{v}</div></div>" for k, v in figures) + "</div>"


def family_figures(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """A few headline numbers of the plan."""
    solution, evaluation = doc.get("solution") or {}, doc.get("evaluation") or {}
    if not solution:
        return []
    problem = doc["problem"]
    if problem == "front_warehouse":
        out = [("open sites", str(len(solution["open_sites"])))]
        for name, sc in (evaluation.get("scenarios") or {}).items():
            out.append((f"within promise ({name})", f"{sc['share_within_promise']:.1%}"))
        vss = ((doc.get("meta") or {}).get("mean_plan") or {}).get("vss")
        if vss is not None:
            out.append(("value of the stochastic solution", fmt(vss)))
        return out
    if problem == "incentive_budget":
        return [("users", fmt(evaluation.get("total_users"))), ("spend", fmt(evaluation.get("total_spend"))),
                ("marginal value", fmt(solution.get("marginal_value")))]
    if problem == "membership_pricing":
        return [(f"fee {t}", fmt(f)) for t, f in solution["fees"].items()] + [("members", fmt(sum(solution.get("members", {}).values())))]
    if problem == "incentive_assignment":
        return [("users treated", f"{solution['treated']:,} of {solution['users']:,}"), ("spend", fmt(solution["spend"])),
                ("value", fmt(solution["value"]))]
    return []


def _plot_section(doc: dict[str, Any], inst: Any) -> str:
    from optimizers.report.plots import png_bytes

    try:
        data = base64.b64encode(png_bytes(doc, inst)).decode("ascii")
    except UsageError as exc:  # matplotlib missing: the report without its plot
        return f"<p class='warn'>No plot: {escape(str(exc))}</p>"
    return f"<h2>Plot</h2><img alt='plot of the plan' src='data:image/png;base64,{data}'>"


def _table(t: Table) -> str:
    if not t.columns:
        return f"<p>{escape(t.note)}</p>"
    head = "" if not t.header else "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in t.columns) + "</tr>"
    rows = []
    for k, row in enumerate(t.rows):
        cls = " class='total'" if t.total and k == len(t.rows) - 1 else ""
        cells = "".join(f"<td{'' if t.is_label(j) else ' class=n'}>{escape(v)}</td>" for j, v in enumerate(row))
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<h3>{escape(t.title)}</h3><table>{head}{''.join(rows)}</table>"


def assumptions(inst: Any) -> str:
    """The instance's parameters: scalars and small objects as a list, short lists as tables,
    long lists by their length."""
    data = inst.model_dump(exclude_none=True)
    scalars = Table("parameters", ["parameter", "value"], labels=("parameter", "value"), header=False)
    lists: list[Table] = []
    for key, value in data.items():
        if key in ("schema_version",):
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if len(value) <= SMALL_LIST:
                columns = list(dict.fromkeys(c for v in value for c in v))
                lists.append(Table(key.replace("_", " "), columns, [[_short(v.get(c)) for c in columns] for v in value], labels=tuple(columns)))
            else:
                scalars.rows.append([key.replace("_", " "), f"{len(value):,} items"])
        elif isinstance(value, dict):
            scalars.rows.append([key.replace("_", " "), _short(value)])
        else:
            scalars.rows.append([key.replace("_", " "), _short(value)])
    return _table(scalars) + "".join(_table(t) for t in lists)


def _short(value: Any) -> str:
    if value is None or value == {} or value == []:
        return "-"
    if isinstance(value, dict):
        text = "; ".join(f"{k}: {_short(v)}" for k, v in value.items())
        return text if len(text) <= 200 else text[:197] + "..."
    if isinstance(value, list):
        text = ", ".join(_short(v) for v in value)
        return text if len(text) <= 200 else f"{len(value)} items"
    return fmt(value)


def _reproduce(doc: dict[str, Any], instance_path: str | None) -> str:
    meta = doc.get("meta") or {}
    command = meta.get("command") or solve_command(doc, instance_path or f"{doc['instance']}.json")
    versions = ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())
    return (f"<pre>{escape(command)}</pre><p>Instance sha256 <code>{escape(str(meta.get('instance_sha256', '-')))}</code>"
            f"{'; ' + escape(versions) if versions else ''}.</p>")


def solve_command(doc: dict[str, Any], instance_path: str) -> str:
    """The `ecomopt solve` command for this result's method, backend and options."""
    import shlex

    options = doc.get("options") or {}
    words = ["ecomopt", "solve", instance_path, "--method", doc["method"]]
    if doc.get("backend"):
        words += ["--backend", doc["backend"]]
    if options.get("time_limit_s") is not None:
        words += ["--time-limit", f"{options['time_limit_s']:.3g}"]
    for name, default in (("gap", 1e-6), ("threads", 1), ("seed", 0)):
        if options.get(name, default) != default:
            words += [f"--{name}", str(options[name])]
    return shlex.join(words)
