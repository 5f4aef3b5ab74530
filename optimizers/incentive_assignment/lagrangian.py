"""Several coupled constraints: the Lagrangian dual, and a primal repair that is always feasible.

Multipliers theta = (lam >= 0 for the budget, mu_t >= 0 for treatments with a limit, nu_s >= 0
for segments with a budget). For a user u in segment s the penalised score of treatment t is

    r_ut = value_ut - (lam + nu_s) cost_ut - mu_t,      ("none" scores 0)

and the dual function

    L(theta) = sum_u max(0, max_t r_ut) + lam B + sum_t mu_t limit_t + sum_s nu_s B_s

is an upper bound on the best plan for every theta >= 0 (weak duality); a subgradient is
(B - spend, limit_t - users_t, B_s - spend_s) of the users' best choices. L is minimised by a
level bundle method (cutting-plane model, next point the l-inf projection of the best one on
a level set: two small LPs per step); each evaluation is one pass over the parts.

Primal repair at the best multipliers: start from every user's best choice; for each
treatment over its limit move the users who lose least (in score) to their best choice among
no-more-expensive unlimited treatments or none; for each segment budget, then the budget,
that is exceeded move users to their best cheaper choice by least loss per unit of cost saved;
each move only lowers every usage, so the result is feasible. Then spend what is left by
upgrades in order of value gained per unit of cost. Each step is a radix selection over the
parts; the parts replay the steps ("rules") from the multipliers, so nothing is kept between calls.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from models.incentive_assignment import NONE, Chunk, IncentiveAssignment, chosen
from optimizers import progress
from optimizers.incentive_assignment.parts import BITS, Part, Workers, order_key, radix_histogram, select, summed
from optimizers.incentive_assignment.plan import Plan, summarize
from optimizers.registry import MethodOutput
from optimizers.result import SolverOptions, Status

log = logging.getLogger(__name__)
LEVEL = 0.3  # level = lower + LEVEL * (upper - lower)
MAX_STEPS = 300


def build(inst: IncentiveAssignment, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    return chunk.value, chunk.cost


@dataclass(frozen=True)
class Layout:
    """Where each multiplier sits in theta: [lam, mu of the limited treatments, nu of the budgeted segments]."""

    T: int
    limited: tuple[int, ...]
    segments: tuple[str, ...]

    @classmethod
    def of(cls, inst: IncentiveAssignment) -> Layout:
        return cls(len(inst.treatments), tuple(j for j, t in enumerate(inst.treatments) if t.limit is not None), tuple(inst.segment_budgets))

    @property
    def size(self) -> int:
        return 1 + len(self.limited) + len(self.segments)

    def split(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """lam, mu per treatment (0 when unlimited), nu per budgeted segment plus a trailing 0 (no budget)."""
        mu = np.zeros(self.T)
        mu[list(self.limited)] = theta[1 : 1 + len(self.limited)]
        nu = np.append(theta[1 + len(self.limited) :], 0.0)
        return float(theta[0]), mu, nu

    def rhs(self, inst: IncentiveAssignment) -> np.ndarray:
        return np.concatenate([[inst.budget], inst.limits[list(self.limited)], [inst.segment_budgets[s] for s in self.segments]])


def _scores(part: Part, layout: Layout, theta: np.ndarray) -> np.ndarray:
    V, C = part.data
    lam, mu, nu = layout.split(theta)
    return V - (lam + nu[part.budgeted]) * C - mu[:, None]


def _best(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each user's best choice (-1: none, which wins ties) and its score."""
    top = scores.argmax(axis=0)
    score = np.take_along_axis(scores, top[None, :], 0)[0]
    return np.where(score > 0, top, NONE).astype(np.int8), np.maximum(score, 0.0)


def _usage(part: Part, layout: Layout, choice: np.ndarray) -> np.ndarray:
    """(spend, users of each limited treatment, spend of each budgeted segment) of a choice."""
    V, C = part.data
    cost = chosen(C, choice)
    counts = np.bincount(choice[choice >= 0].astype(np.int64), minlength=layout.T)[list(layout.limited)]
    seg = np.bincount(part.budgeted.astype(np.int64) + 1, weights=cost, minlength=len(layout.segments) + 1)[1:]
    return np.concatenate([[cost.sum()], counts, seg])


def _dual_part(part: Part, layout: Layout, theta: np.ndarray) -> tuple[float, np.ndarray]:
    choice, score = _best(_scores(part, layout, theta))
    return float(score.sum()), _usage(part, layout, choice)


def _ranges(part: Part) -> tuple[float, float]:
    """Largest value per unit of cost, and largest value, of any treatment here."""
    V, C = part.data
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((C > 0) & (V > 0), V / C, 0.0)
    return float(ratio.max(initial=0.0)), float(V.max(initial=0.0))


# ----------------------------------------------------------------------------- the dual


class Bundle:
    """Level bundle method for min L(theta) over a box."""

    def __init__(self, upper_box: np.ndarray):
        self.box = upper_box
        self.points: list[np.ndarray] = []
        self.values: list[float] = []
        self.slopes: list[np.ndarray] = []
        self.lower = -math.inf

    @property
    def best(self) -> tuple[float, np.ndarray]:
        i = int(np.argmin(self.values))
        return self.values[i], self.points[i]

    def add(self, theta: np.ndarray, value: float, slope: np.ndarray) -> None:
        self.points.append(theta)
        self.values.append(value)
        self.slopes.append(slope)

    def _cuts(self) -> tuple[np.ndarray, np.ndarray]:
        G = np.array(self.slopes)
        b = np.array([g @ p - f for f, g, p in zip(self.values, self.slopes, self.points)])
        return G, b  # cut i: f_i + g_i (theta - p_i) = g_i theta - b_i

    def next_point(self) -> np.ndarray | None:
        d = len(self.box)
        G, b = self._cuts()
        # lower model: min z s.t. g_i theta - z <= b_i
        res = linprog(np.r_[np.zeros(d), 1.0], A_ub=np.c_[G, -np.ones(len(b))], b_ub=b,
                      bounds=[(0, u) for u in self.box] + [(None, None)], method="highs")
        if res.status != 0:
            return None
        self.lower = max(self.lower, float(res.fun))
        upper, center = self.best
        level = self.lower + LEVEL * (upper - self.lower)
        # next: min t s.t. |theta - center| <= t, g_i theta - b_i <= level
        eye = np.eye(d)
        A = np.r_[np.c_[G, np.zeros(len(b))], np.c_[eye, -np.ones(d)], np.c_[-eye, -np.ones(d)]]
        rhs = np.r_[level + b, center, -center]
        res = linprog(np.r_[np.zeros(d), 1.0], A_ub=A, b_ub=rhs, bounds=[(0, u) for u in self.box] + [(0, None)], method="highs")
        return None if res.status != 0 else np.clip(res.x[:d], 0.0, self.box)


def minimise_dual(inst: IncentiveAssignment, workers: Workers, layout: Layout, options: SolverOptions, end: float) -> tuple[float, np.ndarray, float]:
    """The best multipliers found, L there (an upper bound on every plan), and the model's
    lower value. Stops early enough before ``end`` to leave the repair its time."""
    rhs = layout.rhs(inst)
    ratio, top = (max(r) for r in zip(*workers.map(_ranges))) if workers.parts else (0.0, 0.0)
    box = np.concatenate([[ratio * 1.01 + 1e-9], np.full(len(layout.limited), top * 1.01 + 1e-9), np.full(len(layout.segments), ratio * 1.01 + 1e-9)])
    bundle = Bundle(box)
    theta = np.zeros(layout.size)
    tolerance = 1e-8  # relative; the plan repaired at loose multipliers loses far more than their dual gap
    repair_passes = 10 * (2 + len(layout.limited) + 2 * len(layout.segments))  # about what repair() costs, in dual steps
    for step in range(MAX_STEPS):
        began = time.perf_counter()
        parts = workers.map(_dual_part, layout, theta)
        usage = np.sum([u for _, u in parts], axis=0)
        value = math.fsum(s for s, _ in parts) + float(theta @ rhs)
        bundle.add(theta, value, rhs - usage)
        upper = bundle.best[0]
        progress.update("dual bundle", detail=f"step {step + 1}", bound=upper)
        log.info("dual step %d: L = %.10g, model lower %.10g", step, value, bundle.lower)
        if step and upper - bundle.lower <= tolerance * max(1.0, abs(upper)):
            break
        now = time.perf_counter()
        if now + (now - began) * (1 + repair_passes) > end:
            log.info("dual stopped by the time limit")
            break
        following = bundle.next_point()
        if following is None:
            break
        theta = following
    upper, best = bundle.best
    return upper, best, bundle.lower


# ----------------------------------------------------------------------------- primal repair


@dataclass(frozen=True)
class Rule:
    """One repair step, replayed by every part: ``kind`` is "limit" (treatment ``which``),
    "segment" (budgeted segment ``which``), "budget", or "fill" (segment ``which``, -1 for
    users without a segment budget). Users whose key is above ``key`` move; those at it move
    in table order, part p within ``ties[p]`` of weight (a downgrade until it frees that
    much, a fill while it fits)."""

    kind: str
    which: int
    key: int
    ties: tuple[float, ...] = ()


def _targets(part: Part, layout: Layout, scores: np.ndarray, choice: np.ndarray, rule_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Each user's best move for a rule kind and the key ordering the moves (larger: first)."""
    V, C = part.data
    T, m = V.shape
    limited = np.zeros(T, bool)
    limited[list(layout.limited)] = True
    cur_c, cur_v = chosen(C, choice), chosen(V, choice)
    cur_s = chosen(scores, choice)
    if rule_kind == "fill":
        gain = V - cur_v
        extra = C - cur_c
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(extra > 0, gain / extra, np.where(gain > 0, np.inf, -np.inf))
        ratio[(gain <= 0) | limited[:, None]] = -np.inf
        target = ratio.argmax(axis=0)
        best = np.take_along_axis(ratio, target[None, :], 0)[0]
        ok = best > 0
        key = np.where(ok, order_key(np.where(np.isfinite(best), best, np.finfo(float).max)), np.uint64(0))
        return np.where(ok, target, choice).astype(np.int8), key
    allowed = ~limited[:, None] & ((C <= cur_c) if rule_kind == "limit" else (C < cur_c))
    if rule_kind == "limit":
        allowed &= np.arange(T)[:, None] != choice[None, :]
    alt = np.where(allowed, scores, -np.inf)
    target = alt.argmax(axis=0)
    alt_s = np.take_along_axis(alt, target[None, :], 0)[0]
    none_better = (alt_s < 0) | ~np.isfinite(alt_s)  # "none" scores 0 and is always allowed
    target = np.where(none_better, NONE, target)
    alt_s = np.where(none_better, 0.0, alt_s)
    loss = cur_s - alt_s
    if rule_kind != "limit":
        saved = cur_c - chosen(C, target.astype(np.int8))
        loss = np.where(saved > 0, loss / np.where(saved > 0, saved, 1.0), np.inf)
    return target.astype(np.int8), ~order_key(np.where(np.isfinite(loss), loss, np.finfo(float).max))  # least loss first


def _movers(part: Part, layout: Layout, choice: np.ndarray, rule_kind: str, which: int) -> np.ndarray:
    """Users a rule may move."""
    if rule_kind == "limit":
        return choice == which
    V, C = part.data
    paid = chosen(C, choice) > 0
    if rule_kind == "segment":
        return paid & (part.budgeted == which)
    if rule_kind == "budget":
        return paid
    return part.budgeted == which  # fill


def _replay(part: Part, layout: Layout, theta: np.ndarray, rules: list[Rule]) -> tuple[np.ndarray, np.ndarray]:
    """The choices after the rules; the part remembers the last replay (rules only get added)."""
    memo = part.memo.get("replay")
    if memo is not None and memo[0] == theta.tobytes() and tuple(rules[: len(memo[1])]) == memo[1]:
        _, done, scores, choice = memo
    else:
        done, scores = (), _scores(part, layout, theta)
        choice, _ = _best(scores)
    for rule in rules[len(done) :]:
        target, key = _targets(part, layout, scores, choice, rule.kind)
        movers = _movers(part, layout, choice, rule.kind, rule.which)
        move = movers & (key > np.uint64(rule.key))
        allowance = rule.ties[part.index] if rule.ties else 0.0
        if allowance > 0:
            tied = np.flatnonzero(movers & (key == np.uint64(rule.key)))
            w = _weights(part, layout, choice, target, rule.kind)[tied]
            done_before = np.cumsum(w) - w
            take = (done_before + w <= allowance * (1 + 1e-12)) if rule.kind == "fill" else (done_before < allowance)
            move[tied[take]] = True
        choice = np.where(move, target, choice).astype(np.int8)
    part.memo["replay"] = (theta.tobytes(), tuple(rules), scores, choice)
    return choice, scores


def _weights(part: Part, layout: Layout, choice: np.ndarray, target: np.ndarray, kind: str) -> np.ndarray:
    V, C = part.data
    if kind == "limit":
        return np.ones(part.size)
    return np.abs(chosen(C, choice) - chosen(C, target))


def _rule_histogram(part: Part, layout: Layout, theta: np.ndarray, rules: list[Rule], kind: str, which: int, prefix: int, shift: int) -> Any:
    """Radix histogram of a candidate rule's moves (weight: usage freed or consumed; value:
    value gained); the moves are remembered across the selection's rounds."""
    step = (theta.tobytes(), tuple(rules), kind, which)
    memo = part.memo.get("moves")
    if memo is None or memo[0] != step:
        choice, scores = _replay(part, layout, theta, rules)
        target, key = _targets(part, layout, scores, choice, kind)
        move = _movers(part, layout, choice, kind, which) & (key > 0)
        V, _ = part.data
        items = (key[move], _weights(part, layout, choice, target, kind)[move], (chosen(V, target) - chosen(V, choice))[move])
        memo = part.memo["moves"] = (step, items)
    keys, weights, gains = memo[1]
    return radix_histogram(keys, weights, gains, prefix, shift)


def _tie_weight(part: Part, layout: Layout, theta: np.ndarray, rules: list[Rule], kind: str, which: int, key: int) -> float:
    _rule_histogram(part, layout, theta, rules, kind, which, 0, 64 - BITS)  # the moves, remembered
    keys, weights, _ = part.memo["moves"][1]
    return float(weights[keys == np.uint64(key)].sum())


def _usage_after(part: Part, layout: Layout, theta: np.ndarray, rules: list[Rule]) -> np.ndarray:
    choice, _ = _replay(part, layout, theta, rules)
    return _usage(part, layout, choice)


def _finish(part: Part, inst: IncentiveAssignment, layout: Layout, theta: np.ndarray, rules: list[Rule]) -> Any:
    choice, _ = _replay(part, layout, theta, rules)
    V, C = part.data
    return summarize(inst, part, choice, chosen(V, choice), chosen(C, choice))


def repair(inst: IncentiveAssignment, workers: Workers, layout: Layout, theta: np.ndarray) -> list[Rule]:
    """The rules that make the multipliers' plan feasible, then fill the budgets left."""
    rhs = layout.rhs(inst)
    rules: list[Rule] = []

    def usage() -> np.ndarray:
        return np.sum(workers.map(_usage_after, layout, theta, rules), axis=0)

    def add(kind: str, which: int, amount: float) -> None:
        """Downgrades freeing at least ``amount``, or a fill within ``amount``, least loss
        (most gain) per unit first; ties at the threshold in table order."""
        hist = lambda prefix, shift: summed(workers.map(_rule_histogram, layout, theta, rules, kind, which, prefix, shift))  # noqa: E731
        found = select(hist, amount)
        if found is None:  # every candidate fits (fill), or moving them all is not more than needed
            rules.append(Rule(kind, which, 0))
            return
        left = amount - found.above_weight
        ties = []
        for weight in workers.map(_tie_weight, layout, theta, rules, kind, which, found.key):
            ties.append(max(0.0, min(left, weight)))
            left -= weight
        rules.append(Rule(kind, which, found.key, tuple(ties)))

    n_lim = len(layout.limited)
    used = usage()
    for i, t in enumerate(layout.limited):
        excess = used[1 + i] - rhs[1 + i]
        if excess > 0:
            add("limit", t, excess)
            used = usage()
    # Moves go to strictly cheaper choices, so after at most T + 1 rounds everyone left is at "none".
    for k in range(len(layout.segments)):
        for _ in range(layout.T + 2):
            excess = used[1 + n_lim + k] - rhs[1 + n_lim + k]
            if excess <= 0:
                break
            add("segment", k, excess)
            used = usage()
    for _ in range(layout.T + 2):
        if used[0] <= rhs[0]:
            break
        add("budget", -1, used[0] - rhs[0])
        used = usage()
    # fill: users without a segment budget first, then each budgeted segment
    for k in [-1, *range(len(layout.segments))]:
        room = rhs[0] - used[0]
        if k >= 0:
            room = min(room, rhs[1 + n_lim + k] - used[1 + n_lim + k])
        if room > 0:
            add("fill", k, room)
            used = usage()
    return rules


def solve(inst: IncentiveAssignment, workers: Workers, options: SolverOptions, started: float) -> MethodOutput:
    layout = Layout.of(inst)
    end = math.inf if options.time_limit_s is None else started + options.time_limit_s
    bound, theta, lower = minimise_dual(inst, workers, layout, options, end)
    log.info("dual: %.10g (model lower %.10g) in %.2f s", bound, lower, time.perf_counter() - started)
    progress.update("repairing the plan at the best multipliers")
    rules = repair(inst, workers, layout, theta)
    plan = Plan.gather(workers.map(_finish, inst, layout, theta, rules))
    bound = max(bound, plan.value)
    status = Status.OPTIMAL if bound - plan.value <= options.gap * max(1.0, abs(plan.value)) else Status.FEASIBLE
    lam, mu, nu = layout.split(theta)
    meta = {"multipliers": {"budget": lam, **{f"limit:{inst.treatments[t].id}": float(mu[t]) for t in layout.limited},
                            **{f"segment:{s}": float(nu[k]) for k, s in enumerate(layout.segments)}},
            "repair_rules": len(rules)}
    return MethodOutput(status, plan.value, bound, plan.solution(inst), meta=meta, attachments={"choice": plan.choice})
