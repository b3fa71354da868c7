"""A GAP as a model-file document, and back: hyperparameters, the terms with their sparse
points and weights, e0, the baseline and the posterior factor (for the variance).

Large arrays (sparse points, alpha, the posterior factor) are float64 numpy arrays in the
document (binary in a version-2 file); `from_dict` accepts them as arrays or as the JSON
lists of a version-1 file and validates every field (`mlpot.modelfile`).
"""

from __future__ import annotations

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from mlpot.modelfile import (
    anything,
    array,
    at,
    build,
    check_shape,
    element,
    elements,
    fail,
    fields,
    integer,
    listed,
    mapping,
    optional,
    positive,
    real,
    show,
    string,
)
from mlpot.models.gap.fit import Fitted, packed_diagonal
from mlpot.models.gap.sparse import SPARSE_METHODS
from mlpot.models.gap.terms import MAX_SPARSE, Distance2b, Term
from mlpot.descriptors import DESCRIPTORS
from mlpot.models.parts import baseline_from_dict, baseline_to_dict, descriptor_body, descriptor_from_body

__all__ = ["document", "from_document", "term_to_dict"]


def term_to_dict(term: Term, alpha: np.ndarray) -> dict:
    """A term and its weights; arrays as float64 arrays."""
    out = {"type": term.kind, "delta": term.delta, "alpha": alpha}
    if term.pairwise:
        out.update(distance_2b=term.descriptor.to_dict(), sparse_points=term.sparse)
    else:  # the descriptor under its kind ("soap": {...}), as files always had it
        out.update({
            term.kind: descriptor_body(term.descriptor),
            "zeta": term.zeta,
            "sparse_points": term.sparse,
            "sparse_species": [chemical_symbols[z] for z in term.sparse_species],
        })
    return out


def terms_to_dicts(fitted: Fitted | None) -> list[dict]:
    if fitted is None:
        return []
    out, start = [], 0
    for t in fitted.terms:
        out.append(term_to_dict(t, fitted.alpha[start : start + t.n_sparse]))
        start += t.n_sparse
    return out


def document(model, variance: bool = True) -> dict:
    """The model-file body of a fitted GAP; without the posterior factor (null) unless
    ``variance``."""
    fitted = model._fitted
    if fitted is None:
        raise RuntimeError("the model is not fitted: fit it before saving")
    return {
        "kind": "GAP",
        "terms": terms_to_dicts(fitted),
        "e0": dict(fitted.e0),
        "jitter": model.jitter,
        "settings": settings(model),
        "posterior_factor": fitted.packed_posterior_factor() if variance else None,
        "baseline": baseline_to_dict(model.baseline),
    }


def settings(model) -> dict:
    return {
        "zeta": model.zeta,
        "n_sparse": model.n_sparse,
        "delta": model.delta,
        "sparse_method": model.sparse_method,
        "default_sigma": list(model.default_sigma),
        "group_sigma": {str(g): list(s) for g, s in model.group_sigma.items()},
        "seed": model.seed,
        "e0": model.e0,
    }


# ----------------------------------------------------------------------- reading

_PAIR_FIELDS = {
    "cutoff": positive,
    "cutoff_transition_width": real(0.0),
    "theta": positive,
    "delta": optional(positive),
    "n_sparse": integer(1, MAX_SPARSE),
    "species": optional(elements(length=2)),
}

_SIGMAS = listed(positive, length=3)

_SETTINGS_FIELDS = {
    "zeta": positive,
    "n_sparse": integer(1, MAX_SPARSE),
    "delta": optional(positive),
    "sparse_method": string(SPARSE_METHODS),
    "default_sigma": _SIGMAS,
    "group_sigma": mapping(string(), _SIGMAS),
    "seed": integer(0),
    "e0": optional(mapping(element, real())),
}


def from_document(cls, data):
    """The GAP (of class ``cls``) a document describes; ModelFileError naming the field."""
    d = fields(
        data,
        {"kind": string(["GAP"]), "terms": anything, "e0": anything, "jitter": real(0.0),
         "settings": anything, "posterior_factor": anything, "baseline": anything},
    )
    settings = fields(d["settings"], _SETTINGS_FIELDS, "settings")
    parts = _terms(d["terms"], settings)
    terms = [t for t, _ in parts]
    alpha = np.concatenate([a for _, a in parts])
    posterior = None if d["posterior_factor"] is None else _posterior(d["posterior_factor"], terms)
    e0 = _e0(d["e0"], terms, settings)
    baseline = baseline_from_dict(d["baseline"])
    fitted = Fitted(terms, alpha, e0, None, None, packed_posterior=posterior)
    return build("GAP model", lambda: cls._from_fitted([t.descriptor for t in terms], settings, d["jitter"], baseline, fitted))


def _atom_term(data, path: str, settings: dict, kind: str):
    """A dot-product term on the per-atom descriptor of kind ``kind``."""
    d = fields(
        data,
        {"type": anything, "delta": positive, "alpha": array(1), kind: anything, "zeta": positive,
         "sparse_points": array(2), "sparse_species": listed(element, min_length=1)},
        path,
    )
    descriptor = descriptor_from_body(kind, d[kind], at(path, kind)).normalized()
    if d["zeta"] != settings["zeta"]:
        fail(at(path, "zeta"), f"is {d['zeta']}, but settings.zeta is {settings['zeta']}")
    if settings["delta"] is not None and d["delta"] != settings["delta"]:
        fail(at(path, "delta"), f"is {d['delta']}, but settings.delta is {settings['delta']}")
    species = d["sparse_species"]
    order = [atomic_numbers[s] for s in descriptor.species]
    numbers = [atomic_numbers[s] for s in species]
    for k, z in enumerate(numbers):
        if z not in order:
            fail(f"{at(path, 'sparse_species')}[{k}]", f"{species[k]} is not in {at(path, kind + '.species')}")
        if k and order.index(z) < order.index(numbers[k - 1]):
            fail(f"{at(path, 'sparse_species')}[{k}]",
                 f"the sparse points must be grouped in the order of the species {list(descriptor.species)}")
    n = len(species)
    x = d["sparse_points"]
    check_shape(x, (n, descriptor.n_features), at(path, "sparse_points"),
                f"one {kind} vector per entry of {at(path, 'sparse_species')}")
    x = x.reshape(n, descriptor.n_features)
    check_shape(d["alpha"], (n,), at(path, "alpha"), f"one weight per entry of {at(path, 'sparse_species')}")
    term = build(path, lambda: Term(descriptor, d["delta"], x, numbers, d["zeta"]))
    return term, d["alpha"]


def _pair_term(data, path: str):
    d = fields(
        data,
        {"type": anything, "delta": positive, "alpha": array(1), "distance_2b": anything,
         "sparse_points": array(1, low=0.0)},
        path,
    )
    p = fields(d["distance_2b"], _PAIR_FIELDS, at(path, "distance_2b"))
    if p["cutoff_transition_width"] > p["cutoff"]:
        fail(at(path, "distance_2b.cutoff_transition_width"), f"must be at most the cutoff {p['cutoff']}")
    if p["delta"] is not None and d["delta"] != p["delta"]:
        fail(at(path, "delta"), f"is {d['delta']}, but {at(path, 'distance_2b.delta')} is {p['delta']}")
    x = d["sparse_points"]
    if not len(x):
        fail(at(path, "sparse_points"), "must not be empty")
    check_shape(d["alpha"], (len(x),), at(path, "alpha"), f"one weight per entry of {at(path, 'sparse_points')}")
    pair = build(at(path, "distance_2b"), lambda: Distance2b(**p, sparse_points=x))
    term = build(path, lambda: Term(pair, d["delta"], x))
    return term, d["alpha"]


def _terms(value, settings: dict):
    terms = listed(anything, min_length=1)(value, "terms")
    out = []
    for k, data in enumerate(terms):
        path = f"terms[{k}]"
        if not isinstance(data, dict):
            fail(path, f"must be a JSON object, got {show(data)}")
        kind = string(sorted(DESCRIPTORS))(data.get("type"), at(path, "type"))
        out.append(_pair_term(data, path) if kind == Distance2b.kind else _atom_term(data, path, settings, kind))
    return out


def _e0(value, terms, settings: dict) -> dict:
    """e0 of exactly the elements of the terms' species (any, if no term names species),
    equal to settings.e0 where that is given."""
    e0 = mapping(element, real())(value, "e0")
    known = set()
    for t in terms:
        known.update(t.descriptor.species or ())
    if known:
        missing = sorted(known - set(e0), key=atomic_numbers.get)
        if missing:
            fail(f"e0.{missing[0]}", f"is missing (every element of the descriptors needs one; missing: {missing})")
        extra = sorted(set(e0) - known, key=atomic_numbers.get)
        if extra:
            fail(f"e0.{extra[0]}", f"is not an element of the model's descriptors {sorted(known)}")
    elif not e0:
        fail("e0", "must give the energy of at least one element")
    given = settings["e0"]
    if given is not None:
        for e, v in e0.items():
            if given.get(e) != v:
                fail(f"e0.{e}", f"is {v}, but settings.e0.{e} is {given.get(e)}")
    return e0


def _posterior(value, terms) -> np.ndarray:
    """The upper triangle of R (row-major) with R^T R = K_MM + K_MN Sigma^-1 K_NM, which is
    positive definite exactly when no diagonal entry of R is 0; kept packed (R is unpacked
    when a variance is first predicted)."""
    m = sum(t.n_sparse for t in terms)
    upper = array(1)(value, "posterior_factor")
    counts = ", ".join(f"terms[{k}] {t.n_sparse}" for k, t in enumerate(terms))
    check_shape(upper, (m * (m + 1) // 2,), "posterior_factor",
                f"the upper triangle of {m} x {m}, for the sparse points of all terms: {counts}")
    diagonal = packed_diagonal(upper, m)
    if (diagonal == 0).any():
        k = int(np.argmax(diagonal == 0))
        fail("posterior_factor", f"diagonal entry {k} is 0: R must be nonsingular (R^T R positive definite)")
    return upper
