"""Prediction of a fitted GAP: energies, forces and virial of its terms, and the
posterior variance.

The per-atom variance is the projected-process (DTC) variance of the local energy,
k_ii - k_i K_MM^-1 k_i + k_i (K_MM + K_MN Sigma^-1 K_NM)^-1 k_i, as QUIP's
local_gap_variance (a two-body term adds the rows of an atom's pairs (i, j) and only the
last part). For the total energy the middle term uses the summed kernel row, and the
Nystrom residuals k_ii - q_ii are summed over atoms as if independent (exact DTC would need
all atom pairs, O(N^2)).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
from ase.data import atomic_numbers, chemical_symbols

from mlpot import _core, _memory
from mlpot.models.gap.terms import prior_factor, structure

__all__ = ["predict_terms"]


def predict_terms(fitted, jitter: float, atoms, variance: bool, fixed=()):
    """(energies, forces, virial, extras) of the fitted terms and e0 for ``atoms``, with
    the fixed core terms ``fixed`` (a baseline) from the same neighbor list; extras holds the variances when ``variance``. Units: eV, eV/Angstrom, eV; eV^2
    for variances. ``fitted`` (a `Fitted`) gets its prior factors if it has none yet."""
    known = sorted(atomic_numbers[e] for e in fitted.e0)
    s = structure(atoms, known)
    n = len(atoms)
    if variance and not fitted.has_posterior:
        raise ValueError("this GAP was saved without its posterior factor (save(path, variance=False)): "
                         "it predicts no variance")
    if variance:  # the kernel rows of every atom, their sum, and the triangular solve
        _memory.ensure_fits(
            8 * 3 * (n + 1) * len(fitted.alpha),
            f"the GAP variance of {n} atoms ({len(fitted.alpha)} sparse points)",
        )
        if fitted.prior_factors is None:  # a loaded model: factorized on first use
            fitted.prior_factors = [prior_factor(t, jitter) for t in fitted.terms]
    energies = np.array([fitted.e0[chemical_symbols[z]] for z in atoms.numbers], dtype=np.float64)
    bounds = np.cumsum([0] + [t.n_sparse for t in fitted.terms])
    alphas = [fitted.alpha[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    # one neighbor list for all terms, at the largest cutoff
    cores = [t.core for t in fitted.terms] + list(fixed)
    alphas += [np.zeros(0)] * len(fixed)
    e, forces, virial, kernels = _core.predict_terms(cores, s, alphas, variance)
    kernels = kernels[: len(fitted.terms)]
    energies += e
    residual = np.zeros(n)
    if variance:
        for k, (t, rows) in enumerate(zip(fitted.terms, kernels)):
            if not t.pairwise:  # the Nystrom residual of a per-atom kernel
                lower = fitted.prior_factors[k]
                q = scipy.linalg.solve_triangular(lower, rows.T, lower=True, check_finite=False)
                residual += np.maximum(t.delta**2 - (q**2).sum(axis=0), 0.0)
    extras = _variances(fitted.posterior_factor(), kernels, residual) if variance else {}
    return energies, forces, virial, extras


def _variances(posterior: np.ndarray, kernels: list, residual: np.ndarray) -> dict:
    n = len(residual)
    k = np.hstack(kernels)  # (n, M): d e_i / d alpha
    rows = np.vstack([k, k.sum(axis=0)])
    s = scipy.linalg.solve_triangular(posterior, rows.T, trans="T", check_finite=False)
    explained = (s**2).sum(axis=0)
    local = residual + explained[:n]
    total = residual.sum() + explained[n]
    return {
        "energies_variance": local,
        "energies_std": np.sqrt(local),
        "energy_variance": float(total),
        "energy_std": math.sqrt(total),
    }
