"""The parameter specs (mlpot.params): every declared parameter, through its constructor and
through the `mlpot fit` configuration, refuses values of the wrong type and out of range
naming itself, accepts its boundary values, round-trips through to_dict/from_dict, and agrees
with the generated JSON schema. The cases are generated from the specs: a new parameter is
tested by being declared."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

import mlpot
from mlpot import cli, params
from mlpot.baselines import ZBLParams
from mlpot.descriptors import BispectrumParams, SOAPParams
from mlpot.models.specs import Distance2bParams, GAPParams, SNAPFitParams, SNAPParams
from mlpot.params import Choice, Elements, Flag, Integer, Optional, PerElement, Real, Reals, Table

jsonschema = pytest.importorskip("jsonschema", reason="the JSON schema tests need jsonschema (test extras)")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "fits"
TINY = math.ulp(0.0)  # the smallest positive float


# ------------------------------------------------------------------ cases from the kinds


def _below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def _above(x: float) -> float:
    return math.nextafter(x, math.inf)


def wrong_types(kind) -> list:
    """Values of another type than the kind takes (refused by the constructor and by the
    configuration's type check)."""
    if isinstance(kind, Optional):
        return [v for v in wrong_types(kind.kind) if v is not None]
    if isinstance(kind, Integer):
        return [2.5, "3", True]
    if isinstance(kind, Real):
        return ["1.0", True, [1.0], None]
    if isinstance(kind, Flag):
        return ["no", "false", 2.5, None]
    if isinstance(kind, Choice):
        return [3, [kind.choices[0]]]
    if isinstance(kind, Elements):
        return ["Si", 14]
    if isinstance(kind, PerElement):
        return [0.5, "Si", ["Si"]]
    if isinstance(kind, Reals):
        return ["abc", 0.1]
    if isinstance(kind, Table):
        return [0.1, "g"]
    raise AssertionError(f"no cases for {kind!r}: add them here")


def out_of_range(kind, element: str = "Si") -> list:
    """Values of the right type that the kind refuses (ValueError)."""
    if isinstance(kind, Optional):
        return out_of_range(kind.kind, element)
    if isinstance(kind, Integer):
        bad = [kind.low - 1]
        if kind.high is not None:
            bad += [kind.high + 1, 10**30]
        if kind.even:
            bad.append(kind.low + 1)
        return bad
    if isinstance(kind, Real):
        bad = [math.nan, math.inf, -math.inf]
        if kind.low is not None:
            bad.append(kind.low if kind.low_open else _below(kind.low))
        if kind.high is not None:
            bad.append(kind.high if kind.high_open else _above(kind.high))
        return bad
    if isinstance(kind, Flag):
        return []  # every bool is in range; 2 is of the wrong type for a configuration
    if isinstance(kind, Choice):
        return ["nonsense", kind.choices[0].upper()]
    if isinstance(kind, Elements):
        bad = [["Xx"], [element] * (kind.min_length - 1) + ["Xx"]]
        if kind.min_length:
            bad.append([])
        if kind.distinct:
            bad.append([element, element])
        if kind.length is not None:
            bad.append([element] * (kind.length + 1))
        return bad
    if isinstance(kind, PerElement):
        bad = [{"Xx": 1.0}] + [{element: v} for v in out_of_range(kind.value)]
        if kind.min_length:
            bad.append({})
        return bad
    if isinstance(kind, Reals):
        n = kind.length or max(kind.min_length, 1)
        bad = [[v] * n for v in out_of_range(kind.item)]
        if kind.length is not None:
            bad.append([1.0] * (kind.length + 1))
        if kind.min_length:
            bad.append([])
        return bad
    if isinstance(kind, Table):
        return [{"g": v} for v in out_of_range(kind.value)]
    raise AssertionError(f"no cases for {kind!r}: add them here")


def boundaries(kind, element: str = "Si") -> list:
    """The values at the kind's declared bounds (the nearest float inside an open bound),
    which it must accept."""
    if isinstance(kind, Optional):
        return [None, *boundaries(kind.kind, element)]
    if isinstance(kind, Integer):
        high = kind.high if kind.high is not None else 2**31
        return [kind.low, high - (high - kind.low) % 2 if kind.even else high]
    if isinstance(kind, Real):
        out = []
        if kind.low is not None:
            out.append(_above(kind.low) if kind.low_open else kind.low)
        if kind.high is not None:
            out.append(_below(kind.high) if kind.high_open else kind.high)
        return out or [-1.0, 0.0]
    if isinstance(kind, Flag):
        return [True, False]
    if isinstance(kind, Choice):
        return list(kind.choices)
    if isinstance(kind, Elements):
        n = kind.length or kind.min_length
        return [[element] * n] if not kind.distinct else [[element], [element, "H"]]
    if isinstance(kind, PerElement):
        return [{element: v} for v in boundaries(kind.value)]
    if isinstance(kind, Reals):
        n = kind.length or max(kind.min_length, 1)
        return [[v] * n for v in boundaries(kind.item)]
    if isinstance(kind, Table):
        return [{}, *({"g": v} for v in boundaries(kind.value))]
    raise AssertionError(f"no cases for {kind!r}: add them here")


# ------------------------------------------------------------- the specs and their users


def _snap():
    return mlpot.SNAP(mlpot.Bispectrum(2, 4.0, radelem={"Si": 0.5}))


def _soap():
    return mlpot.SOAP(cutoff=3.0, n_max=2, l_max=2, species=["Si"])


@dataclasses.dataclass(frozen=True)
class Case:
    """A spec, its smallest valid keywords, the public constructor taking them, and where
    its keys sit in a configuration (the section, and a configuration around it)."""

    spec: type
    base: dict
    construct: object  # keywords -> object, or None where no public constructor takes them
    section: str
    config: dict
    #: companions a boundary value needs so that the relations between fields hold
    companions: dict = dataclasses.field(default_factory=dict)


_DATA = {"train": ["x.extxyz"]}
_SNAP_DESCRIPTOR = {"twojmax": 2, "rcutfac": 4.0, "radelem": {"Si": 0.5}}
_GAP_DESCRIPTOR = {"type": "soap", "cutoff": 3.0, "n_max": 2, "l_max": 2, "species": ["Si"]}

CASES = [
    Case(BispectrumParams, {"twojmax": 2, "rcutfac": 4.0, "radelem": {"Si": 0.5}},
         lambda kw: mlpot.Bispectrum(**kw), "descriptor", {"data": _DATA}),
    Case(SOAPParams, {"cutoff": 3.0, "n_max": 2, "l_max": 2, "species": ["Si"]},
         lambda kw: mlpot.SOAP(**kw), "descriptor", {"data": _DATA, "model": {"type": "gap"}},
         companions={"cutoff": {"cutoff_transition_width": 0.0}}),
    Case(Distance2bParams, {}, lambda kw: mlpot.Distance2b(**kw), "two_body",
         {"data": _DATA, "descriptor": _GAP_DESCRIPTOR, "model": {"type": "gap"}},
         companions={"cutoff": {"cutoff_transition_width": 0.0}}),
    Case(ZBLParams, {"inner": 1.0, "outer": 2.0}, lambda kw: mlpot.ZBL(**kw), "baseline",
         {"data": _DATA, "descriptor": _SNAP_DESCRIPTOR}, companions={"outer": {"inner": TINY}}),
    Case(GAPParams, {}, lambda kw: mlpot.GAP(_soap(), **kw), "model",
         {"data": _DATA, "descriptor": _GAP_DESCRIPTOR, "model": {"type": "gap"}}),
    Case(SNAPParams, {}, lambda kw: mlpot.SNAP(mlpot.Bispectrum(2, 4.0, radelem={"Si": 0.5}), **kw), "model",
         {"data": _DATA, "descriptor": _SNAP_DESCRIPTOR}),
    Case(SNAPFitParams, {}, None, "model", {"data": _DATA, "descriptor": _SNAP_DESCRIPTOR}),
]

#: Boundary values the spec accepts and the Rust core refuses with its own, stricter check
#: (a clear ValueError/MemoryError naming the parameter), with the reason.
CORE_REFUSES = {
    (SOAPParams, "n_max", 64): "the GTO radial basis is singular long before the size bound 64",
    (SOAPParams, "cutoff", TINY): "the radial table of a 5e-324 A cutoff does not fit in memory",
    (SOAPParams, "atom_sigma", TINY): "the core wants atom_sigma >= cutoff / 16384 (its radial table)",
}

#: Boundary values a relation between fields moves: outer > inner, so outer's lowest value
#: is the float above the smallest inner (test_relations_bound_the_fields).
RELATION_BOUNDED = {(ZBLParams, "outer", TINY)}


def _core_refuses(case: Case, name: str, value) -> str | None:
    return CORE_REFUSES.get((case.spec, name, value)) if isinstance(value, (int, float)) else None


def _relation_bounded(case: Case, name: str, value) -> bool:
    return isinstance(value, float) and (case.spec, name, value) in RELATION_BOUNDED


def _fields(case: Case, config: bool = False):
    for f in case.spec.parameters():
        if not config or f.metadata["config"]:
            yield f


def _cases(make, config: bool = False):
    out = []
    for case in CASES:
        for f in _fields(case, config):
            for value in make(f.metadata["kind"]):
                out.append(pytest.param(case, f.name, value, id=f"{case.spec.__name__}.{f.name}={value!r}"[:90]))
    return out


def _toml_able(value) -> bool:
    """A value a TOML file can hold (TOML has no null)."""
    if value is None:
        return False
    if isinstance(value, list):
        return all(map(_toml_able, value))
    if isinstance(value, dict):
        return all(map(_toml_able, value.values()))
    return True


def test_every_kind_of_every_spec_has_cases():
    """Each field gets at least one wrong-type and one boundary case (a kind without cases
    fails the generators above)."""
    for case in CASES:
        for f in case.spec.parameters():
            kind = f.metadata["kind"]
            assert wrong_types(kind) and boundaries(kind), f.name


# ----------------------------------------------------------------------- constructors


def _value_for(case: Case, name: str, value) -> dict:
    keywords = dict(case.base)
    keywords.update(case.companions.get(name, {}))
    keywords[name] = value
    if case.spec is BispectrumParams and name == "wj" and isinstance(value, dict):
        keywords["radelem"] = dict.fromkeys(value, 0.5) if value and "Xx" not in value else keywords["radelem"]
    return keywords


def _build(case: Case, keywords: dict):
    return case.spec(**keywords) if case.construct is None else case.construct(keywords)


@pytest.mark.parametrize("case, name, value", _cases(wrong_types))
def test_wrong_types_are_refused_naming_the_parameter(case, name, value):
    for make in (lambda kw: case.spec(**kw), lambda kw: _build(case, kw)):
        with pytest.raises((TypeError, ValueError), match=re.escape(name)):
            make(_value_for(case, name, value))


@pytest.mark.parametrize("case, name, value", _cases(out_of_range))
def test_out_of_range_values_are_value_errors_naming_the_parameter(case, name, value):
    for make in (lambda kw: case.spec(**kw), lambda kw: _build(case, kw)):
        with pytest.raises(ValueError, match=re.escape(name)):
            make(_value_for(case, name, value))


@pytest.mark.parametrize("case, name, value", _cases(boundaries))
def test_boundary_values_are_accepted(case, name, value):
    keywords = _value_for(case, name, value)
    if _relation_bounded(case, name, value):
        with pytest.raises(ValueError, match=name):
            case.spec(**keywords)
        return
    spec = case.spec(**keywords)
    if isinstance(value, float):
        assert getattr(spec, name) == value  # kept exactly, not rounded into range
    if _core_refuses(case, name, value):
        with pytest.raises((ValueError, MemoryError), match=name if name != "cutoff" else "radial table"):
            _build(case, keywords)
        return
    built = _build(case, keywords)
    if hasattr(built, "params"):
        assert built.params == spec
    else:
        assert getattr(built, name) == getattr(spec, name)


def test_relations_bound_the_fields():
    assert mlpot.ZBL(TINY, _above(TINY)).outer == _above(TINY)
    with pytest.raises(ValueError, match="outer must be larger than inner"):
        mlpot.ZBL(1.0, 1.0)
    assert mlpot.SOAP(cutoff=3.0, cutoff_transition_width=_below(3.0), species=["Si"], n_max=2, l_max=2)
    with pytest.raises(ValueError, match="cutoff_transition_width must be in"):
        mlpot.SOAP(cutoff=3.0, cutoff_transition_width=3.0, species=["Si"], n_max=2, l_max=2)
    assert mlpot.Distance2b(cutoff=3.0, cutoff_transition_width=3.0).cutoff_transition_width == 3.0
    with pytest.raises(ValueError, match="cutoff_transition_width must be in"):
        mlpot.Distance2b(cutoff=3.0, cutoff_transition_width=_above(3.0))
    assert mlpot.Bispectrum(2, 4.0, rmin0=_below(4.0), radelem={"Si": 0.5}).rmin0 == _below(4.0)
    with pytest.raises(ValueError, match="rmin0 = 4.0 must be smaller than every pair cutoff"):
        mlpot.Bispectrum(2, 4.0, rmin0=4.0, radelem={"Si": 0.5})
    with pytest.raises(ValueError, match=r"element\(s\) \['O'\] have a wj but no radelem"):
        mlpot.Bispectrum(2, 4.0, radelem={"Si": 0.5}, wj={"Si": 1.0, "O": 1.0})


def test_the_python_forms_of_elements_and_flags_are_accepted():
    """From Python: atomic numbers for elements, numpy scalars, 0 and 1 for LAMMPS flags."""
    bs = mlpot.Bispectrum(np.int64(2), np.float32(4.0), radelem={14: 0.5}, wj={"Si": np.float64(1.0)}, bzeroflag=1)
    assert bs.species == ("Si",) and bs.bzeroflag is True and bs.twojmax == 2
    assert mlpot.SOAP(species=[14, "O"], n_max=2, l_max=2).species == ("O", "Si")
    assert mlpot.Distance2b(species=(29, 29)).species == ("Cu", "Cu")


# ---------------------------------------------------------------------- configuration


def _config(case: Case, name: str, value) -> dict:
    config = json.loads(json.dumps(case.config))
    section = dict(case.base)
    if case.spec is BispectrumParams and name == "wj" and isinstance(value, dict) and value and "Xx" not in value:
        section["radelem"] = dict.fromkeys(value, 0.5)
    section.update(case.companions.get(name, {}))
    section[name] = value
    if case.section == "two_body":
        config["two_body"] = [section]
    elif case.section == "model":
        config["model"] = {**config.get("model", {}), **section}
    elif case.section == "baseline":
        config["baseline"] = {"type": "zbl", **section}
    else:
        config[case.section] = {**config.get(case.section, {}), **section}
    return config


def _where(case: Case) -> str:
    return "[[two_body]] 0" if case.section == "two_body" else f"[{case.section}]"


@pytest.mark.parametrize("case, name, value", [p for p in _cases(wrong_types, config=True) if _toml_able(p.values[2])])
def test_configuration_values_of_the_wrong_type_name_table_key_and_type(case, name, value):
    kind = case.spec.config_kinds()[name]
    with pytest.raises(cli.ConfigError, match=re.escape(f"{_where(case)}: {name} must be {kind.toml}, got ")):
        cli.check_config(_config(case, name, value), "fit.toml")


def test_configuration_refuses_what_python_accepts_loosely():
    """A file is strict: 1 is not true, 14 is not an element, "4.5" is not a number."""
    for key, value in [("bzeroflag", 1), ("rcutfac", "4.5"), ("radelem", {"Si": "0.5"})]:
        config = {"data": _DATA, "descriptor": {**_SNAP_DESCRIPTOR, key: value}}
        with pytest.raises(cli.ConfigError, match=f"{key} must be"):
            cli.check_config(config, "fit.toml")
    config = {"data": _DATA, "descriptor": {**_GAP_DESCRIPTOR, "species": [14]}, "model": {"type": "gap"}}
    with pytest.raises(cli.ConfigError, match="species must be an array of element symbols"):
        cli.check_config(config, "fit.toml")


@pytest.mark.parametrize("case, name, value", [p for p in _cases(out_of_range, config=True) if _toml_able(p.values[2])])
def test_configuration_values_out_of_range_name_table_and_key(case, name, value):
    config = cli.check_config(_config(case, name, value), "fit.toml")  # of the right type
    with pytest.raises(cli.ConfigError, match=re.escape(_where(case)) + r": .*" + re.escape(name)):
        cli.build_model(config)


@pytest.mark.parametrize("case, name, value", [p for p in _cases(boundaries, config=True) if _toml_able(p.values[2])])
def test_configuration_boundary_values_build(case, name, value):
    if _core_refuses(case, name, value) or _relation_bounded(case, name, value):
        pytest.skip("refused by the core or a relation: test_boundary_values_are_accepted")
    config = cli.check_config(_config(case, name, value), "fit.toml")
    model, fit_keywords = cli.build_model(config)
    if case.spec is SNAPFitParams:
        assert fit_keywords[name] == value
    elif case.section == "model":
        assert getattr(model, name) == (tuple(value) if isinstance(value, list) else value)


def test_the_configuration_keys_are_the_constructor_keywords():
    """Each spec's fields are its constructor's keywords (in order), so the TOML keys of a
    section are too; the configuration leaves out only what the program sets."""
    import inspect

    def keywords(f, drop=()):
        return [k for k in inspect.signature(f).parameters if k not in {"self", *drop}]

    assert [f.name for f in BispectrumParams.parameters()] == keywords(mlpot.Bispectrum)
    assert [f.name for f in SOAPParams.parameters()] == keywords(mlpot.SOAP)
    assert [f.name for f in Distance2bParams.parameters()] == keywords(mlpot.Distance2b)
    assert [f.name for f in ZBLParams.parameters()] == keywords(mlpot.ZBL)
    assert [f.name for f in GAPParams.parameters()] == keywords(mlpot.GAP, {"descriptors", "baseline", "sparse_points"})
    assert [f.name for f in SNAPParams.parameters()] == keywords(mlpot.SNAP, {"bispectrum", "baseline"})
    assert [f.name for f in SNAPFitParams.parameters()] == keywords(mlpot.SNAP.fit, {"frames", "group_weights", "progress"})
    # the defaults are the constructors' defaults: one declaration, no second copy to drift
    for spec, f in [(SOAPParams, mlpot.SOAP), (Distance2bParams, mlpot.Distance2b), (SNAPFitParams, mlpot.SNAP.fit)]:
        signature = inspect.signature(f).parameters
        for field in spec.parameters():
            if field.default is not dataclasses.MISSING and signature[field.name].default is not inspect.Parameter.empty:
                assert signature[field.name].default == field.default, (spec.__name__, field.name)


# ----------------------------------------------------------------- to_dict / from_dict


def _round_trip_cases():
    out = []
    for case in CASES:
        for f in case.spec.parameters():
            for value in boundaries(f.metadata["kind"]):
                out.append(pytest.param(case, f.name, value, id=f"{case.spec.__name__}.{f.name}={value!r}"[:90]))
    return out


@pytest.mark.parametrize("case, name, value", _round_trip_cases())
def test_to_dict_from_dict_round_trips_exactly(case, name, value):
    if _relation_bounded(case, name, value):
        value = _above(value)
    spec = case.spec(**_value_for(case, name, value))
    data = json.loads(json.dumps(spec.to_dict(), allow_nan=False))
    again = case.spec.from_dict(data, "model.params")
    assert again == spec and again.to_dict() == spec.to_dict()
    assert list(data) == [f.name for f in case.spec.parameters()]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.spec.__name__)
def test_from_dict_is_strict_and_names_the_path(case):
    data = case.spec(**case.base).to_dict()
    with pytest.raises(ValueError, match=r"model\.params: unknown field\(s\) \['extra'\]"):
        case.spec.from_dict({**data, "extra": 1}, "model.params")
    for f in case.spec.parameters():
        kind = f.metadata["kind"]
        for wrong in wrong_types(kind):
            if kind.accepts(wrong):  # a JSON form the kind takes (e.g. None of an Optional)
                continue
            with pytest.raises((TypeError, ValueError), match=re.escape(f"model.params.{f.name}")):
                case.spec.from_dict({**data, f.name: wrong}, "model.params")
        if f.default is dataclasses.MISSING:
            with pytest.raises(ValueError, match=re.escape(f"model.params.{f.name}: is missing")):
                case.spec.from_dict({k: v for k, v in data.items() if k != f.name}, "model.params")


def test_the_descriptors_expose_their_specs():
    bs = mlpot.Bispectrum(2, 4.0, radelem={"Si": 0.5, "O": 0.4}, wj={"O": 0.8, "Si": 1.0})
    assert bs.params.to_dict()["wj"] == {"Si": 1.0, "O": 0.8}  # in the order of radelem
    assert mlpot.Bispectrum(**BispectrumParams.from_dict(bs.params.to_dict()).values()).params == bs.params
    soap = _soap()
    assert mlpot.SOAP(**soap.params.values()).params == soap.params
    zbl = mlpot.ZBL(1.0, 2.0)
    assert mlpot.ZBL.from_dict(zbl.to_dict()) == zbl


def test_descriptors_round_trip_through_the_registry():
    from mlpot.descriptors import DESCRIPTORS, descriptor_from_dict, descriptor_to_dict

    assert {"bispectrum", "soap", "distance_2b", "acsf", "ace"} <= set(DESCRIPTORS)
    for d in [mlpot.Bispectrum(4, 4.1, radelem={"Si": 0.5, "O": 0.3}, chemflag=True), _soap(),
              mlpot.Distance2b(cutoff=4.0, species=["Si", "O"], delta=0.3),
              mlpot.ACSF(cutoff=4.5, species=["Si", "O"], cutoff_function="poly1", cutoff_alpha=0.2),
              mlpot.ACE(cutoff=4.5, species=["Si", "O"], nradmax_by_orders=(3, 2, 1), lmax_by_orders=(0, 2, 1),
                        bonds=[{"center": "Si", "neighbor": "O", "radbase": "SBessel", "rcut": 4.0}])]:
        data = json.loads(json.dumps(descriptor_to_dict(d)))
        again = descriptor_from_dict(data, "terms[0].descriptor")
        assert type(again) is type(d) and again.params == d.params and again.to_dict() == d.to_dict()
    with pytest.raises(ValueError, match=r"terms\[0\]\.descriptor\.kind: unknown descriptor kind 'mtp'"):
        descriptor_from_dict({"kind": "mtp", "params": {}}, "terms[0].descriptor")
    with pytest.raises(ValueError, match=r"terms\[0\]\.descriptor\.params\.functions\[1\]\.zeta"):
        descriptor_from_dict({"kind": "acsf", "params": {"species": ["Si"], "functions": [
            {"type": 2, "center": "Si", "neighbors": ["Si"], "eta": 0.5},
            {"type": 3, "center": "Si", "neighbors": ["Si", "Si"], "eta": 0.5, "lambda": 1.0, "zeta": 0.5}]}},
            "terms[0].descriptor")
    with pytest.raises(TypeError, match=r"terms\[0\]\.descriptor\.params\.n_max: must be an integer, got 2.0"):
        descriptor_from_dict({"kind": "soap", "params": {"species": ["Si"], "n_max": 2.0}}, "terms[0].descriptor")
    with pytest.raises(ValueError, match=r"descriptor\.params\.cutoff_transition_width: must be in \[0, cutoff\)"):
        descriptor_from_dict({"kind": "soap", "params": {"species": ["Si"], "cutoff": 0.4}}, "descriptor")


# ---------------------------------------------------------------------------- names


def test_species_is_the_word_for_the_elements_of_every_descriptor():
    bs = mlpot.Bispectrum(2, 4.0, radelem={"Si": 0.5, "O": 0.4})
    assert bs.species == ("Si", "O") == bs.elements  # elements: the deprecated alias
    assert _soap().species == ("Si",)
    assert mlpot.Distance2b(species=["Si", "O"]).species == ("Si", "O")


# ----------------------------------------------------------------------- JSON schema


def test_the_schemas_are_valid_json_schemas():
    for case in CASES:
        for config in (False, True):
            jsonschema.Draft202012Validator.check_schema(case.spec.json_schema(config=config))
    jsonschema.Draft202012Validator.check_schema(cli.config_schema())


def test_the_shipped_example_configurations_validate():
    validator = jsonschema.Draft202012Validator(cli.config_schema())
    paths = sorted(EXAMPLES.glob("*.toml"))
    assert len(paths) >= 10
    for path in paths:
        errors = [e.message for e in validator.iter_errors(tomllib.loads(path.read_text()))]
        assert not errors, (path.name, errors)


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_finite, value))
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    return True


def _schema_cases(make):
    # JSON has no NaN or infinity (the type check of a configuration refuses those)
    return [p for p in _cases(make, config=True) if _toml_able(p.values[2]) and _finite(p.values[2])]


@pytest.mark.parametrize("case, name, value", _schema_cases(wrong_types) + _schema_cases(out_of_range))
def test_the_schema_refuses_what_the_checks_refuse(case, name, value):
    validator = jsonschema.Draft202012Validator(cli.config_schema())
    valid = next(v for v in boundaries(case.spec.config_kinds()[name]) if _toml_able(v))
    assert validator.is_valid(_config(case, name, valid))  # the value alone makes the difference
    assert not validator.is_valid(_config(case, name, value))


@pytest.mark.parametrize("case, name, value", _schema_cases(boundaries))
def test_the_schema_accepts_the_boundary_values(case, name, value):
    validator = jsonschema.Draft202012Validator(cli.config_schema())
    errors = [e.message for e in validator.iter_errors(_config(case, name, value))]
    assert not errors


def test_mlpot_schema_prints_the_schema():
    result = subprocess.run(
        [sys.executable, "-m", "mlpot.cli", "schema"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == cli.config_schema()


# ------------------------------------------------------------------- config_type


def _labelled(group_info: dict) -> Atoms:
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [1.5, 0, 0]], info=dict(group_info))
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((2, 3)))
    return atoms


@pytest.mark.parametrize(
    "info, expected",
    [
        ({"config_type": "bulk"}, "bulk"),            # the extxyz/gap_fit key
        ({"group": "mine", "config_type": "bulk"}, "mine"),  # group wins when both are given
        ({"group": "mine"}, "mine"),
        ({}, "frames"),                               # neither: the file name
    ],
)
def test_extxyz_config_type_is_the_group(tmp_path, info, expected):
    path = tmp_path / "frames.extxyz"
    write(path, [_labelled(info)])
    (frame,) = mlpot.io.read(path)
    assert frame.info["group"] == expected
    if "config_type" in info:
        assert frame.info["config_type"] == info["config_type"]


def test_mlearn_config_type_is_the_group(tmp_path):
    structure = {
        "lattice": {"matrix": [[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]]},
        "sites": [{"species": [{"element": "Cu", "occu": 1}], "xyz": [0.0, 0.0, 0.0]}],
    }
    outputs = {"energy": -3.5, "forces": [[0.0, 0.0, 0.0]], "stress": [0, 0, 0, 0, 0, 0]}
    records = [
        {"structure": structure, "outputs": outputs, "config_type": "Elastic"},
        {"structure": structure, "outputs": outputs, "config_type": "Elastic", "group": "Surface"},
    ]
    path = tmp_path / "cu.json"
    path.write_text(json.dumps(records))
    assert [f.info["group"] for f in mlpot.io.read(path, format="mlearn")] == ["Elastic", "Surface"]
