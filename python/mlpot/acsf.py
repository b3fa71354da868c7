"""Atom-centred symmetry functions (ACSF; Behler, J. Chem. Phys. 134, 074106 (2011)) as
n2p2 defines them, for any number of elements.

Units: Angstrom for r_s and cutoffs, 1/Angstrom^2 for eta; the functions are dimensionless
(or carry the atomic-number weights Z of types 12 and 13).

Each function belongs to one central element and is a feature of the atoms of that element.
With r_ij the distance to neighbour j (every periodic image counted, the atom's own images
too), f_c the cutoff function and theta_ijk the angle at i:

- type 2, radial (n2p2 ``SymFncExpRad``), neighbours of element e1:
  G = sum_j exp(-eta (r_ij - r_s)^2) f_c(r_ij);
- type 3, angular narrow (``SymFncExpAngn``), neighbour pairs {j, k} of elements {e1, e2}:
  G = 2^(1-zeta) sum_{j<k} (1 + lambda cos theta_ijk)^zeta
  exp(-eta [(r_ij - r_s)^2 + (r_ik - r_s)^2 + (r_jk - r_s)^2]) f_c(r_ij) f_c(r_ik) f_c(r_jk);
- type 9, angular wide (``SymFncExpAngw``): type 3 without the r_jk Gaussian and cutoff;
- type 12, weighted radial (``SymFncExpRadWeighted``; Gastegger et al., J. Chem. Phys. 148,
  241709 (2018)): type 2 over neighbours of every element, each weighted by its atomic
  number Z_j;
- type 13, weighted angular narrow (``SymFncExpAngnWeighted``): type 3 over pairs of every
  element, each pair weighted by Z_j Z_k.

Cutoff functions (n2p2's ``cutoff_type`` 0-8), with the inner cutoff r_ci = alpha r_c
(f_c = 1 below it) and x = (r - r_ci) / (r_c - r_ci): hard 1; cos (cos(pi x) + 1) / 2;
tanhu tanh^3(1 - r / r_c); tanh the same scaled to f_c(0) = 1; exp exp(1 - 1 / (1 - x^2));
poly1 (2x - 3) x^2 + 1; poly2 ((15 - 6x) x - 10) x^3 + 1; poly3 (x (x (20x - 70) + 84) - 35)
x^4 + 1; poly4 (x (x ((315 - 70x) x - 540) + 420) - 126) x^5 + 1 (tanhu and tanh ignore alpha).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS
from ase.data import chemical_symbols as _SYMBOLS

from mlpot.descriptors import BispectrumGradients, _CoreDescriptor, register_descriptor
from mlpot.params import (
    Choice, Elements, Kind, Optional, ParameterTypeError, ParameterValueError, Real, Spec, atomic_number,
    param, show,
)

__all__ = ["ACSF", "ACSFGradients", "ACSFParams", "CUTOFF_FUNCTIONS", "TYPES", "standard_functions"]

#: n2p2's cutoff functions, in the order of its ``cutoff_type`` numbers (0-8)
CUTOFF_FUNCTIONS = ("hard", "cos", "tanhu", "tanh", "exp", "poly1", "poly2", "poly3", "poly4")

#: the symmetry-function types (n2p2's numbers) and what each is
TYPES = {
    2: "radial",
    3: "angular narrow",
    9: "angular wide",
    12: "weighted radial",
    13: "weighted angular narrow",
}
#: the number of neighbour elements a type names (the weighted types sum over all elements)
_NEIGHBORS = {2: 1, 3: 2, 9: 2, 12: 0, 13: 0}
_ANGULAR = frozenset({3, 9, 13})


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class SymmetryFunctions(Kind):
    """A list of symmetry functions, each a table with the keys ``type`` (2, 3, 9, 12, 13),
    ``center`` (element), ``neighbors`` (1 element for type 2, 2 for types 3 and 9, none
    for 12 and 13), ``eta`` (1/Angstrom^2, >= 0), ``r_s`` (Angstrom, default 0), ``cutoff``
    (Angstrom, > 0; default: the descriptor's ``cutoff``) and, for the angular types,
    ``lambda`` (in [-1, 1]) and ``zeta`` (>= 1). Checked into a tuple of dicts with every
    key (elements as symbols, numbers as floats, cutoff None when left to the default)."""

    toml: ClassVar[str] = "an array of tables"

    def check(self, value, name):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise ParameterTypeError(name, "must be a list of symmetry functions (dicts)", value)
        items = list(value)
        if not items:
            raise ParameterValueError(name, "must hold at least one symmetry function", value)
        return tuple(self._one(f, f"{name}[{k}]") for k, f in enumerate(items))

    @staticmethod
    def _one(f, name: str) -> dict:
        if not isinstance(f, Mapping):
            raise ParameterTypeError(name, "must be a dict with the keys type, center, eta, ...", f)
        kind = f.get("type")
        if isinstance(kind, (bool, np.bool_)) or not isinstance(kind, (int, np.integer)) or int(kind) not in TYPES:
            raise ParameterValueError(
                f"{name}.type", f"must be one of {sorted(TYPES)} ({', '.join(f'{k} {v}' for k, v in TYPES.items())})",
                kind,
            )
        kind = int(kind)
        angular = kind in _ANGULAR
        keys = {"type", "center", "eta", "r_s", "cutoff"} | ({"lambda", "zeta"} if angular else set())
        if _NEIGHBORS[kind]:
            keys.add("neighbors")
        extra = sorted(set(f) - keys)
        if extra:
            raise ParameterValueError(
                name, "", extra, f"{name}: a type-{kind} ({TYPES[kind]}) function takes no {extra}; its keys are {sorted(keys)}"
            )
        required = {"center", "eta"} | ({"lambda", "zeta"} if angular else set()) | ({"neighbors"} if _NEIGHBORS[kind] else set())
        missing = sorted(required - set(f))
        if missing:
            raise ParameterValueError(name, "", message=f"{name}: a type-{kind} ({TYPES[kind]}) function needs {missing}")
        out = {"type": kind, "center": _SYMBOLS[atomic_number(f["center"], f"{name}.center")]}
        if _NEIGHBORS[kind]:
            neighbors = f["neighbors"]
            if isinstance(neighbors, (str, int, np.integer)):
                neighbors = [neighbors]
            neighbors = list(neighbors)
            if len(neighbors) != _NEIGHBORS[kind]:
                raise ParameterValueError(
                    f"{name}.neighbors", f"must name {_NEIGHBORS[kind]} element(s) for type {kind}", f["neighbors"]
                )
            out["neighbors"] = [_SYMBOLS[atomic_number(e, f"{name}.neighbors")] for e in neighbors]
        out["eta"] = Real(0.0).check(f["eta"], f"{name}.eta")
        out["r_s"] = Real().check(f.get("r_s", 0.0), f"{name}.r_s")
        cutoff = f.get("cutoff")
        out["cutoff"] = None if cutoff is None else Real(0.0, low_open=True).check(cutoff, f"{name}.cutoff")
        if angular:
            out["lambda"] = Real(-1.0, 1.0).check(f["lambda"], f"{name}.lambda")
            # (1 + lambda cos)^zeta has an unbounded derivative where 1 + lambda cos -> 0 if zeta < 1
            out["zeta"] = Real(1.0).check(f["zeta"], f"{name}.zeta")
        return out

    def accepts(self, value):
        if not isinstance(value, list):
            return False
        for f in value:
            if not isinstance(f, dict) or not isinstance(f.get("type"), int) or isinstance(f.get("type"), bool):
                return False
            for key, v in f.items():
                if key in ("center",) and not isinstance(v, str):
                    return False
                if key == "neighbors" and not (isinstance(v, list) and all(isinstance(e, str) for e in v)):
                    return False
                if key in ("eta", "r_s", "cutoff", "lambda", "zeta") and not (v is None and key == "cutoff") and not _number(v):
                    return False
        return True

    def dump(self, value):
        return [dict(f) for f in value]

    def schema(self):
        number = {"type": "number"}
        element = {"type": "string"}
        return {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "type": {"enum": sorted(TYPES)},
                    "center": element,
                    "neighbors": {"type": "array", "items": element, "minItems": 1, "maxItems": 2},
                    "eta": {"type": "number", "minimum": 0},
                    "r_s": number,
                    "cutoff": {"type": "number", "exclusiveMinimum": 0},
                    "lambda": {"type": "number", "minimum": -1, "maximum": 1},
                    "zeta": {"type": "number", "minimum": 1},
                },
                "required": ["type", "center", "eta"],
                "additionalProperties": False,
            },
        }


def standard_functions(
    species: Sequence[str],
    cutoff: float = 6.0,
    *,
    n_radial: int = 9,
    n_angular: int = 3,
    r_inner: float = 1.5,
    zetas: Sequence[float] = (1.0, 2.0, 4.0, 16.0),
) -> list[dict]:
    """A standard symmetry-function set for ``species`` (symbols) and ``cutoff`` (Angstrom),
    as n2p2's generators (tools/misc/generate-acsf-*.py) build them, the grids of Imbalzano
    et al., J. Chem. Phys. 148, 241730 (2018): for every central element,

    - per neighbour element, ``n_radial`` shifted radial functions (type 2): r_s on the
      grid of ``n_radial`` points from ``r_inner`` to cutoff - 0.5 Angstrom and eta = 1 /
      (2 dr^2), dr the grid step;
    - per unordered pair of neighbour elements, ``n_angular`` centred narrow angular
      functions (type 3): r_s = 0 and eta = 1 / (2 r^2) for r on the grid of ``n_angular``
      points from ``r_inner`` to cutoff - 0.5, each with every zeta of ``zetas`` and lambda
      -1 and +1.

    With one element and the defaults: 9 radial + 3 x 4 x 2 = 33 functions.
    """
    cutoff = Real(0.0, low_open=True).check(cutoff, "cutoff")
    r_inner = Real(0.0).check(r_inner, "r_inner")
    outer = cutoff - 0.5
    if not r_inner < outer:
        raise ParameterValueError(
            "r_inner", "", r_inner, f"r_inner = {r_inner} must be below cutoff - 0.5 = {outer} Angstrom"
        )
    for name, n in (("n_radial", n_radial), ("n_angular", n_angular)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ParameterValueError(name, "must be an integer >= 0", n)
    if n_radial == 1 or n_angular == 1:
        raise ParameterValueError("n_radial", "", message="n_radial and n_angular must be 0 or at least 2 (a grid)")
    zetas = [Real(1.0).check(z, f"zetas[{k}]") for k, z in enumerate(zetas)]
    symbols = [_SYMBOLS[atomic_number(e, "species")] for e in species]
    out: list[dict] = []
    radial = np.linspace(r_inner, outer, n_radial) if n_radial else np.zeros(0)
    angular = np.linspace(r_inner, outer, n_angular) if n_angular else np.zeros(0)
    for center in symbols:
        for e in symbols:
            if n_radial:
                dr = radial[1] - radial[0]
                out += [
                    {"type": 2, "center": center, "neighbors": [e], "eta": 1.0 / (2.0 * dr * dr),
                     "r_s": float(r), "cutoff": cutoff}
                    for r in radial
                ]
        for a, e1 in enumerate(symbols):
            for e2 in symbols[a:]:
                out += [
                    {"type": 3, "center": center, "neighbors": [e1, e2], "eta": 1.0 / (2.0 * r * r), "r_s": 0.0,
                     "lambda": lam, "zeta": zeta, "cutoff": cutoff}
                    for r in angular for zeta in zetas for lam in (-1.0, 1.0)
                ]
    if not out:
        raise ParameterValueError("n_radial", "", message="the standard set with n_radial = n_angular = 0 is empty")
    return out


@dataclass(frozen=True, kw_only=True)
class ACSFParams(Spec):
    """The parameters of `ACSF`, checked. ``functions`` is resolved on construction (the
    standard set when None; every function's cutoff filled in), so a saved descriptor does
    not depend on a later change of the defaults."""

    kind = "acsf"

    species: tuple = param(Elements(), doc="the elements the descriptor knows")
    cutoff: float = param(
        Real(0.0, low_open=True), 6.0,
        doc="cutoff of the standard set and of the functions that give none, Angstrom",
    )
    functions: tuple | None = param(
        Optional(SymmetryFunctions()), None,
        doc="the symmetry functions (default: `standard_functions(species, cutoff)`)",
    )
    cutoff_function: str = param(Choice(CUTOFF_FUNCTIONS), "cos", doc="n2p2's cutoff function (cutoff_type)")
    cutoff_alpha: float = param(
        Real(0.0, 1.0, high_open=True), 0.0, doc="inner cutoff alpha r_c, as a fraction alpha of the cutoff"
    )

    def _relations(self):
        functions = self.functions
        if functions is None:
            functions = SymmetryFunctions().check(standard_functions(self.species, self.cutoff), "functions")
        resolved = []
        for k, f in enumerate(functions):
            for e in [f["center"], *f.get("neighbors", [])]:
                if e not in self.species:
                    raise ParameterValueError(
                        f"functions[{k}]", "", e, f"functions[{k}] names {e}, which is not in species {list(self.species)}"
                    )
            resolved.append({**f, "cutoff": self.cutoff if f["cutoff"] is None else f["cutoff"]})
        object.__setattr__(self, "functions", tuple(resolved))


@dataclass(frozen=True)
class ACSFGradients(BispectrumGradients):
    """Derivatives of the per-atom symmetry functions, sparse in neighbors, with the layout
    of :class:`mlpot.descriptors.BispectrumGradients` (rows dG_i/dr_j in 1/Angstrom, images
    summed, per-atom virials W_i in Voigt order)."""


def _core_function(f: Mapping) -> dict:
    """One function as the Rust core takes it (atomic numbers)."""
    out = {"center": _ATOMIC_NUMBERS[f["center"]], "type": f["type"], "eta": f["eta"], "r_s": f["r_s"],
           "cutoff": f["cutoff"]}
    if "neighbors" in f:
        out["neighbors"] = [_ATOMIC_NUMBERS[e] for e in f["neighbors"]]
    if f["type"] in _ANGULAR:
        out["lambda"] = f["lambda"]
        out["zeta"] = f["zeta"]
    return out


@register_descriptor
class ACSF(_CoreDescriptor):
    """Atom-centred symmetry functions (see `mlpot.acsf` for the definitions), n2p2's
    types 2, 3, 9, 12 and 13 and all of its cutoff functions, with analytic gradients,
    per-atom virials, the adjoint and the forward-mode product.

    ``ACSF(cutoff=6.0, species=["Si"])`` gives the standard set of `standard_functions`;
    ``functions`` lists any others (dicts with ``type``, ``center``, ``neighbors``, ``eta``,
    ``r_s``, ``cutoff``, ``lambda``, ``zeta``; see `SymmetryFunctions`).

    Feature layout: the functions of an atom's element, in the order given; ``n_features``
    is the largest number of functions of any central element, and an atom of an element
    with fewer has zeros in the remaining features (`n_functions` gives the count per
    element). Reference implementation: n2p2 (the published mlearn NNPs' functions are
    reproduced to 1e-12 relative); DScribe's G2/G4/G5 are types 2/3/9 with r_s = 0 for
    the angular ones (DScribe has no shift there) and without its G1 column.

    Parameters
    ----------
    cutoff
        Cutoff of the standard set and of the functions that name none, Angstrom (> 0).
    species
        The elements the descriptor knows (symbols or atomic numbers).
    functions
        The symmetry functions; None for the standard set.
    cutoff_function
        One of `CUTOFF_FUNCTIONS` (n2p2's cutoff_type 0-8); default "cos".
    cutoff_alpha
        n2p2's inner-cutoff parameter alpha in [0, 1): f_c = 1 below alpha r_c.
    """

    kind = "acsf"
    Params = ACSFParams
    Gradients = ACSFGradients

    def __init__(self, cutoff: float = 6.0, species=None, functions=None, *, cutoff_function: str = "cos",
                 cutoff_alpha: float = 0.0):
        self.params = ACSFParams(
            species=species, cutoff=cutoff, functions=functions, cutoff_function=cutoff_function,
            cutoff_alpha=cutoff_alpha,
        )
        p = self.params
        #: the largest cutoff of any function, Angstrom (the reach of the descriptor)
        self.cutoff = max(f["cutoff"] for f in p.functions)
        self.cutoff_function = p.cutoff_function
        self.cutoff_alpha = p.cutoff_alpha
        self._setup_core({
            "species": [_ATOMIC_NUMBERS[e] for e in p.species],
            "cutoff_function": p.cutoff_function,
            "cutoff_alpha": p.cutoff_alpha,
            "functions": [_core_function(f) for f in p.functions],
        })

    @property
    def functions(self) -> tuple[dict, ...]:
        """The symmetry functions, every key filled in (copies)."""
        return tuple(dict(f, **({"neighbors": list(f["neighbors"])} if "neighbors" in f else {}))
                     for f in self.params.functions)

    def n_functions(self, element: str) -> int:
        """The number of functions of central ``element`` (its leading features)."""
        symbol = _SYMBOLS[atomic_number(element, "element")]
        if symbol not in self.species:
            raise ValueError(f"{symbol} is not in species {list(self.species)}")
        return sum(f["center"] == symbol for f in self.params.functions)

    @property
    def cutoffs(self) -> dict[int, float]:
        """{function index: its cutoff, Angstrom}."""
        return {k: f["cutoff"] for k, f in enumerate(self.params.functions)}

    def __repr__(self) -> str:
        counts = ", ".join(f"{e}: {self.n_functions(e)}" for e in self.species)
        return (
            f"ACSF(species={list(self.species)}, {len(self.params.functions)} functions ({counts}), "
            f"largest cutoff {self.cutoff:g}, cutoff_function={self.cutoff_function!r}, "
            f"cutoff_alpha={self.cutoff_alpha})"
        )

    def compute(self, atoms, gradients: bool = False):
        """Per-atom symmetry functions of ``atoms`` (an ``ase.Atoms``, periodic or not).

        Returns G, (n_atoms, n_features) float64; with ``gradients=True``, ``(G,
        ACSFGradients)``.
        """
        return super().compute(atoms, gradients)


def n2p2_sort_key(f: Mapping, element_index: Mapping[str, int], cutoff_type: int, alpha: float, length: float = 1.0):
    """n2p2's order of the symmetry functions of one element (``SymFnc::operator<`` of its
    types): type, cutoff type, alpha, r_c, eta, r_s, then zeta and lambda (angular), then
    the neighbour elements by index; lengths in units of ``length`` per Angstrom (n2p2
    compares the numbers of its own units, whose order a positive unit factor keeps)."""
    key = [f["type"], cutoff_type, alpha, f["cutoff"] * length, f["eta"] / length**2, f["r_s"] * length]
    if f["type"] in _ANGULAR:
        key += [f["zeta"], f["lambda"]]
    key += sorted(element_index[e] for e in f.get("neighbors", []))  # n2p2 orders e1 <= e2
    return tuple(key)
