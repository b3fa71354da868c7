"""The one home of the (de)serialisation of what models are built of: the descriptors
(Bispectrum, SOAP) and the baselines, as the fields of a model file. Every ``*_from_dict``
validates with `mlpot.modelfile`'s checks and raises `ModelFileError` naming the field.
"""

from __future__ import annotations

import sys

import numpy as np

from mlpot import baselines
from mlpot.descriptors import DESCRIPTORS, MAX_L_MAX, MAX_N_MAX, MAX_TWOJMAX, SOAP, Bispectrum, descriptor_to_dict
from mlpot.modelfile import (
    anything,
    array,
    at,
    boolean,
    build,
    check_shape,
    elements,
    fail,
    fields,
    integer,
    positive,
    real,
    show,
    string,
)

__all__ = [
    "baseline_from_dict",
    "baseline_to_dict",
    "bispectrum_from_dict",
    "bispectrum_to_dict",
    "descriptor_body",
    "descriptor_document",
    "descriptor_from_body",
    "descriptor_from_document",
    "soap_from_dict",
    "soap_to_dict",
]

# ------------------------------------------------------------------ Bispectrum

_FLAGS = ("switchflag", "bzeroflag", "chemflag", "bnormflag", "wselfallflag")

_BISPECTRUM_FIELDS = {
    "twojmax": integer(0, MAX_TWOJMAX),
    "rcutfac": positive,
    "rfac0": real(0.0, 1.0, low_open=True),
    "rmin0": real(0.0),
    "elements": elements(),
    "radelem": array(1),
    "wj": array(1),
    **{name: boolean for name in _FLAGS},
}


def bispectrum_to_dict(bs: Bispectrum) -> dict:
    return {
        "twojmax": bs.twojmax,
        "rcutfac": bs.rcutfac,
        "rfac0": bs.rfac0,
        "rmin0": bs.rmin0,
        "elements": list(bs.elements),
        "radelem": [bs.radelem[e] for e in bs.elements],
        "wj": [bs.wj[e] for e in bs.elements],
        **{flag: getattr(bs, flag) for flag in _FLAGS},
    }


def bispectrum_from_dict(data, path: str = "bispectrum") -> Bispectrum:
    d = fields(data, _BISPECTRUM_FIELDS, path)
    if d["twojmax"] % 2:
        fail(at(path, "twojmax"), f"must be even, got {d['twojmax']}")
    names = d["elements"]
    for key in ("radelem", "wj"):
        check_shape(d[key], (len(names),), at(path, key), f"one per entry of {at(path, 'elements')}")
    if (d["radelem"] <= 0).any():
        k = int(np.argmax(d["radelem"] <= 0))
        fail(f"{at(path, 'radelem')}[{k}]", f"must be positive, got {d['radelem'][k]}")
    smallest = 2 * d["rcutfac"] * d["radelem"].min()
    if d["rmin0"] >= smallest:
        fail(
            at(path, "rmin0"),
            f"must be smaller than every pair cutoff rcutfac * (R_i + R_j), the smallest {smallest}",
        )
    return build(
        path,
        lambda: Bispectrum(
            d["twojmax"],
            d["rcutfac"],
            rfac0=d["rfac0"],
            rmin0=d["rmin0"],
            radelem=dict(zip(names, d["radelem"].tolist())),
            wj=dict(zip(names, d["wj"].tolist())),
            **{flag: d[flag] for flag in _FLAGS},
        ),
    )


# ------------------------------------------------------------------------ SOAP

_SOAP_FIELDS = {
    "cutoff": positive,
    "n_max": integer(1, MAX_N_MAX),
    "l_max": integer(0, MAX_L_MAX),
    "atom_sigma": positive,
    "cutoff_transition_width": real(0.0),
    "species": elements(),
    "center_atom_weight": real(),
}


def soap_to_dict(soap: SOAP) -> dict:
    """The parameters of a SOAP except ``normalize`` (a model decides that)."""
    return {
        "cutoff": soap.cutoff,
        "n_max": soap.n_max,
        "l_max": soap.l_max,
        "atom_sigma": soap.atom_sigma,
        "cutoff_transition_width": soap.cutoff_transition_width,
        "species": list(soap.species),
        "center_atom_weight": soap.center_atom_weight,
    }


def soap_from_dict(data, path: str = "soap", normalize: bool = True) -> SOAP:
    p = fields(data, _SOAP_FIELDS, path)
    if p["cutoff_transition_width"] >= p["cutoff"]:
        fail(at(path, "cutoff_transition_width"), f"must be smaller than the cutoff {p['cutoff']}")
    return build(path, lambda: SOAP(**p, normalize=normalize))


# ------------------------------------------------------------------ any descriptor

#: The model-file forms that predate the descriptor registry, kept so that every file
#: written since still loads: kind -> (to_dict, from_dict). A descriptor without an entry
#: is stored as its spec (`_Described.to_dict`) and read by its registered class.
_LEGACY_FORMS = {
    "bispectrum": (bispectrum_to_dict, lambda data, path: bispectrum_from_dict(data, path)),
    "soap": (soap_to_dict, lambda data, path: soap_from_dict(data, path)),
}


def descriptor_body(descriptor) -> dict:
    """The parameters of any registered descriptor, as a model file stores them under its
    kind."""
    to_dict = _LEGACY_FORMS.get(descriptor.kind, (lambda d: d.to_dict(), None))[0]
    return to_dict(descriptor)


def descriptor_from_body(kind: str, data, path: str):
    """The descriptor of kind ``kind`` from `descriptor_body`'s data; ModelFileError naming
    the field."""
    if kind in _LEGACY_FORMS:
        return _LEGACY_FORMS[kind][1](data, path)
    cls = DESCRIPTORS.get(kind)
    if cls is None:
        fail(path, f"unknown descriptor kind {show(kind)} (known: {sorted(DESCRIPTORS)})")
    return build(path, lambda: cls.from_dict(data, path))


def descriptor_document(descriptor) -> dict:
    """Any registered descriptor as ``{"kind": ..., "params": every field of its spec}``
    (`mlpot.descriptors.descriptor_to_dict`): the form of model kinds newer than the
    descriptor registry, exact for every parameter (SOAP's ``normalize`` included)."""
    return descriptor_to_dict(descriptor)


def descriptor_from_document(data, path: str = "descriptor"):
    """The descriptor of `descriptor_document`'s data, chosen by its kind in the registry;
    ModelFileError naming the field by its path."""
    d = fields(data, {"kind": string(sorted(DESCRIPTORS)), "params": anything}, path)
    cls = DESCRIPTORS[d["kind"]]
    # the spec's errors name the field by its full path already
    return build("", lambda: cls.from_dict(d["params"], at(path, "params")))


# -------------------------------------------------------------------- baselines


def baseline_to_dict(baseline) -> dict | None:
    """A baseline as {"class": name in mlpot.baselines, "parameters": its to_dict()}."""
    if baseline is None:
        return None
    to_dict = getattr(baseline, "to_dict", None)
    if not callable(to_dict):
        raise TypeError(
            f"the baseline {type(baseline).__name__} has no to_dict(), so the model cannot be saved"
        )
    return {"class": type(baseline).__name__, "parameters": to_dict()}


def baseline_from_dict(data, path: str = "baseline"):
    """Only classes of mlpot.baselines are loaded: a file never names code to import."""
    if data is None:
        return None
    d = fields(data, {"class": string(), "parameters": anything}, path)
    cls = getattr(_baselines(), d["class"], None)
    if not isinstance(cls, type) or not callable(getattr(cls, "from_dict", None)):
        fail(at(path, "class"), f"unknown baseline class {show(d['class'])}")
    try:
        return cls.from_dict(d["parameters"])
    except (TypeError, ValueError, KeyError, ArithmeticError, RecursionError) as e:
        message = f"{d['class']}: {e}"
    fail(at(path, "parameters"), message)


def _baselines():
    """mlpot.baselines as it is now in sys.modules (tests may substitute it)."""
    return sys.modules.get("mlpot.baselines", baselines)
