"""Fitting a GAP: the stages a fit passes once each, in order.

references (checked frames) -> structures -> e0 and the default delta -> terms (sparse
points) -> kernel rows of each frame, weighted by the noise sigmas -> streamed QR
accumulator with the prior rows -> triangular solve for alpha and the posterior factor.

The weights are the sparse-GP (DTC/projected-process) mean

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
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from ase.data import atomic_numbers, chemical_symbols

from mlpot import _core, _memory
from mlpot.models import lstsq, training
from mlpot.models.base import progress as progress_bar
from mlpot.models.gap.sparse import select_terms
from mlpot.models.gap.terms import Distance2b, Term, positive, prior_factor, structure, symbol
from mlpot.models.parts import descriptor_body
from mlpot.models.system import GAPSystem, part_labels

__all__ = ["Fitted", "assemble", "fit_frames", "fit_system", "signature"]

#: Row kinds and the atoms.info key of a per-frame absolute sigma of that kind.
ABSOLUTE_SIGMAS = {"energy": "energy_sigma", "forces": "force_sigma", "virial": "virial_sigma"}


@dataclass
class Fitted:
    """What a fit determines: the terms, all weights alpha (terms in order), e0 (eV), the
    posterior factor R (R^T R = K_MM + K_MN Sigma^-1 K_NM, upper triangular; None for a
    model saved without it, which predicts no variance) and the prior factors L of each term
    (None: computed when first needed)."""

    terms: list
    alpha: np.ndarray
    e0: dict
    posterior: np.ndarray | None
    prior_factors: list | None
    #: the upper triangle of R row by row, as a file holds it: unpacked on first use
    packed_posterior: np.ndarray | None = None

    @property
    def has_posterior(self) -> bool:
        return self.posterior is not None or self.packed_posterior is not None

    def posterior_factor(self) -> np.ndarray | None:
        """R (unpacked from the file's triangle when first asked for)."""
        if self.posterior is None and self.packed_posterior is not None:
            self.posterior = unpack_upper(self.packed_posterior, len(self.alpha))
        return self.posterior

    def packed_posterior_factor(self) -> np.ndarray | None:
        if self.packed_posterior is None and self.posterior is not None:
            return pack_upper(self.posterior)
        return self.packed_posterior


def pack_upper(r: np.ndarray) -> np.ndarray:
    """The upper triangle of a square matrix, row by row (as r[np.triu_indices(m)], at a
    fraction of the time and memory of the index arrays)."""
    return np.concatenate([r[i, i:] for i in range(len(r))]) if len(r) else np.zeros(0)


def unpack_upper(upper: np.ndarray, m: int) -> np.ndarray:
    """The m x m upper-triangular matrix whose upper triangle `pack_upper` gave."""
    r = np.zeros((m, m))
    start = 0
    for i in range(m):
        r[i, i:] = upper[start : start + m - i]
        start += m - i
    return r


def packed_diagonal(upper: np.ndarray, m: int) -> np.ndarray:
    """The diagonal of the matrix `unpack_upper` would give, without unpacking it."""
    i = np.arange(m)
    return upper[i * m - i * (i - 1) // 2]


@dataclass
class TrainingData:
    """Checked training frames with what the kernel rows need."""

    frames: list
    refs: list
    structures: list
    base: list
    e0: dict
    terms: list


# ------------------------------------------------------------------ the pipelines


def fit_frames(model, frames, progress: bool) -> Fitted:
    """The fit of ``model`` (a GAP, its settings) to ``frames``."""
    data = prepare(model, frames, progress)
    _ensure_solve_fits(data.terms)
    _warn_unused_groups(model, {a.info.get("group") for a in data.frames})
    n_columns = sum(t.n_sparse for t in data.terms)
    # batch = n_columns + 1 rows: a buffer of 2 (n + 1)^2 floats (256 MB at n_sparse
    # 4000) rather than the default 3 (n + 1)^2, for about 15 % more factorization work
    accumulator = lstsq.QRAccumulator(n_columns, batch=n_columns + 1)
    for group, blocks in observation_blocks(data, progress, "GAP fit"):
        if blocks:
            weights = [sigma_weight(model, group, kind) for kind in blocks]
            accumulator.add(
                np.vstack([w * a for w, (a, _) in zip(weights, blocks.values())]),
                np.concatenate([w * y for w, (_, y) in zip(weights, blocks.values())]),
            )
    if accumulator.n_rows == 0:
        raise ValueError("no observations: every reference was missing")
    return solve(accumulator, data.terms, data.e0, model.jitter)


def assemble(model, frames, progress: bool, parts=None, keep_rows: bool = False):
    """The unweighted observations of ``frames`` reduced per (group, kind) (`GAP.assemble`);
    with ``parts`` (a label per frame) one system per label, all with the sparse points,
    e0 and deltas of all the frames."""
    frames, labels, n_parts = part_labels(frames, parts)
    data = prepare(model, frames, progress)
    n_columns = sum(t.n_sparse for t in data.terms)
    _memory.ensure_fits(
        8 * ((n_columns + 1) ** 2 + (n_columns + 257) * (n_columns + 1)),
        f"the GAP observation factors ({n_columns} sparse points)",
    )
    # a small QR batch: one buffer per (group, kind) is open while frames are added
    systems = [
        GAPSystem(n_columns, signature(model), data.terms, data.e0, batch=256, keep_rows=keep_rows)
        for _ in range(n_parts)
    ]
    observations = observation_blocks(data, progress, "GAP assemble")
    for k, ((group, blocks), atoms) in enumerate(zip(observations, data.frames)):
        n = max(len(atoms), 1)
        # energy rows are E / sqrt(N): residual / sqrt(N) is the error per atom; virial rows
        # are W / sqrt(N): residual sqrt(N) / V is the stress error
        to_unit = {"energy": 1.0 / math.sqrt(n)}
        if "virial" in blocks:
            to_unit["virial"] = math.sqrt(n) / atoms.get_volume()
        systems[labels[k] if parts is not None else 0].add_frame(group, blocks, atoms.numbers, to_unit)
    for system in systems:
        system.finish()
    if not any(s.n_rows(g, k) for s in systems for g in s.groups for k in s.kinds):
        raise ValueError("no observations: every reference was missing")
    return systems if parts is not None else systems[0]


def fit_system(model, system: GAPSystem) -> Fitted:
    """The fit of ``model`` from the factors of an assembled `GAPSystem`, with the model's
    current sigmas and jitter."""
    if system.signature != signature(model):
        raise ValueError(
            "the GAPSystem was assembled by a model with other descriptors, zeta, n_sparse, "
            "delta, sparse_method, seed, sparse_points, e0 or baseline; only default_sigma, "
            "group_sigma and jitter may differ"
        )
    _ensure_solve_fits(system.terms)
    _warn_unused_groups(model, set(system.groups))
    n_columns = system.n_columns
    accumulator = lstsq.QRAccumulator(n_columns, batch=n_columns + 1)
    for _, _, w, factor in system.weighted_factors(lambda group, kind: sigma_weight(model, group, kind)):
        accumulator.add(w * factor[:, :-1], w * factor[:, -1])
    return solve(accumulator, system.terms, system.e0, model.jitter)


def signature(model) -> tuple:
    """What a GAPSystem's rows depend on: every setting except the sigmas and the
    jitter (a digest of them), and the baseline."""
    descriptors = []
    for d in model.descriptors:
        if isinstance(d, Distance2b):
            points = None if d.sparse_points is None else d.sparse_points.tolist()
            descriptors.append({"distance_2b": d.to_dict(), "sparse_points": points})
        else:
            descriptors.append({d.kind: descriptor_body(d)})
    points = None
    if model.sparse_points is not None:
        x, elements = model.sparse_points
        points = [np.asarray(x, dtype=np.float64).tolist(), [str(symbol(e)) for e in elements]]
    settings = {
        "descriptors": descriptors,
        "zeta": model.zeta,
        "n_sparse": model.n_sparse,
        "delta": model.delta,
        "sparse_method": model.sparse_method,
        "seed": model.seed,
        "sparse_points": points,
        "e0": model.e0,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return digest, model.baseline


# ---------------------------------------------------------------------- stages


def prepare(model, frames, progress: bool) -> TrainingData:
    """Checks the frames (references, structures), resolves e0 and the default delta,
    selects the sparse points."""
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
        raise TypeError("frames must be an iterable of ase.Atoms")
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to fit")
    elements = model.species or tuple(
        chemical_symbols[z] for z in np.unique(np.concatenate([a.numbers for a in frames]))
    )
    known = sorted(atomic_numbers[e] for e in elements)
    refs, structures = [], []
    for k, atoms in enumerate(frames):
        where, ref = training.frame_reference(k, atoms)
        try:
            structures.append(structure(atoms, known))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        refs.append(ref)
    base = [model.baseline.predict(a) if model.baseline is not None else None for a in frames]
    e0 = _resolve_e0(model.e0, elements, frames, refs, base)
    delta_default = _default_delta(frames, refs, base, e0)
    terms = select_terms(model, frames, delta_default, progress)
    return TrainingData(frames, refs, structures, base, e0, terms)


def _resolve_e0(given, elements, frames, refs, base) -> dict[str, float]:
    if given is not None:
        missing = [e for e in elements if e not in given]
        if missing:
            raise ValueError(f"e0 lacks element(s) {missing}")
        return {e: given[e] for e in elements}
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


def _default_delta(frames, refs, base, e0) -> float:
    per_atom = [
        (ref.energy - (b["energy"] if b else 0.0) - sum(e0[chemical_symbols[z]] for z in a.numbers)) / len(a)
        for a, ref, b in zip(frames, refs, base)
        if ref.energy is not None and len(a)
    ]
    rms = math.sqrt(np.mean(np.square(per_atom))) if per_atom else 1.0
    return rms if rms > 0 else 1.0


def _warn_unused_groups(model, groups) -> None:
    unused = [g for g in model.group_sigma if g not in groups]
    if unused:
        warnings.warn(f"group_sigma names group(s) {unused} that no frame belongs to", stacklevel=4)


def observation_blocks(data: TrainingData, progress: bool, desc: str):
    """(group, `frame_blocks`) of each frame, its kernel rows computed on the fly."""
    for k in progress_bar(range(len(data.frames)), progress, desc):
        # one neighbor list for all terms, at the largest cutoff
        rows = _core.rows_terms([t.core for t in data.terms], data.structures[k])
        atoms = data.frames[k]
        blocks = frame_blocks(atoms, data.refs[k], data.base[k], data.e0, rows)
        yield atoms.info.get("group"), blocks


def sigma_weight(model, group, kind: str) -> float:
    """The weight 1/sigma of a block of `frame_blocks` rows: the group's sigma (or
    default_sigma) of that kind; 1 for the rows of frames with absolute sigmas (their
    own sigma is already applied)."""
    return weight_of_sigmas(model.default_sigma, model.group_sigma, group, kind)


def weight_of_sigmas(default_sigma, group_sigma, group, kind: str) -> float:
    """`sigma_weight` for given sigmas."""
    if kind in ABSOLUTE_SIGMAS.values():
        return 1.0
    e, f, v = group_sigma.get(group, default_sigma)
    return 1.0 / {"energy": e, "forces": f, "virial": v}[kind]


def frame_blocks(atoms, ref, base, e0, rows) -> dict:
    """One frame's observations as ``{kind: (K, y)}`` before the group sigmas: the
    total energy less e0 and the baseline (eV) and the virial (eV, LAMMPS's sign:
    -stress * volume), both divided by sqrt(N) (so that a per-atom sigma is one
    weight per group, gap_fit's ``sigma_per_atom``), and the forces (eV/Angstrom).
    A kind with an absolute sigma in ``atoms.info`` (see `GAP`) is divided by it
    instead and filed as "energy_sigma", "force_sigma" or "virial_sigma"."""
    n = len(atoms)
    info = atoms.info
    absolute = {kind: positive(info[key], key) for kind, key in ABSOLUTE_SIGMAS.items() if key in info}
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
            kind, scale = ABSOLUTE_SIGMAS[kind], absolute[kind]
        blocks[kind] = (k / scale, y / scale)
    return blocks


def _ensure_solve_fits(terms) -> None:
    """MemoryError before a GAP solve that would not fit: the QR buffer of 2 (n + 1)^2
    floats (batch n + 1), the prior factors kept (n_t^2 per term), one K_MM being
    factorized and the posterior factor (n^2), n the sparse points of all terms."""
    sizes = [t.n_sparse for t in terms]
    n = sum(sizes)
    nbytes = 8 * (2 * (n + 1) ** 2 + sum(m * m for m in sizes) + max(sizes) ** 2 + n * n)
    _memory.ensure_fits(nbytes, f"the GAP solve ({n} sparse points)")


def solve(accumulator: lstsq.QRAccumulator, terms: list[Term], e0: dict, jitter: float) -> Fitted:
    """Adds the prior rows to the observations' rows Sigma^-1/2 [K_NM | y] in
    ``accumulator``, solves for alpha and keeps the posterior factor."""
    n_columns = accumulator.n_columns
    # the prior: rows L^T with K_MM + jitter = L L^T, block diagonal over terms, added a
    # few hundred rows at a time so that no second n x n copy of L^T exists
    factors, start = [], 0
    for t in terms:
        lower = prior_factor(t, jitter)
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
    return Fitted(terms, alpha, dict(e0), posterior, factors)
