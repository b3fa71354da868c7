"""Model files: a versioned envelope, JSON settings, binary arrays, no pickle.

Version 2 (written by `save`) is one zip archive (stored, not compressed: float data hardly
compress, and reading stays a copy) holding ``model.json``, the JSON object
``{"format": "mlpot-model", "version": 2, "kind": ..., ...}``, and one ``.npy`` member per
large array (``arrays/<field path>.npy``, numpy's own format, read with
``allow_pickle=False``); in the JSON such a field is ``{"$array": "<field path>"}``. One
file rather than JSON and a sibling .npz: a model is one thing to copy, mail or archive, and
the zip is read with the standard library and numpy alone. Arrays are float64 and come back
bit-identical; a GAP of 4000 sparse points is written and read in a fraction of a second.

Version 1 (mlpot up to the first releases) is the same object as JSON text, arrays as lists
of floats (Python's shortest round-tripping repr): still read, exactly, and written by
``save(model, path, version=1)``.

The kind ("SNAP", "GAP") selects the class registered for it (`mlpot.models.registry`),
whose ``from_dict`` validates the whole document, with the checks of this module, before
the model is built: the type (a JSON bool is not a number, a float is not an integer, an
array must be float64 of the right shape, finite), range and shape of every field and the
consistency between fields. Every problem raises `ModelFileError` naming the file and the
field by its path, e.g. ``terms[0].zeta``. A load only reads the file.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import sys
import zipfile
import zlib
from collections.abc import Callable, Mapping

import numpy as np
from ase.data import atomic_numbers

from mlpot.models import registry

__all__ = ["FORMAT", "VERSION", "ModelFileError", "load", "save"]

FORMAT = "mlpot-model"
VERSION = 2
#: versions this mlpot reads
READABLE = (1, 2)
#: the JSON member of a version-2 archive
DOCUMENT = "model.json"
#: the key of an array reference in a version-2 document
ARRAY = "$array"


class ModelFileError(ValueError):
    """A model file (or model data) is corrupt, truncated, of another version or kind."""


# ------------------------------------------------------------------------- writing


def save(model, path, version: int = VERSION, **options) -> None:
    """Write ``model`` to ``path``: version 2 (default; arrays in binary) or 1 (JSON text),
    the body ``model._document(**options)``. The file is replaced atomically, so a failed
    save leaves any previous file intact, and gets the permissions of any new file (0o666
    less the umask)."""
    if version not in READABLE or type(version) is not int:
        raise ValueError(f"version must be one of {READABLE}, got {version!r}")
    body = model._document(**options)
    path = os.fspath(path)
    fd, tmp = _create_beside(os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            if version == 1:
                document = {"format": FORMAT, "version": 1, **plain(body)}
                f.write(json.dumps(document, allow_nan=False, indent=1).encode("utf-8") + b"\n")
            else:
                _write_archive(f, body)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plain(value):
    """``value`` with every numpy array (and numpy scalar) as plain Python lists and floats."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _write_archive(f, body: dict) -> None:
    arrays: dict[str, np.ndarray] = {}
    document = {"format": FORMAT, "version": VERSION, **_references(body, "", arrays)}
    text = json.dumps(document, allow_nan=False, indent=1)
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr(DOCUMENT, text + "\n")
        for name, a in arrays.items():
            with archive.open(_member(name), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def _references(value, path: str, arrays: dict):
    """``value`` with each numpy array replaced by {"$array": its path}, the arrays
    collected in ``arrays``."""
    if isinstance(value, dict):
        return {k: _references(v, at(path, k), arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_references(v, f"{path}[{k}]", arrays) for k, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.dtype != np.float64:
            raise TypeError(f"{path}: model arrays are float64, got {value.dtype}")
        arrays[path] = np.ascontiguousarray(value)
        return {ARRAY: path}
    return value


def _member(name: str) -> str:
    return f"arrays/{name}.npy"


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


# ------------------------------------------------------------------------- reading


def load(path):
    """Read a model written by ``model.save`` (version 2, or version 1 JSON). Raises
    ModelFileError naming the file and the problem (not a model file, corrupt or truncated,
    wrong format or version, unknown kind, a missing, extra or bad field or array by its
    path). The file is only read."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    unreferenced: list[str] = []
    if data.startswith(b"PK"):
        document = _read_archive(path, data, unreferenced)
    else:
        document = _read_text(path, data)
    kind = document.get("kind")
    cls = registry.model_class(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(
            f"{path} holds a model of unknown kind {show(kind)} (known: {list(registry.kinds())})"
        )
    body = {k: v for k, v in document.items() if k not in ("format", "version")}
    try:
        model = cls.from_dict(body)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None
    if unreferenced:  # after the fields: a field whose reference was broken is named first
        raise ModelFileError(f"{path}: the archive has member(s) {unreferenced} that no field refers to")
    return model


def _read_text(path: str, data: bytes) -> dict:
    """The document of a version-1 (JSON text) file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{path} is not a model file (neither an mlpot archive nor JSON text: {e})") from None
    document = _parse(path, text)
    _check_envelope(path, document, (1,))
    return document


def _parse(path: str, text: str):
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ModelFileError(f"{path} is not a valid mlpot model file (JSON nested too deeply)") from None
    except (json.JSONDecodeError, ValueError) as e:
        raise ModelFileError(f"{path} is not a valid mlpot model file (corrupt or truncated JSON: {e})") from None


def _check_envelope(path: str, document, versions: tuple[int, ...]) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an mlpot model file (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if type(version) is not int or version not in versions:  # True == 1, but is no version
        if type(version) is int and version in READABLE:
            container = "an archive" if version == 2 else "JSON text"
            raise ModelFileError(f"{path} says version {version}, but a version-{version} file is {container}")
        raise ModelFileError(
            f"{path} has model file version {show(version)}; this mlpot reads versions {list(READABLE)}"
        )


def _read_archive(path: str, data: bytes, unreferenced: list) -> dict:
    """The document of a version-2 file, its array references replaced by the arrays; the
    members no reference names are appended to ``unreferenced``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        if DOCUMENT not in names:
            raise ModelFileError(f"{path} is an archive without {DOCUMENT}: not an mlpot model file")
        text = archive.read(DOCUMENT).decode("utf-8")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, UnicodeDecodeError, NotImplementedError) as e:
        raise ModelFileError(f"{path} is not a valid mlpot model file (corrupt or truncated archive: {e})") from None
    document = _parse(path, text)
    _check_envelope(path, document, (2,))
    members: dict[str, str] = {}  # member -> the field that refers to it, filled by _resolve
    try:
        resolved = _resolve(archive, data, document, "", members)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None
    unreferenced.extend(sorted(set(names) - {DOCUMENT} - set(members)))
    return resolved


def _resolve(archive: zipfile.ZipFile, data: bytes, value, path: str, members: dict):
    if isinstance(value, dict):
        if ARRAY in value:
            return _read_array(archive, data, value, path, members)
        return {k: _resolve(archive, data, v, at(path, k), members) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(archive, data, v, f"{path}[{k}]", members) for k, v in enumerate(value)]
    return value


def _read_array(archive: zipfile.ZipFile, data: bytes, reference: dict, path: str, members: dict) -> np.ndarray:
    """The array a reference {"$array": name} names: a float64 .npy member, its declared
    size checked against the member's before anything is allocated."""
    name = reference[ARRAY]
    if set(reference) != {ARRAY} or not isinstance(name, str):
        fail(path, f"an array reference is {{\"{ARRAY}\": name}}, got {show(reference)}")
    member = _member(name)
    if member in members:
        fail(path, f"its \"{ARRAY}\" names the array {name!r} of {members[member]} a second time")
    try:
        info = archive.getinfo(member)
    except KeyError:
        fail(path, f"its \"{ARRAY}\" names the array {name!r}, but the archive has no member {member}")
    members[member] = path
    raw = _member_bytes(archive, info, data, path)
    try:
        f = io.BytesIO(raw[:_NPY_HEADER_MAX])
        version = np.lib.format.read_magic(f)
        read_header = _NPY_HEADERS.get(version)
        if read_header is None:
            fail(path, f"the array {member} has .npy format version {version}, not 1.0 or 2.0")
        shape, fortran, dtype = read_header(f, max_header_size=_NPY_HEADER_MAX)
    except ModelFileError:
        raise
    except (ValueError, TypeError, OSError, EOFError, SyntaxError) as e:
        fail(path, f"the array {member} is not a valid .npy array ({e})")
    offset = f.tell()
    _check_dtype(dtype, path)
    count = math.prod(shape)
    if len(raw) - offset != count * dtype.itemsize:
        fail(path, f"the array {member} declares shape {shape} ({count * dtype.itemsize} bytes of data), "
             f"but holds {len(raw) - offset} bytes")
    a = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape, order="F" if fortran else "C")
    # always a copy, in native byte order and C order: a view of the file's bytes would be
    # unaligned, and BLAS may then sum in another order (results must be bit-identical)
    return np.array(a, dtype=np.float64, order="C")


_NPY_HEADER_MAX = 10_000  # bytes: a model's array headers are < 200

#: the fixed part of a zip local file header: signature, ..., name length, extra length
_LOCAL_HEADER = 30


def _member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes, path: str):
    """A member's bytes, CRC-checked: for a stored member a view into ``data`` (no copy of
    large arrays), otherwise decompressed by zipfile."""
    try:
        if info.compress_type != zipfile.ZIP_STORED:
            return archive.read(info)
        start = info.header_offset
        header = data[start : start + _LOCAL_HEADER]
        if len(header) < _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local file header")
        name_length = int.from_bytes(header[26:28], "little")
        extra_length = int.from_bytes(header[28:30], "little")
        first = start + _LOCAL_HEADER + name_length + extra_length
        raw = memoryview(data)[first : first + info.file_size]
        if len(raw) != info.file_size or zlib.crc32(raw) != info.CRC:
            raise zipfile.BadZipFile(f"the data of {info.filename} are truncated or corrupt (CRC)")
        return raw
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError, zlib.error) as e:
        fail(path, f"the archive member {info.filename} cannot be read ({e})")


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _check_dtype(dtype: np.dtype, path: str) -> None:
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        fail(path, f"must be an array of float64, got the dtype {dtype} (object and structured arrays are refused)")
    if dtype.kind != "f" or dtype.itemsize != 8:
        fail(path, f"must be an array of float64, got the dtype {dtype}")


def _reject_constant(name):
    raise ValueError(f"{name} is not a valid number in a model file")


# ------------------------------------------------------------------ field checks
#
# A check takes (value, path) and returns the value, converted where that helps (numeric
# lists become float64 arrays), or raises ModelFileError naming the path.

Check = Callable[[object, str], object]


def fail(path: str, message: str):
    raise ModelFileError(f"{path}: {message}" if path else message)


def at(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def show(value) -> str:
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
        fail(path, f"must be a JSON object, got {show(data)}")
    where = path or "the model"
    missing = [k for k in required if k not in data]
    if missing:
        fail(at(path, missing[0]), f"is missing ({where} lacks the field(s) {missing})")
    extra = [k for k in data if k not in required]
    if extra:
        fail(at(path, extra[0]), f"unknown field ({where} has unknown field(s) {extra})")
    return {key: check(data[key], at(path, key)) for key, check in required.items()}


def _number(value, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(path, f"must be a number, got {show(value)}")
    x = float(value) if abs(value) <= sys.float_info.max else math.inf  # exact for any int
    if not math.isfinite(x):
        fail(path, f"must be finite, got {x}")
    return x


def real(low=None, high=None, *, low_open=False) -> Check:
    """A finite number in [low, high] ((low, high] with ``low_open``)."""

    def check(value, path):
        x = _number(value, path)
        if low is not None and (x < low or (low_open and x == low)):
            fail(path, f"must be {'>' if low_open else '>='} {low}, got {x}")
        if high is not None and x > high:
            fail(path, f"must be <= {high}, got {x}")
        return x

    return check


positive = real(0.0, low_open=True)


def integer(low: int, high: int | None = None) -> Check:
    """A JSON integer (not a bool, not 4.0) in [low, high]."""

    def check(value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            fail(path, f"must be an integer, got {show(value)}")
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f">= {low} and <= {high}"
            fail(path, f"must be {allowed}, got {show(value)}")
        return value

    return check


def boolean(value, path):
    if not isinstance(value, bool):
        fail(path, f"must be true or false, got {show(value)}")
    return value


def string(choices=None) -> Check:
    def check(value, path):
        if not isinstance(value, str):
            fail(path, f"must be a string, got {show(value)}")
        if choices is not None and value not in choices:
            fail(path, f"must be one of {list(choices)}, got {show(value)}")
        return value

    return check


def element(value, path) -> str:
    if not isinstance(value, str) or value not in atomic_numbers or value == "X":
        fail(path, f"must be an element symbol, got {show(value)}")
    return value


def optional(check: Check) -> Check:
    return lambda value, path: None if value is None else check(value, path)


def anything(value, path):
    return value


def listed(item: Check, length: int | None = None, min_length: int = 0) -> Check:
    """A JSON list of ``length`` (or at least ``min_length``) entries, each checked."""

    def check(value, path):
        if not isinstance(value, list):
            fail(path, f"must be a list, got {show(value)}")
        if length is not None and len(value) != length:
            fail(path, f"must have {length} entries, got {len(value)}")
        if len(value) < min_length:
            fail(path, f"must have at least {min_length} entries, got {len(value)}")
        return [item(v, f"{path}[{k}]") for k, v in enumerate(value)]

    return check


def elements(min_length: int = 1, length: int | None = None) -> Check:
    """A list of distinct element symbols."""
    symbols = listed(element, length, min_length)

    def check(value, path):
        out = symbols(value, path)
        for k, e in enumerate(out):
            if e in out[:k]:
                fail(f"{path}[{k}]", f"names {e} a second time")
        return out

    return check


def mapping(key: Check, value: Check) -> Check:
    """A JSON object of any keys, each key and value checked."""

    def check(data, path):
        if not isinstance(data, dict):
            fail(path, f"must be a JSON object, got {show(data)}")
        return {key(k, at(path, k)): value(v, at(path, k)) for k, v in data.items()}

    return check


def array(ndim: int, low: float | None = None) -> Check:
    """A list (ndim 1) or list of equally long lists (ndim 2) of finite numbers (>= low), as
    a float64 array. The types are checked per entry in C (set of types), and the entry is
    located only when one is bad, so that large arrays load quickly."""

    def check(value, path):
        if isinstance(value, np.ndarray):
            return _checked_array(value, path, ndim, low)
        rows = _rows(value, path, ndim)
        for k, row in enumerate(rows):
            if not set(map(type, row)) <= {int, float}:
                bad = next(m for m, v in enumerate(row) if type(v) not in (int, float))
                _number(row[bad], _entry(path, ndim, k, bad))
        try:
            a = np.array(value, dtype=np.float64)
        except OverflowError:
            k, m = _first(rows, lambda v: abs(v) > sys.float_info.max)
            fail(_entry(path, ndim, k, m), f"is out of the range of floats ({show(rows[k][m])})")
        bad = ~np.isfinite(a) if low is None else ~(np.isfinite(a) & (a >= low))
        if bad.any():
            index = np.argwhere(bad)[0]
            k, m = (0, int(index[0])) if ndim == 1 else (int(index[0]), int(index[1]))
            need = "finite" if low is None else f"finite and >= {low}"
            fail(_entry(path, ndim, k, m), f"must be {need}, got {rows[k][m]}")
        return a

    return check


def _checked_array(a: np.ndarray, path: str, ndim: int, low: float | None) -> np.ndarray:
    """A binary (version 2) array: float64 of ``ndim`` dimensions, finite (and >= low)."""
    _check_dtype(a.dtype, path)
    if a.ndim != ndim:
        fail(path, f"must be an array of {ndim} dimension(s), got shape {a.shape}")
    bad = ~np.isfinite(a) if low is None else ~(np.isfinite(a) & (a >= low))
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        need = "finite" if low is None else f"finite and >= {low}"
        fail(f"{path}" + "".join(f"[{i}]" for i in index), f"must be {need}, got {a[index]}")
    return a


def _rows(value, path: str, ndim: int) -> list:
    if not isinstance(value, list):
        fail(path, f"must be a list of numbers{' per row' if ndim == 2 else ''} (or a binary array, "
                   f"{{\"{ARRAY}\": name}}), got {show(value)}")
    if ndim == 1:
        return [value]
    width = None
    for k, row in enumerate(value):
        if not isinstance(row, list):
            fail(f"{path}[{k}]", f"must be a list of numbers, got {show(row)}")
        if width is not None and len(row) != width:
            fail(f"{path}[{k}]", f"has {len(row)} values, but {path}[0] has {width}")
        width = len(row)
    return value


def _entry(path: str, ndim: int, row: int, column: int) -> str:
    return f"{path}[{column}]" if ndim == 1 else f"{path}[{row}][{column}]"


def _first(rows, bad) -> tuple[int, int]:
    return next((k, m) for k, row in enumerate(rows) for m, v in enumerate(row) if bad(v))


def check_shape(a: np.ndarray, shape: tuple, path: str, why: str) -> None:
    if a.shape != shape and not (a.size == 0 and np.prod(shape) == 0):
        fail(path, f"must have shape {shape} ({why}), got {a.shape}")


def build(path: str, make):
    """``make()``, with the ValueError or TypeError of a constructor as a ModelFileError at
    ``path`` (the message names the parameter)."""
    try:
        return make()
    except ModelFileError:
        raise
    except (TypeError, ValueError) as e:
        message = str(e)
    fail(path, message)
