"""The extrapolation grade of linear models: pacemaker's D-optimality (Lysogorskiy et al.,
Phys. Rev. Materials 7, 043801 (2023); Podryabinkin and Shapeev's active learning of moment
tensor potentials, Comput. Mater. Sci. 140, 171 (2017)).

Per element, the active set is the n rows of the training atoms' descriptor vectors X (one
row per atom, n features) whose matrix A has the largest |det A| that the MaxVol algorithm
(Goreinov et al., 2010) finds: every training row is then a combination x = c A with
|c_j| <= 1 (to the tolerance). An atom's grade is gamma = max_j |(x A^-1)_j|: gamma <= 1
interpolates the training set, gamma > 1 extrapolates (pacemaker flags gamma > 2 to 10 as
extrapolation worth a reference calculation). Written here (not scipy): MaxVol with
rank-one updates is a few lines, and no maintained library provides it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["maxvol", "grades"]


def maxvol(x: np.ndarray, tolerance: float = 1.01, max_iterations: int = 10_000) -> np.ndarray:
    """Indices of n rows of ``x`` (m x n, m >= n) of locally maximal |det|: starting from
    pivoted QR, swap in the row with the largest |c_ij| of C = X A^-1 while it exceeds
    ``tolerance`` (each swap multiplies |det A| by it), C kept by rank-one updates."""
    m, n = x.shape
    if m < n:
        raise ValueError(f"an active set of {n} features needs at least {n} atoms of the element, got {m}")
    rows = scipy.linalg.qr(x.T, mode="r", pivoting=True)[1][:n].copy()
    a = x[rows]
    if np.linalg.matrix_rank(a) < n:
        raise ValueError(
            "the training atoms' descriptor vectors do not span every feature (rank-deficient): the active "
            "set needs n linearly independent atoms; use a smaller basis or more varied frames"
        )
    c = scipy.linalg.solve(a.T, x.T).T
    for _ in range(max_iterations):
        i, j = np.unravel_index(np.argmax(np.abs(c)), c.shape)
        if abs(c[i, j]) <= tolerance:
            break
        # row i replaces row j of A: C' = C - C[:, j] (C[i] - e_j) / C[i, j]
        update = c[i].copy()
        update[j] -= 1.0
        c -= np.outer(c[:, j], update / c[i, j])
        rows[j] = i
    return rows


def grades(x: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """gamma of each row of ``x`` for an active set whose inverse is ``inverse``."""
    return np.abs(x @ inverse).max(axis=1) if len(x) else np.zeros(0)
