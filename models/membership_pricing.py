"""The ``membership_pricing`` family: the annual fee of each membership tier, which tiers to
offer, and who joins which tier, for the largest lifetime profit under self-selection.

Schema (formats.md), the numeric view the methods and ``evaluate()`` share (:func:`market`),
the choice simulation, ``evaluate()``, the lifetime-value report, a profit-vs-fee curve and a
seeded instance generator.

Rules ``evaluate()`` applies (and every method follows):

- Menu: the tiers listed in the solution's ``fees``. A tier nobody joins counts as unoffered
  (its fixed cost is not paid and its fee is ignored for ``fee_order``), unless it has
  ``must_offer``: such a tier must have a fee, its fixed cost is paid and its fee obeys
  ``fee_order`` whether or not anyone joins.
- ``max_surplus``: segment s's surplus in tier t is ``wtp_st - fee_t`` (a tier missing from
  ``willingness_to_pay`` is worth 0). With utility tolerance e (default 0) the segment joins
  its best tier when that surplus is >= e and stays out when it is < e; at exactly e, and
  between tiers of equal surplus, the tie goes to the seller (the solution's reported choice is
  accepted; without one, the option with the larger profit from that segment). With e > 0 a
  member must also prefer its tier by at least e over every other tier on the menu; fees that
  leave a segment closer than e between two tiers are not robust and count as a violation.
- ``mnl``: segment s joins tier t with probability
  ``exp(b (wtp_st - fee_t)) / (1 + sum_u exp(b (wtp_su - fee_u)))`` over the menu; everyone on
  the menu is chosen with positive probability, so every listed tier is offered. Members and
  profit are expected values; a reported choice must be a segment's most likely option.
- Lifetime profit of a member of t from segment s: ``size_s * w_st * (fee_t - benefit_cost_st
  + margin_uplift_st)`` with ``w_st = (1 + d) / (1 + d - retention_st)`` (retention 0, the
  default, gives 1: one year); minus the fixed cost of every offered tier.
- ``fee_order``: the offered tiers among those listed, taken in that order, have fees at least
  ``min_fee_gap`` apart (consecutive offered tiers; an unoffered tier in between is skipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat

from models.base import TOLERANCE, Envelope, Evaluation, Id, Strict, duplicate_ids, raw_ids
from models.errors import Problem

PROBLEM = "membership_pricing"
PER_TIER_KEYS = ("willingness_to_pay", "benefit_cost", "margin_uplift", "retention")
Retention = Annotated[float, Field(ge=0.0, lt=1.0)]


class Tier(Strict):
    id: Id
    min_fee: NonNegativeFloat = Field(0.0, description="per year")
    max_fee: NonNegativeFloat = Field(description="per year")
    fee_step: PositiveFloat | None = Field(None, description="fees lie on min_fee + k * fee_step")
    fixed_cost: NonNegativeFloat = Field(0.0, description="paid once if the tier is offered (in the lifetime money of the objective)")
    must_offer: bool = False


class Segment(Strict):
    id: Id
    size: PositiveFloat = Field(1.0, description="customers in the segment")
    willingness_to_pay: dict[Id, NonNegativeFloat] = Field(description="per year, by tier id; a missing tier is worth 0")
    benefit_cost: dict[Id, NonNegativeFloat] = Field(default_factory=dict, description="per member per year, by tier id")
    margin_uplift: dict[Id, float] = Field(default_factory=dict, description="extra margin per member per year, by tier id")
    retention: dict[Id, Retention] = Field(default_factory=dict, description="yearly renewal probability in [0, 1), by tier id")


class Choice(Strict):
    model: Literal["max_surplus", "mnl"] = "max_surplus"
    price_sensitivity: PositiveFloat | None = Field(None, description="mnl only: b in exp(b (wtp - fee))")


class MembershipPricing(Envelope):
    problem: Literal["membership_pricing"]
    tiers: list[Tier] = Field(min_length=1)
    segments: list[Segment] = Field(min_length=1)
    discount_rate: NonNegativeFloat = 0.0
    choice: Choice = Field(default_factory=lambda: Choice(model="max_surplus", price_sensitivity=None))
    fee_order: list[Id] = Field(default_factory=list, description="tier ids whose fees must not decrease, in this order")
    min_fee_gap: NonNegativeFloat = Field(0.0, description="between consecutive offered tiers of fee_order")
    utility_tolerance: NonNegativeFloat = Field(0.0, description="max_surplus only: the margin by which a member prefers its tier")


# ----------------------------------------------------------------------------- checks


def cross_check(raw: dict[str, Any]) -> list[Problem]:
    """Reference and consistency checks on the raw document (runs even when field validation
    failed, skipping items too malformed to read)."""
    problems: list[Problem] = []
    for key in ("tiers", "segments"):
        problems += duplicate_ids(raw.get(key), key)
    tiers = raw_ids(raw.get("tiers"))
    known = _known(raw.get("tiers"))
    for s, seg in enumerate(_dicts(raw.get("segments"))):
        for key in PER_TIER_KEYS:
            values = seg.get(key)
            for tier in values if isinstance(values, dict) and tiers else {}:
                if tier not in tiers:
                    problems.append(Problem(f"segments[{s}].{key}.{tier}", f"unknown tier '{tier}' (tiers: {known})"))
    for t, tier in enumerate(_dicts(raw.get("tiers"))):
        lo, hi = tier.get("min_fee", 0.0), tier.get("max_fee")
        if _number(lo) and _number(hi) and lo > hi:
            problems.append(Problem(f"tiers[{t}].max_fee", f"must be >= min_fee (got max_fee {hi:g} < min_fee {lo:g})"))
    order = raw.get("fee_order")
    seen: dict[str, int] = {}
    for k, tier in enumerate(order if isinstance(order, list) else []):
        if not isinstance(tier, str):
            continue
        if tiers and tier not in tiers:
            problems.append(Problem(f"fee_order[{k}]", f"unknown tier '{tier}' (tiers: {known})"))
        if tier in seen:
            problems.append(Problem(f"fee_order[{k}]", f"tier '{tier}' listed twice (first at fee_order[{seen[tier]}])"))
        seen.setdefault(tier, k)
    choice = raw.get("choice")
    if isinstance(choice, dict):
        model = choice.get("model", "max_surplus")
        if model == "mnl" and choice.get("price_sensitivity") is None:
            problems.append(Problem("choice.price_sensitivity", "required when choice.model is 'mnl'"))
        if model == "max_surplus" and choice.get("price_sensitivity") is not None:
            problems.append(Problem("choice.price_sensitivity", "only used when choice.model is 'mnl'"))
        tolerance = raw.get("utility_tolerance")
        if model == "mnl" and isinstance(tolerance, (int, float)) and _number(tolerance) and tolerance > 0:
            problems.append(Problem("utility_tolerance", f"only applies to choice.model 'max_surplus' (got {tolerance:g} with 'mnl')"))
    return problems


def feasibility_check(inst: MembershipPricing) -> list[Problem]:
    """Checks that prove infeasibility before any solver runs, quoting the numbers: two tiers
    consecutive in ``fee_order`` whose bounds leave no room for ``min_fee_gap`` (they can never
    both be offered), and the chain of ``must_offer`` tiers along ``fee_order``."""
    problems: list[Problem] = []
    by_id = {t.id: t for t in inst.tiers}
    gap = inst.min_fee_gap
    order = [by_id[t] for t in inst.fee_order]
    for first, second in zip(order, order[1:]):
        need = first.min_fee + gap
        if need > second.max_fee + TOLERANCE * max(1.0, second.max_fee):
            problems.append(
                Problem(
                    "fee_order",
                    f"fee_order {first.id} < {second.id} with min_fee_gap {gap:g} needs {second.id}'s fee >= {need:g} "
                    f"but {second.id}.max_fee is {second.max_fee:g} (the two can never both be offered)",
                )
            )
    forced = [t for t in order if t.must_offer]
    if len(forced) >= 2 and not problems:
        low = forced[0].min_fee
        for tier in forced[1:]:
            low = max(tier.min_fee, low + gap)
            if low > tier.max_fee + TOLERANCE * max(1.0, tier.max_fee):
                chain = " < ".join(t.id for t in forced[: forced.index(tier) + 1])
                problems.append(
                    Problem("fee_order", f"must_offer tiers {chain} with min_fee_gap {gap:g} need {tier.id}'s fee >= {low:g} but {tier.id}.max_fee is {tier.max_fee:g}")
                )
                break
    return problems


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _known(tiers: Any) -> str:
    names = [t["id"] for t in _dicts(tiers) if isinstance(t.get("id"), str)]
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


# ----------------------------------------------------------------------------- numeric view


@dataclass(frozen=True)
class Market:
    """Arrays indexed by position (segments s, tiers t), shared by the methods and ``evaluate()``."""

    tier_ids: list[str]
    segment_ids: list[str]
    wtp: np.ndarray  # (S, T) per year; 0 where not given
    benefit_cost: np.ndarray  # (S, T) per member per year
    uplift: np.ndarray  # (S, T) per member per year
    weight: np.ndarray  # (S, T) lifetime weight (1 + d) / (1 + d - r)
    size: np.ndarray  # (S,)
    min_fee: np.ndarray  # (T,)
    max_fee: np.ndarray  # (T,)
    step: np.ndarray  # (T,) 0 where fees are continuous
    fixed_cost: np.ndarray  # (T,)
    must_offer: np.ndarray  # (T,) bool
    order: list[int]  # tier positions of fee_order
    gap: float
    tolerance: float  # utility tolerance e
    model: str
    price_sensitivity: float

    @property
    def per_fee(self) -> np.ndarray:
        """(S, T) lifetime profit per unit of fee from a segment joining a tier: size * weight."""
        return self.size[:, None] * self.weight

    @property
    def constant(self) -> np.ndarray:
        """(S, T) lifetime profit at fee 0 from a segment joining a tier: size * w * (uplift - cost)."""
        return self.per_fee * (self.uplift - self.benefit_cost)

    def on_grid(self, t: int, fee: float) -> bool:
        if self.step[t] <= 0:
            return True
        k = (fee - self.min_fee[t]) / self.step[t]
        return abs(k - round(k)) <= 1e-6 * max(1.0, abs(k))

    def snap_down(self, t: int, fee: float) -> float:
        """The largest fee on tier t's grid that is <= ``fee`` (``fee`` itself when continuous)."""
        if self.step[t] <= 0:
            return fee
        k = math.floor((fee - self.min_fee[t]) / self.step[t] + 1e-9)
        return float(self.min_fee[t] + k * self.step[t])

    def snap_up(self, t: int, fee: float) -> float:
        if self.step[t] <= 0:
            return fee
        k = math.ceil((fee - self.min_fee[t]) / self.step[t] - 1e-9)
        return float(self.min_fee[t] + k * self.step[t])

    def tie(self, s: int) -> float:
        """Surplus differences within this count as ties for segment s."""
        return TOLERANCE * max(1.0, float(np.abs(self.wtp[s]).max(initial=0.0)))


def market(inst: MembershipPricing) -> Market:
    tier_ids = [t.id for t in inst.tiers]
    pos = {t: k for k, t in enumerate(tier_ids)}
    S, T = len(inst.segments), len(tier_ids)
    wtp, cost, uplift, retention = (np.zeros((S, T)) for _ in range(4))
    for s, seg in enumerate(inst.segments):
        for array, values in ((wtp, seg.willingness_to_pay), (cost, seg.benefit_cost), (uplift, seg.margin_uplift), (retention, seg.retention)):
            for tier, value in values.items():
                array[s, pos[tier]] = value
    d = inst.discount_rate
    return Market(
        tier_ids=tier_ids,
        segment_ids=[s.id for s in inst.segments],
        wtp=wtp,
        benefit_cost=cost,
        uplift=uplift,
        weight=(1.0 + d) / (1.0 + d - retention),
        size=np.array([s.size for s in inst.segments], dtype=float),
        min_fee=np.array([t.min_fee for t in inst.tiers], dtype=float),
        max_fee=np.array([t.max_fee for t in inst.tiers], dtype=float),
        step=np.array([t.fee_step or 0.0 for t in inst.tiers], dtype=float),
        fixed_cost=np.array([t.fixed_cost for t in inst.tiers], dtype=float),
        must_offer=np.array([t.must_offer for t in inst.tiers], dtype=bool),
        order=[pos[t] for t in inst.fee_order],
        gap=inst.min_fee_gap,
        tolerance=inst.utility_tolerance,
        model=inst.choice.model,
        price_sensitivity=inst.choice.price_sensitivity or 0.0,
    )


# ----------------------------------------------------------------------------- choice simulation


def options(mk: Market, fee: np.ndarray, s: int) -> list[int | None]:
    """The choices segment s may make at these fees (max_surplus; ``fee`` is NaN off the menu):
    the tiers of largest surplus, or None (stay out), ties to be settled for the seller."""
    on = ~np.isnan(fee)
    if not on.any():
        return [None]
    surplus = np.where(on, mk.wtp[s] - np.where(on, fee, 0.0), -np.inf)
    best, tie = float(surplus.max()), mk.tie(s)
    tiers: list[int | None] = [int(t) for t in np.flatnonzero(surplus >= best - tie)]
    if best < mk.tolerance - tie:
        return [None]
    if best <= mk.tolerance + tie:
        return tiers + [None]
    return tiers


def seller_pick(mk: Market, fee: np.ndarray, s: int, allowed: list[int | None]) -> int | None:
    """Among ``allowed``, the option with the largest lifetime profit from segment s (first wins)."""
    best, pick = -math.inf, None
    for option in allowed:
        value = 0.0 if option is None else float(mk.per_fee[s, option] * fee[option] + mk.constant[s, option])
        if pick is None and best == -math.inf or value > best + 1e-12 * max(1.0, abs(best)):
            best, pick = value, option
    return pick


def simulate(mk: Market, fee: np.ndarray) -> list[int | None]:
    """Every segment's choice at these fees (max_surplus), ties settled for the seller."""
    return [seller_pick(mk, fee, s, options(mk, fee, s)) for s in range(len(mk.segment_ids))]


def mnl_probabilities(mk: Market, fee: np.ndarray) -> np.ndarray:
    """(S, T) choice probabilities under the logit model; 0 for tiers off the menu."""
    on = ~np.isnan(fee)
    utility = mk.price_sensitivity * (mk.wtp - np.where(on, fee, 0.0)[None, :])
    utility = np.where(on[None, :], utility, -np.inf)
    top = np.maximum(utility.max(axis=1, initial=-np.inf), 0.0)  # the outside option has utility 0
    expo = np.exp(utility - top[:, None])
    return expo / (np.exp(-top) + expo.sum(axis=1))[:, None]


def modal_set(share_row: np.ndarray) -> set[int]:
    """The most likely choices of one segment under logit shares (-1: staying out)."""
    row = np.concatenate([[1.0 - share_row.sum()], share_row])
    return {int(k) - 1 for k in np.flatnonzero(row >= row.max() - 1e-9)}


def modal_choices(share: np.ndarray) -> list[int | None]:
    """Every segment's most likely choice (the highest tier among equally likely ones)."""
    out: list[int | None] = []
    for row in share:
        top = max(modal_set(row))
        out.append(top if top >= 0 else None)
    return out


def fee_vector(mk: Market, fees: dict[str, float]) -> np.ndarray:
    pos = {t: k for k, t in enumerate(mk.tier_ids)}
    out = np.full(len(mk.tier_ids), np.nan)
    for tier, value in fees.items():
        if tier in pos:
            out[pos[tier]] = float(value)
    return out


def order_violations(mk: Market, fee: np.ndarray, offered: np.ndarray) -> list[str]:
    out = []
    chain = [t for t in mk.order if offered[t] and not np.isnan(fee[t])]
    for i, j in zip(chain, chain[1:]):
        if fee[j] - fee[i] < mk.gap - TOLERANCE * max(1.0, abs(fee[j])):
            out.append(
                f"fee_order: {mk.tier_ids[j]} (fee {fee[j]:.6g}) must be at least min_fee_gap {mk.gap:g} above "
                f"{mk.tier_ids[i]} (fee {fee[i]:.6g})"
            )
    return out


def profit_of(mk: Market, fee: np.ndarray, share: np.ndarray, offered: np.ndarray) -> float:
    """Lifetime profit of (S, T) membership shares (0/1 for max_surplus) at these fees."""
    fee0 = np.where(np.isnan(fee), 0.0, fee)
    per_pair = share * (mk.per_fee * fee0[None, :] + mk.constant)
    return float(per_pair.sum() - mk.fixed_cost[offered].sum())


# ----------------------------------------------------------------------------- evaluate


def evaluate(inst: MembershipPricing, solution: dict[str, Any]) -> Evaluation:
    """Simulate every segment's choice at the solution's fees, recompute the lifetime profit and
    list every violation. No solver."""
    mk = market(inst)
    S, T = len(mk.segment_ids), len(mk.tier_ids)
    pos = {t: k for k, t in enumerate(mk.tier_ids)}
    seg_pos = {s: k for k, s in enumerate(mk.segment_ids)}
    bad: list[str] = []
    fees = solution.get("fees") if isinstance(solution, dict) else None
    if not isinstance(fees, dict):
        return Evaluation(objective=0.0, violations=["fees: missing (expected an object tier id -> fee)"])

    fee = np.full(T, np.nan)
    for tier, value in fees.items():
        if tier not in pos:
            bad.append(f"fees.{tier}: unknown tier (tiers: {', '.join(mk.tier_ids[:8])})")
            continue
        t = pos[tier]
        if not _number(value):
            bad.append(f"fees.{tier}: must be a finite number (got {value!r})")
            continue
        value = float(value)
        if value < mk.min_fee[t] - TOLERANCE * max(1.0, mk.min_fee[t]):
            bad.append(f"fees.{tier}: {value:.6g} is below min_fee {mk.min_fee[t]:g}")
        if value > mk.max_fee[t] + TOLERANCE * max(1.0, mk.max_fee[t]):
            bad.append(f"fees.{tier}: {value:.6g} is above max_fee {mk.max_fee[t]:g}")
        if not mk.on_grid(t, value):
            bad.append(f"fees.{tier}: {value:.6g} is off the fee grid (min_fee {mk.min_fee[t]:g} + k * fee_step {mk.step[t]:g})")
        fee[t] = value
    for missing in np.flatnonzero(mk.must_offer & np.isnan(fee)):
        bad.append(f"fees: tier '{mk.tier_ids[missing]}' has must_offer but no fee")

    reported = solution.get("choices")
    if reported is not None and not isinstance(reported, dict):
        bad.append("choices: must be an object segment id -> tier id or null")
        reported = None
    for seg in reported or {}:
        if seg not in seg_pos:
            bad.append(f"choices.{seg}: unknown segment")

    share = np.zeros((S, T))
    picks: list[int | None] = [None] * S
    if mk.model == "mnl":
        share = mnl_probabilities(mk, fee)
        for s in range(S):
            modal = modal_set(share[s])
            picks[s] = max(modal) if max(modal) >= 0 else None
            if reported is not None and mk.segment_ids[s] in reported:
                want = reported[mk.segment_ids[s]]
                wanted = -1 if want is None else pos.get(want, -2)
                if wanted not in modal:
                    bad.append(f"choices.{mk.segment_ids[s]}: reported {want!r} is not the most likely choice at these fees")
        offered = ~np.isnan(fee)
    else:
        for s in range(S):
            allowed = options(mk, fee, s)
            name = mk.segment_ids[s]
            pick = seller_pick(mk, fee, s, allowed)
            if reported is not None:
                if name not in reported:
                    bad.append(f"choices.{name}: missing (the simulation gives {_tier_name(mk, pick)})")
                else:
                    want = reported[name]
                    code: int | None = None if want is None else pos.get(want, -2)
                    if code in allowed:
                        pick = code
                    else:
                        bad.append(
                            f"choices.{name}: reported {want!r} but at these fees the segment chooses {_tier_name(mk, pick)} "
                            f"({_surplus_text(mk, fee, s)})"
                        )
            picks[s] = pick
            if pick is not None:
                share[s, pick] = 1.0
                if mk.tolerance > 0:
                    bad += _robustness(mk, fee, s, pick)
        offered = (share.sum(axis=0) > 0) | (mk.must_offer & ~np.isnan(fee))
    bad += order_violations(mk, fee, offered)

    members = share.T @ mk.size
    listed = solution.get("members")
    if isinstance(listed, dict):
        for tier, value in listed.items():
            where = pos.get(tier)
            expect = float(members[where]) if where is not None else 0.0
            if not _number(value) or abs(float(value) - expect) > TOLERANCE * max(1.0, expect):
                bad.append(f"members.{tier}: reported {value!r} but the simulation gives {expect:.6g}")
        for joined in np.flatnonzero(members > 0):
            if mk.tier_ids[joined] not in listed:
                bad.append(f"members.{mk.tier_ids[joined]}: missing (the simulation gives {members[joined]:.6g})")

    objective = profit_of(mk, fee, share, offered)
    details = lifetime_report(mk, fee, share, offered, picks)
    return Evaluation(objective=objective, violations=bad, details=details)


def _tier_name(mk: Market, t: int | None) -> str:
    return "no tier" if t is None else f"'{mk.tier_ids[t]}'"


def _surplus_text(mk: Market, fee: np.ndarray, s: int) -> str:
    on = np.flatnonzero(~np.isnan(fee))
    parts = [f"{mk.tier_ids[t]} {mk.wtp[s, t] - fee[t]:.6g}" for t in on[:6]]
    return "surplus " + (", ".join(parts) if parts else "none: no tier offered")


def _robustness(mk: Market, fee: np.ndarray, s: int, pick: int) -> list[str]:
    tie = mk.tie(s)
    mine = mk.wtp[s, pick] - fee[pick]
    out = []
    if mine < mk.tolerance - tie:
        out.append(f"segments.{mk.segment_ids[s]}: surplus {mine:.6g} in '{mk.tier_ids[pick]}' is below utility_tolerance {mk.tolerance:g}")
    for u in np.flatnonzero(~np.isnan(fee)):
        if u != pick and mine - (mk.wtp[s, u] - fee[u]) < mk.tolerance - tie:
            out.append(
                f"segments.{mk.segment_ids[s]}: prefers '{mk.tier_ids[pick]}' over '{mk.tier_ids[u]}' by only "
                f"{mine - (mk.wtp[s, u] - fee[u]):.6g} (utility_tolerance {mk.tolerance:g}): not robust"
            )
    return out


# ----------------------------------------------------------------------------- reports


def lifetime_report(mk: Market, fee: np.ndarray, share: np.ndarray, offered: np.ndarray, picks: list[int | None]) -> dict[str, Any]:
    """Per offered tier: members, lifetime fee revenue, benefit cost, uplift margin, fixed cost
    and lifetime profit; per segment: its choice, surplus, lifetime weights and break-even fees
    (the fee at which a member of that tier earns nothing: benefit_cost - margin_uplift)."""
    fee0 = np.where(np.isnan(fee), 0.0, fee)
    mass = share * mk.per_fee  # (S, T) lifetime-weighted members
    tiers: dict[str, Any] = {}
    for t in np.flatnonzero(offered):
        revenue = float(mass[:, t].sum() * fee0[t])
        cost = float(mass[:, t] @ mk.benefit_cost[:, t])
        uplift = float(mass[:, t] @ mk.uplift[:, t])
        tiers[mk.tier_ids[t]] = {
            "fee": float(fee0[t]),
            "members": float(share[:, t] @ mk.size),
            "fee_revenue": revenue,
            "benefit_cost": cost,
            "uplift_margin": uplift,
            "fixed_cost": float(mk.fixed_cost[t]),
            "lifetime_profit": revenue - cost + uplift - float(mk.fixed_cost[t]),
        }
    segments: dict[str, Any] = {}
    if len(mk.tier_ids) <= 20:  # per-segment detail stays readable only for few tiers
        for s, name in enumerate(mk.segment_ids):
            pick = picks[s]
            segments[name] = {
                "choice": None if pick is None else mk.tier_ids[pick],
                "surplus": 0.0 if pick is None else float(mk.wtp[s, pick] - fee0[pick]),
                "lifetime_weight": {mk.tier_ids[t]: float(mk.weight[s, t]) for t in range(len(mk.tier_ids))},
                "break_even_fee": {mk.tier_ids[t]: float(mk.benefit_cost[s, t] - mk.uplift[s, t]) for t in range(len(mk.tier_ids))},
            }
    return {
        "members_total": float(share.sum(axis=1) @ mk.size),
        "fee_revenue": float(sum(v["fee_revenue"] for v in tiers.values())),
        "benefit_cost": float(sum(v["benefit_cost"] for v in tiers.values())),
        "uplift_margin": float(sum(v["uplift_margin"] for v in tiers.values())),
        "fixed_cost": float(mk.fixed_cost[offered].sum()),
        "tiers": tiers,
        "segments": segments,
    }


def solution_document(mk: Market, fee: np.ndarray, picks: list[int | None]) -> dict[str, Any]:
    """The solution object of a max_surplus answer: fees of the offered tiers, choices,
    members, and the lifetime-value report."""
    S, T = len(mk.segment_ids), len(mk.tier_ids)
    share = np.zeros((S, T))
    for s, pick in enumerate(picks):
        if pick is not None:
            share[s, pick] = 1.0
    offered = (share.sum(axis=0) > 0) | (mk.must_offer & ~np.isnan(fee))
    return _document(mk, fee, share, offered, picks)


def _document(mk: Market, fee: np.ndarray, share: np.ndarray, offered: np.ndarray, picks: list[int | None]) -> dict[str, Any]:
    """The keys both choice models report: fees and members of the offered tiers, choices,
    profit, and the lifetime-value report."""
    report = lifetime_report(mk, fee, share, offered, picks)
    members = share.T @ mk.size
    return {
        "fees": {mk.tier_ids[t]: float(fee[t]) for t in np.flatnonzero(offered)},
        "choices": {mk.segment_ids[s]: None if p is None else mk.tier_ids[p] for s, p in enumerate(picks)},
        "members": {mk.tier_ids[t]: float(members[t]) for t in np.flatnonzero(offered)},
        "profit": profit_of(mk, fee, share, offered),
        "tiers": report["tiers"],
        "segments": report["segments"],
    }


def mnl_solution_document(mk: Market, fee: np.ndarray) -> dict[str, Any]:
    """The solution object of an mnl answer: fees of the listed tiers (every listed tier is
    offered under logit choice), each segment's most likely choice, expected members, the
    expected lifetime profit, the lifetime-value report and, per segment, the choice
    probabilities (``shares``; ``null`` is staying out)."""
    share = mnl_probabilities(mk, fee)
    offered = ~np.isnan(fee)
    picks = modal_choices(share)
    doc = _document(mk, fee, share, offered, picks)
    if len(mk.tier_ids) <= 20:
        doc["shares"] = {
            mk.segment_ids[s]: {"none": float(1.0 - share[s].sum())} | {mk.tier_ids[t]: float(share[s, t]) for t in np.flatnonzero(offered)}
            for s in range(len(mk.segment_ids))
        }
    return doc


def curve_fees(mk: Market, t: int, current: float, points: int = 25) -> list[float]:
    """The fees of tier t on its profit curve: its whole grid when short, else ``points`` fees
    over its range (snapped to the grid) and ``current``."""
    lo, hi = float(mk.min_fee[t]), float(mk.max_fee[t])
    if mk.step[t] > 0 and (hi - lo) / mk.step[t] <= 4 * points:
        return [lo + k * mk.step[t] for k in range(int(math.floor((hi - lo) / mk.step[t] + 1e-9)) + 1)]
    return sorted({mk.snap_down(t, lo + (hi - lo) * k / max(1, points - 1)) for k in range(points)} | {current})


def profit_curve(inst: MembershipPricing, fees: dict[str, float], tier: str, points: int = 25) -> list[dict[str, Any]]:
    """Lifetime profit as tier ``tier``'s fee moves over its range (the other fees held), each
    point ``{"fee", "profit", "feasible"}`` (feasible: fee_order and robustness hold), for reports.
    Choices are simulated with ties settled for the seller."""
    mk = market(inst)
    t = mk.tier_ids.index(tier)
    grid = curve_fees(mk, t, float(fees.get(tier, mk.min_fee[t])), points)
    out = []
    base = dict(fees)
    for value in grid:
        base[tier] = value
        check = evaluate(inst, {"fees": base})
        out.append({"fee": float(value), "profit": check.objective, "feasible": check.feasible})
    return out


# ----------------------------------------------------------------------------- generator


def generate(
    n_tiers: int = 3,
    n_segments: int = 6,
    *,
    seed: int = 0,
    max_fee: float = 300.0,
    fee_step: float | None = None,
    fixed_cost: float = 0.0,
    retention: bool = True,
    retention_by_tier: bool = True,
    costs: bool = True,
    discount_rate: float = 0.1,
    fee_order: bool = True,
    min_fee_gap: float = 0.0,
    must_offer: int = 0,
    utility_tolerance: float = 0.0,
    choice: str = "max_surplus",
    price_sensitivity: float = 0.05,
    integer_values: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """A seeded random tier menu as a plain instance document (validate with ``parse_instance``).

    Tiers are ordered by benefit: segment s values tier t at ``base_s * richness_t`` with noise;
    heavier users value tiers more but also cost more to serve (adverse selection)."""
    rng = np.random.default_rng(seed)
    tiers = [f"tier-{t + 1}" for t in range(n_tiers)]
    richness = np.cumsum(rng.uniform(0.6, 1.4, n_tiers))
    richness /= richness[-1]
    base = rng.uniform(0.2, 1.0, n_segments) * max_fee
    heavy = rng.uniform(0.0, 1.0, n_segments)  # usage intensity
    wtp = base[:, None] * richness[None, :] * rng.uniform(0.8, 1.2, (n_segments, n_tiers))
    cost = (0.1 + 0.6 * heavy[:, None]) * wtp * rng.uniform(0.7, 1.1, (n_segments, n_tiers))
    uplift = rng.uniform(0.0, 0.5, (n_segments, n_tiers)) * wtp
    renew = rng.uniform(0.5, 0.95, (n_segments, 1 if not retention_by_tier else n_tiers)) * np.ones((1, n_tiers))
    rnd = (lambda x: float(round(x))) if integer_values else (lambda x: round(float(x), 2))
    segments = []
    for s in range(n_segments):
        seg: dict[str, Any] = {
            "id": f"seg-{s + 1}",
            "size": float(rng.integers(1, 50) * 100),
            "willingness_to_pay": {tiers[t]: rnd(wtp[s, t]) for t in range(n_tiers)},
        }
        if costs:
            seg["benefit_cost"] = {tiers[t]: rnd(cost[s, t]) for t in range(n_tiers)}
            seg["margin_uplift"] = {tiers[t]: rnd(uplift[s, t]) for t in range(n_tiers)}
        if retention:
            seg["retention"] = {tiers[t]: round(float(renew[s, t]), 2) for t in range(n_tiers)}
        segments.append(seg)
    doc: dict[str, Any] = {
        "problem": PROBLEM,
        "schema_version": 1,
        "name": name or f"tiers-{n_tiers}x{n_segments}-s{seed}",
        "tiers": [
            {"id": tiers[t], "min_fee": 0.0, "max_fee": float(max_fee), "fixed_cost": float(fixed_cost), "must_offer": t < must_offer}
            | ({"fee_step": float(fee_step)} if fee_step else {})
            for t in range(n_tiers)
        ],
        "segments": segments,
        "discount_rate": discount_rate,
        "choice": {"model": "max_surplus"} if choice == "max_surplus" else {"model": "mnl", "price_sensitivity": price_sensitivity},
        "min_fee_gap": float(min_fee_gap),
    }
    if fee_order:
        doc["fee_order"] = list(tiers)
    if utility_tolerance:
        doc["utility_tolerance"] = float(utility_tolerance)
    return doc
