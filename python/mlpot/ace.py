"""The atomic cluster expansion (ACE; Drautz, Phys. Rev. B 99, 014104 (2019)) with the
conventions of pacemaker/python-ace (Lysogorskiy et al., npj Comput. Mater. 7, 97 (2021);
Bochkarev et al., Phys. Rev. Materials 6, 013804 (2022)), so that mlpot's basis values
equal python-ace's B-basis "projections" for the same basis.

Units: Angstrom for cutoffs; the functions are dimensionless sums over neighbours.

For a central atom i of element c and each neighbour element mu (pairs r_ij = x_j - x_i
with r < rcut of the bond (c, mu)):

- the radial basis g_k(r), k < nradbase (``radbase`` "ChebExpCos", "ChebPow" or
  "SBessel", `mlpot.ace` docs), and the radial functions R_nl = sum_k crad[n, l, k] g_k
  (crad = delta_nk for a new basis);
- A1[mu, n] = sum_j g_n(r_ij) and A[mu, n, l, m] = sum_j R_nl(r_ij) Y_lm(r_ij / r_ij), with
  complex Condon-Shortley harmonics normalised to Y_00 = 1;
- a function (c; mus; ns; ls; lint) of rank K is A1[mus[0], ns[0] - 1] for K = 1 and
  otherwise sum_m C_m prod_t A[mus[t], ns[t] - 1, ls[t], m_t], the coefficients C the
  generalised Clebsch-Gordan coefficients of pacemaker's coupling tree with intermediate
  momenta ``lint`` (pacemaker's LS). ns are 1-based, as in pacemaker's files.

Body order = rank + 1. Moment tensor potentials (Shapeev, Multiscale Model. Simul. 14,
1153 (2016)) span the same invariants as ACE of the same body order and polynomial
degree: an MTP level lev (its basis functions with 2 nu + sum mu <= lev) corresponds to
functions with sum over slots of (2 n + l) bounded in the same way, but the radial bases
differ (Chebyshev in r with MTP's (R_cut - r)^2 envelope against pacemaker's radial bases),
so no choice of ACE basis reproduces an MTP level function for function.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS
from ase.data import chemical_symbols as _SYMBOLS

from mlpot.descriptors import BispectrumGradients, _CoreDescriptor, register_descriptor
from mlpot.params import (
    Choice,
    Elements,
    Integer,
    Integers,
    Kind,
    Optional,
    ParameterTypeError,
    ParameterValueError,
    Real,
    Spec,
    atomic_number,
    param,
)

__all__ = ["ACE", "ACEGradients", "ACEParams", "RADIAL_BASES", "generate_functions", "read_basis", "write_basis", "write_yace"]

#: pacemaker's radial bases (its ``radbase`` names)
RADIAL_BASES = ("ChebExpCos", "ChebPow", "SBessel")

_BOND_KEYS = ("center", "neighbor", "radbase", "rcut", "dcut", "lambda", "r_in", "delta_in", "nradbase", "nradmax",
              "lmax", "crad")
_FUNCTION_KEYS = ("center", "mus", "ns", "ls", "lint")


# ------------------------------------------------------------------ couplings


@lru_cache(maxsize=None)
def _cg_table(l1: int, l2: int, big_l: int) -> np.ndarray:
    """<l1 m1 l2 m2 | L m1+m2> (Condon-Shortley) as a (2 l1 + 1, 2 l2 + 1) array, zero where
    |m1 + m2| > L; Racah's formula in floats (l <= 20: accurate to rounding)."""
    f = math.factorial
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1))
    if not abs(l1 - l2) <= big_l <= l1 + l2:
        return out
    pre = (2 * big_l + 1) * f(l1 + l2 - big_l) * f(l1 - l2 + big_l) * f(-l1 + l2 + big_l) / f(l1 + l2 + big_l + 1)
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m = m1 + m2
            if abs(m) > big_l:
                continue
            s = 0.0
            for z in range(max(0, l2 - big_l - m1, l1 - big_l + m2), min(l1 + l2 - big_l, l1 - m1, l2 + m2) + 1):
                s += (-1) ** z / (f(z) * f(l1 + l2 - big_l - z) * f(l1 - m1 - z) * f(l2 + m2 - z)
                                  * f(big_l - l2 + m1 + z) * f(big_l - l1 - m2 + z))
            out[m1 + l1, m2 + l2] = s * math.sqrt(pre * f(big_l + m) * f(big_l - m) * f(l1 + m1) * f(l1 - m1)
                                                  * f(l2 + m2) * f(l2 - m2))
    return out


def coupling_tree(rank: int) -> list[tuple[int, int, int]]:
    """pacemaker's coupling tree (see the Rust core's `ace::coupling`): nodes (a, b, c),
    leaves 0..rank-1, intermediates rank..2 rank - 3 in the order of lint, final 2 rank - 2."""
    if rank < 2:
        return []
    leaves, inter, queue, nodes = list(range(rank)), list(range(rank, 2 * rank - 2)), [], []
    last = None
    for _ in range(rank // 2):
        a, b = leaves.pop(0), leaves.pop(0)
        last = inter.pop(0) if inter else None
        nodes.append((a, b, last))
        queue.append(last)
    while len(queue) > 1 and last is not None:
        a, b = queue.pop(0), queue.pop(0)
        last = inter.pop(0) if inter else None
        nodes.append((a, b, last))
        queue.append(last)
    if last is not None:
        nodes.append((queue.pop(0), leaves.pop(0), None))
    return [(a, b, 2 * rank - 2 if c is None else c) for a, b, c in nodes]


def coupling_coefficients(ls, lint) -> tuple[np.ndarray, np.ndarray]:
    """Every m-combination (rows, sum 0) of momenta ``ls`` and its generalised
    Clebsch-Gordan coefficient on the tree with intermediates ``lint`` (nonzero only)."""
    ls, rank = tuple(int(x) for x in ls), len(ls)
    grids = np.meshgrid(*[np.arange(-l, l + 1) for l in ls], indexing="ij")
    ms = np.stack([g.ravel() for g in grids], axis=1)
    ms = ms[ms.sum(axis=1) == 0]
    momenta = list(ls) + list(lint) + [0]
    big_m = np.zeros((len(ms), 2 * rank - 1), dtype=np.int64)
    big_m[:, :rank] = ms
    c = np.ones(len(ms))
    for a, b, o in coupling_tree(rank):
        big_m[:, o] = big_m[:, a] + big_m[:, b]
        la, lb, lo = momenta[a], momenta[b], momenta[o]
        ok = np.abs(big_m[:, o]) <= lo
        table = _cg_table(la, lb, lo)
        c = np.where(ok, c * table[np.clip(big_m[:, a] + la, 0, 2 * la), np.clip(big_m[:, b] + lb, 0, 2 * lb)], 0.0)
    keep = c != 0.0
    return ms[keep], c[keep]


def _intermediates(ls) -> Iterable[tuple[int, ...]]:
    """Every lint of the tree of ``ls`` that satisfies each node's triangle condition."""
    rank = len(ls)
    if rank < 3:
        yield ()
        return
    nodes = coupling_tree(rank)
    bound = sum(ls)

    def extend(lint):
        k = len(lint)
        if k == rank - 2:
            yield tuple(lint)
            return
        momenta = list(ls) + list(lint)
        a, b, _ = next(n for n in nodes if n[2] == rank + k)
        for big_l in range(abs(momenta[a] - momenta[b]), min(momenta[a] + momenta[b], bound) + 1):
            yield from extend(lint + [big_l])

    for lint in extend([]):
        momenta = list(ls) + list(lint) + [0]
        if all(abs(momenta[a] - momenta[b]) <= momenta[c] <= momenta[a] + momenta[b] for a, b, c in nodes):
            yield lint


def _independent(mus, ns, ls, candidates, tolerance=1e-10) -> list[tuple[int, ...]]:
    """The intermediates among ``candidates`` whose functions are linearly independent (in
    order, greedily): slots with equal (mu, n, l) hold the same A, so functions are
    polynomials in A, compared by their coefficients on the monomials."""
    rank = len(ls)
    repeated = len(set(zip(mus, ns, ls))) < rank
    if not repeated:
        # distinct slots: the coupled states of one tree are orthogonal, so independent
        return [lint for lint in candidates if len(coupling_coefficients(ls, lint)[1])]
    lmax = max(ls)
    labels = np.array([(mu * 1000 + n) * 100 + l for mu, n, l in zip(mus, ns, ls)], dtype=np.int64)
    vectors, keys = [], {}
    for lint in candidates:
        ms, c = coupling_coefficients(ls, lint)
        codes = np.sort(labels[None, :] * (2 * lmax + 1) + (ms + lmax), axis=1)
        v = {}
        for row, coeff in zip(map(tuple, codes), c):
            v[row] = v.get(row, 0.0) + coeff
        for row in v:
            keys.setdefault(row, len(keys))
        vectors.append(v)
    basis, kept = [], []
    for lint, v in zip(candidates, vectors):
        x = np.zeros(len(keys))
        for row, coeff in v.items():
            x[keys[row]] = coeff
        norm = np.linalg.norm(x)
        if norm == 0.0:
            continue
        for q in basis:
            x = x - (q[: len(x)] @ x) * q[: len(x)]
        if np.linalg.norm(x) > tolerance * norm:
            basis.append(x / np.linalg.norm(x))
            kept.append(lint)
    return kept


def generate_functions(species, nradmax_by_orders, lmax_by_orders, n_functions=None) -> list[dict]:
    """The basis functions of every central element: for each rank K (the length of the
    ``*_by_orders`` lists), each multiset of K neighbour elements, radial indices
    n <= nradmax_by_orders[K - 1] and momenta l <= lmax_by_orders[K - 1] (l = 0 for
    rank 1) in canonical order (slots sorted by (element, n), l non-decreasing among equal
    slots), an even sum of l, and every set of intermediates that couples them to an
    invariant, keeping only linearly independent functions. pacemaker selects its
    couplings from a precomputed table instead; the span of the functions is the same.

    ``n_functions``: per central element, the first n_functions by pacemaker's "power
    order" rank + sum(n) + sum(l) (stable), as its number_of_functions_per_element."""
    nradmax_by_orders, lmax_by_orders = list(nradmax_by_orders), list(lmax_by_orders)
    species = list(species)
    out = []
    for centre in species:
        mine = []
        for rank, (nmax, lmax) in enumerate(zip(nradmax_by_orders, lmax_by_orders), start=1):
            if nmax <= 0:
                continue
            for mus in itertools.combinations_with_replacement(range(len(species)), rank):
                for ns in itertools.product(range(1, nmax + 1), repeat=rank):
                    slots = list(zip(mus, ns))
                    if slots != sorted(slots):
                        continue
                    if rank == 1:
                        mine.append({"center": centre, "mus": [species[mus[0]]], "ns": [ns[0]], "ls": [0], "lint": []})
                        continue
                    for ls in itertools.product(range(lmax + 1), repeat=rank):
                        if sum(ls) % 2 or any(slots[t] == slots[t + 1] and ls[t] > ls[t + 1] for t in range(rank - 1)):
                            continue
                        for lint in _independent(mus, ns, ls, list(_intermediates(ls))):
                            mine.append({"center": centre, "mus": [species[m] for m in mus], "ns": list(ns),
                                         "ls": list(ls), "lint": list(lint)})
        if n_functions is not None:
            order = sorted(range(len(mine)), key=lambda k: len(mine[k]["ns"]) + sum(mine[k]["ns"]) + sum(mine[k]["ls"]))
            mine = [mine[k] for k in sorted(order[:n_functions])]
        out.extend(mine)
    return out


# ------------------------------------------------------------------ parameters


def _int_list(value, name):
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ParameterTypeError(name, "must be a list of integers", value)
    items = list(value)
    for x in items:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or x < 0:
            raise ParameterValueError(name, "must be a list of integers >= 0", value)
    return [int(x) for x in items]


@dataclass(frozen=True)
class Records(Kind):
    """A list of tables with the keys ``keys`` (the bonds or functions of an ACE basis),
    each checked by `ACEParams`; as a tuple of dicts."""

    keys: tuple
    what: str
    toml: ClassVar[str] = "an array of tables"

    def check(self, value, name):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise ParameterTypeError(name, f"must be a list of {self.what} (dicts)", value)
        out = []
        for k, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise ParameterTypeError(f"{name}[{k}]", f"must be a dict with the keys {list(self.keys)}", item)
            extra = sorted(set(item) - set(self.keys))
            if extra:
                raise ParameterValueError(f"{name}[{k}]", "", extra, f"{name}[{k}]: unknown key(s) {extra}; known: {list(self.keys)}")
            out.append(dict(item))
        if not out:
            raise ParameterValueError(name, f"must hold at least one of the {self.what}", value)
        return tuple(out)

    def accepts(self, value):
        return isinstance(value, list) and all(isinstance(x, dict) for x in value)

    def dump(self, value):
        return [dict(x) for x in value]

    def schema(self):
        return {"type": "array", "items": {"type": "object", "properties": {k: {} for k in self.keys},
                                           "additionalProperties": False}}


@dataclass(frozen=True, kw_only=True)
class ACEParams(Spec):
    """The parameters of `ACE`, checked. ``bonds`` and ``functions`` are resolved on
    construction (from the radial settings and the ``*_by_orders`` lists when None), so a
    saved descriptor does not depend on a later change of the defaults or the generator."""

    kind = "ace"

    species: tuple = param(Elements(), doc="the elements the descriptor knows")
    cutoff: float = param(Real(0.0, low_open=True), 5.0, doc="rcut of every bond that gives none, Angstrom")
    radbase: str = param(Choice(RADIAL_BASES), "ChebExpCos", doc="the radial basis (pacemaker's radbase)")
    radial_lambda: float = param(Real(0.0, low_open=True), 5.25, doc="lambda of ChebExpCos and ChebPow (radparameters[0])")
    dcut: float = param(Real(0.0), 0.01, doc="width of ChebExpCos's second envelope before the cutoff, Angstrom")
    r_in: float = param(Real(0.0), 0.0, doc="inner cutoff: the basis vanishes below r_in - delta_in, Angstrom")
    delta_in: float = param(Real(0.0), 0.0, doc="width of the inner cutoff, Angstrom")
    nradmax_by_orders: tuple = param(Integers(Integer(0, 64), min_length=1), (12, 4, 3, 2),
                                     doc="radial functions per rank (rank 1: the g_k)")
    lmax_by_orders: tuple = param(Integers(Integer(0, 10), min_length=1), (0, 4, 3, 2), doc="largest l per rank")
    n_functions: int | None = param(Optional(Integer(1)), None, doc="keep this many functions per element (power order)")
    bonds: tuple | None = param(Optional(Records(_BOND_KEYS, "bonds")), None, doc="the bonds (default: from the settings above)")
    functions: tuple | None = param(Optional(Records(_FUNCTION_KEYS, "basis functions")), None,
                                    doc="the basis functions (default: `generate_functions`)")

    def _relations(self):
        if len(self.nradmax_by_orders) != len(self.lmax_by_orders):
            raise ParameterValueError("lmax_by_orders", "", self.lmax_by_orders,
                                      "nradmax_by_orders and lmax_by_orders must have one entry per rank")
        if self.lmax_by_orders[0] != 0:
            raise ParameterValueError("lmax_by_orders", "", self.lmax_by_orders, "lmax_by_orders[0] (rank 1) must be 0")
        functions = self.functions
        if functions is None:
            functions = generate_functions(self.species, self.nradmax_by_orders, self.lmax_by_orders, self.n_functions)
            if not functions:
                raise ParameterValueError("nradmax_by_orders", "", self.nradmax_by_orders, "the basis is empty")
        resolved = []
        for k, f in enumerate(functions):
            name = f"functions[{k}]"
            missing = sorted({"center", "mus", "ns", "ls"} - set(f))
            if missing:
                raise ParameterValueError(name, "", message=f"{name} needs {missing}")
            g = {"center": self._element(f["center"], f"{name}.center"),
                 "mus": [self._element(e, f"{name}.mus") for e in f["mus"]],
                 "ns": _int_list(f["ns"], f"{name}.ns"), "ls": _int_list(f["ls"], f"{name}.ls"),
                 "lint": _int_list(f.get("lint", []), f"{name}.lint")}
            resolved.append(g)
        object.__setattr__(self, "functions", tuple(resolved))
        object.__setattr__(self, "bonds", tuple(self._bonds(resolved)))

    def _element(self, e, name):
        symbol = _SYMBOLS[atomic_number(e, name)]
        if symbol not in self.species:
            raise ParameterValueError(name, "", e, f"{name} names {symbol}, which is not in species {list(self.species)}")
        return symbol

    def _bonds(self, functions):
        given = {}
        for k, b in enumerate(self.bonds or ()):
            key = (self._element(b.get("center"), f"bonds[{k}].center"), self._element(b.get("neighbor"), f"bonds[{k}].neighbor"))
            if key in given:
                raise ParameterValueError(f"bonds[{k}]", "", key, f"bonds[{k}]: the bond {key[0]}-{key[1]} is given twice")
            given[key] = b
        # sizes each bond needs: the largest n and l its functions read
        need = {}
        for f in functions:
            for mu, n, l in zip(f["mus"], f["ns"], f["ls"]):
                nb, nr, lm = need.get((f["center"], mu), (1, 0, 0))
                need[(f["center"], mu)] = (max(nb, n), nr, lm) if len(f["ns"]) == 1 else (nb, max(nr, n), max(lm, l))
        out = []
        for c in self.species:
            for mu in self.species:
                b = dict(given.get((c, mu), {}))
                nb, nr, lm = need.get((c, mu), (1, 0, 0))
                bond = {"center": c, "neighbor": mu, "radbase": b.get("radbase", self.radbase),
                        "rcut": float(b.get("rcut", self.cutoff)), "dcut": float(b.get("dcut", self.dcut)),
                        "lambda": float(b.get("lambda", self.radial_lambda)), "r_in": float(b.get("r_in", self.r_in)),
                        "delta_in": float(b.get("delta_in", self.delta_in)),
                        "nradbase": int(b.get("nradbase", max(nb, nr))), "nradmax": int(b.get("nradmax", nr)),
                        "lmax": int(b.get("lmax", lm))}
                crad = b.get("crad")
                if crad is not None:
                    crad = np.asarray(crad, dtype=np.float64)
                    want = (bond["nradmax"], bond["lmax"] + 1, bond["nradbase"])
                    if crad.shape != want:
                        raise ParameterValueError(f"bonds {c}-{mu}.crad", "", crad.shape,
                                                  f"bonds {c}-{mu}: crad must have shape (nradmax, lmax + 1, nradbase) = {want}, got {crad.shape}")
                    crad = crad.tolist()
                bond["crad"] = crad
                if bond["radbase"] not in RADIAL_BASES:
                    raise ParameterValueError(f"bonds {c}-{mu}.radbase", f"must be one of {list(RADIAL_BASES)}", bond["radbase"])
                out.append(bond)
        return out


@dataclass(frozen=True)
class ACEGradients(BispectrumGradients):
    """Derivatives of the per-atom ACE functions, sparse in neighbors, with the layout of
    :class:`mlpot.descriptors.BispectrumGradients`."""


@register_descriptor
class ACE(_CoreDescriptor):
    """The atomic cluster expansion basis (see `mlpot.ace` for the definitions), with
    analytic gradients, per-atom virials, the adjoint and the forward-mode product.

    ``ACE(cutoff=5.0, species=["Si"])`` generates a basis of rank (correlation order) up
    to 4 from ``nradmax_by_orders`` and ``lmax_by_orders`` (pacemaker's keywords);
    `read_basis` reads pacemaker's B-basis YAML; ``functions`` and ``bonds`` give any basis
    explicitly. Feature layout: the functions of an atom's element, in the order of
    ``functions``; atoms of an element with fewer functions have zeros in the rest.

    Parameters
    ----------
    cutoff
        rcut of every bond, Angstrom.
    species
        The elements the descriptor knows.
    radbase, radial_lambda, dcut, r_in, delta_in
        The radial basis of every bond (pacemaker's radbase, radparameters[0], dcut,
        r_in, delta_in); ``bonds`` overrides them per (center, neighbor) pair.
    nradmax_by_orders, lmax_by_orders, n_functions
        The basis: per rank, the most radial functions and the largest l; at most
        n_functions per element, by pacemaker's power order.
    """

    kind = "ace"
    Params = ACEParams
    Gradients = ACEGradients

    def __init__(self, cutoff: float = 5.0, species=None, *, radbase: str = "ChebExpCos", radial_lambda: float = 5.25,
                 dcut: float = 0.01, r_in: float = 0.0, delta_in: float = 0.0, nradmax_by_orders=(12, 4, 3, 2),
                 lmax_by_orders=(0, 4, 3, 2), n_functions=None, bonds=None, functions=None):
        self.params = ACEParams(
            species=species, cutoff=cutoff, radbase=radbase, radial_lambda=radial_lambda, dcut=dcut, r_in=r_in,
            delta_in=delta_in, nradmax_by_orders=nradmax_by_orders, lmax_by_orders=lmax_by_orders,
            n_functions=n_functions, bonds=bonds, functions=functions,
        )
        p = self.params
        index = {e: k for k, e in enumerate(p.species)}
        #: the largest bond cutoff, Angstrom
        self.cutoff = max(b["rcut"] for b in p.bonds)
        self._setup_core({
            "species": [_ATOMIC_NUMBERS[e] for e in p.species],
            "bonds": [{"radbase": b["radbase"], "rcut": b["rcut"], "dcut": b["dcut"], "lambda": b["lambda"],
                       "r_in": b["r_in"], "delta_in": b["delta_in"], "nradbase": b["nradbase"], "nradmax": b["nradmax"],
                       "lmax": b["lmax"], "crad": [] if b["crad"] is None else np.ravel(b["crad"]).tolist()}
                      for b in p.bonds],
            "functions": [{"center": index[f["center"]], "mus": [index[e] for e in f["mus"]], "ns": f["ns"],
                           "ls": f["ls"], "lint": f["lint"]} for f in p.functions],
        })

    @property
    def functions(self) -> tuple[dict, ...]:
        """The basis functions (copies)."""
        return tuple({k: (list(v) if isinstance(v, list) else v) for k, v in f.items()} for f in self.params.functions)

    def n_functions(self, element: str) -> int:
        """The number of functions of central ``element`` (its leading features)."""
        return sum(f["center"] == element for f in self.params.functions)

    def __repr__(self) -> str:
        counts = ", ".join(f"{e}: {self.n_functions(e)}" for e in self.species)
        ranks = sorted({len(f["ns"]) for f in self.params.functions})
        return f"ACE(species={list(self.species)}, {len(self.params.functions)} functions ({counts}), ranks {ranks}, cutoff {self.cutoff:g})"


# ------------------------------------------------------------------ pacemaker's files


def read_basis(path) -> tuple[ACE, dict]:
    """An `ACE` descriptor from pacemaker's B-basis YAML (``potential.yaml``, as
    ``BBasisConfiguration.save`` writes it), and the coefficients of its functions: a dict
    {element: array (n_functions of that element, ndensity)} in the descriptor's feature
    order. Only linear bases are read (one density with a linear embedding,
    FinnisSinclairShiftedScaled [1, 1]); anything else raises ValueError naming it."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, Mapping) or "species" not in doc:
        raise ValueError(f"{path}: not a pacemaker B-basis file (no 'species' blocks)")
    blocks = doc["species"]
    elements = sorted({e for b in blocks for e in str(b["speciesblock"]).split()})
    bonds, functions, coefficients = [], [], {e: [] for e in elements}
    for b in blocks:
        names = str(b["speciesblock"]).split()
        where = f"{path}: speciesblock {' '.join(names)}"
        if len(names) == 1:
            if int(b.get("ndensityi", 1)) != 1:
                raise ValueError(f"{where}: ndensityi {b.get('ndensityi')} > 1 is not a linear basis")
            npot, fs = b.get("npoti", "FinnisSinclairShiftedScaled"), list(b.get("parameters", [1, 1]))
            if npot != "FinnisSinclairShiftedScaled" or [float(x) for x in fs] != [1.0, 1.0]:
                raise ValueError(f"{where}: embedding {npot} {fs} is not linear (FinnisSinclairShiftedScaled [1, 1])")
            if any(float(x) != 0.0 for x in b.get("core-repulsion", [0, 0])):
                raise ValueError(f"{where}: core-repulsion {b['core-repulsion']} is not read (use a ZBL baseline)")
        if "rcutij" in b:
            pair = (names[0], names[1] if len(names) > 1 else names[0])
            r_in, delta_in = float(b.get("r_in", 0.0)), float(b.get("delta_in", 0.0))
            kind = b.get("inner_cutoff_type", "distance")
            if kind == "zbl":
                # pacemaker's radial basis for "zbl" cuts at r_in = 1 when delta_in = 0
                r_in = 1.0 if delta_in == 0.0 else 0.0
            elif kind != "distance":
                raise ValueError(f"{where}: inner_cutoff_type {kind!r} is not read (known: distance, zbl)")
            crad = np.asarray(b["radcoefficients"], dtype=np.float64)
            for c, mu in {pair, pair[::-1]}:
                bonds.append({"center": c, "neighbor": mu, "radbase": b["radbase"], "rcut": float(b["rcutij"]),
                              "dcut": float(b.get("dcutij", 0.0)), "lambda": float((b.get("radparameters") or [1.0])[0]),
                              "r_in": r_in, "delta_in": delta_in, "nradbase": int(b["nradbaseij"]),
                              "nradmax": int(b["nradmaxi"]), "lmax": int(b["lmaxi"]), "crad": crad.tolist()})
        for f in b.get("nbody", []):
            kinds = str(f["type"]).split()
            functions.append({"center": kinds[0], "mus": kinds[1:], "ns": list(f["nr"]), "ls": list(f["nl"]),
                              "lint": list(f.get("lint", []))})
            coefficients[kinds[0]].append([float(x) for x in f.get("c", [0.0])])
    # bonds of pairs that no block names keep their defaults; duplicates from a pair given by
    # both of its blocks must agree
    unique = {}
    for bond in bonds:
        key = (bond["center"], bond["neighbor"])
        if key in unique and unique[key] != bond:
            raise ValueError(f"{path}: the bond {key[0]}-{key[1]} is given twice with different settings")
        unique[key] = bond
    first = next(iter(unique.values()))
    ace = ACE(cutoff=first["rcut"], species=elements, bonds=list(unique.values()),
              functions=sorted(functions, key=lambda f: elements.index(f["center"])))
    coefficients = {e: np.array(c, dtype=np.float64).reshape(len(c), -1) for e, c in coefficients.items()}
    return ace, coefficients


def _file_crad(bond) -> np.ndarray:
    """A bond's radial coefficients as the files hold them, (nradmax, lmax + 1, nradbase):
    the identity where the basis has none, and one radial function for a bond that no
    product function reads (readers expect at least one)."""
    nr, lmax, nb = max(bond["nradmax"], 1), bond["lmax"], bond["nradbase"]
    if bond["crad"] is not None and bond["nradmax"] > 0:
        return np.asarray(bond["crad"], dtype=np.float64).reshape(nr, lmax + 1, nb)
    return np.eye(nr, nb)[:, None, :].repeat(lmax + 1, axis=1)


def write_yace(model, path) -> None:
    """A linear ACE model (`mlpot.LinearModel` on an `ACE` descriptor) as a .yace file,
    the C-tilde basis that LAMMPS ``pair_style pace`` and python-ace's PyACECalculator
    read: E_i = E0[element] + sum_k c_k B_k(i), with E0 the model's per-element constant.
    Functions with the same (element, neighbours, ns, ls) are merged into one product
    basis function whose coefficient per m-combination is sum_k c_k C_k(m) (halved
    combinations with twice the weight, pacemaker's "half basis"). Elements are written in
    alphabetical order, as pacemaker does.

    A baseline is not part of the file: LAMMPS needs it as a separate pair style
    (``pair_style hybrid/overlay pace zbl ...``), and a warning says so. Raises ValueError
    for a quadratic model, which the C-tilde form cannot express."""
    import warnings

    from mlpot.models.linear import LinearModel

    if not isinstance(model, LinearModel) or not isinstance(model.descriptor, ACE):
        raise TypeError(f"write_yace writes a mlpot.LinearModel on an ACE descriptor, got {type(model).__name__}")
    if model.quadratic:
        raise ValueError("a quadratic ACE model is not linear in the basis: a .yace file cannot hold it")
    if model.coefficients is None:
        raise ValueError("the model has no coefficients yet: fit it before writing a .yace file")
    if model.baseline is not None:
        warnings.warn("the model's baseline is not written to the .yace file: add it in LAMMPS with "
                      "pair_style hybrid/overlay pace ... (and the baseline's pair style)", stacklevel=2)
    ace = model.descriptor
    p = ace.params
    names = sorted(p.species)
    index = {e: k for k, e in enumerate(names)}
    fl = lambda x: repr(float(x))
    lines = [f"elements: [{', '.join(names)}]",
             f"E0: [{', '.join(fl(model.coefficients[e][0]) for e in names)}]",
             "deltaSplineBins: 0.0001", "embeddings:"]
    for k in range(len(names)):
        lines.append(f"  {k}: {{ndensity: 1, FS_parameters: [1, 1], npoti: FinnisSinclairShiftedScaled, "
                     "rho_core_cutoff: 100000, drho_core_cutoff: 250}")
    lines.append("bonds:")
    for b in sorted(p.bonds, key=lambda b: (index[b["center"]], index[b["neighbor"]])):
        crad = _file_crad(b)
        nr, lmax, nb = crad.shape[0], b["lmax"], b["nradbase"]
        text = "[" + ", ".join("[" + ", ".join("[" + ", ".join(fl(v) for v in crad[n, l]) + "]" for l in range(lmax + 1))
                               + "]" for n in range(nr)) + "]"
        lines.append(f"  [{index[b['center']]}, {index[b['neighbor']]}]: {{nradmax: {nr}, lmax: {lmax}, nradbasemax: {nb}, "
                     f"radbasename: {b['radbase']}, radparameters: [{fl(b['lambda'])}], radcoefficients: {text}, "
                     f"prehc: 0, lambdahc: 0, rcut: {fl(b['rcut'])}, dcut: {fl(b['dcut'])}, rcut_in: {fl(b['r_in'])}, "
                     f"dcut_in: {fl(b['delta_in'])}, inner_cutoff_type: distance}}")
    lines.append("functions:")
    for e in names:
        lines.append(f"  {index[e]}:")
        merged: dict = {}
        funcs = [f for f in p.functions if f["center"] == e]
        for f, c in zip(funcs, model.coefficients[e][1:]):
            key = (tuple(index[m] for m in f["mus"]), tuple(f["ns"]), tuple(f["ls"]))
            combos = merged.setdefault(key, {})
            if len(f["ns"]) == 1:
                combos[(0,)] = combos.get((0,), 0.0) + c
                continue
            ms, cg = coupling_coefficients(f["ls"], f["lint"])
            for m, w in zip(map(tuple, ms), cg):
                first = next((x for x in m if x != 0), 0)
                if first >= 0:
                    combos[m] = combos.get(m, 0.0) + c * w * (2.0 if first > 0 else 1.0)
        for (mus, ns, ls), combos in merged.items():
            items = list(combos.items())
            lines.append(f"    - {{mu0: {index[e]}, rank: {len(ns)}, ndensity: 1, num_ms_combs: {len(items)}, "
                         f"mus: [{', '.join(map(str, mus))}], ns: [{', '.join(map(str, ns))}], "
                         f"ls: [{', '.join(map(str, ls))}], ms_combs: [{', '.join(str(int(x)) for m, _ in items for x in m)}], "
                         f"ctildes: [{', '.join(fl(v) for _, v in items)}]}}")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def write_basis(model, path, delta_spline_bins: float = 0.001) -> None:
    """A linear ACE model (`mlpot.LinearModel` on an `ACE` descriptor, or an `ACE` alone:
    coefficients 0) as pacemaker's B-basis YAML, which `read_basis`, python-ace
    (``BBasisConfiguration(path)``) and pacemaker read: per element a block with its
    embedding (linear) and its own bond, per ordered pair of elements a block with that
    bond, and each function in the block of its centre and neighbour elements, with its
    coefficient. The file has no place for the model's per-element constants (pacemaker
    keeps reference energies apart): `write_yace` writes them as E0; here a warning names
    those that are not 0. ``delta_spline_bins`` is the grid (Angstrom) on which python-ace
    tabulates the radial functions (its default 0.001 differs from mlpot's exact functions
    by about 1e-8 eV/Angstrom in forces, 1e-4 by about 1e-12)."""
    import warnings

    import yaml

    from mlpot.models.linear import LinearModel

    if isinstance(model, ACE):
        ace, coefficients = model, {e: np.zeros(1 + model.n_features) for e in model.species}
    elif isinstance(model, LinearModel) and isinstance(model.descriptor, ACE) and not model.quadratic:
        if model.coefficients is None:
            raise ValueError("the model has no coefficients yet: fit it before writing its basis")
        ace, coefficients = model.descriptor, model.coefficients
    else:
        raise TypeError("write_basis writes an ACE descriptor or a linear (not quadratic) LinearModel on one")
    constants = {e: float(c[0]) for e, c in coefficients.items() if c[0] != 0.0}
    if constants:
        warnings.warn(f"the per-element constants {constants} (eV) are not part of a B-basis file; "
                      "write_yace keeps them (E0)", stacklevel=2)
    if not (isinstance(delta_spline_bins, (int, float)) and 0 < delta_spline_bins < 1):
        raise ValueError(f"delta_spline_bins must be in (0, 1) Angstrom, got {delta_spline_bins!r}")
    p = ace.params
    names = sorted(p.species)
    bonds = {(b["center"], b["neighbor"]): b for b in p.bonds}

    def bond_fields(b):
        crad = _file_crad(b)
        nr, lmax, nb = crad.shape[0], b["lmax"], b["nradbase"]
        return {"nradmaxi": nr, "lmaxi": lmax, "rcutij": b["rcut"], "dcutij": b["dcut"],
                "NameOfCutoffFunctionij": "cos", "r_in": b["r_in"], "delta_in": b["delta_in"],
                "inner_cutoff_type": "distance", "nradbaseij": nb, "radbase": b["radbase"],
                "radparameters": [b["lambda"]], "radcoefficients": crad.tolist(), "core-repulsion": [0.0, 0.0]}

    blocks = {}
    for e in names:
        blocks[(e,)] = {"speciesblock": e, "ndensityi": 1, "npoti": "FinnisSinclairShiftedScaled",
                        "parameters": [1.0, 1.0], "rho_core_cut": 100000.0, "drho_core_cut": 250.0,
                        **bond_fields(bonds[(e, e)]), "nbody": []}
        for other in names:
            if other != e:
                blocks[(e, other)] = {"speciesblock": f"{e} {other}", **bond_fields(bonds[(e, other)]), "nbody": []}
    for e in names:
        funcs = [f for f in p.functions if f["center"] == e]
        for f, c in zip(funcs, coefficients[e][1:]):
            tail = sorted(set(f["mus"]) - {e}, key=names.index)
            key = (e, *tail)
            block = blocks.setdefault(key, {"speciesblock": " ".join(key), "nbody": []})
            entry = {"type": " ".join([e, *f["mus"]]), "nr": list(f["ns"]), "nl": list(f["ls"])}
            if f["lint"]:
                entry["lint"] = list(f["lint"])
            entry["c"] = [float(c)]
            block["nbody"].append(entry)
    document = {"global": {"DeltaSplineBins": float(delta_spline_bins)}, "species": [b for b in blocks.values() if b["nbody"] or len(b) > 2]}
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(document, fh, sort_keys=False, default_flow_style=None)
