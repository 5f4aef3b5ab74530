"""The method registry and :func:`solve`, the one way in for every family.

A method registers under its family's ``problem`` tag, states which backends it can use and
what it cannot handle; ``solve()`` picks the family's default, runs it within the time
limit, re-checks the solution with the family's ``evaluate()`` and returns a :class:`Result`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from models import evaluate, load_instance, parse_instance
from models.base import TOLERANCE
from models.errors import NumericsWarning, UsageError
from optimizers import progress
from optimizers.backends import BACKENDS
from optimizers.progress import Progress
from optimizers.result import Result, SolverOptions, Status, relative_gap
from optimizers.stopping import clear as clear_stop
from optimizers.stopping import method_starting, stop_requested
from optimizers.warm_start import carry as carry_warm_start

log = logging.getLogger(__name__)


@dataclass
class MethodOutput:
    """What a method returns to ``solve()``: the status and numbers, and the solution as
    the family's JSON dict (None when there is none)."""

    status: Status
    objective: float | None = None
    bound: float | None = None
    solution: dict[str, Any] | None = None
    message: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, Any] = field(default_factory=dict)  # not JSON: e.g. the per-user plan as an array


@dataclass(frozen=True)
class Method:
    problem: str
    name: str
    description: str
    run: Callable[..., MethodOutput]  # (instance, backend, options), and warm_start= when uses_warm_start
    backends: tuple[str, ...] = ()  # empty: the method uses no backend
    default_backend: str | None = None
    maximize: bool = False
    unsupported: Callable[[Any], str | None] = lambda instance: None
    # the default instead of the family's default for the instances it covers, when no
    # backend is named (a named backend asks for the family's default on that backend)
    preferred: bool = False
    # run also takes warm_start=Start (optimizers.warm_start): an earlier plan priced on this instance
    uses_warm_start: bool = False


METHODS: dict[str, dict[str, Method]] = {}
DEFAULT_METHOD: dict[str, str] = {}


def register(method: Method, *, default: bool = False) -> Method:
    METHODS.setdefault(method.problem, {})[method.name] = method
    if default or method.problem not in DEFAULT_METHOD:
        DEFAULT_METHOD[method.problem] = method.name
    return method


def default_method(problem: str, instance: Any, backend: str | None = None) -> str:
    """The family's default method, or a method marked ``preferred`` that covers the instance."""
    if backend is None:
        for name, m in METHODS.get(problem, {}).items():
            if m.preferred and m.unsupported(instance) is None:
                return name
    return DEFAULT_METHOD[problem]


def methods_for(problem: str) -> dict[str, Method]:
    return METHODS.get(problem, {})


def solve(
    instance: Any,
    method: str | None = None,
    backend: str | None = None,
    options: SolverOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    warm_start: dict[str, Any] | None = None,
) -> Result:
    """Solve an instance: one loaded by ``models.load_instance``, a document (dict) as in the
    file formats, or the path of an instance file.

    ``on_progress`` is called with a :class:`optimizers.progress.Progress` (phase, incumbent,
    bound, elapsed time) as the method learns more, and once at the end.

    ``warm_start``: an earlier result document (or its solution), e.g. last week's plan. Its
    lasting decisions are priced on this instance (:mod:`optimizers.warm_start`); the method
    starts from them where it can, and the result is never worse than they are.

    Raises only for a bad request (bad input, unknown method or backend, unsupported input);
    every solver outcome, including infeasibility and limits, comes back as a :class:`Result`.
    """
    if isinstance(instance, dict):
        instance = parse_instance(instance)
    elif isinstance(instance, (str, Path)):
        instance = load_instance(instance)
    options = options or SolverOptions()
    problem = instance.problem
    if problem not in METHODS:
        raise UsageError(f"problem '{problem}': no solver method is registered")
    name = method or default_method(problem, instance, backend)
    if name not in METHODS[problem]:
        raise UsageError(f"--method: unknown method '{name}' for {problem} (known: {', '.join(METHODS[problem])})")
    chosen = METHODS[problem][name]
    if backend is not None and backend not in chosen.backends:
        allowed = ", ".join(chosen.backends) or "none (it needs no backend)"
        raise UsageError(f"--backend: method '{name}' cannot use backend '{backend}' (it can use: {allowed})")
    reason = chosen.unsupported(instance)
    if reason:
        raise UsageError(f"--method {name}: {reason}")
    backend = backend or chosen.default_backend

    start = time.perf_counter()
    method_starting()
    with (threadpool_limits(limits=options.threads or None), warnings.catch_warnings(record=True) as caught,  # BLAS threads like the solver's
          progress.reporting(on_progress)):
        warnings.simplefilter("always", NumericsWarning)
        start_plan, why_not = (None, "") if warm_start is None else carry_warm_start(instance, warm_start, _pricing_options(options))
        run_options = remaining(options, start)
        progress.update(name if backend is None else f"{name} ({backend})", incumbent=None if start_plan is None else start_plan.objective)
        if start_plan is not None and chosen.uses_warm_start:
            out = chosen.run(instance, backend, run_options, warm_start=start_plan)
        else:
            out = chosen.run(instance, backend, run_options)
        if warm_start is not None:
            out = _no_worse_than(out, start_plan, why_not, instance, options)
        if on_progress is not None:
            progress.update("done", incumbent=out.objective, bound=out.bound, force=True)
    runtime = time.perf_counter() - start
    numerics = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, NumericsWarning)))
    for w in caught:  # hand every warning on to the caller's filters, numerics ones once each
        if not issubclass(w.category, NumericsWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for text in numerics:
        warnings.warn(text, NumericsWarning, stacklevel=2)
    if numerics:
        out.meta["warnings"] = numerics

    evaluation = None
    status, message = out.status, out.message
    if stop_requested():
        out.meta["stopped"] = True
        found = "the best plan found so far" if out.solution is not None else "before any plan was found"
        message = f"stopped on request: {found}" + (f"; {message}" if message else "")
        clear_stop()  # the request was for this solve: the caller's next one runs in full
    if out.solution is not None:
        check = evaluate(instance, {**out.solution, **out.attachments})
        evaluation = check.to_dict()
        if out.objective is not None and abs(check.objective - out.objective) > TOLERANCE * max(1.0, abs(out.objective)):
            check.violations.append(f"objective mismatch: solver {out.objective!r}, evaluate() {check.objective!r}")
            evaluation = check.to_dict()
        if check.violations:
            status = Status.ERROR
            message = (message + "; " if message else "") + f"the solution fails evaluate(): {check.violations[0]}"
            log.error("%s: %s", instance.name, message)
    return Result(
        problem=problem,
        instance=instance.name,
        status=status,
        objective=out.objective,
        bound=out.bound,
        gap=relative_gap(out.objective, out.bound),
        runtime_s=runtime,
        method=name,
        backend=backend,
        options=options,
        solution=out.solution,
        evaluation=evaluation,
        message=message,
        attachments=out.attachments,
        meta={"instance_sha256": instance_digest(instance), "versions": _versions(backend), **out.meta},
    )


def _pricing_options(options: SolverOptions) -> SolverOptions:
    """Pricing a warm start (an LP at most) gets half the time limit, and 1 s however short it is."""
    return options if options.time_limit_s is None else replace(options, time_limit_s=max(1.0, 0.5 * options.time_limit_s))


def maximises(instance: Any) -> bool:
    """Whether the instance's objective is maximised: profit, users and value are; cost and spend are not."""
    if instance.problem == "incentive_budget":
        from models.incentive_budget import sense

        return sense(instance) == "max"
    return instance.problem in ("membership_pricing", "incentive_assignment")


def _no_worse_than(out: MethodOutput, start: Any, why_not: str, instance: Any, options: SolverOptions) -> MethodOutput:
    """The method's output, or the warm-start plan where that is better; meta says which."""
    if start is None:
        out.meta["warm_start"] = {"used": False, "reason": why_not}
        return out
    maximise = maximises(instance)
    better = out.objective is None or (start.objective > out.objective if maximise else start.objective < out.objective)
    out.meta["warm_start"] = {"used": True, "kept": start.kept, "objective": start.objective, "returned": bool(better and out.status in (Status.FEASIBLE, Status.NO_SOLUTION))}
    if not out.meta["warm_start"]["returned"]:
        return out
    bound = out.bound
    if bound is not None:  # a bound never better than a known plan
        bound = max(bound, start.objective) if maximise else min(bound, start.objective)
    gap = relative_gap(start.objective, bound)
    status = Status.OPTIMAL if gap is not None and gap <= options.gap * (1 + 1e-9) + 1e-12 else Status.FEASIBLE
    note = "the warm-start plan (re-priced on this instance) is better than what the method found; it is returned"
    return MethodOutput(status, start.objective, bound, start.solution, f"{out.message}; {note}" if out.message else note, out.meta)


def instance_digest(instance: Any) -> str:
    return hashlib.sha256(instance.model_dump_json().encode()).hexdigest()


def remaining(options: SolverOptions, start: float) -> SolverOptions:
    """``options`` with the time limit reduced by what has been spent since ``start``."""
    if options.time_limit_s is None:
        return options
    return replace(options, time_limit_s=max(0.05, options.time_limit_s - (time.perf_counter() - start)))


def _versions(backend: str | None) -> dict[str, str]:
    out = {}
    for dist in ("ecomopt", "numpy", "pydantic"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    if backend in BACKENDS:
        try:
            out["backend"] = BACKENDS[backend].version()
        except ImportError:
            pass
    return out

