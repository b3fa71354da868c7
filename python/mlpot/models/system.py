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

`mlpot.GAP.assemble` uses the same class (with the row kinds energy, forces, virial and the
terms it selected attached) for the sigma search of a sparse GP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from mlpot.models import lstsq
from mlpot.models.training import ROW_KINDS, Weights, weight_of

__all__ = ["GAPSystem", "LinearSystem"]


class LinearSystem:
    """The unweighted rows of a training set, one triangular factor per (group, row kind).

    Made by `mlpot.SNAP.assemble` (and `mlpot.GAP.assemble`); pass it to `mlpot.SNAP.fit`
    in place of frames to fit with any weights and ridge without recomputing descriptors.
    Memory: one factor of min(rows, n_columns + 1) x (n_columns + 1) floats per (group,
    kind), so at most (n_columns + 1)^2. While frames are added, a block's rows are kept
    as they come until there are ``batch`` of them; only then does it get a QR buffer of
    (n_columns + 1 + batch) x (n_columns + 1) floats (so blocks with few rows, such as a
    small group's energies, never hold one).

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
    kinds
        The row kinds blocks may have (default `training.ROW_KINDS`).
    rank
        Numerical rank of the weighted (ridge-augmented) system of the last `solve` (None
        before one): below ``n_columns`` the data do not determine every coefficient (see
        `lstsq`).
    """

    def __init__(
        self, n_columns: int, signature, kinds: tuple[str, ...] = ROW_KINDS, batch: int | None = None
    ):
        self.n_columns = int(n_columns)
        self.signature = signature
        self.kinds = tuple(kinds)
        # rows per QR update of a block; a fit with many groups holds many blocks at once
        self._batch = max(self.n_columns + 1, 256) if batch is None else max(int(batch), 1)
        self.n_frames = 0
        self.elements: set[int] = set()
        self._blocks: dict[tuple, None] = {}  # (group, kind) in order of first rows
        self._pending: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._pending_rows: dict[tuple, int] = {}
        self._accumulators: dict[tuple, lstsq.QRAccumulator] = {}
        self._factors: dict[tuple, np.ndarray] = {}
        self._rows: dict[tuple, int] = {}
        self._grams: dict[tuple, np.ndarray] = {}
        self._groups: dict = {}
        self.rank: int | None = None

    @property
    def groups(self) -> tuple:
        return tuple(self._groups)

    def n_rows(self, group, kind: str) -> int:
        """Rows of ``kind`` (one of `kinds`) in ``group``."""
        return self._rows.get((group, kind), 0)

    def add_frame(self, group, blocks: Mapping[str, tuple[np.ndarray, np.ndarray]], numbers) -> None:
        """Adds one frame's unweighted rows ``{kind: (A, y)}`` (`training.frame_blocks`)."""
        if self._factors:
            raise RuntimeError("the linear system is finished; no frames can be added")
        unknown = [kind for kind in blocks if kind not in self.kinds]
        if unknown:
            raise ValueError(f"row kind(s) {unknown} are not among {self.kinds}")
        self._groups.setdefault(group, None)
        self.elements.update(np.unique(numbers).tolist())
        self.n_frames += 1
        for kind, (a, y) in blocks.items():
            key = (group, kind)
            self._blocks.setdefault(key, None)
            if key in self._accumulators:
                self._accumulators[key].add(a, y)
                continue
            self._pending.setdefault(key, []).append((a, y))
            self._pending_rows[key] = self._pending_rows.get(key, 0) + len(y)
            if self._pending_rows[key] >= self._batch:
                self._accumulators[key] = self._reduce_pending(key)

    def _reduce_pending(self, key) -> lstsq.QRAccumulator:
        """A QR accumulator holding a block's pending rows. They are added in one call,
        which the accumulator splits at the same batch boundaries as row-by-frame adds:
        the factor is the same to the bit."""
        rows = self._pending.pop(key)
        del self._pending_rows[key]
        accumulator = lstsq.QRAccumulator(self.n_columns, batch=self._batch)
        accumulator.add(np.vstack([a for a, _ in rows]), np.concatenate([y for _, y in rows]))
        return accumulator

    def finish(self) -> "LinearSystem":
        """Reduces every block to its factor and frees the row buffers."""
        if self._factors:
            return self
        for key in self._blocks:  # in order of first rows: the order of the solve's stack
            if key in self._accumulators:
                accumulator = self._accumulators.pop(key)
            else:
                accumulator = self._reduce_pending(key)
            self._factors[key] = accumulator.factor()
            self._rows[key] = accumulator.n_rows
        self._accumulators = {}
        return self

    def weighted_factors(
        self, weight: Callable[[object, str], float]
    ) -> Iterator[tuple[object, str, float, np.ndarray]]:
        """(group, kind, w, R) of every block with rows and a weight w = weight(group,
        kind) > 0, R the block's triangular factor of [A | y] (R^T R = [A | y]^T [A | y]).
        Stacking the w R and solving gives the weighted problem of all rows."""
        if not self._factors and (self._accumulators or self._pending):
            self.finish()
        for (group, kind), factor in self._factors.items():
            w = weight(group, kind)
            if w > 0 and len(factor):
                yield group, kind, w, factor

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
        Blocks of weight 0 are left out. Same solvers, cut-offs and rank-deficiency warning
        as `lstsq`; the numerical rank is kept as ``self.rank``."""
        accumulator = lstsq.make_accumulator(solver, self.n_columns)
        weights = lambda group, kind: weight_of(groups.get(group, default), kind)  # noqa: E731
        for group, kind, w, factor in self.weighted_factors(weights):
            if solver == "normal":
                gram = self._gram(group, kind)
                accumulator.add_products(w * w * gram[:-1, :-1], w * w * gram[:-1, -1], self._rows[group, kind])
            else:
                accumulator.add(w * factor[:, :-1], w * factor[:, -1])
        solution = accumulator.solve(ridge, penalized)
        self.rank = accumulator.rank
        return solution

    def _gram(self, group, kind: str) -> np.ndarray:
        """R^T R of a block, cached: repeated normal-equation solves then cost O(n^2) per
        block."""
        key = (group, kind)
        if key not in self._grams:
            factor = self._factors[key]
            self._grams[key] = factor.T @ factor
        return self._grams[key]

    def __repr__(self) -> str:
        kinds = {kind: sum(n for (_, k), n in self._rows.items() if k == kind) for kind in self.kinds}
        return (
            f"<{type(self).__name__}: {self.n_frames} frames, {len(self._groups)} groups, "
            f"{self.n_columns} unknowns, rows {kinds}>"
        )


class GAPSystem(LinearSystem):
    """The observations of a GAP training set before the noise sigmas are applied.

    Made by `mlpot.GAP.assemble`; pass it to `mlpot.GAP.fit` in place of frames to fit
    with other ``default_sigma``, ``group_sigma`` or ``jitter`` without recomputing kernel
    rows. Columns are the sparse points of all terms; blocks per (group, kind):

    - "energy": rows K_NM of total energies (eV) divided by sqrt(N) (N atoms), one per
      frame, and "virial" the 6 virial rows (eV) divided by sqrt(N): a group's per-atom
      sigma (gap_fit's ``sigma_per_atom``) is then one weight 1/sigma for the whole block;
    - "forces": the 3 N force rows (eV/Angstrom);
    - "energy_sigma", "force_sigma", "virial_sigma": rows of frames that carry that
      absolute sigma in ``atoms.info``, already divided by it (weight 1 whatever the
      model's sigmas: the per-frame value wins, as in a fit from frames).

    Memory: one factor of at most (n_sparse + 1)^2 floats per (group, kind) with
    n_sparse the sparse points of all terms (8 MB each at n_sparse 1000); energy and
    virial blocks of groups with fewer frames are smaller.

    Attributes (besides those of `LinearSystem`)
    ----------
    terms
        The kernel terms (descriptor, sparse points, delta) the rows were computed with.
    e0
        ``{element: eV}`` subtracted from the energies.
    """

    KINDS = ("energy", "forces", "virial", "energy_sigma", "force_sigma", "virial_sigma")

    def __init__(self, n_columns: int, signature, terms, e0: Mapping[str, float], batch: int):
        super().__init__(n_columns, signature, kinds=self.KINDS, batch=batch)
        self.terms = list(terms)
        self.e0 = dict(e0)
