"""Sparse points of the GAP terms: the selection among training environments (CUR,
farthest points, random) and the sparse distances of a two-body term."""

from __future__ import annotations

import numpy as np
from ase.data import atomic_numbers

from mlpot import _memory
from mlpot.models.base import progress as progress_bar
from mlpot.models.gap.terms import Distance2b, Term, symbol
from mlpot.models.specs import SPARSE_METHODS
from mlpot.neighborlist import neighbor_list

__all__ = ["SPARSE_METHODS", "select_sparse", "select_terms"]

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
    if method not in SPARSE_METHODS:
        raise ValueError(f"sparse_method must be one of {SPARSE_METHODS}, got {method!r}")
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


def select_terms(model, frames, delta_default: float, progress: bool) -> list[Term]:
    """The terms of ``model`` (a GAP) with sparse points chosen from ``frames`` (or given),
    delta the model's or ``delta_default``."""
    terms = []
    for d in model.descriptors:
        if isinstance(d, Distance2b):
            terms.append(_pair_term(d, frames, delta_default))
        else:
            terms.append(_atom_term(model, d, frames, delta_default, progress))
    return terms


def _atom_term(model, descriptor, frames, delta_default: float, progress: bool) -> Term:
    """A dot-product term on a per-atom descriptor, with sparse vectors per central species
    in the descriptor's species order."""
    d = descriptor
    delta = model.delta if model.delta is not None else delta_default
    if model.sparse_points is not None:
        points, elements = model.sparse_points
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        species = np.array([atomic_numbers[symbol(e)] for e in elements])
        if points.shape != (len(species), d.n_features):
            raise ValueError(f"sparse_points must be ({len(species)}, {d.n_features}) vectors")
        rank = {z: k for k, z in enumerate(atomic_numbers[s] for s in d.species)}
        order = np.argsort([rank.get(z, len(rank)) for z in species], kind="stable")
        return Term(d, delta, points[order], species[order], model.zeta)
    # values only (no gradients) of every training atom, grouped by central species
    n_atoms = sum(len(a) for a in frames)
    _memory.ensure_fits(
        8 * 2 * n_atoms * d.n_features,
        f"the descriptor vectors of the {n_atoms} training atoms ({d.n_features} features each) "
        "for the sparse point selection",
    )
    values = [d.compute(a) for a in progress_bar(frames, progress, "GAP sparse points")]
    numbers = np.concatenate([a.numbers for a in frames])
    values = np.concatenate(values)
    points, species = [], []
    for z in (atomic_numbers[s] for s in d.species):
        candidates = values[numbers == z]
        if not len(candidates):
            continue
        chosen = select_sparse(candidates, model.n_sparse, model.sparse_method, model.zeta, model.seed)
        points.append(candidates[chosen])
        species.extend([z] * len(chosen))
    if not points:
        raise ValueError("no training atom has a species of the descriptor")
    return Term(d, delta, np.concatenate(points), np.array(species), model.zeta)


def _pair_term(d: Distance2b, frames, delta_default: float) -> Term:
    delta = d.delta if d.delta is not None else delta_default
    if d.sparse_points is not None:
        return Term(d, delta, d.sparse_points)
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
    return Term(d, delta, np.linspace(shortest, d.cutoff, d.n_sparse))
