"""The project's error hierarchy.

Messages read ``<where>: <what> (got X; expected Y)``. An :class:`InstanceError` carries
every problem found in one pass, so a user fixes a file once, not once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

#: an error message lists this many problems, then how many more there are
SHOWN_PROBLEMS = 50


class EcomoptError(Exception):
    """Base class of every error the library raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One located problem in an input: ``where`` is a path such as ``sites[3].capacity``."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class InstanceError(EcomoptError):
    """Bad input: the instance (or a table it names) cannot be read or is invalid."""

    def __init__(self, problems: list[Problem] | Problem | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.source}: " if self.source else ""
        count = len(self.problems)
        lines = [f"{head}{count} problem{'s' if count != 1 else ''} found"]
        lines += [f"  {p}" for p in self.problems[:SHOWN_PROBLEMS]]
        if count > SHOWN_PROBLEMS:
            lines.append(f"  ... and {count - SHOWN_PROBLEMS} more")
        return "\n".join(lines)


class BackendUnavailableError(EcomoptError):
    """The requested solver backend is not installed or cannot solve this model."""


class UsageError(EcomoptError):
    """A request that cannot be honoured as stated (unknown method, unsupported option)."""


class NumericsWarning(UserWarning):
    """The data's magnitudes make a solver's tolerances unreliable (the answer is still
    re-checked by evaluate(), but may be suboptimal or refused)."""
