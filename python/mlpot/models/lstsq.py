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

Both find the numerical rank of the (weighted, ridge-augmented) system, record it as
``rank``, and return the minimum-norm solution with a `RankDeficientWarning` when the data
do not determine every coefficient (one energy row, perfect crystals only, ...).

scipy/LAPACK do the factorizations; the streaming around them is the part no library
offers for this layout, hence written here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import threadpoolctl

__all__ = [
    "NORMAL_RCOND",
    "NormalAccumulator",
    "QRAccumulator",
    "RankDeficientWarning",
    "SVD_RCOND",
    "make_accumulator",
]

#: Relative cut-off of singular values in the "svd" solve (FitSNAP's SVD solver uses the same).
SVD_RCOND = 1e-13
#: Relative cut-off of eigenvalues of the Jacobi-scaled normal matrix in the "normal" solve:
#: singular values of the column-scaled A below sqrt(NORMAL_RCOND) = 3e-7 of the largest,
#: about what normal equations formed in float64 can still resolve.
NORMAL_RCOND = 1e-13
#: The "normal" solve decomposes the scaled normal matrix to find its rank only when LAPACK's
#: estimate of its reciprocal condition number (dpocon, from the Cholesky factor: O(n^2)) is
#: below this, 1000 times NORMAL_RCOND as a margin for the estimate; better conditioned
#: systems keep the Cholesky solution.
_NORMAL_RANK_CHECK = 1e3 * NORMAL_RCOND


class RankDeficientWarning(UserWarning):
    """The data of a linear fit do not determine every coefficient: the fit returned the
    minimum-norm solution of a rank-deficient system."""


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
        self.rank: int | None = None  # numerical rank of the last solve

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
        """argmin |A x - b|^2 + ridge |x[penalized]|^2, by an SVD of R (LAPACK dgelsd).
        Singular values below SVD_RCOND times the largest are cut off; their count sets the
        numerical rank, kept as ``self.rank``. Where the rank is below the number of columns
        with data (all-zero columns get 0, not counted) the solution is the minimum-norm one
        and a `RankDeficientWarning` says so."""
        if self.n_rows == 0:
            raise ValueError("no rows to fit: every reference was missing or had weight 0")
        if ridge > 0:
            columns = np.flatnonzero(penalized)
            rows = np.zeros((len(columns), self.n_columns))
            rows[np.arange(len(columns)), columns] = np.sqrt(ridge)
            self.add(rows, np.zeros(len(columns)))
        self._reduce()
        r = self._r
        x, _, rank, _ = scipy.linalg.lstsq(r[:, :-1], r[:, -1], cond=SVD_RCOND, check_finite=False)
        # a column of A that is all zero leaves R's column all zero (R^T R = A^T A)
        with_data = int(np.count_nonzero(r[:, :-1].any(axis=0)))
        self.rank = int(rank)
        cutoff = f"singular values below {SVD_RCOND:g} of the largest"
        _warn_if_rank_deficient(self.rank, self.n_columns, with_data, cutoff, ridge)
        return x


class NormalAccumulator:
    """Streams rows (A, b) into A^T A and A^T b."""

    def __init__(self, n_columns: int):
        self.n_columns = n_columns
        self._ata = np.zeros((n_columns, n_columns))
        self._atb = np.zeros(n_columns)
        self.n_rows = 0
        self.rank: int | None = None  # numerical rank of the last solve

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

    def solve(self, ridge: float, penalized: np.ndarray, check_rank: bool = True) -> np.ndarray:
        """argmin |A x - b|^2 + ridge |x[penalized]|^2. Columns are scaled to unit diagonal
        first and the scaled normal equations solved by Cholesky. When that fails, or the
        estimated condition number is large, the eigenvalues of the scaled normal matrix
        give the numerical rank (those below NORMAL_RCOND times the largest are cut off;
        all-zero columns get 0 and are not counted); a rank-deficient system gets the
        minimum-norm solution and a `RankDeficientWarning`, a full-rank one keeps the
        Cholesky solution. The rank is kept as ``self.rank``. ``check_rank=False`` keeps
        any Cholesky solution that exists without the eigenvalue check (a search over many
        trials, ranked by their errors; rank then None)."""
        if self.n_rows == 0:
            raise ValueError("no rows to fit: every reference was missing or had weight 0")
        ata = self._ata + np.diag(np.where(penalized, ridge, 0.0))
        diag = np.diag(ata).copy()
        scale = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 0.0)
        scaled = ata * np.outer(scale, scale)
        rhs = self._atb * scale
        with_data = diag > 0
        y, rcond = _cholesky_solve(scaled, rhs) if with_data.all() else (None, 0.0)
        if y is not None and not check_rank:
            self.rank = None
            return y * scale
        if y is not None and rcond >= _NORMAL_RANK_CHECK:
            self.rank = self.n_columns
            return y * scale
        block = np.ix_(with_data, with_data)
        x, self.rank = _minimum_norm_normal_solve(scaled[block], rhs[with_data], scale[with_data])
        n_data = int(np.count_nonzero(with_data))
        if y is not None and self.rank == n_data:
            return y * scale  # full rank after all: the Cholesky solution stands
        cutoff = f"eigenvalues of the scaled normal matrix below {NORMAL_RCOND:g} of the largest"
        _warn_if_rank_deficient(self.rank, self.n_columns, n_data, cutoff, ridge)
        solution = np.zeros(self.n_columns)
        solution[with_data] = x
        return solution


def _cholesky_solve(matrix: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray | None, float]:
    """The solution of matrix y = rhs by Cholesky and LAPACK's estimate of the matrix's
    reciprocal condition number (1-norm); (None, 0) when the factorization fails."""
    try:
        factor = scipy.linalg.cho_factor(matrix, check_finite=False)
    except np.linalg.LinAlgError:
        return None, 0.0
    y = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    norm = np.abs(matrix).sum(axis=0).max()
    rcond, info = scipy.linalg.lapack.dpocon(factor[0], norm, uplo="L" if factor[1] else "U")
    return y, (float(rcond) if info == 0 else 0.0)


def _minimum_norm_normal_solve(scaled: np.ndarray, rhs: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, int]:
    """The minimum-norm x with D^-1 S D^-1 x = D^-1 rhs (S = D A^T A D the scaled normal
    matrix, D = diag(scale) > 0) in the eigenvectors of S whose eigenvalues exceed
    NORMAL_RCOND times the largest, and their number (the numerical rank). The scaled
    solution y = D^-1 x is fixed only up to the dropped eigenvectors N, i.e. x up to
    span(D N), the null space of A^T A: x is the particular solution with that part
    projected out, as numpy.linalg.lstsq's minimum-norm solution of A x = b."""
    eigenvalues, vectors = scipy.linalg.eigh(scaled, check_finite=False)
    keep = eigenvalues > NORMAL_RCOND * eigenvalues[-1]
    kept = vectors[:, keep]
    x = scale * (kept @ ((kept.T @ rhs) / eigenvalues[keep]))
    if not keep.all():
        null, _ = np.linalg.qr(scale[:, None] * vectors[:, ~keep])
        x -= null @ (null.T @ x)
    return x, int(np.count_nonzero(keep))


def _warn_if_rank_deficient(rank: int, n_columns: int, n_with_data: int, cutoff: str, ridge: float) -> None:
    """A RankDeficientWarning, pointing at the user's call, when the numerical rank is
    below the number of columns that have data."""
    if rank >= n_with_data:
        return
    without = n_columns - n_with_data
    zero_note = f"; {without} of them have no data at all and are 0" if without else ""
    if ridge > 0:
        remedy = (
            "the ridge does not reach unpenalized coefficients, such as SNAP's per-element "
            "constants, which need the energies of several compositions"
        )
    else:
        remedy = "or fit with ridge > 0"
    warnings.warn(
        RankDeficientWarning(
            f"rank-deficient linear fit: the weighted least-squares system has numerical rank "
            f"{rank} for {n_columns} coefficients{zero_note} ({cutoff} cut off). The training "
            f"data leave {n_with_data - rank} combination(s) of coefficients undetermined; the "
            "minimum-norm solution is returned. Add more varied structures (rattled atoms, "
            f"strained cells, other volumes, defects) with their forces and stresses; {remedy}."
        ),
        stacklevel=_user_stacklevel(),
    )


#: Files whose frames are not the user's: mlpot's own and the wrappers around its methods
#: (threadpoolctl's decorator is a contextlib.ContextDecorator).
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_WRAPPERS = {os.path.abspath(contextlib.__file__), os.path.abspath(threadpoolctl.__file__)}


def _user_stacklevel() -> int:
    """The ``stacklevel`` of warnings.warn, called by the caller of this function, that
    points at the innermost frame outside mlpot: the user's call into the package."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE) or frame.f_code.co_filename in _WRAPPERS
    ):
        frame, level = frame.f_back, level + 1
    return level


def make_accumulator(solver: str, n_columns: int):
    if solver == "svd":
        return QRAccumulator(n_columns)
    if solver == "normal":
        return NormalAccumulator(n_columns)
    raise ValueError(f"solver must be 'svd' or 'normal', got {solver!r}")
