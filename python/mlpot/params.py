"""Typed parameter specs: each descriptor, baseline and model declares its parameters once.

A spec is a frozen dataclass whose fields carry a `Kind` (what values a parameter takes)
and a one-line doc. The one declaration serves

- the constructor: ``BispectrumParams(twojmax=..., ...)`` checks and converts every value
  (TypeError for a value of the wrong type, ValueError out of range, both naming the
  parameter) and the relations between them (`Spec._relations`);
- the TOML configuration of ``mlpot fit``: `Spec.config_kinds` gives the keys of a section
  and their TOML types, checked before anything is built;
- model files: `Spec.to_dict` / `Spec.from_dict` (a JSON object of every field; reading is
  strict about JSON types, e.g. ``true`` is not a number, and names the field by its path);
- a JSON schema: `Spec.json_schema`.

Why dataclasses and a small validator rather than pydantic (v2, strict mode): the kinds of
parameter here are few (integers and reals with bounds, flags, choices, element lists and
per-element tables), and the messages are part of the interface (they name the parameter,
the allowed range and the value, and the CLI adds the TOML type of the value); the
constructors also accept what scientists pass from Python (numpy scalars, atomic numbers
for elements, 0/1 for LAMMPS flags) while files and configurations are strict. Writing the
kinds (about 300 lines) costs less than bending pydantic's validators and error texts to
both modes, and keeps mlpot free of a compiled dependency it would need for nothing else.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS
from ase.data import chemical_symbols as _SYMBOLS

__all__ = [
    "Choice",
    "Elements",
    "Flag",
    "Integer",
    "Kind",
    "Optional",
    "Issue",
    "ParameterTypeError",
    "ParameterValueError",
    "PerElement",
    "Real",
    "Reals",
    "Spec",
    "Table",
    "param",
]

#: the element symbols a parameter may name (not the dummy "X")
ELEMENTS = tuple(_SYMBOLS[1:])


@dataclasses.dataclass(frozen=True)
class Issue:
    """What a refused parameter value was: ``name`` the parameter (with an index or key,
    e.g. ``radelem['Ni']``), ``requirement`` what it must be, ``value`` the value given. It
    rides on the plain ValueError/TypeError raised, as ``error.parameter``, so that the CLI
    can say the value's TOML type too."""

    name: str
    requirement: str
    value: Any = dataclasses.MISSING

    def message(self) -> str:
        got = "" if self.value is dataclasses.MISSING else f", got {show(self.value)}"
        return f"{self.name} {self.requirement}{got}"


def _at_path(error: Exception, path: str) -> Exception:
    """``error`` about a field, as a model file names it: "path.field: must be ..., got ..."."""
    issue = getattr(error, "parameter", None)
    if issue is None:
        return error
    dotted = f"{path}.{issue.name}" if path else issue.name
    if str(error) == issue.message():
        got = "" if issue.value is dataclasses.MISSING else f", got {show(issue.value)}"
        message = f"{dotted}: {issue.requirement}{got}"
    else:
        message = f"{path}: {error}" if path else str(error)
    return _error(type(error), dotted, issue.requirement, issue.value, message)


def _error(cls, name, requirement, value, message):
    issue = Issue(name, requirement, value)
    error = cls(message if message is not None else issue.message())
    error.parameter = issue
    return error


def ParameterTypeError(name: str, requirement: str, value: Any = dataclasses.MISSING, message: str | None = None):
    """A TypeError for a parameter of the wrong type, carrying its `Issue`."""
    return _error(TypeError, name, requirement, value, message)


def ParameterValueError(name: str, requirement: str, value: Any = dataclasses.MISSING, message: str | None = None):
    """A ValueError for a parameter out of range or inconsistent with another, carrying its `Issue`."""
    return _error(ValueError, name, requirement, value, message)


def show(value) -> str:
    """A short repr for messages: a huge integer as its size (its digits may be refused by
    str(), and are no use to read), NaN as NaN."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bound(x) -> str:
    """A bound as messages write it: 0 rather than 0.0."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) < 1e15 else repr(x)


def _is_number(value) -> bool:
    """A JSON/TOML number: int or float, not bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------- kinds


class Kind:
    """What values a parameter takes. ``check`` is the constructor's check (lenient about
    Python types: numpy scalars, atomic numbers), ``accepts`` the strict test of a JSON or
    TOML value and ``toml`` how messages name that type; ``dump`` makes a checked value
    JSON-able and ``schema`` is its JSON schema."""

    toml: ClassVar[str] = "a value"

    def check(self, value, name: str):
        raise NotImplementedError

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def dump(self, value):
        return value

    def schema(self) -> dict:
        raise NotImplementedError

    def load(self, value, name: str):
        """A JSON value: the strict type test, then the constructor's check."""
        if not self.accepts(value):
            raise ParameterTypeError(name, f"must be {self.toml}", value)
        return self.check(value, name)


@dataclasses.dataclass(frozen=True)
class Integer(Kind):
    """An integer (not a bool, not 4.0) in [low, high]; ``even``: a multiple of 2."""

    low: int
    high: int | None = None
    even: bool = False
    toml: ClassVar[str] = "an integer"

    def requirement(self) -> str:
        what = "an even integer " if self.even else ""
        bounds = f">= {self.low}" if self.high is None else f">= {self.low} and <= {self.high}"
        return f"must be {what}{bounds}"

    def check(self, value, name):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ParameterTypeError(name, "must be an integer", value)
        if value < self.low or (self.high is not None and value > self.high) or (self.even and value % 2):
            raise ParameterValueError(name, self.requirement(), value)
        return int(value)

    def accepts(self, value):
        return isinstance(value, int) and not isinstance(value, bool)

    def schema(self):
        out = {"type": "integer", "minimum": self.low}
        if self.high is not None:
            out["maximum"] = self.high
        if self.even:
            out["multipleOf"] = 2
        return out


@dataclasses.dataclass(frozen=True)
class Real(Kind):
    """A finite real number, optionally bounded: [low, high], an open end with
    ``low_open``/``high_open``. A bool or a string is not a number (float("4") would parse)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    toml: ClassVar[str] = "a number"

    def requirement(self) -> str:
        low, high = _bound(self.low), _bound(self.high)
        if self.low == 0 and self.low_open and self.high is None:
            return "must be positive"
        if self.high is None:
            return f"must be {'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f"must be {'<' if self.high_open else '<='} {high}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"must be in {left}{low}, {high}{right}"

    def check(self, value, name):
        if isinstance(value, (str, bytes, bool, np.bool_)):
            raise ParameterTypeError(name, "must be a number", value)
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ParameterTypeError(name, "must be a number", value) from None
        except OverflowError:  # an integer beyond the float range
            raise ParameterValueError(name, "must be finite", value) from None
        if not math.isfinite(x):
            raise ParameterValueError(name, "must be finite", x)
        low, high = self.low, self.high
        if (low is not None and (x < low or (self.low_open and x == low))) or (
            high is not None and (x > high or (self.high_open and x == high))
        ):
            raise ParameterValueError(name, self.requirement(), x)
        return x

    def accepts(self, value):
        return _is_number(value)

    def schema(self):
        out: dict = {"type": "number"}
        if self.low is not None:
            out["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            out["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        return out


@dataclasses.dataclass(frozen=True)
class Flag(Kind):
    """True or False (also numpy's bool, or the integers 0 and 1, as LAMMPS files write
    flags). Anything else is refused: ``bool("no")`` is True, so a string or a float would
    silently switch a flag on."""

    toml: ClassVar[str] = "a boolean (true or false)"

    def check(self, value, name):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            if value in (0, 1):
                return bool(value)
            raise ParameterValueError(name, "must be True or False (or 0 or 1)", value)
        raise ParameterTypeError(
            name, "", value, f"{name} must be True or False, got {show(value)} ({type(value).__name__})"
        )

    def accepts(self, value):
        return isinstance(value, bool)

    def schema(self):
        return {"type": "boolean"}


@dataclasses.dataclass(frozen=True)
class Choice(Kind):
    """One of a few strings. Its TOML type is a string; the value is checked with the values."""

    choices: tuple[str, ...]
    toml: ClassVar[str] = "a string"

    def check(self, value, name):
        requirement = f"must be one of {', '.join(map(repr, self.choices))}"
        if not isinstance(value, str):
            raise ParameterTypeError(name, requirement, value)
        if value not in self.choices:
            raise ParameterValueError(name, requirement, value)
        return value

    def accepts(self, value):
        return isinstance(value, str)

    def schema(self):
        return {"type": "string", "enum": list(self.choices)}


def atomic_number(key, name: str) -> int:
    """The atomic number of an element symbol or number (1 to 118); ValueError naming
    ``name`` otherwise."""
    if isinstance(key, str):
        if key not in _ATOMIC_NUMBERS or key == "X":
            raise ParameterValueError(name, "", key, f"unknown element {key!r} in {name}")
        return _ATOMIC_NUMBERS[key]
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)) and 1 <= key <= 118:
        return int(key)
    raise ParameterValueError(name, "must name elements by symbol or atomic number", key)


def _element_schema() -> dict:
    return {"type": "string", "enum": list(ELEMENTS)}


@dataclasses.dataclass(frozen=True)
class Elements(Kind):
    """A list of elements (symbols, or atomic numbers from Python), as a tuple of symbols in
    the order given; ``length`` entries exactly, or at least ``min_length``; ``distinct``:
    none twice."""

    min_length: int = 1
    length: int | None = None
    distinct: bool = True
    toml: ClassVar[str] = "an array of element symbols (strings)"

    def check(self, value, name):
        if value is None or isinstance(value, (str, int, np.integer)) or not isinstance(value, Iterable):
            example = "['Si']" if self.length is None else "['Si', 'O']"
            raise ParameterValueError(name, f"must be a list of elements, e.g. {name}={example}", value)
        items = list(value)
        if self.length is not None and len(items) != self.length:
            raise ParameterValueError(name, f"must name {self.length} elements", items)
        if len(items) < self.min_length:
            raise ParameterValueError(name, f"must name at least {self.min_length} element", items)
        numbers = [atomic_number(s, name) for s in items]
        if self.distinct and len(set(numbers)) != len(numbers):
            raise ParameterValueError(name, "names an element twice", items, f"{name} names an element twice: {items}")
        return tuple(_SYMBOLS[z] for z in numbers)

    def accepts(self, value):
        return isinstance(value, list) and all(isinstance(x, str) for x in value)

    def dump(self, value):
        return list(value)

    def schema(self):
        out = {"type": "array", "items": _element_schema(), "minItems": self.min_length}
        if self.length is not None:
            out["minItems"] = out["maxItems"] = self.length
        if self.distinct:
            out["uniqueItems"] = True
        return out


@dataclasses.dataclass(frozen=True)
class PerElement(Kind):
    """A table of numbers by element, ``{"Ni": 0.5}`` (keys: symbols, or atomic numbers from
    Python), as a dict by symbol in the order given; at least ``min_length`` entries."""

    value: Real = Real()
    min_length: int = 1
    toml: ClassVar[str] = "a table of numbers by element, e.g. { Si = 0.5 }"

    def check(self, value, name):
        if not isinstance(value, Mapping) or len(value) < self.min_length:
            what = "a non-empty dict" if self.min_length else "a dict"
            raise ParameterValueError(name, f"must be {what} by element, e.g. {{'Ni': 0.5}}", value)
        out = {}
        for key, x in value.items():
            symbol = _SYMBOLS[atomic_number(key, name)]
            if symbol in out:
                raise ParameterValueError(name, "", value, f"{name} names the element {symbol} twice")
            out[symbol] = self.value.check(x, f"{name}[{key!r}]")
        return out

    def accepts(self, value):
        return isinstance(value, dict) and all(map(_is_number, value.values()))

    def dump(self, value):
        return dict(value)

    def schema(self):
        return {
            "type": "object",
            "propertyNames": _element_schema(),
            "additionalProperties": self.value.schema(),
            "minProperties": self.min_length,
        }


@dataclasses.dataclass(frozen=True)
class Reals(Kind):
    """A list of numbers, each of kind ``item``: ``length`` of them exactly, or at least
    ``min_length``; as a tuple of floats."""

    item: Real = Real()
    length: int | None = None
    min_length: int = 0
    toml: ClassVar[str] = "an array of numbers"

    def check(self, value, name):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Iterable, np.ndarray)):
            count = "" if self.length is None else f"{self.length} "
            raise ParameterTypeError(name, f"must be a list of {count}numbers", value)
        items = list(np.ravel(value)) if isinstance(value, np.ndarray) else list(value)
        if (self.length is not None and len(items) != self.length) or len(items) < self.min_length:
            count = self.length if self.length is not None else f"at least {self.min_length}"
            raise ParameterValueError(name, f"must be a list of {count} numbers", value)
        return tuple(self.item.check(v, f"{name}[{k}]") for k, v in enumerate(items))

    def accepts(self, value):
        return isinstance(value, list) and all(map(_is_number, value))

    def dump(self, value):
        return [float(v) for v in value]

    def schema(self):
        out: dict = {"type": "array", "items": self.item.schema()}
        if self.length is not None:
            out["minItems"] = out["maxItems"] = self.length
        elif self.min_length:
            out["minItems"] = self.min_length
        return out


@dataclasses.dataclass(frozen=True)
class Integers(Kind):
    """A list of integers, each of kind ``item``, at least ``min_length`` of them; as a
    tuple of ints."""

    item: Integer = Integer(0)
    min_length: int = 0
    toml: ClassVar[str] = "an array of integers"

    def check(self, value, name):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Iterable, np.ndarray)):
            raise ParameterTypeError(name, "must be a list of integers", value)
        items = list(value)
        if len(items) < self.min_length:
            raise ParameterValueError(name, f"must be a list of at least {self.min_length} integers", value)
        return tuple(self.item.check(v, f"{name}[{k}]") for k, v in enumerate(items))

    def accepts(self, value):
        return isinstance(value, list) and all(self.item.accepts(v) for v in value)

    def dump(self, value):
        return [int(v) for v in value]

    def schema(self):
        out: dict = {"type": "array", "items": self.item.schema()}
        if self.min_length:
            out["minItems"] = self.min_length
        return out


@dataclasses.dataclass(frozen=True)
class Text(Kind):
    """A string (a path, a name)."""

    toml: ClassVar[str] = "a string"

    def check(self, value, name):
        if not isinstance(value, str):
            raise ParameterTypeError(name, "must be a string", value)
        return value

    def accepts(self, value):
        return isinstance(value, str)

    def schema(self):
        return {"type": "string"}


@dataclasses.dataclass(frozen=True)
class Table(Kind):
    """A table of values of kind ``value`` by name (e.g. by configuration group), as a dict."""

    value: Kind
    toml: ClassVar[str] = "a table"

    def check(self, value, name):
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ParameterTypeError(name, "must be a dict by name", value)
        for key in value:
            if not isinstance(key, str):
                raise ParameterTypeError(name, "must have string keys", key)
        return {key: self.value.check(v, f"{name}[{key!r}]") for key, v in value.items()}

    def accepts(self, value):
        return isinstance(value, dict) and all(map(self.value.accepts, value.values()))

    def dump(self, value):
        return {key: self.value.dump(v) for key, v in value.items()}

    def schema(self):
        return {"type": "object", "additionalProperties": self.value.schema()}


@dataclasses.dataclass(frozen=True)
class Optional(Kind):
    """None, or a value of ``kind``. In TOML (which has no null) None is the key left out."""

    kind: Kind

    @property
    def toml(self) -> str:  # type: ignore[override]
        return self.kind.toml

    def check(self, value, name):
        return None if value is None else self.kind.check(value, name)

    def accepts(self, value):
        return value is None or self.kind.accepts(value)

    def dump(self, value):
        return None if value is None else self.kind.dump(value)

    def schema(self):
        return {"anyOf": [self.kind.schema(), {"type": "null"}]}


# ---------------------------------------------------------------------------- specs


def param(kind: Kind, default=dataclasses.MISSING, *, doc: str, config: bool = True):
    """A spec field: its kind, default and doc (with units). ``config=False``: not a key
    of the TOML configuration (set by the program, or from another section)."""
    return dataclasses.field(default=default, metadata={"kind": kind, "doc": doc, "config": config})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spec:
    """Base of the parameter specs: a frozen dataclass whose fields are made with `param`.
    Creating one checks and converts every field, then `_relations`."""

    #: the name of the descriptor/model kind ("bispectrum", "soap", ...)
    kind: ClassVar[str] = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["kind"].check(getattr(self, f.name), f.name))
        self._relations()

    def _relations(self) -> None:
        """Checks between fields (ParameterValueError naming them), and derived defaults."""

    @classmethod
    def parameters(cls) -> tuple[dataclasses.Field, ...]:
        return dataclasses.fields(cls)

    @classmethod
    def check_parameter(cls, name: str, value):
        """One parameter's value, checked and converted as the constructor does (for
        settings that may be changed after construction)."""
        f = next((f for f in cls.parameters() if f.name == name), None)
        if f is None:
            raise KeyError(f"{cls.__name__} has no parameter {name!r}")
        return f.metadata["kind"].check(value, name)

    @classmethod
    def config_kinds(cls) -> dict[str, Kind]:
        """The TOML keys of the spec and the kind of each (its `Kind.toml` and `Kind.accepts`)."""
        return {f.name: f.metadata["kind"] for f in cls.parameters() if f.metadata["config"]}

    def values(self) -> dict:
        """The checked values by name, as Python objects (tuples, dicts, arrays)."""
        return {f.name: getattr(self, f.name) for f in self.parameters()}

    def to_dict(self) -> dict:
        """Every field as JSON-able data (`from_dict` inverts it exactly: floats are kept)."""
        return {f.name: f.metadata["kind"].dump(getattr(self, f.name)) for f in self.parameters()}

    @classmethod
    def from_dict(cls, data, path: str = ""):
        """The spec of a JSON object written by `to_dict`: exactly its fields (those with a
        default may be left out), each of its JSON type. TypeError/ValueError naming the field by
        its path (``path.name``) otherwise; the relations between fields are checked too."""
        where = path or cls.__name__
        if not isinstance(data, Mapping):
            raise ParameterTypeError(where, "must be a JSON object", type(data).__name__)
        known = {f.name: f for f in cls.parameters()}
        extra = [k for k in data if k not in known]
        if extra:
            raise ParameterValueError(where, "", extra, f"{where}: unknown field(s) {extra}; expected {list(known)}")
        values = {}
        for name, f in known.items():
            dotted = f"{path}.{name}" if path else name
            if name not in data:
                if f.default is dataclasses.MISSING:
                    raise ParameterValueError(dotted, "", message=f"{dotted}: is missing")
                continue
            try:
                values[name] = f.metadata["kind"].load(data[name], name)
            except (TypeError, ValueError) as e:
                raise _at_path(e, path) from None
        try:
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise _at_path(e, path) from None

    @classmethod
    def json_schema(cls, config: bool = False) -> dict:
        """The JSON schema of `to_dict`'s objects (``config``: of the TOML section, which
        has only the configuration keys and may leave out any that have a default)."""
        fields = [f for f in cls.parameters() if f.metadata["config"] or not config]
        properties = {}
        for f in fields:
            kind = f.metadata["kind"]
            if config and isinstance(kind, Optional):
                kind = kind.kind  # TOML has no null: None is a key left out
            properties[f.name] = {**kind.schema(), "description": f.metadata["doc"]}
        required = [f.name for f in fields if f.default is dataclasses.MISSING]
        out = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            out["required"] = required
        return out
