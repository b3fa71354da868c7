"""The terms of a GAP: a dot-product kernel (Gaussian process) on any per-atom descriptor
(SOAP, the bispectrum, ...) or a squared-exponential kernel on pair distances
(`Distance2b`), each with its sparse points, delta and the Rust kernel that evaluates it;
and the prior covariance K_MM of a term with its factor.

Units: Angstrom, eV; delta in eV, K_MM in eV^2.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg
from ase.data import atomic_numbers, chemical_symbols

from mlpot import _core, _memory
from mlpot.descriptors import _atoms_arrays, _Described, _finite, register_descriptor
from mlpot.models.specs import MAX_SPARSE, Distance2bParams

__all__ = ["MAX_SPARSE", "Distance2b", "Term", "prior_factor", "structure"]

def positive(value, name: str) -> float:
    x = _finite(name, value)
    if x <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return x


def symbol(s) -> str:
    """The element symbol of a symbol or atomic number; ValueError otherwise."""
    if isinstance(s, str) and s in atomic_numbers and s != "X":
        return s
    if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 1 <= s < len(chemical_symbols):
        return chemical_symbols[int(s)]
    raise ValueError(f"unknown element {s!r}")


def structure(atoms, numbers_known: Sequence[int]) -> _core.Structure:
    """The core structure of ``atoms``; ValueError naming elements not in ``numbers_known``."""
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


def switch(r, cutoff, width):
    """QUIP's coordination function (1 inside, cosine switch over the last `width`)."""
    r = np.asarray(r, dtype=np.float64)
    if width == 0:
        return np.where(r < cutoff, 1.0, 0.0)
    s = np.clip((r - cutoff + width) / width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * s))


class Term:
    """One kernel term: its descriptor, sparse points, delta and the Rust kernel. A
    `Distance2b` makes a pair term (sparse distances); any other descriptor a dot-product
    term on its per-atom vectors (sparse vectors with their central atomic numbers, grouped
    in the descriptor's species order)."""

    def __init__(self, descriptor, delta, sparse, sparse_species=None, zeta=None):
        self.kind = descriptor.kind
        self.descriptor = descriptor
        #: a pair term (the local energy of each pair), else a dot-product term per atom
        self.pairwise = isinstance(descriptor, Distance2b)
        self.delta = float(delta)
        self.sparse = np.ascontiguousarray(sparse, dtype=np.float64)
        self.sparse_species = None if sparse_species is None else np.asarray(sparse_species, dtype=np.int64)
        self.zeta = zeta
        if self.pairwise:
            d = descriptor
            pair = None if d.species is None else tuple(atomic_numbers[s] for s in d.species)
            self.core = _core.Term.pair(
                d.cutoff, d.cutoff_transition_width, d.theta, self.delta, self.sparse.tolist(), pair
            )
        else:
            self.core = _core.Term.dot_product(
                descriptor._core, float(zeta), self.delta, self.sparse, [int(z) for z in self.sparse_species]
            )

    @property
    def n_sparse(self) -> int:
        return len(self.sparse)

    def prior(self) -> np.ndarray:
        """K_MM (without jitter)."""
        d2 = self.delta**2
        if not self.pairwise:
            k = self.sparse @ self.sparse.T  # in place from here: n_sparse^2 can be 128 MB
            if float(self.zeta).is_integer():
                np.power(k, self.zeta, out=k)
            else:  # as the Rust kernel: c^zeta is 0 for c <= 0
                np.power(np.maximum(k, 0.0, out=k), self.zeta, out=k)
            k *= d2
            k[self.sparse_species[:, None] != self.sparse_species[None, :]] = 0.0
            return k
        d = self.descriptor
        fc = switch(self.sparse, d.cutoff, d.cutoff_transition_width)
        diff = self.sparse[:, None] - self.sparse[None, :]
        return d2 * np.outer(fc, fc) * np.exp(-0.5 * diff**2 / d.theta**2)


def prior_factor(term: Term, jitter: float) -> np.ndarray:
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
