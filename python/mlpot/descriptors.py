"""Descriptors of atomic environments: thin classes around the Rust core.

Units: positions and cutoffs in Angstrom; derivatives of a descriptor in (its units) per
Angstrom.

Two atoms closer than 1e-10 Angstrom (coincident, directly or through a periodic image) are a
ValueError naming them and the lattice shift: every descriptor is singular there. Work that
would not fit in the available memory is a MemoryError saying what and how many GB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS
from ase.data import chemical_symbols as _SYMBOLS

from mlpot import _core
from mlpot.neighborlist import _atoms_arrays
from mlpot.params import (
    Elements, Flag, Integer, Optional, ParameterValueError, PerElement, Real, Spec, param, show,
)

__all__ = [
    "DESCRIPTORS",
    "Bispectrum",
    "BispectrumGradients",
    "BispectrumParams",
    "SOAP",
    "SOAPGradients",
    "SOAPParams",
    "descriptor_from_dict",
    "descriptor_to_dict",
    "register_descriptor",
]

# Bounds of the size-controlling hyperparameters, the same as the Rust core's (which checks
# them again): checked here first so that a huge Python integer is a ValueError naming the
# parameter, not an OverflowError of the conversion.
#: twojmax: the Z tables grow as twojmax^5; LAMMPS fits use twojmax <= 16 (bispectrum::MAX_TWOJMAX).
MAX_TWOJMAX = 24
#: n_max: fits use <= 12 and the GTO basis is numerically singular near 30 (soap::MAX_N_MAX).
MAX_N_MAX = 64
#: l_max: the spherical-harmonics tables grow as l_max^2; fits use <= 12 (soap::MAX_L_MAX).
MAX_L_MAX = 30


_BISPECTRUM_FLAGS = ("switchflag", "bzeroflag", "chemflag", "bnormflag", "wselfallflag")


@dataclass(frozen=True, kw_only=True)
class BispectrumParams(Spec):
    """The parameters of `Bispectrum` (LAMMPS ``compute sna/atom`` keywords), checked."""

    kind = "bispectrum"

    twojmax: int = param(Integer(0, MAX_TWOJMAX, even=True), doc="band limit 2 J_max")
    rcutfac: float = param(Real(0.0, low_open=True), doc="scale of the pair cutoffs rcutfac (R_i + R_j)")
    rfac0: float = param(Real(0.0, 1.0, low_open=True), 0.99363, doc="distance-to-angle conversion factor")
    rmin0: float = param(Real(0.0), 0.0, doc="inner distance of the angle conversion, Angstrom")
    radelem: dict = param(PerElement(Real(0.0, low_open=True)), doc="radius R by element, Angstrom")
    wj: dict | None = param(Optional(PerElement()), None, doc="neighbor weight by element (default 1.0)")
    switchflag: bool = param(Flag(), True, doc="switch neighbor contributions smoothly to zero at the cutoff")
    bzeroflag: bool = param(Flag(), False, doc="subtract the bispectrum of an isolated atom")
    chemflag: bool = param(Flag(), False, doc="explicit multi-element bispectrum (n_elements^3 blocks)")
    bnormflag: bool = param(Flag(), False, doc="divide B_{j1 j2 j} by j + 1")
    wselfallflag: bool = param(Flag(), False, doc="self contribution to the density of every element")

    def _relations(self):
        species = list(self.radelem)
        if self.wj is None:
            object.__setattr__(self, "wj", dict.fromkeys(species, 1.0))
        missing = [e for e in species if e not in self.wj]
        if missing:
            raise ParameterValueError("wj", "", message=f"element(s) {missing} have a radelem but no wj")
        extra = [e for e in self.wj if e not in species]
        if extra:
            raise ParameterValueError("wj", "", message=f"element(s) {extra} have a wj but no radelem")
        object.__setattr__(self, "wj", {e: self.wj[e] for e in species})  # the order of radelem
        smallest = 2 * self.rcutfac * min(self.radelem.values())
        if self.rmin0 >= smallest:
            raise ParameterValueError(
                "rmin0", "", self.rmin0,
                f"rmin0 = {self.rmin0} must be smaller than every pair cutoff rcutfac * (R_i + R_j); "
                f"the smallest is {smallest}",
            )


@dataclass(frozen=True, kw_only=True)
class SOAPParams(Spec):
    """The parameters of `SOAP`, checked."""

    kind = "soap"

    cutoff: float = param(Real(0.0, low_open=True), 5.0, doc="radius of the environment, Angstrom")
    n_max: int = param(Integer(1, MAX_N_MAX), 8, doc="number of radial basis functions")
    l_max: int = param(Integer(0, MAX_L_MAX), 8, doc="largest angular channel")
    atom_sigma: float = param(Real(0.0, low_open=True), 0.5, doc="width of the Gaussian on each atom, Angstrom")
    cutoff_transition_width: float = param(
        Real(0.0), 0.5, doc="width of the smooth switch-off below the cutoff, Angstrom, < cutoff"
    )
    species: tuple = param(Elements(), doc="the elements the descriptor knows")
    center_atom_weight: float = param(Real(), 1.0, doc="weight of the central atom's own Gaussian")
    normalize: bool = param(Flag(), False, doc="divide each atom's vector by its norm", config=False)

    def _relations(self):
        if self.cutoff_transition_width >= self.cutoff:
            raise ParameterValueError(
                "cutoff_transition_width", f"must be in [0, cutoff) = [0, {self.cutoff})",
                self.cutoff_transition_width,
            )


@dataclass(frozen=True)
class BispectrumGradients:
    """Derivatives of the per-atom bispectrum, sparse in neighbors.

    Row ``k`` is dB_i/dr_j with ``i = centers[k]`` and ``j = neighbors[k]``: the rows of
    atom i are the distinct atoms within its cutoffs and i itself (sorted by j); periodic
    images of one atom are summed into its row, since moving an atom moves its images.
    """

    #: (n_rows,) int64: the atom i whose descriptors are differentiated.
    centers: np.ndarray
    #: (n_rows,) int64: the atom j whose position they are differentiated by.
    neighbors: np.ndarray
    #: (n_rows, 3, n_features) float64: dB_i/dr_j, 1/Angstrom.
    values: np.ndarray
    #: (n_atoms, 6, n_features) float64: per-atom virial of B_i in Voigt order (xx, yy, zz,
    #: yz, xz, xy), W_i[ab] = -sum_j (dB_i/dr_ij)_a (r_ij)_b. Summed over the atoms of one
    #: element it is LAMMPS ``compute snav/atom`` summed over atoms; the stress of a model
    #: E = sum_i beta_i . B_i is -sum_i beta_i . W_i / volume (ASE's sign).
    virial: np.ndarray


class _Described:
    """The model-file side of a descriptor: ``params`` (its checked spec), ``to_dict()`` and
    ``from_dict()``. A class sets ``kind`` and ``Params`` and takes the spec's fields as
    constructor keywords."""

    kind: str
    Params: type
    #: one vector per atom, summed into the energy by a model (a linear model or a
    #: dot-product kernel takes any such descriptor); False for a pair term (Distance2b)
    per_atom: bool = False

    @classmethod
    def can_normalize(cls) -> bool:
        """Whether the descriptor offers unit-length vectors (its spec has ``normalize``),
        as a dot-product kernel of normalised vectors (GAP) wants them."""
        return any(f.name == "normalize" for f in cls.Params.parameters())

    def to_dict(self) -> dict:
        """The parameters as JSON-able data (every field: a later change of a default does
        not change a saved descriptor); ``type(d).from_dict(d.to_dict())`` is ``d``."""
        return self.params.to_dict()

    @classmethod
    def from_dict(cls, data, path: str = ""):
        """The descriptor of `to_dict`'s data; strict about JSON types, the errors name the
        field by its path (``path.field``)."""
        return cls(**cls.Params.from_dict(data, path).values())


#: The descriptor classes by kind, for model files and configurations (`register_descriptor`).
DESCRIPTORS: dict[str, type] = {}


def register_descriptor(cls):
    """Class decorator: make ``cls`` (a `_Described`) known by its ``kind``."""
    if cls.kind in DESCRIPTORS and DESCRIPTORS[cls.kind] is not cls:
        raise ValueError(f"a descriptor of kind {cls.kind!r} is already registered")
    DESCRIPTORS[cls.kind] = cls
    return cls


def descriptor_to_dict(descriptor) -> dict:
    """``{"kind": ..., "params": {...}}``: any registered descriptor, for a model file."""
    return {"kind": descriptor.kind, "params": descriptor.to_dict()}


def descriptor_from_dict(data, path: str = "descriptor"):
    """The descriptor of `descriptor_to_dict`'s data, chosen by its kind. ValueError or
    TypeError naming the field by its path."""
    if not isinstance(data, Mapping) or set(data) != {"kind", "params"}:
        raise ValueError(f"{path}: must be a JSON object with the fields kind and params")
    cls = DESCRIPTORS.get(data["kind"]) if isinstance(data["kind"], str) else None
    if cls is None:
        raise ValueError(f"{path}.kind: unknown descriptor kind {show(data['kind'])} (known: {sorted(DESCRIPTORS)})")
    return cls.from_dict(data["params"], f"{path}.params")


class _CoreDescriptor(_Described):
    """The calls every descriptor of the Rust core shares (`mlpot._core.Descriptor`): a
    class builds ``self._core`` from its parameters and sets ``self._numbers`` (atomic
    numbers in the order of its species) and ``Gradients``; the rest is here.

    Units: positions in Angstrom; dE/dX in eV per unit of X; forces eV/Angstrom; virial eV.
    """

    Gradients: type
    per_atom = True

    def _setup_core(self, core_params: dict) -> None:
        self._core = _core.Descriptor(self.kind, json.dumps(core_params))
        self._numbers = np.asarray(self._core.species, dtype=np.int64)
        # atomic number -> position in `species`, -1 for elements the descriptor lacks
        self._index = np.full(len(_SYMBOLS), -1, dtype=np.int64)
        self._index[self._numbers] = np.arange(len(self._numbers))

    @property
    def species(self) -> tuple[str, ...]:
        """Element symbols in the order of the descriptor's species."""
        return tuple(_SYMBOLS[z] for z in self._numbers)

    @property
    def n_features(self) -> int:
        """Features per atom."""
        return self._core.n_features

    def normalized(self):
        """This descriptor with unit-length vectors, as a dot-product kernel (GAP) assumes:
        a copy with normalisation on where the descriptor has that option, else itself."""
        return self

    def _unknown_elements(self, names: list[str]) -> str:
        return f"atoms contains element(s) {names} that are not in species {list(self.species)}"

    def _structure(self, atoms) -> _core.Structure:
        positions, cell, pbc, numbers = _atoms_arrays(atoms)
        numbers = np.ascontiguousarray(numbers, dtype=np.int64)
        if len(numbers) and (numbers.min() < 0 or numbers.max() >= len(self._index)):
            raise ValueError("atoms has atomic numbers that are not elements")
        missing = np.unique(numbers[self._index[numbers] < 0]) if len(numbers) else []
        if len(missing):
            raise ValueError(self._unknown_elements([_SYMBOLS[z] for z in missing]))
        return _core.Structure(
            np.ascontiguousarray(positions, dtype=np.float64),
            np.ascontiguousarray(cell, dtype=np.float64),
            [bool(p) for p in pbc],
            numbers,
        )

    def compute(self, atoms, gradients: bool = False):
        """Per-atom descriptors of ``atoms`` (an ``ase.Atoms``, periodic or not).

        Returns X, (n_atoms, n_features) float64; with ``gradients=True``, ``(X,
        gradients)``, the derivatives sparse in neighbors (see the class's ``Gradients``).
        """
        gradients = _flag("gradients", gradients)
        structure = self._structure(atoms)
        if not gradients:
            return self._core.compute(structure)
        out = self._core.compute_gradients(structure)
        grads = self.Gradients(
            centers=out["centers"], neighbors=out["atoms"], values=out["values"], virial=out["virial"]
        )
        return out["descriptors"], grads

    def backprop(self, atoms, dE_dX, return_descriptors: bool = False, *, _name: str = "dE_dX"):
        """Forces and virial of a model E = sum_i e_i(X_i) at the slopes ``dE_dX`` =
        dE/dX_i, by the adjoint: no dX/dr is stored (one neighbourhood at a time).

        ``dE_dX`` is (n_atoms, n_features) in eV per unit of X, or (n_features,) for the same
        slope on every atom. Returns ``(forces, virial)``: forces -dE/dr, (n_atoms, 3)
        eV/Angstrom; virial (6,) eV in Voigt order (xx, yy, zz, yz, xz, xy), -sum over pairs
        of (dE/dr_ij)_a (r_ij)_b = sum_i dE_dX_i . W_i (ASE's stress is -virial / volume).
        With ``return_descriptors=True``, ``(X, forces, virial)``; X comes at no extra cost.
        """
        return_descriptors = _flag("return_descriptors", return_descriptors)
        structure = self._structure(atoms)
        try:
            slope = np.asarray(dE_dX, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{_name} must be an array of numbers: {e}") from None
        n_atoms, nf = len(structure), self.n_features
        if slope.shape == (nf,):
            slope = np.broadcast_to(slope, (n_atoms, nf))
        if slope.shape != (n_atoms, nf):
            raise ValueError(
                f"{_name} must have shape (n_atoms, n_features) = ({n_atoms}, {nf}) "
                f"or ({nf},), got {slope.shape}"
            )
        if not np.isfinite(slope).all():
            raise ValueError(f"{_name} contains NaN or infinite values")
        x, forces, virial = self._core.backprop(structure, np.ascontiguousarray(slope))
        return (x, forces, virial) if return_descriptors else (forces, virial)

    def forward(self, atoms, displacement) -> np.ndarray:
        """The forward-mode product: dX_i = sum_k (dX_i/dr_k) . u_k, the first-order change
        of every atom's descriptor when the atoms move along the displacement field
        ``displacement`` (u, (n_atoms, 3), Angstrom). Returns (n_atoms, n_features) in units
        of X per Angstrom of u; dX/dr of the structure is never stored."""
        structure = self._structure(atoms)
        try:
            u = np.asarray(displacement, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"displacement must be an array of numbers: {e}") from None
        if u.shape != (len(structure), 3):
            raise ValueError(f"displacement must have shape (n_atoms, 3) = ({len(structure)}, 3), got {u.shape}")
        if not np.isfinite(u).all():
            raise ValueError("displacement contains NaN or infinite values")
        return self._core.forward(structure, np.ascontiguousarray(u))


@register_descriptor
class Bispectrum(_CoreDescriptor):
    """The SNAP bispectrum descriptor, with the keywords, values and component order of
    LAMMPS ``compute sna/atom`` (Thompson et al., J. Comput. Phys. 285, 316 (2015); explicit
    multi-element form: Cusentino et al., J. Phys. Chem. A 124, 5456 (2020)).

    Parameters
    ----------
    twojmax
        Band limit 2 J_max, an even integer from 0 to 24 (`MAX_TWOJMAX`).
    rcutfac
        Scale of the cutoffs: atoms i, j are neighbors within rcutfac * (R_i + R_j).
    rfac0
        Distance-to-angle conversion factor, in (0, 1].
    rmin0
        Inner distance of the angle conversion (and of the switching function), Angstrom;
        smaller than every pair cutoff.
    radelem
        Per-element radius R (Angstrom), as ``{"Ni": 0.5, ...}`` keyed by element symbol or
        atomic number. Its order is the element order of the chemflag triples.
    wj
        Per-element neighbor weight, same keys; 1.0 for every element when omitted.
    switchflag
        Smoothly switch the neighbor contributions to zero at the cutoff. Every flag is a
        bool (numpy's bool and the integers 0 and 1 are accepted; strings are refused).
    bzeroflag
        Subtract the bispectrum of an isolated atom, so that B -> 0 without neighbors.
    chemflag
        Explicit multi-element bispectrum: one density per element and components for
        every ordered element triple (n_elements^3 blocks).
    bnormflag
        Divide each component B_{j1 j2 j} by j + 1 (LAMMPS's bnormflag; usually on with
        chemflag).
    wselfallflag
        Add the central atom's self contribution to the density of every element, not only
        its own (chemflag).
    """

    kind = "bispectrum"
    Params = BispectrumParams
    Gradients = BispectrumGradients

    def __init__(
        self,
        twojmax: int,
        rcutfac: float,
        rfac0: float = 0.99363,
        rmin0: float = 0.0,
        radelem: Mapping[str | int, float] | None = None,
        wj: Mapping[str | int, float] | None = None,
        switchflag: bool = True,
        bzeroflag: bool = False,
        chemflag: bool = False,
        bnormflag: bool = False,
        wselfallflag: bool = False,
    ):
        self.params = BispectrumParams(
            twojmax=twojmax, rcutfac=rcutfac, rfac0=rfac0, rmin0=rmin0, radelem=radelem, wj=wj,
            switchflag=switchflag, bzeroflag=bzeroflag, chemflag=chemflag, bnormflag=bnormflag,
            wselfallflag=wselfallflag,
        )
        p = self.params
        numbers = [_ATOMIC_NUMBERS[e] for e in p.radelem]
        self._radelem = dict(p.radelem)
        self._wj = dict(p.wj)
        self._flags = {name: getattr(p, name) for name in _BISPECTRUM_FLAGS}
        self.switchflag, self.bzeroflag, self.chemflag, self.bnormflag, self.wselfallflag = (
            self._flags.values()
        )
        self.twojmax = p.twojmax
        self.rcutfac = p.rcutfac
        self.rfac0 = p.rfac0
        self.rmin0 = p.rmin0
        self._setup_core({
            "twojmax": p.twojmax, "rcutfac": p.rcutfac, "rfac0": p.rfac0, "rmin0": p.rmin0,
            "species": numbers, "radelem": list(p.radelem.values()), "wj": list(p.wj.values()),
            **self._flags,
        })

    @property
    def species(self) -> tuple[str, ...]:
        """Element symbols in the order of radelem (the order of the chemflag triples)."""
        return tuple(_SYMBOLS[z] for z in self._numbers)

    @property
    def elements(self) -> tuple[str, ...]:
        """Deprecated alias of `species` (the package's one word for a descriptor's
        elements); kept working."""
        return self.species

    @property
    def radelem(self) -> dict[str, float]:
        return dict(self._radelem)

    @property
    def wj(self) -> dict[str, float]:
        return dict(self._wj)

    @property
    def n_features(self) -> int:
        """Components per atom: the LAMMPS ncoeff of twojmax, times n_elements^3 with chemflag."""
        return self._core.n_features

    @property
    def cutoffs(self) -> dict[tuple[str, str], float]:
        """Pair cutoff rcutfac * (R_a + R_b) for every ordered element pair, Angstrom."""
        r = self._radelem
        return {(a, b): self.rcutfac * (r[a] + r[b]) for a in r for b in r}

    @property
    def cutoff(self) -> float:
        """The largest pair cutoff, Angstrom."""
        return max(self.cutoffs.values())

    def __repr__(self) -> str:
        flags = ", ".join(f"{k}={v}" for k, v in self._flags.items())
        return (
            f"Bispectrum(twojmax={self.twojmax}, rcutfac={self.rcutfac}, rfac0={self.rfac0}, "
            f"rmin0={self.rmin0}, radelem={self._radelem}, wj={self._wj}, {flags})"
        )

    def compute(self, atoms, gradients: bool = False):
        """Per-atom bispectrum components of ``atoms`` (an ``ase.Atoms``).

        Returns B, (n_atoms, n_features) float64, in the order of LAMMPS ``compute
        sna/atom``; with ``gradients=True``, ``(B, BispectrumGradients)``.
        """
        return super().compute(atoms, gradients)

    def forces(self, atoms, beta, return_descriptors: bool = False):
        """Forces and virial of the model E = sum_i sum_k beta[i, k] B[i, k]: `backprop`
        with ``beta`` = dE/dB (the name of LAMMPS's SNAP adjoint), (n_atoms, n_features) in
        eV or (n_features,) for the same weights on every atom; B comes at no extra cost,
        so E = (beta * B).sum()."""
        return self.backprop(atoms, beta, return_descriptors, _name="beta")

    def _unknown_elements(self, names: list[str]) -> str:
        return (
            f"atoms contains element(s) {names} that are missing from radelem/wj "
            f"(the descriptor has {list(self.species)})"
        )


@dataclass(frozen=True)
class SOAPGradients(BispectrumGradients):
    """Derivatives of the per-atom SOAP power spectrum, sparse in neighbors, with the layout
    of :class:`BispectrumGradients`: row ``k`` is dP_i/dr_j, ``i = centers[k]``, ``j =
    neighbors[k]`` (1/Angstrom); the rows of atom i are the distinct atoms within the cutoff
    of i and i itself, sorted by j, periodic images summed into one row; ``virial`` is
    W_i[ab] = -sum_j (dP_i/dr_ij)_a (r_ij)_b in Voigt order (xx, yy, zz, yz, xz, xy), so that
    the stress of a model E = sum_i e(P_i) is -sum_i (de/dP_i) . W_i / volume (ASE's sign).
    """


@register_descriptor
class SOAP(_CoreDescriptor):
    """The SOAP power spectrum (Bartok, Kondor and Csanyi, Phys. Rev. B 87, 184115 (2013)) of
    every atom, for any number of species, with analytic gradients and per-atom virials.

    Reference implementation: featomic's ``SoapPowerSpectrum`` (GTO radial basis, Gaussian
    density, shifted-cosine cutoff), chosen over DScribe because it has the same
    cutoff_transition_width switch as QUIP/GAP and gradients (positions and strain) for
    periodic systems. The definitions are featomic's. Against featomic with its exact radial
    integral (``spline_accuracy=None``) the tests measure at most 1.5e-10 in values, 5e-10 in
    position gradients and 2e-9 in virials (values of order 1) for n_max <= 8; for n_max 12
    both codes carry ~1e-9 rounding noise from the ill-conditioned GTO orthonormalisation
    and agree to 1e-8. Against featomic's default splined integral (accuracy 1e-8): 2.4e-8.
    The definitions, with featomic's names:

    - density of each neighbor: a Gaussian (pi atom_sigma^2)^(-3/4) exp(-r^2 / (2
      atom_sigma^2)) (unit L2 norm), weighted by the cutoff function f_c; the central atom
      adds its own Gaussian times ``center_atom_weight`` (featomic ``center_atom_weight``);
    - cutoff function (featomic ``{"type": "ShiftedCosine", "width": w}``, QUIP's
      ``cutoff_transition_width``): f_c(r) = 1 below cutoff - w, (1 + cos(pi (r - cutoff +
      w) / w)) / 2 up to the cutoff, 0 beyond; ``cutoff_transition_width=0`` is a hard
      cutoff (featomic ``{"type": "Step"}``);
    - radial basis (featomic ``Gto`` with ``max_radial = n_max - 1``): r^n exp(-r^2 / (2
      s_n^2)), n = 0 .. n_max-1, s_n = cutoff max(sqrt(n), 1) / n_max, Lowdin-orthonormalised
      (S^(-1/2)) on [0, inf); spherical harmonics real and orthonormal, l <= l_max (featomic
      ``max_angular``);
    - power spectrum p^{ab}_{l n1 n2} = (-1)^l / sqrt(2l+1) sum_m c^a_{n1 lm} c^b_{n2 lm},
      times sqrt(2) for a != b; only pairs a <= b are stored, so that dot products of two
      spectra equal those of the full (a, b) spectrum;
    - feature order: species pairs (a <= b, species sorted by atomic number), then l, n1,
      n2 with all n1, n2: featomic's order after ``keys_to_samples("center_type")
      .keys_to_properties(["neighbor_1_type", "neighbor_2_type"])`` when every species is
      present. n_features = n_species (n_species + 1) / 2 * (l_max + 1) * n_max^2.

    The radial integral (a confluent hypergeometric function) is tabulated once per
    descriptor on a quintic Hermite spline over [0, cutoff], refined until it agrees with the
    exact integral to 1e-11 (values) and 1e-10 (derivatives) at every interval midpoint.

    QUIP/GAP's ``soap`` descriptor uses the same cutoff, atom_sigma, cutoff_transition_width,
    n_max and l_max names but another radial basis, so its values differ; after
    normalisation both describe the same density overlap kernel up to the basis truncation.

    Parameters
    ----------
    cutoff
        Radius of the environment, Angstrom (> 0).
    n_max
        Number of radial basis functions, 1 to 64 (`MAX_N_MAX`; the GTO basis is
        ill-conditioned beyond about 12).
    l_max
        Largest angular channel, 0 to 30 (`MAX_L_MAX`).
    atom_sigma
        Width of the Gaussian on each atom, Angstrom (> 0, and at least cutoff / 16384).
    cutoff_transition_width
        Width of the smooth switch-off below the cutoff, Angstrom, in [0, cutoff).
    species
        The elements the descriptor knows, as symbols or atomic numbers. Every atom passed to
        :meth:`compute` must be one of them; absent species give zero features.
    center_atom_weight
        Weight of the central atom's own Gaussian (featomic's default 1.0).
    normalize
        Divide each atom's vector by its Euclidean norm (as QUIP's ``normalise``; the GAP
        kernel is a power of the dot product of normalised vectors). Gradients and virials
        are then those of the normalised vector.
    """

    kind = "soap"
    Params = SOAPParams
    Gradients = SOAPGradients

    def __init__(
        self,
        cutoff: float = 5.0,
        n_max: int = 8,
        l_max: int = 8,
        atom_sigma: float = 0.5,
        cutoff_transition_width: float = 0.5,
        species=None,
        *,
        center_atom_weight: float = 1.0,
        normalize: bool = False,
    ):
        self.params = SOAPParams(
            cutoff=cutoff, n_max=n_max, l_max=l_max, atom_sigma=atom_sigma,
            cutoff_transition_width=cutoff_transition_width, species=species,
            center_atom_weight=center_atom_weight, normalize=normalize,
        )
        p = self.params
        numbers = [_ATOMIC_NUMBERS[e] for e in p.species]
        cutoff, atom_sigma, width, center_atom_weight = (
            p.cutoff, p.atom_sigma, p.cutoff_transition_width, p.center_atom_weight
        )
        self.cutoff = cutoff
        self.n_max = p.n_max
        self.l_max = p.l_max
        self.atom_sigma = atom_sigma
        self.cutoff_transition_width = width
        self.center_atom_weight = center_atom_weight
        self.normalize = p.normalize
        self._setup_core({
            "cutoff": cutoff, "n_max": self.n_max, "l_max": self.l_max, "atom_sigma": atom_sigma,
            "cutoff_transition_width": width, "species": numbers,
            "center_atom_weight": center_atom_weight, "normalize": self.normalize,
        })

    def __repr__(self) -> str:
        return (
            f"SOAP(cutoff={self.cutoff}, n_max={self.n_max}, l_max={self.l_max}, "
            f"atom_sigma={self.atom_sigma}, cutoff_transition_width={self.cutoff_transition_width}, "
            f"species={list(self.species)}, center_atom_weight={self.center_atom_weight}, "
            f"normalize={self.normalize})"
        )

    def normalized(self) -> "SOAP":
        """This SOAP with ``normalize=True`` (itself if it already is)."""
        if self.normalize:
            return self
        return SOAP(**{**self.params.values(), "normalize": True})

    def compute(self, atoms, gradients: bool = False):
        """Per-atom power spectra of ``atoms`` (an ``ase.Atoms``, periodic or not).

        Returns P, (n_atoms, n_features) float64; with ``gradients=True``, ``(P,
        SOAPGradients)``.
        """
        return super().compute(atoms, gradients)


def _flag(name: str, value) -> bool:
    """A boolean parameter (`mlpot.params.Flag`: True/False, numpy bools, 0 and 1)."""
    return Flag().check(value, name)


def _integer(name: str, value, smallest: int, largest: int | None = None) -> int:
    """An integer parameter (not a bool, not a float) in [smallest, largest]."""
    return Integer(smallest, largest).check(value, name)


def _finite(name: str, value) -> float:
    """A finite real parameter; a bool or a string is not a number (float("4") would parse)."""
    return Real().check(value, name)
