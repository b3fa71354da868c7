"""Neighbor lists with the semantics of ``ase.neighborlist.neighbor_list``, computed by the
Rust core (cell lists, O(N), multithreaded, deterministic order).

Any triclinic cell: the periodic cell vectors are reduced to a compact basis of the same
lattice before the search, so strongly sheared cells (b + 1000 a) cost no more than the
cell they are a shear of, and shifts are reported on the cell as given.

Limits: a periodic cell whose volume is below 1e-10 of the product of its vector lengths is
singular and raises ValueError. A search needing more than 10^6 periodic images of the
(reduced) cell per atom (a cutoff of about 50 lattice-plane spacings in every periodic
direction) raises ValueError instead of running for hours. A list that would not fit in the
memory available (about 55-85 bytes per pair, counted as the pairs are found) raises
MemoryError before memory runs out. Atoms may lie anywhere outside the cell, up to 10^9 cell
lengths away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS

from mlpot import _core

_QUANTITIES = "ijdDS"


def neighbor_list(
    quantities: str,
    atoms: Any,
    cutoff: float | Mapping | Any,
    self_interaction: bool = False,
):
    """All pairs of atoms closer than ``cutoff``, as ``ase.neighborlist.neighbor_list``.

    Parameters
    ----------
    quantities
        Which arrays to return, in order: ``i`` first atom, ``j`` second atom, ``d``
        distance (Angstrom), ``D`` pair vector r_j + S·cell - r_i (Angstrom), ``S`` integer
        lattice translation of j.
    atoms
        An ``ase.Atoms``. Periodic, partly periodic or open; any triclinic cell; atoms may
        lie outside the cell.
    cutoff
        A float (Angstrom); a sequence of per-atom radii (pairs with d < r_i + r_j); or a
        dict ``{(a, b): rc}`` keyed by element symbols or atomic numbers, where pairs not
        listed are never neighbors.
    self_interaction
        Also list each atom as its own neighbor with S = 0 and d = 0.

    Returns
    -------
    One array if ``quantities`` has one letter, else a tuple in the order asked. The list is
    full (each pair appears as (i, j) and (j, i)), sorted by i, and its order is the same
    whatever the number of threads. Integer arrays are int64.
    """
    positions, cell, pbc, numbers = _atoms_arrays(atoms)
    return primitive_neighbor_list(
        quantities, pbc, cell, positions, cutoff, numbers=numbers, self_interaction=self_interaction
    )


def primitive_neighbor_list(
    quantities: str,
    pbc,
    cell,
    positions,
    cutoff: float | Mapping | Any,
    numbers=None,
    self_interaction: bool = False,
):
    """Same as :func:`neighbor_list` from plain arrays, as ASE's function of this name.

    ``cell`` rows are the lattice vectors (Angstrom); vectors along non-periodic directions
    are ignored and may be zero. ``numbers`` (atomic numbers) is needed only for a dict
    cutoff.
    """
    if not isinstance(quantities, str) or not quantities:
        raise ValueError(f"quantities must be a non-empty string of {_QUANTITIES!r}, got {quantities!r}")
    bad = sorted(set(quantities) - set(_QUANTITIES))
    if bad:
        raise ValueError(f"unsupported quantities {bad}: choose from {_QUANTITIES!r}")
    positions = _float_array(positions, "positions")
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3), got {positions.shape}")
    n_atoms = len(positions)
    cell = _float_array(cell, "cell")
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
    pbc = np.asarray(pbc, dtype=bool)
    if pbc.shape != (3,):  # broadcast_to alone costs as much as the list of a small cell
        pbc = np.broadcast_to(pbc, (3,))
    if numbers is None:
        numbers = np.zeros(n_atoms, dtype=np.int64)
    else:
        numbers = np.ascontiguousarray(numbers, dtype=np.int64)
        if numbers.shape != (n_atoms,):
            raise ValueError(f"numbers must have shape ({n_atoms},), got {numbers.shape}")

    kwargs = _cutoff_arguments(cutoff, numbers, n_atoms)
    arrays = _core.neighbor_list(
        positions,
        cell,
        pbc.tolist(),
        numbers,
        quantities,
        self_interaction=bool(self_interaction),
        **kwargs,
    )
    result = tuple(arrays[q] for q in quantities)
    return result[0] if len(result) == 1 else result


def _atoms_arrays(atoms):
    try:
        return atoms.positions, atoms.cell.array, atoms.pbc, atoms.numbers
    except AttributeError:
        raise TypeError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}") from None


def _float_array(x, name: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an array of numbers: {e}") from None


def _atomic_number(key) -> int:
    if isinstance(key, str):
        if key not in _ATOMIC_NUMBERS:
            raise ValueError(f"unknown element symbol {key!r} in the cutoff dict")
        return _ATOMIC_NUMBERS[key]
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key <= 118:
        return int(key)
    raise ValueError(f"cutoff dict keys must be element symbols or atomic numbers, got {key!r}")


def _cutoff_arguments(cutoff, numbers: np.ndarray, n_atoms: int) -> dict:
    """Translate ASE's three cutoff forms into the core's keyword arguments."""
    if isinstance(cutoff, Mapping):
        if not cutoff:
            raise ValueError("the cutoff dict is empty")
        species, types = np.unique(numbers, return_inverse=True)
        index = {int(z): t for t, z in enumerate(species)}
        table = np.zeros((len(species), len(species)))
        # later entries override earlier ones for the same pair, as in ASE
        for pair, rc in cutoff.items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"cutoff dict keys must be pairs of elements, got {pair!r}")
            za, zb = (_atomic_number(k) for k in pair)
            rc = _positive_cutoff(rc, f"cutoff for pair {pair}")
            if za in index and zb in index:
                table[index[za], index[zb]] = table[index[zb], index[za]] = rc
        if max(_positive_cutoff(v, "cutoff") for v in cutoff.values()) <= 0:
            raise ValueError("every cutoff in the dict is zero")
        return {"pair_types": types.astype(np.int64), "pair_table": table}
    if np.isscalar(cutoff) or np.ndim(cutoff) == 0:
        rc = _positive_cutoff(cutoff, "cutoff")
        if not rc > 0:
            raise ValueError(f"cutoff must be positive, got {rc}")
        return {"cutoff": rc}
    radii = _float_array(cutoff, "cutoff radii")
    if radii.shape != (n_atoms,):
        raise ValueError(f"per-atom cutoff radii must have shape ({n_atoms},), got {radii.shape}")
    return {"radii": radii}


def _positive_cutoff(value, what: str) -> float:
    try:
        rc = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number of Angstrom, got {value!r}") from None
    if not np.isfinite(rc) or rc < 0:
        raise ValueError(f"{what} must be finite and positive (Angstrom), got {value!r}")
    return rc
