"""Batch runs: suites (TOML) -> runs on an Executor -> JSONL records -> reports."""

from optimizers.bench.report import compare, per_instance, summary, to_markdown
from optimizers.bench.runner import execute, read_records, run_suite
from optimizers.bench.suite import RunSpec, Suite, load_suite

__all__ = ["RunSpec", "Suite", "compare", "execute", "load_suite", "per_instance", "read_records", "run_suite", "summary", "to_markdown"]
