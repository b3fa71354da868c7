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

from mlpot import _memory
from mlpot.models.gap.terms import prior_factor, structure

__all__ = ["predict_terms"]


def predict_terms(fitted, jitter: float, atoms, variance: bool):
    """(energies, forces, virial, extras) of the fitted terms and e0 for ``atoms``, baseline
    excluded; extras holds the variances when ``variance``. Units: eV, eV/Angstrom, eV; eV^2
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
    forces = np.zeros((n, 3))
    virial = np.zeros(6)
    kernels, residual, start = [], np.zeros(n), 0
    for k, t in enumerate(fitted.terms):
        a = fitted.alpha[start : start + t.n_sparse]
        e, f, w, rows = t.core.predict(s, a, variance)
        energies += e
        forces += f
        virial += w
        if variance:
            kernels.append(rows)
            if t.kind == "soap":
                lower = fitted.prior_factors[k]
                q = scipy.linalg.solve_triangular(lower, rows.T, lower=True, check_finite=False)
                residual += np.maximum(t.delta**2 - (q**2).sum(axis=0), 0.0)
        start += t.n_sparse
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
