"""GAP: sparse Gaussian-process potentials on SOAP (and a two-body term), as QUIP's gap_fit.

The energy of a structure is a sum of local terms, each a Gaussian process against fixed
sparse points with weights alpha:

    E = sum_t e0_t n_t + sum_i sum_m alpha_m k_soap(i, m) + sum_pairs sum_m' alpha_m' k_2b(r, m')
        (+ a fixed baseline such as ZBL),

k_soap(i, m) = delta^2 (p_i . x_m)^zeta on normalised SOAP vectors (zero between different
central species: one GP per species, as gap_fit's add_species), k_2b gap_fit's distance_2b
with a squared-exponential kernel. Total energies, forces and virials are observations,
all linear in alpha: y = K_NM alpha + noise, noise sigma per observation. The weights are the
sparse-GP (DTC/projected-process) mean

    alpha = (K_MM + K_MN Sigma^-1 K_NM)^-1 K_MN Sigma^-1 y,

obtained as gap_fit does, by QR of the augmented system [Sigma^-1/2 K_NM; L^T] (K_MM + jitter
= L L^T) against [Sigma^-1/2 y; 0], streamed frame by frame (mlpot.models.lstsq): only one
frame's kernel rows exist at a time, and memory is O(n_sparse^2).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from ase.data import atomic_numbers, chemical_symbols

from mlpot import _core, _memory
from mlpot.descriptors import SOAP, _atoms_arrays, _Described, _finite, _flag, register_descriptor
from mlpot.models import lstsq, training
from mlpot.models.system import GAPSystem
from mlpot.models.specs import MAX_SPARSE, SPARSE_METHODS, Distance2bParams, GAPParams

__all__ = ["GAP", "Distance2b", "GAPSystem"]

_SPARSE_METHODS = SPARSE_METHODS

#: Row kinds and the atoms.info key of a per-frame absolute sigma of that kind.
_ABSOLUTE_SIGMAS = {"energy": "energy_sigma", "forces": "force_sigma", "virial": "virial_sigma"}


def _positive(value, name: str) -> float:
    x = _finite(name, value)
    if x <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return x


def _structure(atoms, numbers_known: Sequence[int]) -> _core.Structure:
    positions, cell, pbc, numbers = _atoms_arrays(atoms)
    numbers = np.ascontiguousarray(numbers, dtype=np.int64)
    unknown = np.unique(numbers[~np.isin(numbers, numbers_known)])
    if len(unknown):
        names = [chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z) for z in unknown]
        known = [chemical_symbols[z] for z in numbers_known]
        raise ValueError(f"atoms contains element(s) {names} that the model does not know (it has {known})")
    return _core.Structure(
        np.ascontiguousarray(positions, dtype=np.float64),
        np.ascontiguousarray(cell, dtype=np.float64),
        [bool(p) for p in pbc],
        numbers,
    )


@register_descriptor
class Distance2b(_Described):
    """gap_fit's ``distance_2b`` term: as in QUIP, each ordered pair (i, j) within ``cutoff``
    is a descriptor with the local energy f_c(r) f(r) given to atom i (so an unordered pair
    has the energy 2 f_c f), f a Gaussian process of covariance delta^2 exp(-(r - r')^2 /
    (2 theta^2)) represented on sparse distances; f_c is 1 below cutoff -
    cutoff_transition_width and a cosine switch to 0 at the cutoff (QUIP's coordination
    function). With these conventions gap_fit's delta and theta mean the same here.

    Parameters
    ----------
    cutoff, cutoff_transition_width, theta
        Angstrom.
    delta
        Signal standard deviation of the pair energy, eV (gap_fit ``delta``); None: chosen at
        fit time like the SOAP term's (see `GAP`).
    n_sparse
        Sparse distances, spaced uniformly from the shortest distance in the training data
        to the cutoff (gap_fit ``sparse_method=uniform``), unless ``sparse_points`` are given.
    species
        None (every pair) or two elements: only pairs of that kind (gap_fit ``Z1``, ``Z2``).
    sparse_points
        Fixed sparse distances (Angstrom), e.g. those of a gap_fit model.
    """

    kind = "distance_2b"
    Params = Distance2bParams

    def __init__(
        self,
        cutoff: float = 5.0,
        cutoff_transition_width: float = 0.5,
        theta: float = 1.0,
        delta: float | None = None,
        n_sparse: int = 20,
        species=None,
        sparse_points=None,
    ):
        self.params = Distance2bParams(
            cutoff=cutoff, cutoff_transition_width=cutoff_transition_width, theta=theta, delta=delta,
            n_sparse=n_sparse, species=species, sparse_points=sparse_points,
        )
        p = self.params
        self.cutoff, self.cutoff_transition_width, self.theta = p.cutoff, p.cutoff_transition_width, p.theta
        self.delta, self.n_sparse, self.species = p.delta, p.n_sparse, p.species
        self.sparse_points = None if p.sparse_points is None else np.array(p.sparse_points, dtype=np.float64)

    def __repr__(self) -> str:
        return (
            f"Distance2b(cutoff={self.cutoff}, cutoff_transition_width={self.cutoff_transition_width}, "
            f"theta={self.theta}, delta={self.delta}, n_sparse={self.n_sparse}, species={self.species})"
        )

    def to_dict(self) -> dict:
        """The parameters but the sparse points (a fitted term stores its own)."""
        return {k: v for k, v in self.params.to_dict().items() if k != "sparse_points"}


def _symbol(s) -> str:
    if isinstance(s, str) and s in atomic_numbers and s != "X":
        return s
    if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 1 <= s < len(chemical_symbols):
        return chemical_symbols[int(s)]
    raise ValueError(f"unknown element {s!r}")


def _soap_params(soap: SOAP) -> dict:
    return {
        "cutoff": soap.cutoff,
        "n_max": soap.n_max,
        "l_max": soap.l_max,
        "atom_sigma": soap.atom_sigma,
        "cutoff_transition_width": soap.cutoff_transition_width,
        "species": list(soap.species),
        "center_atom_weight": soap.center_atom_weight,
    }


class _Term:
    """One fitted kernel term: its descriptor, sparse points, delta and the Rust kernel."""

    def __init__(self, kind, descriptor, delta, sparse, sparse_species=None, zeta=None):
        self.kind = kind  # "soap" or "distance_2b"
        self.descriptor = descriptor
        self.delta = float(delta)
        self.sparse = np.ascontiguousarray(sparse, dtype=np.float64)
        self.sparse_species = None if sparse_species is None else np.asarray(sparse_species, dtype=np.int64)
        self.zeta = zeta
        if kind == "soap":
            self.core = _core.KernelTerm.soap(
                descriptor._core, float(zeta), self.delta, self.sparse, [int(z) for z in self.sparse_species]
            )
        else:
            d = descriptor
            pair = None if d.species is None else tuple(atomic_numbers[s] for s in d.species)
            self.core = _core.KernelTerm.pair(
                d.cutoff, d.cutoff_transition_width, d.theta, self.delta, self.sparse.tolist(), pair
            )

    @property
    def n_sparse(self) -> int:
        return len(self.sparse)

    def prior(self) -> np.ndarray:
        """K_MM (without jitter)."""
        d2 = self.delta**2
        if self.kind == "soap":
            k = self.sparse @ self.sparse.T  # in place from here: n_sparse^2 can be 128 MB
            if float(self.zeta).is_integer():
                np.power(k, self.zeta, out=k)
            else:  # as the Rust kernel: c^zeta is 0 for c <= 0
                np.power(np.maximum(k, 0.0, out=k), self.zeta, out=k)
            k *= d2
            k[self.sparse_species[:, None] != self.sparse_species[None, :]] = 0.0
            return k
        d = self.descriptor
        fc = _switch(self.sparse, d.cutoff, d.cutoff_transition_width)
        diff = self.sparse[:, None] - self.sparse[None, :]
        return d2 * np.outer(fc, fc) * np.exp(-0.5 * diff**2 / d.theta**2)

    def to_dict(self, alpha: np.ndarray) -> dict:
        out = {"type": self.kind, "delta": self.delta, "alpha": alpha.tolist()}
        if self.kind == "soap":
            out.update(
                soap=_soap_params(self.descriptor),
                zeta=self.zeta,
                sparse_points=self.sparse.tolist(),
                sparse_species=[chemical_symbols[z] for z in self.sparse_species],
            )
        else:
            out.update(distance_2b=self.descriptor.to_dict(), sparse_points=self.sparse.tolist())
        return out


def _switch(r, cutoff, width):
    """QUIP's coordination function (1 inside, cosine switch over the last `width`)."""
    r = np.asarray(r, dtype=np.float64)
    if width == 0:
        return np.where(r < cutoff, 1.0, 0.0)
    s = np.clip((r - cutoff + width) / width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * s))


# ------------------------------------------------------------------ sparse point selection


def select_sparse(x: np.ndarray, n: int, method: str, zeta: float = 1.0, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` distinct rows of the candidate matrix ``x`` (rows: normalised
    descriptors).

    - "cur": randomised leverage-score CUR (Mahoney and Drineas, PNAS 106, 697 (2009)), as
      gap_fit's ``sparse_method=cur_points``: n rows sampled without replacement (``seed``)
      with probability proportional to their statistical leverage on the top-k left
      singular subspace of x. k is half the numerical rank (singular values above 1e-6 of
      the largest), as gap_fit's default, and at most n: the leading directions only, so
      that the noise directions of a nearly degenerate descriptor set do not give isolated
      outliers a leverage of 1. (Keeping the largest leverages deterministically instead
      picks outliers once n exceeds k.)
    - "fps": farthest-point sampling in the kernel distance 2 (1 - (x_i . x_j)^zeta), starting
      from the row of highest leverage.
    - "random": uniform without replacement (``seed``).
    Rows that are exact duplicates count once; if there are at most ``n`` distinct rows, all
    are returned.
    """
    if method not in _SPARSE_METHODS:
        raise ValueError(f"sparse_method must be one of {_SPARSE_METHODS}, got {method!r}")
    _, first = np.unique(np.round(x, 12), axis=0, return_index=True)
    distinct = np.sort(first)
    if len(distinct) <= n:
        return distinct
    c = x[distinct]
    if method == "random":
        rng = np.random.default_rng(seed)
        return np.sort(distinct[rng.choice(len(c), size=n, replace=False)])
    if method == "cur":
        leverage, _ = _leverage(c, n, half_rank=True)
        # weighted sampling without replacement by Efraimidis-Spirakis keys log(u) / w (the n
        # largest); numpy's choice(p=...) refuses the zero-leverage rows this must allow
        u = np.random.default_rng(seed).random(len(c))
        with np.errstate(divide="ignore"):
            keys = np.where(leverage > 0, np.log(u) / leverage, -np.inf)
        return np.sort(distinct[np.argsort(-keys, kind="stable")[:n]])
    leverage, _ = _leverage(c, n)
    chosen = [int(np.argmax(leverage))]
    # kernel distance to the nearest chosen point, updated one choice at a time: O(len(c) n)
    dist = 1.0 - (c @ c[chosen[0]]) ** zeta
    dist[chosen[0]] = -np.inf
    for _ in range(n - 1):
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, 1.0 - (c @ c[k]) ** zeta)
        dist[chosen] = -np.inf
    return np.sort(distinct[chosen])


def _leverage(c: np.ndarray, k: int, half_rank: bool = False) -> tuple[np.ndarray, int]:
    """Row leverage scores (summing to 1) on the top-k left singular vectors of c, and the k
    used: at most the numerical rank (singular values above 1e-6 of the largest), or half of
    it with ``half_rank`` (gap_fit's CUR). Through the Gram-matrix eigenvectors when c is
    tall, which costs O(rows features^2)."""
    small = min(c.shape)  # the Gram matrix, its eigenvectors and LAPACK's workspace; or the SVD
    _memory.ensure_fits(
        8 * (3 * small * small + 2 * c.size), f"the leverage scores of {c.shape[0]} candidate sparse points"
    )
    if c.shape[0] >= c.shape[1]:
        s2, v = np.linalg.eigh(c.T @ c)
        keep = s2 > s2.max() * 1e-12
        s2, v = s2[keep][::-1], v[:, keep][:, ::-1]
        rank = len(s2)
    else:
        u, s, _ = np.linalg.svd(c, full_matrices=False)
        rank = int((s > s[0] * 1e-6).sum())
    k = max(1, min(k, rank // 2 if half_rank else rank))
    if c.shape[0] >= c.shape[1]:
        u = (c @ v[:, :k]) / np.sqrt(s2[:k])
    return (u[:, :k] ** 2).sum(axis=1) / k, k


# ------------------------------------------------------------------------------ the model


@dataclass
class _TrainingData:
    """Checked training frames with what the kernel rows need."""

    frames: list
    refs: list
    structures: list
    base: list
    e0: dict
    terms: list


def _progress(frames, enabled: bool, desc: str):
    if not enabled:
        return frames
    from tqdm.auto import tqdm

    return tqdm(frames, total=len(frames), desc=desc, unit="frame")


class GAP:
    """A sparse Gaussian-process potential (GAP) on SOAP, optionally plus two-body terms and a
    fixed baseline, fitted as QUIP's gap_fit.

    Parameters
    ----------
    descriptors
        An `mlpot.SOAP`, a `Distance2b`, or a list of them (a sum of terms). SOAP vectors
        are used normalised (the descriptor is rebuilt with ``normalize=True`` if needed).
    zeta
        Exponent of the SOAP dot-product kernel (gap_fit ``zeta``).
    n_sparse
        Sparse points per central species of each SOAP term (gap_fit ``n_sparse``), at most
        100000 (`MAX_SPARSE`).
    delta
        Signal standard deviation of a SOAP local energy, eV (gap_fit ``delta``). None: the
        root mean square of the per-atom training energies after e0 and the baseline are
        subtracted (the size of the local energies the GP must represent).
    sparse_method
        "cur" (default; randomised leverage-score CUR on the descriptor matrix, as
        gap_fit's ``cur_points``; see `select_sparse`), "fps" (farthest point
        in the kernel distance) or "random" (``seed``), per species, among the training atoms.
    default_sigma
        (energy per atom eV, force eV/Angstrom, virial per atom eV): the noise of the
        observations, gap_fit ``default_sigma`` with ``sigma_per_atom=T``: the energy and
        virial sigmas of a frame of N atoms are these times sqrt(N).
    group_sigma
        ``{group: (e, f, v)}`` overriding default_sigma for frames whose
        ``atoms.info["group"]`` is that group (gap_fit ``config_type_sigma``), same meaning.
        A frame may also carry absolute sigmas in ``atoms.info["energy_sigma"]``,
        ``["force_sigma"]``, ``["virial_sigma"]`` (eV, eV/Angstrom, eV; not scaled by N), which
        win over both (gap_fit's per-configuration sigma parameters).
    e0
        ``{element: eV}``, the energy of an isolated atom, subtracted before the fit (gap_fit
        ``e0``). None: the per-element energies that best fit the training energies by
        least squares (the mean energy per atom for one element; gap_fit ``e0_method=average``).
    jitter
        Added to the diagonal of K_MM (gap_fit ``sparse_jitter``), eV^2.
    baseline
        A fixed reference potential (e.g. `mlpot.ZBL`), subtracted from the references before
        the fit and added to predictions.
    seed
        For ``sparse_method="cur"`` (randomised) and ``"random"``.
    sparse_points
        Fixed SOAP sparse points instead of a selection: (n, n_features) normalised vectors and
        their central elements, as ``(points, elements)``.
    """

    def __init__(
        self,
        descriptors,
        zeta: float = 4,
        n_sparse: int = 1000,
        delta: float | None = None,
        sparse_method: str = "cur",
        default_sigma=(0.01, 0.05, 0.01),
        group_sigma: Mapping | None = None,
        e0: Mapping | None = None,
        jitter: float = 1e-10,
        baseline=None,
        seed: int = 0,
        sparse_points=None,
    ):
        terms = list(descriptors) if isinstance(descriptors, (list, tuple)) else [descriptors]
        if not terms:
            raise ValueError("descriptors must name at least one SOAP or Distance2b")
        self.descriptors = []
        for d in terms:
            if isinstance(d, SOAP):
                if not d.normalize:
                    d = SOAP(**_soap_params(d), normalize=True)
                self.descriptors.append(d)
            elif isinstance(d, Distance2b):
                self.descriptors.append(d)
            else:
                raise TypeError(f"descriptors must be mlpot.SOAP or mlpot.Distance2b, got {type(d).__name__}")
        p = GAPParams(
            zeta=zeta, n_sparse=n_sparse, delta=delta, sparse_method=sparse_method,
            default_sigma=default_sigma, group_sigma=group_sigma, e0=e0, jitter=jitter, seed=seed,
        )
        self.zeta, self.n_sparse, self.delta, self.sparse_method = p.zeta, p.n_sparse, p.delta, p.sparse_method
        self.default_sigma, self.group_sigma, self.e0, self.jitter = p.default_sigma, p.group_sigma, p.e0, p.jitter
        if baseline is not None and not callable(getattr(baseline, "predict", None)):
            raise TypeError("baseline must have a predict(atoms) method returning a dict")
        self.baseline = baseline
        self.seed = p.seed
        self.sparse_points = sparse_points
        self._terms: list[_Term] | None = None
        self._alpha: np.ndarray | None = None
        self._e0_fitted: dict[str, float] | None = None
        self._posterior: np.ndarray | None = None  # R, with R^T R = K_MM + K_MN Sigma^-1 K_NM
        self._prior_factors: list[np.ndarray | None] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def elements(self) -> tuple[str, ...]:
        """Elements the model knows, sorted by atomic number."""
        zs = set()
        for d in self.descriptors:
            if isinstance(d, SOAP):
                zs.update(atomic_numbers[s] for s in d.species)
            elif d.species is not None:
                zs.update(atomic_numbers[s] for s in d.species)
        if not zs and self._e0_fitted:
            zs.update(atomic_numbers[s] for s in self._e0_fitted)
        return tuple(chemical_symbols[z] for z in sorted(zs))

    # the settings a fit from a GAPSystem may change, checked when set

    @property
    def default_sigma(self) -> tuple[float, float, float]:
        """(energy per atom eV, force eV/Angstrom, virial per atom eV), see `GAP`."""
        return self._default_sigma

    @default_sigma.setter
    def default_sigma(self, value) -> None:
        self._default_sigma = GAPParams.check_parameter("default_sigma", value)

    @property
    def group_sigma(self) -> dict:
        """``{group: (e, f, v)}``, see `GAP`."""
        return self._group_sigma

    @group_sigma.setter
    def group_sigma(self, value) -> None:
        self._group_sigma = GAPParams.check_parameter("group_sigma", value)

    @property
    def jitter(self) -> float:
        """Added to the diagonal of K_MM, eV^2."""
        return self._jitter

    @jitter.setter
    def jitter(self, value) -> None:
        self._jitter = GAPParams.check_parameter("jitter", value)

    @property
    def alpha(self) -> np.ndarray | None:
        """The weights of all sparse points, terms in order; None before a fit."""
        return None if self._alpha is None else self._alpha.copy()

    @property
    def e0_values(self) -> dict[str, float] | None:
        """The per-element energies used (given or fitted), eV."""
        return None if self._e0_fitted is None else dict(self._e0_fitted)

    @property
    def terms(self) -> list[dict]:
        """Per term: kind, delta, sparse points (and species), weights."""
        if self._terms is None:
            return []
        out, start = [], 0
        for t in self._terms:
            out.append(t.to_dict(self._alpha[start : start + t.n_sparse]))
            start += t.n_sparse
        return out

    def __repr__(self) -> str:
        state = "fitted" if self._alpha is not None else "not fitted"
        return (
            f"GAP({self.descriptors!r}, zeta={self.zeta}, n_sparse={self.n_sparse}, "
            f"default_sigma={self.default_sigma}, e0={self.e0}) [{state}]"
        )

    # ------------------------------------------------------------------------ fit

    def fit(self, frames, progress: bool = True) -> "GAP":
        """Fit to reference data: ``ase.Atoms`` with energy (eV), forces (eV/Angstrom) and,
        for periodic cells, optionally stress (eV/Angstrom^3, ASE's sign) on their calculator,
        and their group in ``atoms.info["group"]``. Frames are read twice (sparse point
        selection, then the kernel rows), so an iterable is materialised as a list of
        Atoms; descriptor gradients exist for one frame at a time.

        Or a `GAPSystem` from ``model.assemble(frames)``: the same fit (same weights and
        posterior, to rounding) with the model's current ``default_sigma``,
        ``group_sigma`` and ``jitter``, without recomputing kernel rows: for trying many
        sigmas. It keeps the sparse points, deltas and e0 of the assembly; every other
        setting must equal the assembling model's (ValueError otherwise). ``progress``
        does not apply (the fit takes a fraction of a second to seconds).
        """
        progress = _flag("progress", progress)
        if isinstance(frames, GAPSystem):
            return self._fit_system(frames)
        data = self._prepare(frames, progress)
        _ensure_solve_fits(data.terms)
        self._warn_unused_groups({a.info.get("group") for a in data.frames})
        n_columns = sum(t.n_sparse for t in data.terms)
        # batch = n_columns + 1 rows: a buffer of 2 (n + 1)^2 floats (256 MB at n_sparse
        # 4000) rather than the default 3 (n + 1)^2, for about 15 % more factorization work
        accumulator = lstsq.QRAccumulator(n_columns, batch=n_columns + 1)
        for group, blocks in self._observation_blocks(data, progress, "GAP fit"):
            if blocks:
                weights = [self._sigma_weight(group, kind) for kind in blocks]
                accumulator.add(
                    np.vstack([w * a for w, (a, _) in zip(weights, blocks.values())]),
                    np.concatenate([w * y for w, (_, y) in zip(weights, blocks.values())]),
                )
        if accumulator.n_rows == 0:
            raise ValueError("no observations: every reference was missing")
        return self._solve(accumulator, data.terms, data.e0)

    def assemble(self, frames, progress: bool = True) -> GAPSystem:
        """The observations of ``frames`` before the sigmas are applied: sparse points are
        selected and every kernel row is computed once (what takes nearly all the time of
        a fit) and reduced per (group, row kind) to a triangular factor (see `GAPSystem`).
        ``model.fit(system)`` then fits with the model's current ``default_sigma``,
        ``group_sigma`` and ``jitter`` for the cost of a few QR factorizations of
        (n_sparse + 1)-square blocks, with the same weights and posterior variance as a
        fit from the frames::

            system = model.assemble(frames)
            for sigma in [(0.01, 0.05, 0.01), (0.003, 0.02, 0.2)]:
                model.default_sigma = sigma
                model.fit(system)          # then score it, e.g. mlpot.errors(model, valid)

        Memory: at most (n_sparse + 1)^2 floats per (group, kind) kept, plus, while frames
        are added, a QR buffer of (n_sparse + 257) x (n_sparse + 1) per block with more
        than 256 rows (n_sparse: the sparse points of all terms).
        """
        progress = _flag("progress", progress)
        data = self._prepare(frames, progress)
        n_columns = sum(t.n_sparse for t in data.terms)
        _memory.ensure_fits(
            8 * ((n_columns + 1) ** 2 + (n_columns + 257) * (n_columns + 1)),
            f"the GAP observation factors ({n_columns} sparse points)",
        )
        # a small QR batch: one buffer per (group, kind) is open while frames are added
        system = GAPSystem(n_columns, self._signature(), data.terms, data.e0, batch=256)
        observations = self._observation_blocks(data, progress, "GAP assemble")
        for (group, blocks), atoms in zip(observations, data.frames):
            system.add_frame(group, blocks, atoms.numbers)
        system.finish()
        if not any(system.n_rows(g, k) for g in system.groups for k in system.kinds):
            raise ValueError("no observations: every reference was missing")
        return system

    def _prepare(self, frames, progress: bool) -> "_TrainingData":
        """Checks the frames, resolves e0 and the default delta, selects the sparse points."""
        if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
            raise TypeError("frames must be an iterable of ase.Atoms")
        frames = list(frames)
        if not frames:
            raise ValueError("no frames to fit")
        elements = self.elements or tuple(
            chemical_symbols[z] for z in np.unique(np.concatenate([a.numbers for a in frames]))
        )
        known = sorted(atomic_numbers[e] for e in elements)
        refs, structures = [], []
        for k, atoms in enumerate(frames):
            where, ref = training.frame_reference(k, atoms)
            try:
                structures.append(_structure(atoms, known))
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            refs.append(ref)
        base = [self.baseline.predict(a) if self.baseline is not None else None for a in frames]
        e0 = self._resolve_e0(elements, frames, refs, base)
        delta_default = self._default_delta(frames, refs, base, e0)
        terms = self._select_terms(frames, structures, delta_default, progress)
        return _TrainingData(frames, refs, structures, base, e0, terms)

    def _warn_unused_groups(self, groups) -> None:
        unused = [g for g in self.group_sigma if g not in groups]
        if unused:
            warnings.warn(f"group_sigma names group(s) {unused} that no frame belongs to", stacklevel=3)

    def _observation_blocks(self, data: "_TrainingData", progress: bool, desc: str):
        """(group, `_frame_blocks`) of each frame, its kernel rows computed on the fly."""
        for k in _progress(range(len(data.frames)), progress, desc):
            rows = [t.core.rows(data.structures[k]) for t in data.terms]
            atoms = data.frames[k]
            blocks = self._frame_blocks(atoms, data.refs[k], data.base[k], data.e0, rows)
            yield atoms.info.get("group"), blocks

    def _fit_system(self, system: GAPSystem) -> "GAP":
        if system.signature != self._signature():
            raise ValueError(
                "the GAPSystem was assembled by a model with other descriptors, zeta, n_sparse, "
                "delta, sparse_method, seed, sparse_points, e0 or baseline; only default_sigma, "
                "group_sigma and jitter may differ"
            )
        _ensure_solve_fits(system.terms)
        self._warn_unused_groups(set(system.groups))
        n_columns = system.n_columns
        accumulator = lstsq.QRAccumulator(n_columns, batch=n_columns + 1)
        for _, _, w, factor in system.weighted_factors(self._sigma_weight):
            accumulator.add(w * factor[:, :-1], w * factor[:, -1])
        return self._solve(accumulator, system.terms, system.e0)

    def _solve(self, accumulator: lstsq.QRAccumulator, terms, e0) -> "GAP":
        """Adds the prior rows to the observations' rows Sigma^-1/2 [K_NM | y] in
        ``accumulator``, solves for alpha and keeps the posterior factor."""
        n_columns = accumulator.n_columns
        # the prior: rows L^T with K_MM + jitter = L L^T, block diagonal over terms, added a
        # few hundred rows at a time so that no second n x n copy of L^T exists
        factors, start = [], 0
        for t in terms:
            lower = _prior_factor(t, self.jitter)
            for first in range(0, t.n_sparse, 512):
                block = lower.T[first : first + 512]
                rows = np.zeros((len(block), n_columns))
                rows[:, start : start + t.n_sparse] = block
                accumulator.add(rows, np.zeros(len(block)))
            factors.append(lower)
            start += t.n_sparse
        r = accumulator.take_factor()  # frees the accumulator's buffers
        alpha = scipy.linalg.solve_triangular(
            r[:n_columns, :n_columns], r[:n_columns, n_columns], lower=False, check_finite=False
        )
        if not np.isfinite(alpha).all():
            raise RuntimeError("the GAP solve failed (singular system); increase jitter")
        posterior = np.ascontiguousarray(r[:n_columns, :n_columns])  # upper triangular
        del r
        self._terms = terms
        self._alpha = alpha
        self._e0_fitted = dict(e0)
        self._posterior = posterior
        self._prior_factors = factors
        return self

    def _signature(self) -> tuple:
        """What a GAPSystem's rows depend on: every setting except the sigmas and the
        jitter (a digest of them), and the baseline."""
        descriptors = []
        for d in self.descriptors:
            if isinstance(d, SOAP):
                descriptors.append({"soap": _soap_params(d)})
            else:
                points = None if d.sparse_points is None else d.sparse_points.tolist()
                descriptors.append({"distance_2b": d.to_dict(), "sparse_points": points})
        points = None
        if self.sparse_points is not None:
            x, elements = self.sparse_points
            points = [np.asarray(x, dtype=np.float64).tolist(), [str(_symbol(e)) for e in elements]]
        settings = {
            "descriptors": descriptors,
            "zeta": self.zeta,
            "n_sparse": self.n_sparse,
            "delta": self.delta,
            "sparse_method": self.sparse_method,
            "seed": self.seed,
            "sparse_points": points,
            "e0": self.e0,
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        return digest, self.baseline

    def _resolve_e0(self, elements, frames, refs, base) -> dict[str, float]:
        if self.e0 is not None:
            missing = [e for e in elements if e not in self.e0]
            if missing:
                raise ValueError(f"e0 lacks element(s) {missing}")
            return {e: self.e0[e] for e in elements}
        counts, energies = [], []
        for atoms, ref, b in zip(frames, refs, base):
            if ref.energy is None:
                continue
            counts.append([np.count_nonzero(atoms.numbers == atomic_numbers[e]) for e in elements])
            energies.append(ref.energy - (b["energy"] if b else 0.0))
        if not energies:
            raise ValueError("no frame has a reference energy, so e0 must be given")
        e0, *_ = np.linalg.lstsq(np.array(counts, dtype=float), np.array(energies), rcond=None)
        return dict(zip(elements, (float(x) for x in e0)))

    def _default_delta(self, frames, refs, base, e0) -> float:
        per_atom = [
            (ref.energy - (b["energy"] if b else 0.0) - sum(e0[chemical_symbols[z]] for z in a.numbers)) / len(a)
            for a, ref, b in zip(frames, refs, base)
            if ref.energy is not None and len(a)
        ]
        rms = math.sqrt(np.mean(np.square(per_atom))) if per_atom else 1.0
        return rms if rms > 0 else 1.0

    def _select_terms(self, frames, structures, delta_default, progress) -> list[_Term]:
        terms = []
        for d in self.descriptors:
            if isinstance(d, SOAP):
                terms.append(self._soap_term(d, frames, delta_default, progress))
            else:
                terms.append(self._pair_term(d, frames, delta_default))
        return terms

    def _soap_term(self, soap: SOAP, frames, delta_default, progress) -> _Term:
        delta = self.delta if self.delta is not None else delta_default
        if self.sparse_points is not None:
            points, elements = self.sparse_points
            points = np.atleast_2d(np.asarray(points, dtype=np.float64))
            species = np.array([atomic_numbers[_symbol(e)] for e in elements])
            if points.shape != (len(species), soap.n_features):
                raise ValueError(f"sparse_points must be ({len(species)}, {soap.n_features}) vectors")
            order = np.argsort(species, kind="stable")
            return _Term("soap", soap, delta, points[order], species[order], self.zeta)
        # values only (no gradients) of every training atom, grouped by central species
        n_atoms = sum(len(a) for a in frames)
        _memory.ensure_fits(
            8 * 2 * n_atoms * soap.n_features,
            f"the SOAP vectors of the {n_atoms} training atoms ({soap.n_features} features each) "
            "for the sparse point selection",
        )
        values = [soap.compute(a) for a in _progress(frames, progress, "GAP sparse points")]
        numbers = np.concatenate([a.numbers for a in frames])
        values = np.concatenate(values)
        points, species = [], []
        for z in sorted(atomic_numbers[s] for s in soap.species):
            candidates = values[numbers == z]
            if not len(candidates):
                continue
            chosen = select_sparse(candidates, self.n_sparse, self.sparse_method, self.zeta, self.seed)
            points.append(candidates[chosen])
            species.extend([z] * len(chosen))
        if not points:
            raise ValueError("no training atom has a species of the SOAP descriptor")
        return _Term("soap", soap, delta, np.concatenate(points), np.array(species), self.zeta)

    def _pair_term(self, d: Distance2b, frames, delta_default) -> _Term:
        delta = d.delta if d.delta is not None else delta_default
        if d.sparse_points is not None:
            return _Term("distance_2b", d, delta, d.sparse_points)
        from mlpot.neighborlist import neighbor_list

        shortest = d.cutoff
        for a in frames:
            i, j, dist = neighbor_list("ijd", a, d.cutoff)
            if d.species is not None:
                zi, zj = a.numbers[i], a.numbers[j]
                z1, z2 = (atomic_numbers[s] for s in d.species)
                keep = ((zi == z1) & (zj == z2)) | ((zi == z2) & (zj == z1))
                dist = dist[keep]
            if len(dist):
                shortest = min(shortest, float(dist.min()))
        if shortest >= d.cutoff:
            raise ValueError("no training pair lies within the Distance2b cutoff")
        return _Term("distance_2b", d, delta, np.linspace(shortest, d.cutoff, d.n_sparse))

    def _sigma_weight(self, group, kind: str) -> float:
        """The weight 1/sigma of a block of `_frame_blocks` rows: the group's sigma (or
        default_sigma) of that kind; 1 for the rows of frames with absolute sigmas (their
        own sigma is already applied)."""
        if kind in _ABSOLUTE_SIGMAS.values():
            return 1.0
        e, f, v = self.group_sigma.get(group, self.default_sigma)
        return 1.0 / {"energy": e, "forces": f, "virial": v}[kind]

    def _frame_blocks(self, atoms, ref, base, e0, rows) -> dict:
        """One frame's observations as ``{kind: (K, y)}`` before the group sigmas: the
        total energy less e0 and the baseline (eV) and the virial (eV, LAMMPS's sign:
        -stress * volume), both divided by sqrt(N) (so that a per-atom sigma is one
        weight per group, gap_fit's ``sigma_per_atom``), and the forces (eV/Angstrom).
        A kind with an absolute sigma in ``atoms.info`` (see `GAP`) is divided by it
        instead and filed as "energy_sigma", "force_sigma" or "virial_sigma"."""
        n = len(atoms)
        info = atoms.info
        absolute = {kind: _positive(info[key], key) for kind, key in _ABSOLUTE_SIGMAS.items() if key in info}
        observed = {}
        if ref.energy is not None and n:
            energy = ref.energy - sum(e0[chemical_symbols[z]] for z in atoms.numbers)
            energy -= base["energy"] if base else 0.0
            k = np.concatenate([r["energy"] for r in rows])[None, :]
            observed["energy"] = (k, np.array([energy]), math.sqrt(n))
        if ref.forces is not None and n:
            forces = ref.forces - (np.asarray(base["forces"]) if base else 0.0)
            observed["forces"] = (np.hstack([r["forces"] for r in rows]), forces.ravel(), 1.0)
        if ref.stress is not None:
            stress = ref.stress - (np.asarray(base["stress"]) if base else 0.0)
            k = np.hstack([r["virial"] for r in rows])
            observed["virial"] = (k, -stress * atoms.get_volume(), math.sqrt(n))
        blocks = {}
        for kind, (k, y, scale) in observed.items():
            if kind in absolute:
                kind, scale = _ABSOLUTE_SIGMAS[kind], absolute[kind]
            blocks[kind] = (k / scale, y / scale)
        return blocks

    # ---------------------------------------------------------------- prediction

    def predict(self, atoms, variance: bool = False) -> dict:
        """Energy (eV), free_energy, forces (eV/Angstrom), energies (per atom, eV) and, for
        cells periodic in all three directions, stress (eV/Angstrom^3, ASE's sign and Voigt
        order), baseline included.

        With ``variance=True`` also the predicted (posterior) variance of the GP part, an
        extrapolation warning rather than an error bar: it is small for environments like
        the training data and grows toward the prior (delta^2 per SOAP atom) for
        environments unlike any sparse point. Keys: energy_variance (eV^2) and energy_std
        (eV) of the total energy; energies_variance, energies_std per atom (eV^2, eV). The
        per-atom variance is the projected-process (DTC) variance of the local energy,
        k_ii - k_i K_MM^-1 k_i + k_i (K_MM + K_MN Sigma^-1 K_NM)^-1 k_i, as QUIP's
        local_gap_variance (a two-body term adds the rows of an atom's pairs (i, j) and only
        the last part). For the total energy the middle term uses the summed kernel
        row, and the Nystrom residuals k_ii - q_ii are summed over atoms as if independent
        (exact DTC would need all atom pairs, O(N^2)).
        """
        variance = _flag("variance", variance)
        if self._alpha is None:
            raise RuntimeError("the model is not fitted: call fit(frames) first")
        known = sorted(atomic_numbers[e] for e in self._e0_fitted)
        structure = _structure(atoms, known)
        n = len(atoms)
        if variance:  # the kernel rows of every atom, their sum, and the triangular solve
            _memory.ensure_fits(
                8 * 3 * (n + 1) * len(self._alpha),
                f"the GAP variance of {n} atoms ({len(self._alpha)} sparse points)",
            )
        energies = np.array([self._e0_fitted[chemical_symbols[z]] for z in atoms.numbers], dtype=np.float64)
        forces = np.zeros((n, 3))
        virial = np.zeros(6)
        kernels, residual, start = [], np.zeros(n), 0
        for t, lower in zip(self._terms, self._prior_factors):
            a = self._alpha[start : start + t.n_sparse]
            e, f, w, k = t.core.predict(structure, a, variance)
            energies += e
            forces += f
            virial += w
            if variance:
                kernels.append(k)
                if t.kind == "soap":
                    q = scipy.linalg.solve_triangular(lower, k.T, lower=True, check_finite=False)
                    residual += np.maximum(t.delta**2 - (q**2).sum(axis=0), 0.0)
            start += t.n_sparse
        if self.baseline is not None:
            base = self.baseline.predict(atoms)
            energies = energies + np.asarray(base["energies"], dtype=np.float64)
            forces = forces + np.asarray(base["forces"], dtype=np.float64)
        energy = float(energies.sum())
        out = {"energy": energy, "free_energy": energy, "forces": forces, "energies": energies}
        if bool(np.all(atoms.pbc)):
            stress = -virial / atoms.get_volume()
            if self.baseline is not None:
                stress = stress + np.asarray(base["stress"], dtype=np.float64)
            out["stress"] = stress
        if variance:
            k = np.hstack(kernels)  # (n, M): d e_i / d alpha
            rows = np.vstack([k, k.sum(axis=0)])
            s = scipy.linalg.solve_triangular(self._posterior, rows.T, trans="T", check_finite=False)
            explained = (s**2).sum(axis=0)
            local = residual + explained[:n]
            total = residual.sum() + explained[n]
            out["energies_variance"] = local
            out["energies_std"] = np.sqrt(local)
            out["energy_variance"] = float(total)
            out["energy_std"] = math.sqrt(total)
        return out

    def calculator(self, variance: bool = False, **kwargs):
        """An ASE calculator of this model; with ``variance=True`` it also gives the results
        "energy_std" (eV) and "energies_std" (per atom, eV), see `predict`."""
        from mlpot.calculator import MLPotCalculator

        return MLPotCalculator(self, variance=_flag("variance", variance), **kwargs)

    # ------------------------------------------------------------- serialization

    def save(self, path) -> None:
        """Write the model to ``path`` as versioned JSON (read it with `mlpot.load`)."""
        from mlpot import modelfile

        modelfile.save(self, path)

    def to_dict(self) -> dict:
        """The model as plain JSON data: hyperparameters, sparse points, weights, e0, the
        baseline and the triangular factor R of the posterior (for the variance)."""
        from mlpot import modelfile

        if self._alpha is None:
            raise RuntimeError("the model is not fitted: fit it before saving")
        m = len(self._alpha)
        upper = self._posterior[np.triu_indices(m)]
        return {
            "kind": "GAP",
            "terms": self.terms,
            "e0": dict(self._e0_fitted),
            "jitter": self.jitter,
            "settings": {
                "zeta": self.zeta,
                "n_sparse": self.n_sparse,
                "delta": self.delta,
                "sparse_method": self.sparse_method,
                "default_sigma": list(self.default_sigma),
                "group_sigma": {str(g): list(s) for g, s in self.group_sigma.items()},
                "seed": self.seed,
                "e0": self.e0,
            },
            "posterior_factor": upper.tolist(),
            "baseline": modelfile.baseline_to_dict(self.baseline),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "GAP":
        """Inverse of `to_dict`; raises mlpot.ModelFileError naming what is wrong."""
        from mlpot import modelfile

        return modelfile.gap_from_dict(cls, data)

    @classmethod
    def _from_parts(cls, descriptors, settings, terms, alpha, e0, jitter, posterior, baseline):
        model = cls(
            descriptors,
            zeta=settings["zeta"],
            n_sparse=settings["n_sparse"],
            delta=settings["delta"],
            sparse_method=settings["sparse_method"],
            default_sigma=settings["default_sigma"],
            group_sigma=settings["group_sigma"],
            e0=settings["e0"],
            jitter=jitter,
            baseline=baseline,
            seed=settings["seed"],
        )
        model._terms = terms
        model._alpha = alpha
        model._e0_fitted = dict(e0)
        model._posterior = posterior
        model._prior_factors = [_prior_factor(t, jitter) for t in terms]
        return model


def _ensure_solve_fits(terms) -> None:
    """MemoryError before a GAP solve that would not fit: the QR buffer of 2 (n + 1)^2
    floats (batch n + 1), the prior factors kept (n_t^2 per term), one K_MM being
    factorized and the posterior factor (n^2), n the sparse points of all terms."""
    sizes = [t.n_sparse for t in terms]
    n = sum(sizes)
    nbytes = 8 * (2 * (n + 1) ** 2 + sum(m * m for m in sizes) + max(sizes) ** 2 + n * n)
    _memory.ensure_fits(nbytes, f"the GAP solve ({n} sparse points)")


def _prior_factor(term: "_Term", jitter: float) -> np.ndarray:
    """A lower-triangular L with L L^T = K_MM + jitter I of a term: Cholesky in K_MM's own
    memory (n_sparse^2 floats can be 128 MB), or, if K_MM + jitter is numerically singular
    (near-duplicate sparse points), the triangular factor of the QR of the eigenvalue square
    root (eigenvalues clipped at jitter) with a warning."""
    _memory.ensure_fits(8 * 2 * term.n_sparse**2, f"K_MM of a GAP term ({term.n_sparse} sparse points)")
    a = term.prior()
    a[np.diag_indices_from(a)] += jitter
    try:
        # a is symmetric: its transpose is the Fortran-ordered array LAPACK can overwrite
        return scipy.linalg.cholesky(a.T, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        warnings.warn(
            "K_MM + jitter is not positive definite (near-duplicate sparse points?); "
            "clipping its eigenvalues at the jitter",
            stacklevel=3,
        )
        a = term.prior()  # the failed factorization wrote over the first copy
        a[np.diag_indices_from(a)] += jitter
        w, v = np.linalg.eigh(a)
        root = v * np.sqrt(np.maximum(w, max(jitter, 1e-14 * w.max())))
        r = np.linalg.qr(root.T, mode="r")
        r = r * np.sign(np.diag(r))[:, None]
        return r.T
