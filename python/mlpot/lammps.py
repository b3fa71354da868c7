"""LAMMPS ``pair_style snap`` files: coefficients (.snapcoeff) and parameters (.snapparam),
in both directions.

Formats as LAMMPS reads them (src/ML-SNAP/pair_snap.cpp): '#' starts a comment; the
coefficient file has a line "n_elements ncoeffall", then per element a line
"symbol radius weight" and ncoeffall lines of one number; the parameter file has
"keyword value" lines with pair_snap's defaults for those missing (notably bzeroflag 1 and
switchflag 1). With chemflag, LAMMPS orders the element triples by the element list of the
``pair_coeff`` command; mlpot uses the order of the coefficient file, so list the elements
in that order in ``pair_coeff``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from mlpot.descriptors import Bispectrum
from mlpot.modelfile import ModelFileError
from mlpot.models.snap import SNAP

__all__ = ["read_snap", "write_snap"]

# pair_style snap defaults for the optional keywords
_DEFAULTS = {
    "rfac0": 0.99363,
    "rmin0": 0.0,
    "switchflag": 1,
    "bzeroflag": 1,
    "quadraticflag": 0,
    "chemflag": 0,
    "bnormflag": 0,
    "wselfallflag": 0,
    "switchinnerflag": 0,
}
_FLOATS = {"rcutfac", "rfac0", "rmin0"}
_FLAGS = {"switchflag", "bzeroflag", "quadraticflag", "chemflag", "bnormflag", "wselfallflag", "switchinnerflag"}
_INTS = {"twojmax"} | _FLAGS
# accepted and ignored: old files' diagonalstyle (current LAMMPS rejects it) and LAMMPS's
# performance knobs
_IGNORED = {"diagonalstyle", "chunksize", "parallelthresh"}


def write_snap(model, prefix) -> tuple[str, str]:
    """Write ``prefix.snapcoeff`` and ``prefix.snapparam`` for LAMMPS ``pair_style snap``
    (``pair_coeff * * prefix.snapcoeff prefix.snapparam <elements in model.elements order>``).
    Numbers are written with 17 significant digits, so LAMMPS reads the exact coefficients.
    A baseline is not part of these files: a warning says so, and LAMMPS needs it as a
    separate pair style (``pair_style hybrid/overlay zbl ... snap``). Returns the two paths."""
    if not getattr(model, "writes_lammps", False):
        raise TypeError(
            f"LAMMPS SNAP files are written for mlpot.SNAP models only, got {type(model).__name__}"
        )
    coefficients = model.coefficients
    if coefficients is None:
        raise ValueError("the model has no coefficients yet: fit it before writing LAMMPS files")
    if model.baseline is not None:
        warnings.warn(
            "the model's baseline is not written to the SNAP files: add it in LAMMPS with "
            "pair_style hybrid/overlay",
            stacklevel=2,
        )
    bs = model.bispectrum
    prefix = os.fspath(prefix)
    coeff_path, param_path = prefix + ".snapcoeff", prefix + ".snapparam"
    lines = ["# SNAP coefficients written by mlpot", "", f"{len(bs.elements)} {model.n_coefficients}"]
    for e in bs.elements:
        lines.append(f"{e} {bs.radelem[e]!r} {bs.wj[e]!r}")
        lines.extend(f"{float(c)!r}" for c in coefficients[e])
    with open(coeff_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    params = [
        "# SNAP parameters written by mlpot",
        f"rcutfac {bs.rcutfac!r}",
        f"twojmax {bs.twojmax}",
        f"rfac0 {bs.rfac0!r}",
        f"rmin0 {bs.rmin0!r}",
        f"switchflag {int(bs.switchflag)}",
        f"bzeroflag {int(bs.bzeroflag)}",
        f"quadraticflag {int(model.quadratic)}",
        f"chemflag {int(bs.chemflag)}",
        f"bnormflag {int(bs.bnormflag)}",
        f"wselfallflag {int(bs.wselfallflag)}",
    ]
    with open(param_path, "w") as f:
        f.write("\n".join(params) + "\n")
    return coeff_path, param_path


def _words(path):
    """(line number, words) of the non-blank lines, comments and quotes stripped."""
    try:
        with open(path) as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ModelFileError(f"{path} is not a text file") from None
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].replace('"', " ").replace("'", " ").split()
        if words:
            yield number, words


def _read_params(path) -> dict:
    """The parameters of a .snapparam file over pair_style snap's defaults. Each keyword at
    most once, flags 0 or 1: LAMMPS would take the last of repeated keywords and any
    non-zero flag as 1, which hides mistakes."""
    params = dict(_DEFAULTS)
    first_line: dict[str, int] = {}
    for number, words in _words(path):
        key = words[0]
        if key in _IGNORED:
            continue
        if key in ("sinner", "dinner"):
            raise ModelFileError(f"{path}:{number}: {key} (switchinnerflag) is not supported by mlpot")
        if key not in _FLOATS and key not in _INTS:
            raise ModelFileError(f"{path}:{number}: unknown SNAP parameter {key!r}")
        if key in first_line:
            raise ModelFileError(f"{path}:{number}: {key} is given twice (first on line {first_line[key]})")
        first_line[key] = number
        if len(words) != 2:
            raise ModelFileError(f"{path}:{number}: expected '{key} value', got {' '.join(words)!r}")
        try:
            params[key] = float(words[1]) if key in _FLOATS else int(words[1])
        except ValueError:
            raise ModelFileError(f"{path}:{number}: bad value {words[1]!r} for {key}") from None
        if key in _FLAGS and params[key] not in (0, 1):
            raise ModelFileError(f"{path}:{number}: {key} must be 0 or 1, got {words[1]}")
    for key in ("rcutfac", "twojmax"):
        if key not in params:
            raise ModelFileError(f"{path}: the required parameter {key} is missing")
    if params["switchinnerflag"]:
        raise ModelFileError(f"{path}:{first_line['switchinnerflag']}: switchinnerflag 1 is not supported by mlpot")
    return params


def _read_coefficients(path):
    """Elements, radii, weights and coefficients of a .snapcoeff file: exactly the declared
    number of element blocks, each of exactly ncoeffall coefficients, and nothing after."""
    lines = _words(path)

    def next_line(what):
        try:
            return next(lines)
        except StopIteration:
            raise ModelFileError(f"{path} ends early: expected {what}") from None

    header, words = next_line("'n_elements ncoeffall'")
    try:
        n_elements, n_coefficients = (int(w) for w in words)
    except ValueError:
        raise ModelFileError(f"{path}:{header}: expected 'n_elements ncoeffall', got {' '.join(words)!r}") from None
    if n_elements < 1 or n_coefficients < 2:
        raise ModelFileError(f"{path}:{header}: bad element or coefficient count")
    counts = f"the {n_coefficients} per element declared on line {header}"
    elements, radelem, wj, coefficients = [], {}, {}, {}
    for _ in range(n_elements):
        number, words = next_line("an element line 'symbol radius weight'")
        if len(words) == 1 and _is_number(words[0]) and elements:
            raise ModelFileError(f"{path}:{number}: element {elements[-1]} has more coefficients than {counts}")
        if len(words) != 3:
            raise ModelFileError(f"{path}:{number}: expected 'symbol radius weight', got {' '.join(words)!r}")
        symbol = words[0]
        if symbol in radelem:
            raise ModelFileError(f"{path}:{number}: element {symbol} appears twice")
        try:
            radelem[symbol], wj[symbol] = float(words[1]), float(words[2])
        except ValueError:
            raise ModelFileError(f"{path}:{number}: bad radius or weight in {' '.join(words)!r}") from None
        values = []
        for _ in range(n_coefficients):
            number, words = next_line(f"{n_coefficients} coefficients of {symbol}")
            if len(words) == 3 and not _is_number(words[0]):  # the next element line
                raise ModelFileError(
                    f"{path}:{number}: element {symbol} has {len(values)} coefficients, not {counts}"
                )
            if len(words) != 1:
                raise ModelFileError(f"{path}:{number}: expected one coefficient, got {' '.join(words)!r}")
            try:
                values.append(float(words[0]))
            except ValueError:
                raise ModelFileError(f"{path}:{number}: bad coefficient {words[0]!r}") from None
        elements.append(symbol)
        coefficients[symbol] = np.array(values)
    _check_end(path, lines, elements, header, counts)
    return elements, radelem, wj, coefficients, n_coefficients


def _check_end(path, lines, elements, header: int, counts: str) -> None:
    """ModelFileError naming the first line after the declared element blocks, if any."""
    number, words = next(lines, (None, None))
    if number is None:
        return
    if len(words) == 1 and _is_number(words[0]):
        problem = f"element {elements[-1]} has more coefficients than {counts}"
    elif len(words) == 3:
        problem = (
            f"an element block ({words[0]}) after the {len(elements)} declared on line {header}; "
            "fix the element count there"
        )
    else:
        problem = f"unexpected {' '.join(words)!r} after the {len(elements)} element block(s) declared on line {header}"
    raise ModelFileError(f"{path}:{number}: {problem}")


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def read_snap(coeff, param):
    """A `mlpot.SNAP` from LAMMPS ``.snapcoeff`` and ``.snapparam`` files, with
    pair_style snap's defaults for missing keywords and legacy ``diagonalstyle`` lines
    ignored. Elements are in the order of the coefficient file. Raises
    mlpot.ModelFileError naming the file, line and problem."""
    coeff, param = os.fspath(coeff), os.fspath(param)
    params = _read_params(param)
    elements, radelem, wj, coefficients, n_coefficients = _read_coefficients(coeff)
    try:
        bs = Bispectrum(
            params["twojmax"],
            params["rcutfac"],
            rfac0=params["rfac0"],
            rmin0=params["rmin0"],
            radelem=radelem,
            wj=wj,
            switchflag=bool(params["switchflag"]),
            bzeroflag=bool(params["bzeroflag"]),
            chemflag=bool(params["chemflag"]),
            bnormflag=bool(params["bnormflag"]),
            wselfallflag=bool(params["wselfallflag"]),
        )
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{param} with {coeff}: {e}") from None
    model = SNAP(bs, quadratic=bool(params["quadraticflag"]))
    if n_coefficients != model.n_coefficients:
        raise ModelFileError(
            f"{coeff} has {n_coefficients} coefficients per element, but twojmax "
            f"{params['twojmax']}{' with chemflag' if bs.chemflag else ''}"
            f"{' and quadraticflag' if model.quadratic else ''} needs {model.n_coefficients}"
        )
    try:
        model.coefficients = coefficients
    except ValueError as e:
        raise ModelFileError(f"{coeff}: {e}") from None
    return model
