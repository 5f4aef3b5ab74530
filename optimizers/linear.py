"""A solver-neutral mixed-integer linear model, built block by block with numpy.

    min / max  c'x + offset
    s.t.       row_lo <= A x <= row_hi
               lb <= x <= ub,  x_j integer for j in integer set

Formulations build one of these; every backend adapter reads it. Blocks of variables and
constraints keep their names so a backend log or an exported model stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

INF = float("inf")


@dataclass
class LinearModel:
    name: str = "model"
    maximize: bool = False
    offset: float = 0.0
    _lb: list[np.ndarray] = field(default_factory=list)
    _ub: list[np.ndarray] = field(default_factory=list)
    _cost: list[np.ndarray] = field(default_factory=list)
    _integer: list[np.ndarray] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    _cols: list[np.ndarray] = field(default_factory=list)
    _vals: list[np.ndarray] = field(default_factory=list)
    _row_lo: list[np.ndarray] = field(default_factory=list)
    _row_hi: list[np.ndarray] = field(default_factory=list)
    var_blocks: dict[str, slice] = field(default_factory=dict)
    row_blocks: dict[str, slice] = field(default_factory=dict)
    num_vars: int = 0
    num_rows: int = 0

    def add_variables(
        self,
        name: str,
        count: int,
        *,
        lb: float | np.ndarray = 0.0,
        ub: float | np.ndarray = INF,
        cost: float | np.ndarray = 0.0,
        integer: bool | np.ndarray = False,
    ) -> np.ndarray:
        """Add ``count`` variables; returns their column indices."""
        cols = np.arange(self.num_vars, self.num_vars + count)
        self._lb.append(np.broadcast_to(np.asarray(lb, float), (count,)).copy())
        self._ub.append(np.broadcast_to(np.asarray(ub, float), (count,)).copy())
        self._cost.append(np.broadcast_to(np.asarray(cost, float), (count,)).copy())
        self._integer.append(np.broadcast_to(np.asarray(integer, bool), (count,)).copy())
        self.var_blocks[name] = slice(self.num_vars, self.num_vars + count)
        self.num_vars += count
        return cols

    def add_constraints(
        self,
        name: str,
        count: int,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray | float,
        *,
        lo: float | np.ndarray = -INF,
        hi: float | np.ndarray = INF,
    ) -> np.ndarray:
        """Add ``count`` rows ``lo <= sum vals * x[cols] <= hi``; ``rows`` numbers the
        nonzeros' rows 0..count-1 within this block. Returns the global row indices."""
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        self._rows.append(rows + self.num_rows)
        self._cols.append(cols)
        self._vals.append(np.broadcast_to(np.asarray(vals, float), rows.shape).copy())
        self._row_lo.append(np.broadcast_to(np.asarray(lo, float), (count,)).copy())
        self._row_hi.append(np.broadcast_to(np.asarray(hi, float), (count,)).copy())
        self.row_blocks[name] = slice(self.num_rows, self.num_rows + count)
        self.num_rows += count
        return np.arange(self.num_rows - count, self.num_rows)

    def fix(self, columns: np.ndarray, values: np.ndarray) -> None:
        """Hold ``columns`` at ``values`` (both bounds)."""
        lb, ub = self.lb, self.ub
        lb[columns] = values
        ub[columns] = values
        self._lb, self._ub = [lb], [ub]

    # --- views for the backends
    @property
    def lb(self) -> np.ndarray:
        return _cat(self._lb)

    @property
    def ub(self) -> np.ndarray:
        return _cat(self._ub)

    @property
    def cost(self) -> np.ndarray:
        return _cat(self._cost)

    @property
    def integer(self) -> np.ndarray:
        return _cat(self._integer).astype(bool)

    @property
    def row_lo(self) -> np.ndarray:
        return _cat(self._row_lo)

    @property
    def row_hi(self) -> np.ndarray:
        return _cat(self._row_hi)

    @property
    def coefficients(self) -> np.ndarray:
        """The constraint matrix's entries as added (duplicates not yet summed)."""
        return _cat(self._vals)

    def matrix(self) -> sp.csr_matrix:
        """The constraint matrix A (duplicate entries summed)."""
        A = sp.coo_matrix(
            (_cat(self._vals), (_cat(self._rows, np.int64), _cat(self._cols, np.int64))),
            shape=(self.num_rows, self.num_vars),
        )
        return A.tocsr()

    def objective_value(self, x: np.ndarray) -> float:
        return float(self.cost @ x + self.offset)

    def is_pure_integer(self) -> bool:
        return bool(self.integer.all())


def _cat(parts: list[np.ndarray], dtype: type = float) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)
