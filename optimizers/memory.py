"""Refuse a model before building it when it would not fit in memory (exit 2 with the
estimate), rather than letting the machine swap or the kernel kill the run."""

from __future__ import annotations

import os

from models.errors import UsageError


def available_bytes() -> int | None:
    """Memory the system can give without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def refuse_if_too_big(what: str, estimate: float, detail: str, hint: str) -> None:
    """Raise UsageError when ``estimate`` bytes exceed the memory available now."""
    free = available_bytes()
    if free is not None and estimate > free:
        raise UsageError(f"{what} ({detail}) would need about {_size(estimate)} to build and solve; {_size(free)} are available. {hint}")


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
