"""Model files: versioned JSON, no pickle.

A file is one JSON object ``{"format": "mlpot-model", "version": 1, "kind": ..., ...}``; the
kind ("SNAP", later "GAP", ...) selects the class that reads the rest. Floats are written
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
    from mlpot.models.snap import SNAP

    return {"SNAP": SNAP}


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
