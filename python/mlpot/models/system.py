"""A training set's least-squares problem kept before weighting, for fits that try many
weights.

The weighted problem of a linear fit is min sum_b w_b^2 |A_b x - y_b|^2 (+ ridge), one
block b per (configuration group, row kind: energy, forces or stress), each block with a
single weight. Each block is reduced once to the triangular factor R_b of [A_b | y_b]
(R_b^T R_b = [A_b | y_b]^T [A_b | y_b]), after which any weights give the same problem as
the weighted rows themselves: stacking w_b R_b and solving by QR/SVD ("svd") is exact with
A's conditioning, and sum_b w_b^2 R_b^T R_b gives the normal equations ("normal") in
O(n^2) per block. Building the design rows (the bispectrum and its gradients) costs far
more than either, so a weight or ridge search builds them once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlpot.models import lstsq
from mlpot.models.training import ROW_KINDS, Weights, weight_of

__all__ = ["LinearSystem"]


class LinearSystem:
    """The unweighted rows of a training set, one triangular factor per (group, row kind).

    Made by `mlpot.SNAP.assemble`; pass it to `mlpot.SNAP.fit` in place of frames to fit
    with any weights and ridge without recomputing descriptors. Memory: one
    (n_columns + 1)^2 factor per (group, kind), plus, while rows are being added, a
    buffer of twice that per (group, kind) that has received rows.

    Attributes
    ----------
    n_columns
        Number of unknowns (elements x coefficients per element).
    groups
        The configuration groups, in order of first appearance (None for frames without
        one).
    n_frames
        Frames added.
    elements
        Atomic numbers seen in the frames.
    """

    def __init__(self, n_columns: int, signature):
        self.n_columns = int(n_columns)
        self.signature = signature
        self.n_frames = 0
        self.elements: set[int] = set()
        self._accumulators: dict[tuple, lstsq.QRAccumulator] = {}
        self._factors: dict[tuple, np.ndarray] = {}
        self._rows: dict[tuple, int] = {}
        self._grams: dict[tuple, np.ndarray] = {}
        self._groups: dict = {}

    @property
    def groups(self) -> tuple:
        return tuple(self._groups)

    def n_rows(self, group, kind: str) -> int:
        """Rows of ``kind`` ("energy", "forces" or "stress") in ``group``."""
        return self._rows.get((group, kind), 0)

    def add_frame(self, group, blocks: Mapping[str, tuple[np.ndarray, np.ndarray]], numbers) -> None:
        """Adds one frame's unweighted rows ``{kind: (A, y)}`` (`training.frame_blocks`)."""
        if self._factors:
            raise RuntimeError("the linear system is finished; no frames can be added")
        self._groups.setdefault(group, None)
        self.elements.update(np.unique(numbers).tolist())
        self.n_frames += 1
        for kind, (a, y) in blocks.items():
            key = (group, kind)
            if key not in self._accumulators:
                # a small batch: a fit with many groups holds many of these at once
                self._accumulators[key] = lstsq.QRAccumulator(self.n_columns, batch=max(self.n_columns + 1, 256))
            self._accumulators[key].add(a, y)

    def finish(self) -> "LinearSystem":
        """Reduces every block to its factor and frees the row buffers."""
        for key, accumulator in self._accumulators.items():
            self._factors[key] = accumulator.factor()
            self._rows[key] = accumulator.n_rows
        self._accumulators = {}
        return self

    def solve(
        self,
        default: Weights,
        groups: Mapping[object, Weights],
        ridge: float,
        penalized: np.ndarray,
        solver: str = "svd",
    ) -> np.ndarray:
        """argmin sum_b w_b^2 |A_b x - y_b|^2 + ridge |x[penalized]|^2, with w_b the weight
        of block b's kind in its group's `Weights` (``default`` for groups not named).
        Blocks of weight 0 are left out. Same solvers and cut-offs as `lstsq`."""
        if not self._factors and self._accumulators:
            self.finish()
        accumulator = lstsq.make_accumulator(solver, self.n_columns)
        for (group, kind), factor in self._factors.items():
            w = weight_of(groups.get(group, default), kind)
            if w <= 0 or not len(factor):
                continue
            if solver == "normal":
                gram = self._gram(group, kind)
                accumulator.add_products(w * w * gram[:-1, :-1], w * w * gram[:-1, -1], self._rows[group, kind])
            else:
                accumulator.add(w * factor[:, :-1], w * factor[:, -1])
        return accumulator.solve(ridge, penalized)

    def _gram(self, group, kind: str) -> np.ndarray:
        """R^T R of a block, cached: repeated normal-equation solves then cost O(n^2) per
        block."""
        key = (group, kind)
        if key not in self._grams:
            factor = self._factors[key]
            self._grams[key] = factor.T @ factor
        return self._grams[key]

    def __repr__(self) -> str:
        kinds = {kind: sum(n for (_, k), n in self._rows.items() if k == kind) for kind in ROW_KINDS}
        return (
            f"<LinearSystem: {self.n_frames} frames, {len(self._groups)} groups, "
            f"{self.n_columns} unknowns, rows {kinds}>"
        )
