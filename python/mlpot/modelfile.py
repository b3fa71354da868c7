"""Model files: versioned JSON, no pickle.

A file is one JSON object ``{"format": "mlpot-model", "version": 1, "kind": ..., ...}``; the
kind ("SNAP", "GAP") selects the class that reads the rest. Floats are written
with Python's shortest round-tripping repr, so coefficients and predictions come back
bit-identical.

Reading validates the whole document before any model is built: the type (a JSON bool is
not a number, a float is not an integer), range and shape of every field and the
consistency between fields (elements and coefficients, array shapes, each GAP term against
the settings, a nonsingular posterior factor). Every problem raises `ModelFileError` naming
the file and the field by its path, e.g. ``terms[0].zeta``.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
from collections.abc import Callable, Mapping

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

__all__ = ["FORMAT", "VERSION", "ModelFileError", "load", "save"]

FORMAT = "mlpot-model"
VERSION = 1


class ModelFileError(ValueError):
    """A model file (or model data) is corrupt, truncated, of another version or kind."""


def save(model, path) -> None:
    """Write ``model.to_dict()`` to ``path``; the file is replaced atomically, so a failed
    save leaves any previous file intact. The file gets the permissions of any new file
    (0o666 less the umask), as ``open(path, "w")`` would give it."""
    body = model.to_dict()
    document = {"format": FORMAT, "version": VERSION, **body}
    text = json.dumps(document, allow_nan=False, indent=1)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_beside(directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _create_beside(directory: str) -> tuple[int, str]:
    """A new, uniquely named temporary file in ``directory``, opened for writing. Created with
    mode 0o666 so that the kernel applies the umask (tempfile.mkstemp would make it 0o600,
    and the rename would keep that)."""
    while True:
        tmp = os.path.join(directory, f".mlpot-{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _kinds():
    from mlpot.models.gap import GAP
    from mlpot.models.snap import SNAP

    return {"SNAP": SNAP, "GAP": GAP}


def load(path):
    """Read a model written by ``model.save``. Raises ModelFileError naming the file and the
    problem (unreadable JSON, wrong format or version, unknown kind, a missing, extra or bad
    field by its path). The file is only read."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{path} is not a text (JSON) model file: {e}") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ModelFileError(f"{path} is not a valid mlpot model file (JSON nested too deeply)") from None
    except (json.JSONDecodeError, ValueError) as e:
        raise ModelFileError(f"{path} is not a valid mlpot model file (corrupt or truncated JSON: {e})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an mlpot model file (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if type(version) is not int or version != VERSION:  # True == 1, but is no version
        raise ModelFileError(
            f"{path} has model file version {_show(version)}; this mlpot reads version {VERSION}"
        )
    kind = document.get("kind")
    kinds = _kinds()
    if not isinstance(kind, str) or kind not in kinds:
        raise ModelFileError(f"{path} holds a model of unknown kind {_show(kind)} (known: {sorted(kinds)})")
    body = {k: v for k, v in document.items() if k not in ("format", "version")}
    try:
        return kinds[kind].from_dict(body)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None


def _reject_constant(name):
    raise ValueError(f"{name} is not a valid number in a model file")


# ------------------------------------------------------------------ field checks
#
# A check takes (value, path) and returns the value, converted where that helps (numeric
# lists become float64 arrays), or raises ModelFileError naming the path.

Check = Callable[[object, str], object]


def _fail(path: str, message: str):
    raise ModelFileError(f"{path}: {message}" if path else message)


def _at(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value) -> str:
    """A short description of a value for messages (never a deep or huge repr)."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'} of {len(value)} entries"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fields(data, required: Mapping[str, Check], path: str = "") -> dict:
    """Checks that ``data`` is a JSON object with exactly the keys of ``required`` and returns
    {key: checked value}. The checks run in the order of ``required``."""
    if not isinstance(data, Mapping):
        _fail(path, f"must be a JSON object, got {_show(data)}")
    where = path or "the model"
    missing = [k for k in required if k not in data]
    if missing:
        _fail(_at(path, missing[0]), f"is missing ({where} lacks the field(s) {missing})")
    extra = [k for k in data if k not in required]
    if extra:
        _fail(_at(path, extra[0]), f"unknown field ({where} has unknown field(s) {extra})")
    return {key: check(data[key], _at(path, key)) for key, check in required.items()}


def _number(value, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, f"must be a number, got {_show(value)}")
    x = float(value) if abs(value) <= sys.float_info.max else math.inf  # exact for any int
    if not math.isfinite(x):
        _fail(path, f"must be finite, got {x}")
    return x


def real(low=None, high=None, *, low_open=False) -> Check:
    """A finite number in [low, high] ((low, high] with ``low_open``)."""

    def check(value, path):
        x = _number(value, path)
        if low is not None and (x < low or (low_open and x == low)):
            _fail(path, f"must be {'>' if low_open else '>='} {low}, got {x}")
        if high is not None and x > high:
            _fail(path, f"must be <= {high}, got {x}")
        return x

    return check


positive = real(0.0, low_open=True)


def integer(low: int, high: int | None = None) -> Check:
    """A JSON integer (not a bool, not 4.0) in [low, high]."""

    def check(value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"must be an integer, got {_show(value)}")
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f">= {low} and <= {high}"
            _fail(path, f"must be {allowed}, got {_show(value)}")
        return value

    return check


def boolean(value, path):
    if not isinstance(value, bool):
        _fail(path, f"must be true or false, got {_show(value)}")
    return value


def string(choices=None) -> Check:
    def check(value, path):
        if not isinstance(value, str):
            _fail(path, f"must be a string, got {_show(value)}")
        if choices is not None and value not in choices:
            _fail(path, f"must be one of {list(choices)}, got {_show(value)}")
        return value

    return check


def element(value, path) -> str:
    if not isinstance(value, str) or value not in atomic_numbers or value == "X":
        _fail(path, f"must be an element symbol, got {_show(value)}")
    return value


def optional(check: Check) -> Check:
    return lambda value, path: None if value is None else check(value, path)


def anything(value, path):
    return value


def listed(item: Check, length: int | None = None, min_length: int = 0) -> Check:
    """A JSON list of ``length`` (or at least ``min_length``) entries, each checked."""

    def check(value, path):
        if not isinstance(value, list):
            _fail(path, f"must be a list, got {_show(value)}")
        if length is not None and len(value) != length:
            _fail(path, f"must have {length} entries, got {len(value)}")
        if len(value) < min_length:
            _fail(path, f"must have at least {min_length} entries, got {len(value)}")
        return [item(v, f"{path}[{k}]") for k, v in enumerate(value)]

    return check


def elements(min_length: int = 1, length: int | None = None) -> Check:
    """A list of distinct element symbols."""
    symbols = listed(element, length, min_length)

    def check(value, path):
        out = symbols(value, path)
        for k, e in enumerate(out):
            if e in out[:k]:
                _fail(f"{path}[{k}]", f"names {e} a second time")
        return out

    return check


def mapping(key: Check, value: Check) -> Check:
    """A JSON object of any keys, each key and value checked."""

    def check(data, path):
        if not isinstance(data, dict):
            _fail(path, f"must be a JSON object, got {_show(data)}")
        return {key(k, _at(path, k)): value(v, _at(path, k)) for k, v in data.items()}

    return check


def array(ndim: int, low: float | None = None) -> Check:
    """A list (ndim 1) or list of equally long lists (ndim 2) of finite numbers (>= low), as
    a float64 array. The types are checked per entry in C (set of types), and the entry is
    located only when one is bad, so that large arrays load quickly."""

    def check(value, path):
        rows = _rows(value, path, ndim)
        for k, row in enumerate(rows):
            if not set(map(type, row)) <= {int, float}:
                bad = next(m for m, v in enumerate(row) if type(v) not in (int, float))
                _number(row[bad], _entry(path, ndim, k, bad))
        try:
            a = np.array(value, dtype=np.float64)
        except OverflowError:
            k, m = _first(rows, lambda v: abs(v) > sys.float_info.max)
            _fail(_entry(path, ndim, k, m), f"is out of the range of floats ({_show(rows[k][m])})")
        bad = ~np.isfinite(a) if low is None else ~(np.isfinite(a) & (a >= low))
        if bad.any():
            index = np.argwhere(bad)[0]
            k, m = (0, int(index[0])) if ndim == 1 else (int(index[0]), int(index[1]))
            need = "finite" if low is None else f"finite and >= {low}"
            _fail(_entry(path, ndim, k, m), f"must be {need}, got {rows[k][m]}")
        return a

    return check


def _rows(value, path: str, ndim: int) -> list:
    if not isinstance(value, list):
        _fail(path, f"must be a list of numbers{' per row' if ndim == 2 else ''}, got {_show(value)}")
    if ndim == 1:
        return [value]
    width = None
    for k, row in enumerate(value):
        if not isinstance(row, list):
            _fail(f"{path}[{k}]", f"must be a list of numbers, got {_show(row)}")
        if width is not None and len(row) != width:
            _fail(f"{path}[{k}]", f"has {len(row)} values, but {path}[0] has {width}")
        width = len(row)
    return value


def _entry(path: str, ndim: int, row: int, column: int) -> str:
    return f"{path}[{column}]" if ndim == 1 else f"{path}[{row}][{column}]"


def _first(rows, bad) -> tuple[int, int]:
    return next((k, m) for k, row in enumerate(rows) for m, v in enumerate(row) if bad(v))


def _shape(a: np.ndarray, shape: tuple, path: str, why: str) -> None:
    if a.shape != shape and not (a.size == 0 and np.prod(shape) == 0):
        _fail(path, f"must have shape {shape} ({why}), got {a.shape}")


def _build(path: str, make):
    """``make()``, with the ValueError or TypeError of a constructor as a ModelFileError at
    ``path`` (the message names the parameter)."""
    try:
        return make()
    except ModelFileError:
        raise
    except (TypeError, ValueError) as e:
        message = str(e)
    _fail(path, message)


# ------------------------------------------------------------------------- SNAP

def _bispectrum_fields():
    from mlpot.descriptors import MAX_TWOJMAX

    flag = {name: boolean for name in _FLAGS}
    return {
        "twojmax": integer(0, MAX_TWOJMAX),
        "rcutfac": positive,
        "rfac0": real(0.0, 1.0, low_open=True),
        "rmin0": real(0.0),
        "elements": elements(),
        "radelem": array(1),
        "wj": array(1),
        **flag,
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


def bispectrum_from_dict(data, path: str = "bispectrum"):
    from mlpot.descriptors import Bispectrum

    d = fields(data, _bispectrum_fields(), path)
    if d["twojmax"] % 2:
        _fail(_at(path, "twojmax"), f"must be even, got {d['twojmax']}")
    names = d["elements"]
    for key in ("radelem", "wj"):
        _shape(d[key], (len(names),), _at(path, key), f"one per entry of {_at(path, 'elements')}")
    if (d["radelem"] <= 0).any():
        k = int(np.argmax(d["radelem"] <= 0))
        _fail(f"{_at(path, 'radelem')}[{k}]", f"must be positive, got {d['radelem'][k]}")
    smallest = 2 * d["rcutfac"] * d["radelem"].min()
    if d["rmin0"] >= smallest:
        _fail(
            _at(path, "rmin0"),
            f"must be smaller than every pair cutoff rcutfac * (R_i + R_j), the smallest {smallest}",
        )
    return _build(
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
    try:
        from mlpot import baselines
    except ImportError:
        baselines = None
    if baselines is None:
        _fail(_at(path, "class"), f"the model has a {d['class']} baseline, but this mlpot has no mlpot.baselines")
    cls = getattr(baselines, d["class"], None)
    if not isinstance(cls, type) or not callable(getattr(cls, "from_dict", None)):
        _fail(_at(path, "class"), f"unknown baseline class {_show(d['class'])}")
    try:
        return cls.from_dict(d["parameters"])
    except (TypeError, ValueError, KeyError, ArithmeticError, RecursionError) as e:
        message = f"{d['class']}: {e}"
    _fail(_at(path, "parameters"), message)


def snap_from_dict(cls, data):
    d = fields(
        data,
        {"kind": string(["SNAP"]), "bispectrum": anything, "quadratic": boolean, "coefficients": anything,
         "baseline": anything},
    )
    bispectrum = bispectrum_from_dict(d["bispectrum"])
    baseline = baseline_from_dict(d["baseline"])
    model = cls(bispectrum, quadratic=d["quadratic"], baseline=baseline)
    per = model.n_coefficients
    kind = "quadratic SNAP" if d["quadratic"] else "linear SNAP"
    c = fields(d["coefficients"], {e: array(1) for e in bispectrum.elements}, "coefficients")
    for e, values in c.items():
        _shape(values, (per,), f"coefficients.{e}", f"{per} per element for a {kind} on this bispectrum")
    model.coefficients = c
    return model


# ------------------------------------------------------------------------------ GAP


def _soap_fields():
    from mlpot.descriptors import MAX_L_MAX, MAX_N_MAX

    return {
        "cutoff": positive,
        "n_max": integer(1, MAX_N_MAX),
        "l_max": integer(0, MAX_L_MAX),
        "atom_sigma": positive,
        "cutoff_transition_width": real(0.0),
        "species": elements(),
        "center_atom_weight": real(),
    }


def _pair_fields():
    from mlpot.models.gap import MAX_SPARSE

    return {
        "cutoff": positive,
        "cutoff_transition_width": real(0.0),
        "theta": positive,
        "delta": optional(positive),
        "n_sparse": integer(1, MAX_SPARSE),
        "species": optional(elements(length=2)),
    }


def _settings_fields():
    from mlpot.models.gap import _SPARSE_METHODS, MAX_SPARSE

    sigmas = listed(positive, length=3)
    return {
        "zeta": positive,
        "n_sparse": integer(1, MAX_SPARSE),
        "delta": optional(positive),
        "sparse_method": string(_SPARSE_METHODS),
        "default_sigma": sigmas,
        "group_sigma": mapping(string(), sigmas),
        "seed": integer(0),
        "e0": optional(mapping(element, real())),
    }


def _soap_term(data, path: str, settings: dict):
    from mlpot.descriptors import SOAP
    from mlpot.models.gap import _Term

    d = fields(
        data,
        {"type": anything, "delta": positive, "alpha": array(1), "soap": anything, "zeta": positive,
         "sparse_points": array(2), "sparse_species": listed(element, min_length=1)},
        path,
    )
    p = fields(d["soap"], _soap_fields(), _at(path, "soap"))
    if p["cutoff_transition_width"] >= p["cutoff"]:
        _fail(_at(path, "soap.cutoff_transition_width"), f"must be smaller than the cutoff {p['cutoff']}")
    soap = _build(_at(path, "soap"), lambda: SOAP(**p, normalize=True))
    if d["zeta"] != settings["zeta"]:
        _fail(_at(path, "zeta"), f"is {d['zeta']}, but settings.zeta is {settings['zeta']}")
    if settings["delta"] is not None and d["delta"] != settings["delta"]:
        _fail(_at(path, "delta"), f"is {d['delta']}, but settings.delta is {settings['delta']}")
    species = d["sparse_species"]
    order = sorted(atomic_numbers[s] for s in soap.species)
    numbers = [atomic_numbers[s] for s in species]
    for k, z in enumerate(numbers):
        if z not in order:
            _fail(f"{_at(path, 'sparse_species')}[{k}]", f"{species[k]} is not in {_at(path, 'soap.species')}")
        if k and z < numbers[k - 1]:
            _fail(f"{_at(path, 'sparse_species')}[{k}]", "the sparse points must be sorted by atomic number")
    n = len(species)
    x = d["sparse_points"]
    _shape(x, (n, soap.n_features), _at(path, "sparse_points"),
           f"one SOAP vector per entry of {_at(path, 'sparse_species')}")
    x = x.reshape(n, soap.n_features)
    _shape(d["alpha"], (n,), _at(path, "alpha"), f"one weight per entry of {_at(path, 'sparse_species')}")
    term = _build(path, lambda: _Term("soap", soap, d["delta"], x, numbers, d["zeta"]))
    return term, d["alpha"]


def _pair_term(data, path: str):
    from mlpot.models.gap import Distance2b, _Term

    d = fields(
        data,
        {"type": anything, "delta": positive, "alpha": array(1), "distance_2b": anything,
         "sparse_points": array(1, low=0.0)},
        path,
    )
    p = fields(d["distance_2b"], _pair_fields(), _at(path, "distance_2b"))
    if p["cutoff_transition_width"] > p["cutoff"]:
        _fail(_at(path, "distance_2b.cutoff_transition_width"), f"must be at most the cutoff {p['cutoff']}")
    if p["delta"] is not None and d["delta"] != p["delta"]:
        _fail(_at(path, "delta"), f"is {d['delta']}, but {_at(path, 'distance_2b.delta')} is {p['delta']}")
    x = d["sparse_points"]
    if not len(x):
        _fail(_at(path, "sparse_points"), "must not be empty")
    _shape(d["alpha"], (len(x),), _at(path, "alpha"), f"one weight per entry of {_at(path, 'sparse_points')}")
    pair = _build(_at(path, "distance_2b"), lambda: Distance2b(**p, sparse_points=x))
    term = _build(path, lambda: _Term("distance_2b", pair, d["delta"], x))
    return term, d["alpha"]


def _gap_terms(value, settings: dict):
    terms = listed(anything, min_length=1)(value, "terms")
    out = []
    for k, data in enumerate(terms):
        path = f"terms[{k}]"
        if not isinstance(data, dict):
            _fail(path, f"must be a JSON object, got {_show(data)}")
        kind = string(["soap", "distance_2b"])(data.get("type"), _at(path, "type"))
        out.append(_soap_term(data, path, settings) if kind == "soap" else _pair_term(data, path))
    return out


def _gap_e0(value, terms, settings: dict) -> dict:
    """e0 of exactly the elements of the terms' species (any, if no term names species),
    equal to settings.e0 where that is given."""
    e0 = mapping(element, real())(value, "e0")
    known = set()
    for t in terms:
        species = t.descriptor.species
        known.update(species or ())
    if known:
        missing = sorted(known - set(e0), key=atomic_numbers.get)
        if missing:
            _fail(f"e0.{missing[0]}", f"is missing (every element of the descriptors needs one; missing: {missing})")
        extra = sorted(set(e0) - known, key=atomic_numbers.get)
        if extra:
            _fail(f"e0.{extra[0]}", f"is not an element of the model's descriptors {sorted(known)}")
    elif not e0:
        _fail("e0", "must give the energy of at least one element")
    given = settings["e0"]
    if given is not None:
        for e, v in e0.items():
            if given.get(e) != v:
                _fail(f"e0.{e}", f"is {v}, but settings.e0.{e} is {given.get(e)}")
    return e0


def _posterior(value, terms) -> np.ndarray:
    """The upper triangle of R (row-major) with R^T R = K_MM + K_MN Sigma^-1 K_NM, which is
    positive definite exactly when no diagonal entry of R is 0."""
    m = sum(t.n_sparse for t in terms)
    upper = array(1)(value, "posterior_factor")
    counts = ", ".join(f"terms[{k}] {t.n_sparse}" for k, t in enumerate(terms))
    _shape(upper, (m * (m + 1) // 2,), "posterior_factor",
           f"the upper triangle of {m} x {m}, for the sparse points of all terms: {counts}")
    posterior = np.zeros((m, m))
    posterior[np.triu_indices(m)] = upper
    diagonal = np.diagonal(posterior)
    if (diagonal == 0).any():
        k = int(np.argmax(diagonal == 0))
        _fail("posterior_factor", f"diagonal entry {k} is 0: R must be nonsingular (R^T R positive definite)")
    return posterior


def gap_from_dict(cls, data):
    d = fields(
        data,
        {"kind": string(["GAP"]), "terms": anything, "e0": anything, "jitter": real(0.0),
         "settings": anything, "posterior_factor": anything, "baseline": anything},
    )
    settings = fields(d["settings"], _settings_fields(), "settings")
    parts = _gap_terms(d["terms"], settings)
    terms = [t for t, _ in parts]
    alpha = np.concatenate([a for _, a in parts])
    posterior = _posterior(d["posterior_factor"], terms)
    e0 = _gap_e0(d["e0"], terms, settings)
    baseline = baseline_from_dict(d["baseline"])
    return _build(
        "GAP model",
        lambda: cls._from_parts(
            [t.descriptor for t in terms], settings, terms, alpha, e0, d["jitter"], posterior, baseline
        ),
    )
