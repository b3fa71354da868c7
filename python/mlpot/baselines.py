"""Fixed reference potentials (baselines) for Delta-learning.

A baseline is subtracted from the reference energies, forces and stresses before a model is
fitted and added back in prediction, as FitSNAP does with a LAMMPS reference potential (its
Ta example uses ``pair_style zbl 4.0 4.8``). Every baseline has ``predict(atoms)`` and a
JSON-able ``to_dict()`` with a ``"kind"`` field; :func:`baseline_from_dict` inverts it.

Units: eV, Angstrom, eV/Angstrom; stress in eV/Angstrom^3 with ASE's sign and Voigt order
(xx, yy, zz, yz, xz, xy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpot import _core
from mlpot.neighborlist import _atoms_arrays
from mlpot.params import ParameterValueError, Real, Spec, param

__all__ = ["ZBL", "ZBLParams", "baseline_from_dict"]


@dataclass(frozen=True, kw_only=True)
class ZBLParams(Spec):
    """The parameters of `ZBL` (LAMMPS ``pair_style zbl inner outer``), checked."""

    kind = "zbl"

    inner: float = param(Real(0.0, low_open=True), doc="distance where the switching starts, Angstrom")
    outer: float = param(Real(0.0, low_open=True), doc="cutoff, Angstrom; > inner")

    def _relations(self):
        if self.outer <= self.inner:
            raise ParameterValueError("outer", f"must be larger than inner = {self.inner}", self.outer)


class ZBL:
    """The Ziegler-Biersack-Littmark screened nuclear repulsion, identical to LAMMPS
    ``pair_style zbl inner outer`` with ``pair_coeff`` Z = the atomic number of each element.

    J. F. Ziegler, J. P. Biersack and U. Littmark, *The Stopping and Range of Ions in Solids*
    (Pergamon, New York, 1985).

    For two atoms at distance r (Angstrom) with atomic numbers Z_i, Z_j::

        E(r) = k_e Z_i Z_j / r * phi(r / a) + S(r)         (eV)
        a = 0.46850 / (Z_i^0.23 + Z_j^0.23)                 (Angstrom)
        phi(x) = 0.18175 exp(-3.19980 x) + 0.50986 exp(-0.94229 x)
               + 0.28022 exp(-0.40290 x) + 0.02817 exp(-0.20162 x)

    with k_e = e^2 / (4 pi epsilon_0) = 14.399645 eV Angstrom (LAMMPS metal units). S(r) is
    the switching function of LAMMPS ``pair_style lj/gromacs``: a constant for r <= inner,
    a quartic polynomial in r - inner up to ``outer``, chosen so that the energy, the force
    and the curvature go continuously to zero at ``outer``. Pairs at r >= outer do not
    interact. The energy is a sum over pairs; each atom's share is half of each of its pairs.

    Parameters
    ----------
    inner
        Distance where the switching starts, Angstrom; > 0.
    outer
        Cutoff where energy, force and curvature reach zero, Angstrom; > inner.
    """

    kind = "zbl"

    def __init__(self, inner: float, outer: float):
        self.params = ZBLParams(inner=inner, outer=outer)
        inner, outer = self.params.inner, self.params.outer
        self._core = _core.ZBL(inner, outer)  # raises ValueError unless 0 < inner < outer
        #: the same repulsion as a fixed model term: a model evaluates it with its own terms
        #: from one neighbor list (`mlpot.models.base.Model.predict`)
        self.term = _core.Term.zbl(inner, outer)
        self._inner = inner
        self._outer = outer

    @property
    def inner(self) -> float:
        """Start of the switching region, Angstrom."""
        return self._inner

    @property
    def outer(self) -> float:
        """Cutoff, Angstrom."""
        return self._outer

    @property
    def cutoff(self) -> float:
        """Largest interacting distance (= outer), Angstrom."""
        return self._outer

    def predict(self, atoms) -> dict:
        """Energy and its derivatives for ``atoms`` (an ``ase.Atoms``).

        Returns a dict with ``energy`` and ``free_energy`` (float, eV), ``energies``
        ((n_atoms,) eV per atom), ``forces`` ((n_atoms, 3) eV/Angstrom) and, only when the
        cell is periodic in all three directions, ``stress`` ((6,) eV/Angstrom^3, ASE's sign
        and Voigt order xx, yy, zz, yz, xz, xy). Raises ValueError for non-finite positions, a
        degenerate periodic cell or two atoms at the same position.
        """
        positions, cell, pbc, numbers = _atoms_arrays(atoms)
        structure = _core.Structure(
            np.ascontiguousarray(positions, dtype=np.float64),
            np.ascontiguousarray(cell, dtype=np.float64),
            [bool(p) for p in pbc],
            np.ascontiguousarray(numbers, dtype=np.int64),
        )
        energies, forces, virials = self._core.compute(structure)
        energy = float(energies.sum())
        out = {"energy": energy, "free_energy": energy, "energies": energies, "forces": forces}
        if all(pbc):
            volume = abs(np.linalg.det(cell))
            out["stress"] = -virials.sum(axis=0) / volume
        return out

    def to_dict(self) -> dict:
        """A JSON-able description; ``ZBL.from_dict(zbl.to_dict()) == zbl`` exactly."""
        return {"kind": self.kind, **self.params.to_dict()}

    @classmethod
    def from_dict(cls, d) -> ZBL:
        """The ZBL described by ``d`` (the output of :meth:`to_dict`)."""
        if not isinstance(d, dict):
            raise TypeError(f"a ZBL description must be a dict, got {type(d).__name__}")
        if d.get("kind") != cls.kind:
            raise ValueError(f"not a ZBL description: kind is {d.get('kind')!r}, expected 'zbl'")
        expected = {"kind", *(f.name for f in ZBLParams.parameters())}
        if set(d) != expected:
            raise ValueError(
                f"a ZBL description has the keys {sorted(expected)}, got {sorted(d)}"
            )
        params = ZBLParams.from_dict({k: v for k, v in d.items() if k != "kind"})
        return cls(**params.values())

    def __eq__(self, other) -> bool:
        if not isinstance(other, ZBL):
            return NotImplemented
        return (self._inner, self._outer) == (other._inner, other._outer)

    def __hash__(self) -> int:
        return hash((self.kind, self._inner, self._outer))

    def __repr__(self) -> str:
        return f"ZBL(inner={self._inner!r}, outer={self._outer!r})"


_KINDS = {ZBL.kind: ZBL}


def baseline_from_dict(d):
    """The baseline described by ``d`` (any baseline's ``to_dict()``), chosen by its kind."""
    if not isinstance(d, dict):
        raise TypeError(f"a baseline description must be a dict, got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown baseline kind {kind!r}: known kinds are {sorted(_KINDS)}")
    return _KINDS[kind].from_dict(d)
