"""Weighted linear least squares with rows streamed in blocks, so that the design matrix of a
large training set is never held at once.

Two accumulators, both O(n_columns^2) in memory whatever the number of rows:

- ``QRAccumulator`` ("svd"): a running triangular factor R of [A | b], updated by the QR of
  [R; new rows] once enough rows are pending (the tall-skinny QR of Demmel et al., SIAM J.
  Sci. Comput. 34, A206 (2012)). R has A's singular values, so the final SVD solve of
  R x = Q^T b gives the same minimum-norm solution and cut-off as an SVD of all of A, with
  A's condition number rather than its square.
- ``NormalAccumulator`` ("normal"): A^T A and A^T b, solved by Cholesky after a Jacobi
  scaling. Half the flops, but conditioning squared.

scipy/LAPACK do the factorizations; the streaming around them is the part no library
offers for this layout, hence written here.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["NormalAccumulator", "QRAccumulator", "SVD_RCOND", "make_accumulator"]

#: Relative cut-off of singular values in the "svd" solve (FitSNAP's SVD solver uses the same).
SVD_RCOND = 1e-13


class QRAccumulator:
    """Streams rows (A, b) into the triangular factor of [A | b]."""

    def __init__(self, n_columns: int):
        self.n_columns = n_columns
        self._r = np.zeros((0, n_columns + 1))
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        # reduce when the pending block is a few times taller than R: the QR then costs a
        # small multiple of the rows' own flops
        self._batch = max(4 * (n_columns + 1), 4096)
        self.n_rows = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if not len(b):
            return
        self._pending.append(np.column_stack([a, b]))
        self._pending_rows += len(b)
        self.n_rows += len(b)
        if self._pending_rows >= self._batch:
            self._reduce()

    def _reduce(self) -> None:
        if not self._pending:
            return
        stacked = np.vstack([self._r, *self._pending])
        self._pending, self._pending_rows = [], 0
        (r,) = scipy.linalg.qr(stacked, mode="r", overwrite_a=True, check_finite=False)
        self._r = r[: min(r.shape)]

    def solve(self, ridge: float, penalized: np.ndarray) -> np.ndarray:
        """argmin |A x - b|^2 + ridge |x[penalized]|^2 (minimum norm where A is rank
        deficient, singular values below SVD_RCOND times the largest cut off)."""
        if ridge > 0:
            rows = np.zeros((int(penalized.sum()), self.n_columns + 1))
            rows[np.arange(len(rows)), np.flatnonzero(penalized)] = np.sqrt(ridge)
            self._pending.append(rows)
        self._reduce()
        if not len(self._r):
            raise ValueError("no rows to fit: every reference was missing or had weight 0")
        r, qtb = self._r[:, :-1], self._r[:, -1]
        x, *_ = scipy.linalg.lstsq(r, qtb, cond=SVD_RCOND, check_finite=False)
        return x


class NormalAccumulator:
    """Streams rows (A, b) into A^T A and A^T b."""

    def __init__(self, n_columns: int):
        self.n_columns = n_columns
        self._ata = np.zeros((n_columns, n_columns))
        self._atb = np.zeros(n_columns)
        self.n_rows = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if not len(b):
            return
        self._ata += a.T @ a
        self._atb += a.T @ b
        self.n_rows += len(b)

    def solve(self, ridge: float, penalized: np.ndarray) -> np.ndarray:
        """argmin |A x - b|^2 + ridge |x[penalized]|^2. Columns are scaled to unit diagonal
        first; where A^T A is singular the solution is the minimum-norm one of the scaled
        problem."""
        if self.n_rows == 0:
            raise ValueError("no rows to fit: every reference was missing or had weight 0")
        ata = self._ata + np.diag(np.where(penalized, ridge, 0.0))
        diag = np.diag(ata).copy()
        scale = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 0.0)
        scaled = ata * np.outer(scale, scale)
        rhs = self._atb * scale
        try:
            factor = scipy.linalg.cho_factor(scaled, check_finite=False)
            y = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
        except np.linalg.LinAlgError:
            y, *_ = scipy.linalg.lstsq(scaled, rhs, cond=SVD_RCOND, check_finite=False)
        return y * scale


def make_accumulator(solver: str, n_columns: int):
    if solver == "svd":
        return QRAccumulator(n_columns)
    if solver == "normal":
        return NormalAccumulator(n_columns)
    raise ValueError(f"solver must be 'svd' or 'normal', got {solver!r}")
