"""Response curves of incentive cells fitted from A/B-test data.

Model
-----
Data: for a cell c (a mechanic x segment), rows i = 1..n with spend x_i >= 0 and the users
y_i >= 0 it acquired *directly* (the referral multiplier 1 / (1 - viral_k) is applied by the
``incentive_budget`` model on top, never fitted here). Arms at spend 0 are valid data: every
curve passes through (0, 0), so users there should be ~0 (incremental users, not totals).

Curves (the ``response`` kinds of the ``incentive_budget`` format):

    hill         f(x) = max_users * x^shape / (half_spend^shape + x^shape)    p = 3 parameters
    exponential  f(x) = max_users * (1 - exp(-x / scale))                     p = 2 parameters

Fit: ordinary least squares, min_theta SSE(theta) = sum_i (y_i - f(x_i; theta))^2, solved by
``scipy.optimize.curve_fit`` (trust-region reflective, bounded: max_users, half_spend, scale
> 0, 0.5 <= shape <= 10) in units scaled by the largest spend and users, from a few starting
points (hill: shape in {1, 2, 3}); the start with the smallest SSE wins.

Confidence intervals (95%, Wald): with s^2 = SSE / (n - p) and J the Jacobian at the optimum,
Cov(theta) = s^2 (J^T J)^-1 and theta_j +- t_{0.975, n-p} * sqrt(Cov_jj), where t is the Student
t quantile with n - p degrees of freedom.

Choice of curve (``kind="auto"``): both kinds are fitted and compared by the small-sample
corrected Akaike criterion, with k = p + 1 (the noise variance counts):

    AICc = n ln(SSE / n) + 2k + 2k(k + 1) / (n - k - 1)

hill is chosen only if its AICc is lower by at least 2; otherwise the simpler exponential.

Refusals (:class:`FitRefused`, an :class:`~models.errors.InstanceError`): fewer distinct
positive spend levels than p + 1 (the zero arm says nothing about the parameters, since f(0) = 0
for every curve); users 0 everywhere; no convergence; a singular covariance or a non-finite
interval; max_users or half_spend/scale running to the search limit; a fitted curve that reaches
less than ``min_saturation`` (default 1/2) of max_users at the largest spend tested (the data do
not show saturation, the rest would be extrapolation); a 95% half-width of max_users or
half_spend/scale above ``max_rel_ci`` times the value. Messages quote the numbers and say which
arms would help.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit

from models.errors import InstanceError, Problem, UsageError

logger = logging.getLogger(__name__)

KINDS = ("auto", "hill", "exponential")
REQUIRED_COLUMNS = ("cell", "spend", "users")
TEXT_COLUMNS = ("mechanic", "segment")
NUMBER_COLUMNS = ("viral_k", "value_per_user", "min_spend", "max_spend")
OBJECTIVES = ("users", "value", "min_spend")
AICC_MARGIN = 2.0  # hill must beat exponential by this much


class FitRefused(InstanceError):
    """The data do not support a trustworthy curve; every problem says which cell and why."""


# ---------------------------------------------------------------- A/B data


@dataclass(frozen=True)
class AbCell:
    """The arms of one cell, in file order, and its optional per-cell attributes."""

    id: str
    spend: tuple[float, ...]
    users: tuple[float, ...]
    lines: tuple[int, ...]
    mechanic: str | None = None
    segment: str | None = None
    viral_k: float | None = None
    value_per_user: float | None = None
    min_spend: float | None = None
    max_spend: float | None = None


@dataclass(frozen=True)
class AbData:
    """An A/B table: its source (for messages) and its cells in order of first appearance."""

    source: str
    cells: tuple[AbCell, ...]

    def cell(self, cell_id: str) -> AbCell:
        for c in self.cells:
            if c.id == cell_id:
                return c
        raise KeyError(cell_id)


def read_ab_table(path: str | Path) -> AbData:
    """Read a CSV with columns ``cell``, ``spend``, ``users`` and optional per-cell columns
    ``mechanic``, ``segment``, ``viral_k``, ``value_per_user``, ``min_spend``, ``max_spend``.

    Comma, semicolon or tab separated, UTF-8 with or without a BOM. Every problem is reported
    in one :class:`InstanceError`, located as ``ab.csv line 7`` or ``ab.csv: column 'spend'``.
    """
    path = Path(path)
    name, source = path.name, str(path)

    def fail(problems: list[Problem]) -> InstanceError:
        return InstanceError(problems, source=source)

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail([Problem(name, "file not found")]) from None
    except OSError as exc:
        raise fail([Problem(name, f"cannot read the file ({exc.strerror})")]) from None
    try:
        text = raw.decode("utf-8-sig")  # a BOM, as spreadsheet exports write, is not content
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail([Problem(f"{name} line {line}", "not UTF-8 text (save the file as UTF-8)")]) from None
    if not text.strip():
        raise fail([Problem(name, f"empty file (expected a header with the columns {', '.join(REQUIRED_COLUMNS)})")])

    # commas, or the semicolons and tabs some spreadsheet locales write
    delimiter = max((",", ";", "\t"), key=text.splitlines()[0].count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    problems: list[Problem] = []
    try:
        columns = [c.strip() for c in next(reader)]
        problems += _check_header(name, columns)
        if problems:
            raise fail(problems)
        rows: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) > len(columns):
                problems.append(Problem(f"{name} line {reader.line_num}", f"{len(row)} cells, but the header has {len(columns)} columns"))
                continue
            rows.append((reader.line_num, {col: c.strip() for col, c in zip(columns, row) if c.strip()}))
    except csv.Error as exc:
        raise fail([*problems, Problem(f"{name} line {reader.line_num}", f"not valid CSV: {exc}")]) from None
    if not rows and not problems:
        problems.append(Problem(name, "no data rows under the header"))

    arms: dict[str, list[tuple[float, float, int]]] = {}
    attrs: dict[str, dict[str, tuple[Any, str, int]]] = {}  # cell -> column -> (value, text, line)
    reported: set[tuple[str, str]] = set()
    for line, values in rows:
        where = f"{name} line {line}"
        cell = values.get("cell", "")
        if not cell:
            problems.append(Problem(where, "cell: missing (every row names its cell)"))
        spend, err_s = _number(values.get("spend", ""), "spend", low=0.0)
        users, err_u = _number(values.get("users", ""), "users", low=0.0)
        problems += [Problem(where, e) for e in (err_s, err_u) if e]
        for col in TEXT_COLUMNS + NUMBER_COLUMNS:
            if col not in values:
                continue
            value: Any = values[col]
            if col in NUMBER_COLUMNS:
                value, err = _number(values[col], col, low=0.0 if col != "value_per_user" else None, high=1.0 if col == "viral_k" else None)
                if err:
                    problems.append(Problem(where, err))
                    continue
            if not cell:
                continue
            seen = attrs.setdefault(cell, {}).setdefault(col, (value, values[col], line))
            if seen[0] != value and (cell, col) not in reported:
                reported.add((cell, col))
                problems.append(Problem(where, f"{col} differs within cell {cell!r}: {seen[1]} on line {seen[2]}, {values[col]} on line {line} (it must be constant within a cell)"))
        if cell and spend is not None and users is not None:
            arms.setdefault(cell, []).append((spend, users, line))

    cells = []
    for cell, cell_arms in arms.items():
        a = {col: v[0] for col, v in attrs.get(cell, {}).items()}
        if a.get("min_spend") is not None and a.get("max_spend") is not None and a["min_spend"] > a["max_spend"]:
            problems.append(Problem(f"{name}: cell {cell!r}", f"min_spend {_fmt(a['min_spend'])} > max_spend {_fmt(a['max_spend'])}"))
        cells.append(AbCell(
            id=cell,
            spend=tuple(s for s, _, _ in cell_arms),
            users=tuple(u for _, u, _ in cell_arms),
            lines=tuple(ln for _, _, ln in cell_arms),
            **a,
        ))
    if problems:
        raise fail(problems)
    return AbData(source=source, cells=tuple(cells))


def _check_header(name: str, columns: list[str]) -> list[Problem]:
    known = REQUIRED_COLUMNS + TEXT_COLUMNS + NUMBER_COLUMNS
    problems = []
    for i, col in enumerate(columns):
        if not col:
            problems.append(Problem(f"{name}: column {i + 1}", "has no name in the header"))
        elif col not in known:
            problems.append(Problem(f"{name}: column {col!r}", f"unknown column (expected {', '.join(known)})"))
        elif col in columns[:i]:
            problems.append(Problem(f"{name}: column {col!r}", "appears twice in the header"))
    for col in REQUIRED_COLUMNS:
        if col not in columns:
            problems.append(Problem(f"{name}: column {col!r}", f"missing required column (the header has: {', '.join(columns)})"))
    return problems


def _number(text: str, col: str, *, low: float | None = None, high: float | None = None) -> tuple[float | None, str | None]:
    """The value of a numeric cell, or the message saying why it is not one.

    ``high`` is exclusive (viral_k < 1), ``low`` inclusive."""
    rule = "a number" + (f" >= {low:g}" if low is not None else "") + (f" and < {high:g}" if high is not None else "")
    if text == "":
        return None, f"{col}: missing (must be {rule})"
    try:
        value = float(text)
    except ValueError:
        return None, f"{col}: must be {rule} (got {text!r})"
    if not math.isfinite(value):
        return None, f"{col}: must be a finite number; NaN and infinity are refused (got {text!r})"
    if high is not None and low is not None and not (low <= value < high):
        return None, f"{col}: must be in [{low:g}, {high:g}) (got {text})"
    if low is not None and value < low:
        return None, f"{col}: must be >= {low:g} (got {text})"
    return value, None


# ---------------------------------------------------------------- curves and fits


def _hill(x: NDArray[np.float64], max_users: float, half_spend: float, shape: float) -> NDArray[np.float64]:
    # x^s / (h^s + x^s) = expit(s (ln x - ln h)), which neither overflows nor divides by 0
    with np.errstate(divide="ignore"):
        return max_users * expit(shape * (np.log(x) - np.log(half_spend)))


def _hill_jac(x: NDArray[np.float64], max_users: float, half_spend: float, shape: float) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        log_ratio = np.log(x) - np.log(half_spend)
    g = expit(shape * log_ratio)
    slope = max_users * g * (1 - g)
    d_shape = slope * np.where(x > 0, log_ratio, 0.0)  # slope is 0 at x = 0, where log_ratio is -inf
    return np.column_stack([g, -slope * shape / half_spend, d_shape])


def _exponential(x: NDArray[np.float64], max_users: float, scale: float) -> NDArray[np.float64]:
    return max_users * -np.expm1(-x / scale)


def _exponential_jac(x: NDArray[np.float64], max_users: float, scale: float) -> NDArray[np.float64]:
    return np.column_stack([-np.expm1(-x / scale), -max_users * np.exp(-x / scale) * x / scale**2])


@dataclass(frozen=True)
class _Curve:
    kind: str
    params: tuple[str, ...]  # the instance format's names, in the function's order
    func: Callable[..., NDArray[np.float64]]
    jac: Callable[..., NDArray[np.float64]]  # d func / d params, one column per parameter
    lower: tuple[float, ...]  # bounds in scaled units (spend / largest spend, users / largest users)
    upper: tuple[float, ...]
    spend_param: str


CURVES = {
    "hill": _Curve("hill", ("max_users", "half_spend", "shape"), _hill, _hill_jac, (0.0, 1e-6, 0.5), (1e3, 1e3, 10.0), "half_spend"),
    "exponential": _Curve("exponential", ("max_users", "scale"), _exponential, _exponential_jac, (0.0, 1e-6), (1e3, 1e3), "scale"),
}


@dataclass(frozen=True)
class CellFit:
    """A fitted response curve of one cell: parameters with the format's names, their 95% CIs,
    and how well the curve fits (``rmse`` in users, ``r2``, ``aicc``)."""

    cell: str
    kind: str
    params: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    rmse: float
    r2: float
    n_points: int
    n_levels: int  # distinct spend levels, 0 included
    aicc: float

    def predict(self, spend: ArrayLike) -> NDArray[np.float64]:
        """Directly acquired users at ``spend`` (no referral multiplier)."""
        curve = CURVES[self.kind]
        return curve.func(np.asarray(spend, dtype=float), *(self.params[p] for p in curve.params))

    def response(self) -> dict[str, Any]:
        """The ``response`` object of an ``incentive_budget`` cell, to 6 significant digits."""
        return {"kind": self.kind, **{p: _round6(v) for p, v in self.params.items()}}


class _Refusal(Exception):
    """Why one kind of curve was refused for one cell (internal)."""


def fit_cell(
    cell_id: str,
    spend: ArrayLike,
    users: ArrayLike,
    kind: str = "auto",
    *,
    max_rel_ci: float = 1.0,
    min_saturation: float = 0.5,
) -> CellFit:
    """Fit a response curve to one cell's arms; ``kind`` is ``hill``, ``exponential`` or
    ``auto`` (both, chosen by AICc). Raises :class:`FitRefused` when the data cannot
    support the curve (with ``auto``: when neither kind can be trusted).

    ``max_rel_ci``: the largest 95% CI half-width of max_users and half_spend/scale, relative
    to the value. ``min_saturation``: the share of max_users the fitted curve must reach at
    the largest spend tested (0.5: the arms reach the curve's half-way point; 0 disables)."""
    _check_options(kind, max_rel_ci, min_saturation)
    x = np.asarray(spend, dtype=float).ravel()
    y = np.asarray(users, dtype=float).ravel()
    where = f"cell {cell_id!r}"
    if x.shape != y.shape:
        raise ValueError(f"{where}: {x.size} spend values but {y.size} users values")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x >= 0) and np.all(y >= 0)):
        raise FitRefused(Problem(where, "spend and users must be finite numbers >= 0"))
    if not np.any(y > 0):
        raise FitRefused(Problem(where, f"users are 0 on all {y.size} arms: there is no response to fit"))
    _warn_on_baseline(cell_id, x, y)

    if kind != "auto":
        try:
            return _fit_kind(cell_id, x, y, CURVES[kind], max_rel_ci, min_saturation, suggest_other=True)
        except _Refusal as exc:
            raise FitRefused(Problem(where, str(exc))) from None

    fits: list[CellFit] = []
    reasons: list[str] = []
    for curve in (CURVES["hill"], CURVES["exponential"]):
        try:
            fits.append(_fit_kind(cell_id, x, y, curve, max_rel_ci, min_saturation, suggest_other=False))
        except _Refusal as exc:
            reasons.append(f"{curve.kind}: {exc}")
            logger.info("%s: %s curve refused: %s", where, curve.kind, exc)
    if not fits:
        raise FitRefused(Problem(where, "no curve can be trusted; " + "; ".join(reasons)))
    if len(fits) == 1:
        return fits[0]
    hill, exponential = fits
    return hill if hill.aicc < exponential.aicc - AICC_MARGIN else exponential


def fit_table(data: AbData, kind: str = "auto", max_rel_ci: float = 1.0, min_saturation: float = 0.5) -> list[CellFit]:
    """Fit every cell of ``data`` (see :func:`fit_cell`); all refusals are raised together,
    one problem per cell."""
    _check_options(kind, max_rel_ci, min_saturation)
    fits, problems = [], []
    for cell in data.cells:
        try:
            fits.append(fit_cell(cell.id, cell.spend, cell.users, kind, max_rel_ci=max_rel_ci, min_saturation=min_saturation))
        except FitRefused as exc:
            problems += exc.problems
    if problems:
        raise FitRefused(problems, source=data.source)
    return fits


def _check_options(kind: str, max_rel_ci: float, min_saturation: float) -> None:
    if kind not in KINDS:
        raise UsageError(f"kind: unknown curve kind {kind!r} (expected one of {', '.join(KINDS)})")
    if not (max_rel_ci > 0 and math.isfinite(max_rel_ci)):
        raise UsageError(f"max_rel_ci: must be a finite number > 0 (got {max_rel_ci!r})")
    if not 0 <= min_saturation < 1:
        raise UsageError(f"min_saturation: must be in [0, 1) (got {min_saturation!r})")


def _warn_on_baseline(cell_id: str, x: NDArray[np.float64], y: NDArray[np.float64]) -> None:
    if not np.any(x == 0):
        return
    baseline = float(y[x == 0].mean())
    top = max(float(y[x == s].mean()) for s in np.unique(x))
    if baseline > 0.1 * top:
        logger.warning(
            "cell %r: users at spend 0 average %s, %.0f%% of the best arm's; the curves pass through (0, 0), "
            "so users should be incremental (treatment minus control)", cell_id, _fmt(baseline), 100 * baseline / top,
        )


def _fit_kind(
    cell_id: str, x: NDArray[np.float64], y: NDArray[np.float64], curve: _Curve, max_rel_ci: float, min_saturation: float, *, suggest_other: bool
) -> CellFit:
    n, p = y.size, len(curve.params)
    levels = np.unique(x)
    positive = levels[levels > 0]
    if positive.size < p + 1:
        raise _Refusal(
            f"{positive.size} spend level{'s' if positive.size != 1 else ''} above 0; {'an' if curve.kind[0] in 'aeiou' else 'a'} {curve.kind} curve has {p} parameters "
            f"and needs at least {p + 1} (a spend-0 arm does not count: every curve passes through (0, 0))"
        )

    x_unit, y_unit = float(x.max()), float(y.max())
    xs, ys = x / x_unit, y / y_unit
    best: tuple[float, NDArray[np.float64], NDArray[np.float64]] | None = None
    starts = _starting_points(curve, xs, ys)
    for p0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            try:
                theta, cov = curve_fit(curve.func, xs, ys, p0=p0, jac=curve.jac, bounds=(curve.lower, curve.upper), max_nfev=2000)
            except (RuntimeError, ValueError) as exc:
                logger.debug("cell %r: %s fit from %s failed: %s", cell_id, curve.kind, p0, exc)
                continue
        sse = float(np.sum((ys - curve.func(xs, *theta)) ** 2))
        if best is None or sse < best[0]:
            best = (sse, theta, cov)
    if best is None:
        raise _Refusal(f"the least-squares fit did not converge from any of {len(starts)} starting points")

    sse_scaled, theta, cov = best
    units = {"max_users": y_unit, "half_spend": x_unit, "scale": x_unit, "shape": 1.0}
    params = {name: float(theta[j] * units[name]) for j, name in enumerate(curve.params)}
    advice = _advice(curve, params, x, suggest_other)
    other = " or use --kind exponential" if curve.kind == "hill" and suggest_other else ""
    for j, name in enumerate(curve.params):
        if name in ("max_users", curve.spend_param) and theta[j] >= 0.999 * curve.upper[j]:
            raise _Refusal(
                f"the fitted curve does not level off: {name} runs to the search limit {_fmt(curve.upper[j] * units[name])} "
                f"({curve.upper[j]:,.0f} x the {'largest users observed' if name == 'max_users' else 'largest spend tested'}); the arms up to spend {_fmt(x_unit)} "
                f"do not show saturation; add arms at higher spend{other}"
            )
    variances = np.diag(cov)
    if not (np.all(np.isfinite(cov)) and np.all(variances >= 0)):
        raise _Refusal(f"the parameters cannot all be estimated (singular covariance: some parameters trade off exactly); {advice}")
    # share of max_users the curve reaches at the largest spend tested (scaled spend 1)
    shown = float(curve.func(np.array([1.0]), *theta)[0] / theta[0]) if theta[0] > 0 else 0.0
    if shown < min_saturation:
        raise _Refusal(
            f"the arms stop at spend {_fmt(x_unit)}, where the fitted curve reaches only {shown:.0%} of its max_users "
            f"{_fmt(params['max_users'])} (fitted {curve.spend_param} {_fmt(params[curve.spend_param])}; at least {min_saturation:.0%} "
            f"is needed, the rest would be extrapolation): the data do not show saturation; add arms at higher spend{other}"
        )
    t = float(stats.t.ppf(0.975, n - p))
    half = {name: t * math.sqrt(variances[j]) * units[name] for j, name in enumerate(curve.params)}
    ci95 = {name: (params[name] - half[name], params[name] + half[name]) for name in curve.params}

    too_wide = []
    for name in ("max_users", curve.spend_param):
        rel = half[name] / abs(params[name]) if params[name] != 0 else math.inf
        if not rel <= max_rel_ci:
            too_wide.append(f"{name} {_fmt(params[name])} +- {_fmt(half[name])} (+-{rel:.0%})")
    if too_wide:
        raise _Refusal(
            f"95% confidence intervals too wide: {', '.join(too_wide)}; the limit is +-{max_rel_ci * 100:g}% (max_rel_ci {max_rel_ci:g}); {advice}"
        )

    sse = sse_scaled * y_unit**2
    sst = float(np.sum((y - y.mean()) ** 2))
    return CellFit(
        cell=cell_id,
        kind=curve.kind,
        params=params,
        ci95=ci95,
        rmse=math.sqrt(sse / n),
        r2=1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0),
        n_points=n,
        n_levels=int(levels.size),
        aicc=_aicc(sse, n, p + 1),
    )


def _starting_points(curve: _Curve, xs: NDArray[np.float64], ys: NDArray[np.float64]) -> list[tuple[float, ...]]:
    """Starts in scaled units from the data: max_users a little above the best arm, the
    half-way spend where the arms' mean users first reach half of the best arm's."""
    levels = np.unique(xs)
    means = np.array([ys[xs == s].mean() for s in levels])
    half_way = float(levels[np.argmax(means >= means.max() / 2)])
    half_way = min(max(half_way, 1e-3), 1.0)
    m0 = 1.1 * float(means.max())
    if curve.kind == "hill":
        return [(m0, half_way, shape) for shape in (1.0, 2.0, 3.0)]
    return [(m0, half_way / math.log(2)), (2 * m0, 1.0)]


def _aicc(sse: float, n: int, k: int) -> float:
    if n - k - 1 <= 0:
        return math.inf
    return n * math.log(max(sse, np.finfo(float).tiny) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def _advice(curve: _Curve, params: dict[str, float], x: NDArray[np.float64], suggest_other: bool) -> str:
    """What data would pin the curve down, judged from where the arms sit on the fitted curve."""
    name = curve.spend_param
    value = params[name]
    half_way = value if curve.kind == "hill" else value * math.log(2)  # spend reaching max_users / 2
    top, low = float(x.max()), float(x[x > 0].min())
    if top < half_way:
        how = "well below" if top < half_way / 2 else "below"
        other = " or use --kind exponential" if curve.kind == "hill" and suggest_other else ""
        return f"the arms stop at spend {_fmt(top)}, {how} the fitted {name} {_fmt(value)}: the data do not show saturation; add arms at higher spend{other}"
    if low > half_way:
        return f"the lowest arm spends {_fmt(low)}, above the fitted {name} {_fmt(value)}: the data do not show the rise; add arms at lower spend"
    return f"the users vary too much for {x.size} points on {np.unique(x).size} spend levels; add replicates or spend levels"


# ---------------------------------------------------------------- instance document


def to_instance(
    data: AbData,
    fits: Sequence[CellFit],
    *,
    name: str,
    budget: float,
    objective: str = "users",
    target_users: float | None = None,
    step: float | None = None,
    default_viral_k: float = 0.0,
    default_value_per_user: float = 0.0,
) -> dict[str, Any]:
    """An ``incentive_budget`` document with one cell per fit. Per-cell attributes come from
    the table's optional columns, else the defaults; ``mechanic``/``segment`` default to the
    two parts of a ``mechanic/segment`` cell id. Optional keys are omitted when not given."""
    if objective not in OBJECTIVES:
        raise UsageError(f"objective: unknown objective {objective!r} (expected one of {', '.join(OBJECTIVES)})")
    if (objective == "min_spend") != (target_users is not None):
        raise UsageError(f"target_users: given if and only if the objective is min_spend (objective {objective!r}, target_users {target_users!r})")
    doc: dict[str, Any] = {
        "problem": "incentive_budget",
        "schema_version": 1,
        "name": name,
        "description": f"response curves fitted by least squares from {data.source} ({len(fits)} cells)",
        "budget": _plain(budget),
        "objective": objective,
    }
    if target_users is not None:
        doc["target_users"] = _plain(target_users)
    cells = []
    for fit in fits:
        ab = data.cell(fit.cell)
        item: dict[str, Any] = {"id": ab.id}
        parts = ab.id.split("/")
        mechanic = ab.mechanic if ab.mechanic is not None else (parts[0] if len(parts) == 2 else None)
        segment = ab.segment if ab.segment is not None else (parts[1] if len(parts) == 2 else None)
        if mechanic:
            item["mechanic"] = mechanic
        if segment:
            item["segment"] = segment
        item["response"] = fit.response()
        item["viral_k"] = _plain(ab.viral_k if ab.viral_k is not None else default_viral_k)
        item["value_per_user"] = _plain(ab.value_per_user if ab.value_per_user is not None else default_value_per_user)
        if ab.min_spend is not None:
            item["min_spend"] = _plain(ab.min_spend)
        if ab.max_spend is not None:
            item["max_spend"] = _plain(ab.max_spend)
        cells.append(item)
    doc["cells"] = cells
    if step is not None:
        doc["step"] = _plain(step)
    return doc


def _round6(value: float) -> float:
    return float(f"{value:.6g}")


def _plain(value: float) -> int | float:
    """Integral floats as ints, so the JSON reads 1000000 rather than 1000000.0."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
