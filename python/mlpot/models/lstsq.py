"""Weighted linear least squares with rows streamed in blocks, so that the design matrix of a
large training set is never held at once.

Two accumulators, both O(n_columns^2) in memory whatever the number of rows:

- ``QRAccumulator`` ("svd"): a running triangular factor R of [A | b], updated by the QR of
  [R; new rows] once enough rows are pending (LAPACK's triangular-pentagonal QR, dtpqrt,
  which leaves R's own structure alone; cf. the tall-skinny QR of Demmel et al., SIAM J.
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
import scipy.linalg.lapack

__all__ = ["NormalAccumulator", "QRAccumulator", "SVD_RCOND", "make_accumulator"]

#: Relative cut-off of singular values in the "svd" solve (FitSNAP's SVD solver uses the same).
SVD_RCOND = 1e-13


class QRAccumulator:
    """Streams rows (A, b) into the triangular factor R of [A | b].

    R, (n + 1) x (n + 1), and a buffer of pending rows are Fortran-ordered arrays; when the
    buffer is full, LAPACK's dtpqrt (the QR of a triangle stacked on a rectangle) folds it
    into R in 2 batch (n + 1)^2 flops, never refactoring R itself, so the batch size sets
    memory, not work. Peak memory is (n + 1 + batch) x (n + 1) floats, with batch =
    max(2 (n + 1), 4096) rows unless given (smaller when many accumulators live at once);
    allocated by the first `add`.
    """

    def __init__(self, n_columns: int, batch: int | None = None):
        self.n_columns = n_columns
        self._width = n_columns + 1
        self._batch = max(2 * self._width, 4096) if batch is None else max(int(batch), 1)
        self._r = None  # allocated by the first add: many accumulators may stay empty
        self._pending = None
        self._fill = 0  # rows in _pending
        self.n_rows = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if self._r is None and len(b):
            self._r = np.zeros((self._width, self._width), order="F")
            self._pending = np.zeros((self._batch, self._width), order="F")
        start = 0
        while start < len(b):
            take = min(len(b) - start, self._batch - self._fill)
            rows = slice(self._fill, self._fill + take)
            self._pending[rows, :-1] = a[start : start + take]
            self._pending[rows, -1] = b[start : start + take]
            self._fill += take
            start += take
            if self._fill == self._batch:
                self._reduce()
        self.n_rows += len(b)

    def factor(self) -> np.ndarray:
        """The upper triangular R of [A | b] for the rows added so far, with
        R^T R = [A | b]^T [A | b], without its rows that are all zero: a copy of shape
        (at most min(n_rows, n_columns + 1), n_columns + 1). Stacking such factors (times
        weights) and adding them to another accumulator solves the combined problem
        exactly."""
        if self.n_rows == 0:
            return np.zeros((0, self._width))
        self._reduce()
        r = self._r
        # with fewer rows than columns the non-zero rows of R need not come first (a zero
        # column, e.g. an element absent from these rows, leaves its row in place)
        return np.array(r[np.any(r != 0.0, axis=1)])

    def _reduce(self) -> None:
        if self._fill == 0 or self._r is None:
            return
        # a partial batch is a strided row slice: f2py copies it, once, at the end
        pending = self._pending[: self._fill]
        nb = max(1, min(64, self._width))
        r, _, _, info = scipy.linalg.lapack.dtpqrt(0, nb, self._r, pending, overwrite_a=True, overwrite_b=True)
        if info != 0:
            raise RuntimeError(f"LAPACK dtpqrt failed (info={info})")
        self._r = r  # the same memory: R is Fortran-ordered, updated in place
        self._pending[: self._fill] = 0.0
        self._fill = 0

    def take_factor(self) -> np.ndarray:
        """The square (n + 1, n + 1) triangular factor R of [A | b] of all rows so far, zero
        rows kept in place (R^T R = [A | b]^T [A | b]), handed over without a copy
        (Fortran-ordered, zero below the diagonal): the accumulator is then empty and holds
        no memory."""
        self._reduce()
        r = np.zeros((self._width, self._width), order="F") if self._r is None else self._r
        self._r = self._pending = None
        self._fill = 0
        self.n_rows = 0
        return r

    def solve(self, ridge: float, penalized: np.ndarray) -> np.ndarray:
        """argmin |A x - b|^2 + ridge |x[penalized]|^2 (minimum norm where A is rank
        deficient, singular values below SVD_RCOND times the largest cut off)."""
        if self.n_rows == 0:
            raise ValueError("no rows to fit: every reference was missing or had weight 0")
        if ridge > 0:
            columns = np.flatnonzero(penalized)
            rows = np.zeros((len(columns), self.n_columns))
            rows[np.arange(len(columns)), columns] = np.sqrt(ridge)
            self.add(rows, np.zeros(len(columns)))
        self._reduce()
        r = self._r
        x, *_ = scipy.linalg.lstsq(r[:, :-1], r[:, -1], cond=SVD_RCOND, check_finite=False)
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

    def add_products(self, ata: np.ndarray, atb: np.ndarray, n_rows: int) -> None:
        """Adds rows given by their products A^T A and A^T b (e.g. from a factor R of
        [A | b]: R^T R holds both)."""
        self._ata += ata
        self._atb += atb
        self.n_rows += int(n_rows)

    def solve(self, ridge: float, penalized: np.ndarray) -> np.ndarray:
        """argmin |A x - b|^2 + ridge |x[penalized]|^2. Columns are scaled to unit diagonal
        first. Where A is rank deficient this is a least-squares solution, not necessarily
        the minimum-norm one (use "svd" for that); columns that are all zero get 0."""
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
