"""Model files: versioned JSON, no pickle.

A file is one JSON object ``{"format": "mlpot-model", "version": 1, "kind": ..., ...}``; the
kind ("SNAP", "GAP") selects the class that reads the rest. Floats are written
with Python's shortest round-tripping repr, so coefficients and predictions come back
bit-identical. Every problem with a file raises `ModelFileError` naming it, before any
model is built.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping

__all__ = ["FORMAT", "VERSION", "ModelFileError", "load", "save"]

FORMAT = "mlpot-model"
VERSION = 1


class ModelFileError(ValueError):
    """A model file (or model data) is corrupt, truncated, of another version or kind."""


def save(model, path) -> None:
    """Write ``model.to_dict()`` to ``path``; the file is replaced atomically, so a failed
    save leaves any previous file intact."""
    body = model.to_dict()
    document = {"format": FORMAT, "version": VERSION, **body}
    text = json.dumps(document, allow_nan=False, indent=1)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".mlpot-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _kinds():
    from mlpot.models.gap import GAP
    from mlpot.models.snap import SNAP

    return {"SNAP": SNAP, "GAP": GAP}


def load(path):
    """Read a model written by ``model.save``. Raises ModelFileError naming the problem
    (unreadable JSON, wrong format or version, unknown kind, missing or bad fields)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{path} is not a text (JSON) model file: {e}") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as e:
        raise ModelFileError(f"{path} is not a valid mlpot model file (corrupt or truncated JSON: {e})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an mlpot model file (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if version != VERSION:
        raise ModelFileError(
            f"{path} has model file version {version!r}; this mlpot reads version {VERSION}"
        )
    kind = document.get("kind")
    kinds = _kinds()
    if kind not in kinds:
        raise ModelFileError(f"{path} holds a model of unknown kind {kind!r} (known: {sorted(kinds)})")
    body = {k: v for k, v in document.items() if k not in ("format", "version")}
    try:
        return kinds[kind].from_dict(body)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None


def _reject_constant(name):
    raise ValueError(f"{name} is not a valid number in a model file")


# ------------------------------------------------------------------ field checks


def fields(data, required: dict, what: str) -> dict:
    """Checks that ``data`` is a dict with exactly the keys of ``required`` (key -> type or
    tuple of types) and returns it."""
    if not isinstance(data, Mapping):
        raise ModelFileError(f"{what} must be a JSON object, got {type(data).__name__}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ModelFileError(f"{what} lacks the field(s) {missing}")
    extra = [k for k in data if k not in required]
    if extra:
        raise ModelFileError(f"{what} has unknown field(s) {extra}")
    for key, kind in required.items():
        value = data[key]
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ModelFileError(f"{what}: field {key!r} has the wrong type ({value!r})")
    return dict(data)


_BISPECTRUM_FIELDS = {
    "twojmax": int,
    "rcutfac": float,
    "rfac0": float,
    "rmin0": float,
    "elements": list,
    "radelem": list,
    "wj": list,
    "switchflag": bool,
    "bzeroflag": bool,
    "chemflag": bool,
    "bnormflag": bool,
    "wselfallflag": bool,
}
_FLAGS = ("switchflag", "bzeroflag", "chemflag", "bnormflag", "wselfallflag")


def bispectrum_to_dict(bs) -> dict:
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


def bispectrum_from_dict(data):
    from mlpot.descriptors import Bispectrum

    d = fields(data, _BISPECTRUM_FIELDS, "bispectrum")
    elements = d["elements"]
    if not all(isinstance(e, str) for e in elements) or len(d["radelem"]) != len(elements) or len(
        d["wj"]
    ) != len(elements):
        raise ModelFileError("bispectrum: elements, radelem and wj must be lists of equal length")
    try:
        return Bispectrum(
            d["twojmax"],
            d["rcutfac"],
            rfac0=d["rfac0"],
            rmin0=d["rmin0"],
            radelem=dict(zip(elements, d["radelem"])),
            wj=dict(zip(elements, d["wj"])),
            **{flag: d[flag] for flag in _FLAGS},
        )
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"bispectrum: {e}") from None


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


def baseline_from_dict(data):
    """Only classes of mlpot.baselines are loaded: a file never names code to import."""
    if data is None:
        return None
    d = fields(data, {"class": str, "parameters": (dict, list, str, int, float)}, "baseline")
    try:
        from mlpot import baselines
    except ImportError:
        raise ModelFileError(
            f"the model has a {d['class']} baseline, but this mlpot has no mlpot.baselines"
        ) from None
    cls = getattr(baselines, d["class"], None)
    if not isinstance(cls, type) or not callable(getattr(cls, "from_dict", None)):
        raise ModelFileError(f"unknown baseline class {d['class']!r}")
    try:
        return cls.from_dict(d["parameters"])
    except (TypeError, ValueError, KeyError) as e:
        raise ModelFileError(f"baseline {d['class']}: {e}") from None


def snap_from_dict(cls, data):
    d = fields(
        data,
        {"kind": str, "bispectrum": dict, "quadratic": bool, "coefficients": dict, "baseline": (dict, type(None))},
        "SNAP model",
    )
    if d["kind"] != "SNAP":
        raise ModelFileError(f"expected a SNAP model, got kind {d['kind']!r}")
    bispectrum = bispectrum_from_dict(d["bispectrum"])
    baseline = baseline_from_dict(d["baseline"])
    coefficients = d["coefficients"]
    for element, values in coefficients.items():
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ModelFileError(f"coefficients of {element!r} must be a list of numbers")
    model = cls(bispectrum, quadratic=d["quadratic"], baseline=baseline)
    try:
        model.coefficients = {e: [float(v) for v in c] for e, c in coefficients.items()}
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"coefficients: {e}") from None
    return model


# ------------------------------------------------------------------------------ GAP

_SOAP_FIELDS = {
    "cutoff": float,
    "n_max": int,
    "l_max": int,
    "atom_sigma": float,
    "cutoff_transition_width": float,
    "species": list,
    "center_atom_weight": float,
}
_PAIR_FIELDS = {
    "cutoff": float,
    "cutoff_transition_width": float,
    "theta": float,
    "delta": (int, float, type(None)),
    "n_sparse": int,
    "species": (list, type(None)),
}
_GAP_SETTINGS = {
    "zeta": float,
    "n_sparse": int,
    "delta": (int, float, type(None)),
    "sparse_method": str,
    "default_sigma": list,
    "group_sigma": dict,
    "seed": int,
    "e0": (dict, type(None)),
}


def _floats(values, what: str, shape=None):
    import numpy as np

    try:
        a = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f"{what} must be numbers") from None
    if a.dtype != np.float64 or (shape is not None and a.shape != shape) or not np.isfinite(a).all():
        raise ModelFileError(f"{what} must be finite numbers of shape {shape}, got shape {a.shape}")
    return a


def _gap_term(data, k: int):
    from mlpot.descriptors import SOAP
    from mlpot.models.gap import Distance2b, _Term

    what = f"GAP term {k}"
    if not isinstance(data, Mapping) or data.get("type") not in ("soap", "distance_2b"):
        raise ModelFileError(f"{what} must be an object with type 'soap' or 'distance_2b'")
    try:
        if data["type"] == "soap":
            d = fields(
                data,
                {"type": str, "delta": float, "alpha": list, "soap": dict, "zeta": float,
                 "sparse_points": list, "sparse_species": list},
                what,
            )
            p = fields(d["soap"], _SOAP_FIELDS, f"{what} soap")
            soap = SOAP(**p, normalize=True)
            n = len(d["sparse_species"])
            x = _floats(d["sparse_points"], f"{what} sparse_points", (n, soap.n_features))
            species = [ _atomic(e, what) for e in d["sparse_species"]]
            term = _Term("soap", soap, d["delta"], x, species, d["zeta"])
        else:
            d = fields(
                data,
                {"type": str, "delta": float, "alpha": list, "distance_2b": dict, "sparse_points": list},
                what,
            )
            p = fields(d["distance_2b"], _PAIR_FIELDS, f"{what} distance_2b")
            x = _floats(d["sparse_points"], f"{what} sparse_points", (len(d["sparse_points"]),))
            term = _Term("distance_2b", Distance2b(**p, sparse_points=x), d["delta"], x)
    except (TypeError, ValueError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"{what}: {e}") from None
    alpha = _floats(d["alpha"], f"{what} alpha", (term.n_sparse,))
    return term, alpha


def _atomic(symbol, what):
    from ase.data import atomic_numbers

    if not isinstance(symbol, str) or symbol not in atomic_numbers:
        raise ModelFileError(f"{what}: unknown element {symbol!r}")
    return atomic_numbers[symbol]


def gap_from_dict(cls, data):
    import numpy as np

    d = fields(
        data,
        {"kind": str, "terms": list, "e0": dict, "jitter": float, "settings": dict,
         "posterior_factor": list, "baseline": (dict, type(None))},
        "GAP model",
    )
    if d["kind"] != "GAP":
        raise ModelFileError(f"expected a GAP model, got kind {d['kind']!r}")
    if not d["terms"]:
        raise ModelFileError("GAP model has no terms")
    settings = fields(d["settings"], _GAP_SETTINGS, "GAP settings")
    parts = [_gap_term(t, k) for k, t in enumerate(d["terms"])]
    terms = [t for t, _ in parts]
    alpha = np.concatenate([a for _, a in parts])
    m = len(alpha)
    upper = _floats(d["posterior_factor"], "posterior_factor", (m * (m + 1) // 2,))
    posterior = np.zeros((m, m))
    posterior[np.triu_indices(m)] = upper
    e0 = {}
    for element, value in d["e0"].items():
        _atomic(element, "e0")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ModelFileError(f"e0[{element!r}] must be a finite number")
        e0[element] = float(value)
    baseline = baseline_from_dict(d["baseline"])
    try:
        return cls._from_parts(
            [t.descriptor for t in terms], settings, terms, alpha, e0, d["jitter"], posterior, baseline
        )
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"GAP model: {e}") from None
