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

Systems of disjoint sets of frames (the folds of a cross-validation, `mlpot.tune`) merge
exactly: `LinearSystem.merged` keeps every part's factors, since stacking them is the
problem of all their rows (sum_p R_p^T R_p = A^T A), and a solve stacks or sums them as it
stacks the blocks of one system. A system can also keep the small energy and stress rows
of its frames as they are (``keep_rows``), one row per frame and six, so that the errors
of a solution on its frames, mean absolute as well as root mean square, follow without a
prediction; force errors come from the factors (`LinearSystem.scores`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from mlpot.models import lstsq
from mlpot.models.training import ROW_KINDS, Weights, weight_of

__all__ = ["GAPSystem", "LinearSystem", "part_labels"]


def part_labels(frames, parts) -> tuple[list, np.ndarray, int]:
    """The frames (a list when split), each one's part label and the number of parts, for
    ``assemble(frames, parts=...)``; one part of every frame when ``parts`` is None."""
    if parts is None:
        return frames, np.zeros(0, dtype=np.int64), 1
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
        raise TypeError("frames must be an iterable of ase.Atoms")
    frames = list(frames)
    labels = np.asarray(parts)
    if labels.shape != (len(frames),) or not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
        raise ValueError(f"parts must be one integer label >= 0 per frame ({len(frames)}), got shape {labels.shape}")
    return frames, labels, int(labels.max()) + 1 if len(labels) else 1



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
    scored
        ``{row kind: quantity}``: the blocks `scores` reports, as "energy" (eV/atom),
        "forces" (eV/Angstrom) or "stress" (eV/Angstrom^3).
    rank
        Numerical rank of the weighted (ridge-augmented) system of the last `solve` (None
        before one): below ``n_columns`` the data do not determine every coefficient (see
        `lstsq`).
    """

    #: the row kinds of `training.frame_blocks` and what their rows measure
    SCORED = {"energy": "energy", "forces": "forces", "stress": "stress"}

    def __init__(
        self,
        n_columns: int,
        signature,
        kinds: tuple[str, ...] = ROW_KINDS,
        batch: int | None = None,
        keep_rows: bool = False,
    ):
        self.n_columns = int(n_columns)
        self.signature = signature
        self.kinds = tuple(kinds)
        self.scored = dict(self.SCORED)
        # rows per QR update of a block; a fit with many groups holds many blocks at once
        self._batch = max(self.n_columns + 1, 256) if batch is None else max(int(batch), 1)
        if keep_rows not in (False, True, "all"):
            raise ValueError(f"keep_rows must be False, True or 'all', got {keep_rows!r}")
        self.keep_rows = keep_rows
        self.n_frames = 0
        self.elements: set[int] = set()
        self._blocks: dict[tuple, None] = {}  # (group, kind) in order of first rows
        self._pending: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._pending_rows: dict[tuple, int] = {}
        self._accumulators: dict[tuple, lstsq.QRAccumulator] = {}
        # per block, the factors of the parts merged into it (one for an assembled system)
        self._factors: dict[tuple, list[np.ndarray]] = {}
        self._rows: dict[tuple, int] = {}
        self._grams: dict[tuple, np.ndarray] = {}
        # per (group, kind) of energy and stress: rows, targets, factor to the quantity's unit
        self._kept: dict[tuple, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._groups: dict = {}
        self.rank: int | None = None

    @property
    def groups(self) -> tuple:
        return tuple(self._groups)

    def n_rows(self, group, kind: str) -> int:
        """Rows of ``kind`` (one of `kinds`) in ``group``."""
        return self._rows.get((group, kind), 0)

    def add_frame(
        self,
        group,
        blocks: Mapping[str, tuple[np.ndarray, np.ndarray]],
        numbers,
        to_unit: Mapping[str, float] | None = None,
    ) -> None:
        """Adds one frame's unweighted rows ``{kind: (A, y)}`` (`training.frame_blocks`).
        ``to_unit``: for a system that keeps its rows (``keep_rows``: True for the energy
        and stress rows, "all" for the force rows as well), the factor taking
        a residual of the frame's energy or stress block to eV/atom or eV/Angstrom^3
        (default 1, the rows' own unit)."""
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
            if self.keep_rows and (self.keep_rows == "all" or self.scored.get(kind) in ("energy", "stress")):
                factor = np.full(len(y), 1.0 if to_unit is None else float(to_unit.get(kind, 1.0)))
                self._kept.setdefault(key, []).append((np.array(a), np.array(y), factor))
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
            self._factors[key] = [accumulator.factor()]
            self._rows[key] = accumulator.n_rows
        self._accumulators = {}
        self._kept = {
            key: [(np.vstack([a for a, _, _ in rows]), np.concatenate([y for _, y, _ in rows]),
                   np.concatenate([f for _, _, f in rows]))]
            for key, rows in self._kept.items()
        }
        return self

    @classmethod
    def merged(cls, systems) -> "LinearSystem":
        """The system of the frames of all ``systems`` (disjoint sets of frames assembled by
        the same model: same signature and columns; ValueError otherwise). Exact: the
        parts' factors are kept side by side, no factor is recomputed, and a solve of the
        merged system equals the solve of one system assembled from all their frames (to
        rounding). Costs no copy of the factors."""
        systems = [s.finish() for s in systems]
        if not systems:
            raise ValueError("merged() needs at least one system")
        first = systems[0]
        for other in systems[1:]:
            if type(other) is not type(first) or other.signature != first.signature or other.n_columns != first.n_columns:
                raise ValueError("only systems assembled by the same model (same signature and columns) merge")
            first._check_mergeable(other)
        merged = object.__new__(type(first))
        merged.__dict__.update(first.__dict__)
        merged.n_frames = sum(s.n_frames for s in systems)
        merged.elements = set().union(*(s.elements for s in systems))
        kept = {s.keep_rows for s in systems}
        merged.keep_rows = kept.pop() if len(kept) == 1 else False
        merged._groups, merged._blocks = {}, {}
        merged._factors, merged._rows, merged._grams, merged._kept = {}, {}, {}, {}
        for s in systems:
            for group in s._groups:
                merged._groups.setdefault(group, None)
            for key, pieces in s._factors.items():
                merged._blocks.setdefault(key, None)
                merged._factors.setdefault(key, []).extend(pieces)
                merged._rows[key] = merged._rows.get(key, 0) + s._rows[key]
            if merged.keep_rows:
                for key, rows in s._kept.items():
                    merged._kept.setdefault(key, []).extend(rows)
        merged.rank = None
        return merged

    def _check_mergeable(self, other: "LinearSystem") -> None:
        """ValueError unless ``other`` may be merged with this system (subclasses add the
        settings of their own)."""

    def weighted_factors(
        self, weight: Callable[[object, str], float]
    ) -> Iterator[tuple[object, str, float, np.ndarray]]:
        """(group, kind, w, R) of every block with rows and a weight w = weight(group,
        kind) > 0, R the block's triangular factor of [A | y] (R^T R = [A | y]^T [A | y];
        a merged system yields one R per part). Stacking the w R and solving gives the
        weighted problem of all rows."""
        if not self._factors and (self._accumulators or self._pending):
            self.finish()
        for (group, kind), pieces in self._factors.items():
            w = weight(group, kind)
            if w > 0:
                for factor in pieces:
                    if len(factor):
                        yield group, kind, w, factor

    def weighted_gram(self, weight: Callable[[object, str], float]) -> tuple[np.ndarray, int]:
        """sum_b w_b^2 [A_b | y_b]^T [A_b | y_b] over the blocks of weight w_b =
        weight(group, kind) > 0, (n_columns + 1)^2, and the number of rows it holds: the
        normal equations of any weights for O(n^2) per block (block products cached)."""
        self.finish()
        total = np.zeros((self.n_columns + 1, self.n_columns + 1))
        n_rows = 0
        for (group, kind) in self._factors:
            w = weight(group, kind)
            if w > 0 and self._rows[group, kind]:
                total += (w * w) * self._gram(group, kind)
                n_rows += self._rows[group, kind]
        return total, n_rows

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
        weights = lambda group, kind: weight_of(groups.get(group, default), kind)  # noqa: E731
        accumulator = lstsq.make_accumulator(solver, self.n_columns)
        if solver == "normal":
            gram, n_rows = self.weighted_gram(weights)
            accumulator.add_products(gram[:-1, :-1], gram[:-1, -1], n_rows)
        else:
            for _, _, w, factor in self.weighted_factors(weights):
                accumulator.add(w * factor[:, :-1], w * factor[:, -1])
        solution = accumulator.solve(ridge, penalized)
        self.rank = accumulator.rank
        return solution

    def _gram(self, group, kind: str) -> np.ndarray:
        """R^T R of a block (summed over its parts), cached: repeated normal-equation
        solves then cost O(n^2) per block."""
        key = (group, kind)
        if key not in self._grams:
            pieces = self._factors[key]
            gram = pieces[0].T @ pieces[0]
            for factor in pieces[1:]:
                gram += factor.T @ factor
            self._grams[key] = gram
        return self._grams[key]

    def scores(self, solution: np.ndarray) -> dict:
        """The errors of the coefficients ``solution`` on this system's frames, per group:
        ``{group: {quantity: (sum of squared errors, sum of absolute errors or NaN, count)}}``
        for the quantities of `scored` ("energy" per frame in eV/atom, "forces" per
        component in eV/Angstrom, "stress" per Voigt component in eV/Angstrom^3). Energy and
        stress come from the kept rows (``keep_rows``; absent otherwise), forces from the
        factors (|R [x; -1]|^2 is the block's squared residual: no absolute errors, NaN)
        unless ``keep_rows="all"`` kept their rows too."""
        self.finish()
        x = np.append(np.asarray(solution, dtype=np.float64), -1.0)
        out: dict = {}
        for (group, kind), pieces in self._factors.items():
            quantity = self.scored.get(kind)
            if quantity is None or not self._rows[group, kind]:
                continue
            per_group = out.setdefault(group, {})
            if (group, kind) in self._kept:
                sse = sae = 0.0
                count = 0
                for a, y, factor in self._kept[group, kind]:
                    error = (a @ x[:-1] - y) * factor
                    sse += float(error @ error)
                    sae += float(np.abs(error).sum())
                    count += len(y)
            elif quantity in ("energy", "stress"):
                continue
            else:
                sse = sum(float(np.sum(np.square(r @ x))) for r in pieces)
                sae, count = float("nan"), self._rows[group, kind]
            previous = per_group.get(quantity, (0.0, 0.0, 0))
            per_group[quantity] = (previous[0] + sse, previous[1] + sae, previous[2] + count)
        return out

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
    #: the blocks of absolute sigmas are in units of their frames' sigmas: not scored
    SCORED = {"energy": "energy", "forces": "forces", "virial": "stress"}

    def __init__(self, n_columns: int, signature, terms, e0: Mapping[str, float], batch: int, keep_rows: bool = False):
        super().__init__(n_columns, signature, kinds=self.KINDS, batch=batch, keep_rows=keep_rows)
        self.terms = list(terms)
        self.e0 = dict(e0)

    def _check_mergeable(self, other: "LinearSystem") -> None:
        same_terms = len(self.terms) == len(other.terms) and all(
            a is b or (np.array_equal(a.sparse, b.sparse) and a.delta == b.delta) for a, b in zip(self.terms, other.terms)
        )
        if not same_terms or self.e0 != other.e0:
            raise ValueError("only GAPSystems with the same sparse points, deltas and e0 merge")

    def prior_gram(self) -> np.ndarray:
        """K_MM of all terms, block diagonal (without jitter), cached: the prior's part of
        the normal equations."""
        if getattr(self, "_prior", None) is None:
            prior = np.zeros((self.n_columns, self.n_columns))
            start = 0
            for term in self.terms:
                prior[start : start + term.n_sparse, start : start + term.n_sparse] = term.prior()
                start += term.n_sparse
            self._prior = prior
        return self._prior

