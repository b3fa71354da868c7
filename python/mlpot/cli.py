"""The ``mlpot`` command: ``mlpot fit CONFIG.toml``, ``mlpot eval MODEL DATA...``, ``mlpot schema``
(the JSON schema of a configuration), ``mlpot demo``.

A fit configuration (TOML; paths are relative to the configuration file). ``[model] type``
chooses the model: "snap" (the default: SNAP or quadratic SNAP on the bispectrum), "linear"
(the same linear or quadratic model on any per-atom descriptor: ``[descriptor] type`` is
then required, "soap" or "bispectrum" or any later descriptor), "gap" (a sparse Gaussian
process on SOAP, optionally plus two-body terms) or "nnp" (atomic neural networks on ACSF). Unknown sections and
keys, and keys of the other model type, are errors, never ignored; so are values of another
TOML type than shown here (flags are true/false, not "false"; numbers are 4.5 or 4, not
"4.5"), and an output location that cannot be written, found before the data are read.
A SNAP fit::

    [data]
    train = ["data/*.json"]          # files, directories or globs, any format mlpot.io reads
    validation = ["val/*.extxyz"]    # optional; or carve a split from train:
    validation_fraction = 0.1        # optional, frames chosen at random per group
    seed = 0

    [descriptor]                     # mlpot.Bispectrum keywords (LAMMPS compute sna/atom)
    type = "bispectrum"              # optional: the descriptor of SNAP
    twojmax = 6
    rcutfac = 4.67
    radelem = { Ta = 0.5 }
    wj = { Ta = 1.0 }
    bzeroflag = true

    [model]                          # mlpot.SNAP and its fit() keywords
    type = "snap"                    # optional, the default
    quadratic = false
    energy_weight = 1.0
    force_weight = 1.0
    stress_weight = 0.0
    ridge = 0.0
    solver = "svd"                   # or "normal" for very large data

    [groups.Displaced_BCC]           # optional per-group weights (FitSNAP's meaning)
    eweight = 100.0
    fweight = 1.0
    vweight = 1e-8

    [baseline]                       # optional fixed reference potential (SNAP and GAP)
    type = "zbl"
    inner = 4.0
    outer = 4.8

    [output]
    model = "Ta.mlpot"               # mlpot model file (default model.mlpot)
    lammps = "Ta_pot"                # optional: also write Ta_pot.snapcoeff / .snapparam

    [search]                         # optional: choose the fit's hyperparameters by
    folds = 5                        # k-fold cross-validation (mlpot.tune), then refit
    trials = 50                      # on all training frames; the CV table is printed
    seed = 0                         # and saved (out, default <model>.cv.json)
    metric = { energy = 0.001, forces = 0.05 }   # noise levels: eV/atom, eV/A (default)

    [search.space]                   # optional: default the model's default_space();
    energy_weight = { log = [1.0, 1e4] }       # the [model] values of keys not named
    stress_weight = [0.0, 1e-5, 1e-4]          # here stay fixed
    ridge = { log = [1e-6, 1e4] }
    [search.space.group_weights.Displaced_BCC]
    eweight = { log = [10.0, 1e4] }
    # GAP: default_sigma = [{ log = [1e-4, 1e-2] }, { log = [0.01, 0.3] }, 0.01]

A linear (or quadratic) model on another descriptor: [data], [groups.NAME], [baseline]
and [output] model as for SNAP, [model] with the keys of SNAP's [model]::

    [descriptor]                     # the keywords of the descriptor of this type
    type = "soap"                    # required: any per-atom descriptor (mlpot.LinearModel)
    cutoff = 4.5
    n_max = 6
    l_max = 4
    species = ["Si"]

    [model]
    type = "linear"
    quadratic = false
    energy_weight = 1.0
    force_weight = 1.0
    ridge = 1e-8

A GAP fit (QUIP gap_fit's names; [data], [baseline] and [output] model as above)::

    [descriptor]                     # mlpot.SOAP keywords (always used normalised)
    type = "soap"                    # optional: the default (and today the only)
                                     # descriptor of GAP, one with unit-length vectors
    cutoff = 5.4
    n_max = 8
    l_max = 8
    atom_sigma = 0.5
    cutoff_transition_width = 0.5
    species = ["Si"]

    [[two_body]]                     # optional, repeatable: mlpot.Distance2b keywords
    cutoff = 5.0                     # (gap_fit distance_2b)
    theta = 1.0
    n_sparse = 20

    [model]                          # mlpot.GAP keywords
    type = "gap"
    zeta = 4
    n_sparse = 1000                  # sparse points per species
    sparse_method = "cur"            # or "fps", "random"
    default_sigma = [0.01, 0.05, 0.01]   # energy/atom (eV), force (eV/A), virial/atom (eV)
    e0 = { Si = -0.79 }              # optional; default: least-squares per-element energies
    delta = 1.0                      # optional; default: from the training energies
    jitter = 1e-10
    seed = 0

    [groups.Liquid]                  # optional per-group sigmas (gap_fit config_type_sigma)
    sigma = [0.003, 0.15, 0.01]

A neural-network potential (Behler-Parrinello, as n2p2 trains them; [data], [baseline],
[groups] weights and [output] model as above)::

    [descriptor]                     # mlpot.ACSF keywords
    type = "acsf"                    # optional: the default descriptor of an NNP
    cutoff = 6.0
    species = ["Si"]                 # without functions: the standard set

    [model]                          # mlpot.NNP keywords and its fit() keywords
    type = "nnp"
    hidden = [24, 24]
    activation = "tanh"
    committee = 1                    # >= 2: a committee with predict(variance=True)
    optimizer = "kalman"             # or "lbfgs", "adam"
    energy_weight = 30.0             # in units of the spread of the energy per atom
    force_weight = 1.0               # in units of the RMS force component
    epochs = 40
    patience = 10
    validation = 0.1                 # held out (per group) for early stopping
    kalman_force_updates = 8         # n2p2's Kalman settings: kalman_epsilon, kalman_q0,
                                     # kalman_qmin, kalman_eta, kalman_etamax, kalman_tau,
                                     # kalman_energy_updates, kalman_force_updates
    log = "learning_curve.csv"       # optional; checkpoint = "nnp.npz", restart = ...

A GAP, linear or NNP model is saved as an mlpot model file only: ``[output] lammps`` is
SNAP-only (an NNP is written for n2p2 and LAMMPS pair_style hdnnp by `mlpot.n2p2.write`).

The [descriptor], [[two_body]], [baseline] and [model] keys, their types and ranges are
those of the parameter specs (`mlpot.params`); ``mlpot schema`` prints them as a JSON schema,
for editors and for checking configurations elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import reprlib
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import numpy as np

from mlpot import io, lammps
from mlpot.baselines import ZBL, ZBLParams
from mlpot.demo import run_demo
from mlpot.descriptors import DESCRIPTORS
from mlpot.metrics import errors
from mlpot.modelfile import load
from mlpot.models import GAP, NNP, SNAP, LinearModel
from mlpot.models.specs import GAPParams, LinearParams, NNPFitParams, NNPParams, SNAPFitParams, SNAPParams
from mlpot.tuning import space_from_toml, tune


@dataclass(frozen=True)
class _Type:
    """A kind of TOML value a key of the CLI's own sections accepts: how messages name it,
    its test and its JSON schema (the descriptor, baseline and model keys are the
    `mlpot.params.Kind` of their specs, which have the same three)."""

    toml: str
    accepts: Callable[[object], bool]
    json: dict

    def schema(self) -> dict:
        return dict(self.json)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_INT = _Type("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool), {"type": "integer"})
_NUMBER = _Type("a number", _is_number, {"type": "number"})
_STRING = _Type("a string", lambda v: isinstance(v, str), {"type": "string"})
_PATHS = _Type(
    "a path or a non-empty array of paths (strings)",
    lambda v: isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(p, str) for p in v)),
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
)

#: Every key of a configuration and the type of its value, by section (see the module
#: docstring); `type` keys are checked with the model type they choose.
_DATA_KEYS = {"train": _PATHS, "validation": _PATHS, "validation_fraction": _NUMBER, "seed": _INT}
_OUTPUT_KEYS = {"model": _STRING, "lammps": _STRING}
#: [output] model when none is given: model files are zip archives (JSON + .npy arrays), so
#: not ".json"; `mlpot.load` tells the versions by content, whatever the name
DEFAULT_MODEL_FILE = "model.mlpot"
_BASELINE_KEYS = {"type": _STRING, **ZBLParams.config_kinds()}
#: the descriptor specs by kind: [descriptor] of each model type, and [[two_body]]
_DESCRIPTOR_SPECS = {kind: cls.Params for kind, cls in DESCRIPTORS.items()}
#: the constructor keywords of the descriptors (mlpot.Bispectrum, mlpot.SOAP without
#: normalize, which GAP sets, and mlpot.Distance2b for [[two_body]]), from their specs
_DESCRIPTOR_KEYS = {kind: spec.config_kinds() for kind, spec in _DESCRIPTOR_SPECS.items()}
#: the model class of each [model] type; the class declares the descriptors it takes
#: (`descriptor_kinds`, `default_descriptor`) and whether it writes LAMMPS files
_MODELS = {"snap": SNAP, "gap": GAP, "linear": LinearModel, "nnp": NNP}
_MODEL_TYPES = tuple(_MODELS)
#: the [model] type of a configuration that names none
_DEFAULT_MODEL = "snap"
#: [model] keys of each type besides `type`: the constructor's spec, and the fit's for the
#: linear models (SNAP and LinearModel share LinearModel.fit)
_SNAP_MODEL_KEYS = SNAPParams.config_kinds()
_GAP_MODEL_KEYS = GAPParams.config_kinds()
_MODEL_SPECS = {
    "snap": (SNAPParams, SNAPFitParams), "gap": (GAPParams,), "linear": (LinearParams, SNAPFitParams),
    "nnp": (NNPParams, NNPFitParams),
}
_MODEL_KEYS = {
    kind: {k: v for spec in specs for k, v in spec.config_kinds().items()} for kind, specs in _MODEL_SPECS.items()
}
#: [groups.NAME] keys: FitSNAP's weights for the linear models, gap_fit's
#: config_type_sigma for GAP
_WEIGHT_KEYS = dict.fromkeys(("eweight", "fweight", "vweight"), _NUMBER)
_GROUP_KEYS = {
    "snap": _WEIGHT_KEYS,
    "linear": _WEIGHT_KEYS,
    "nnp": _WEIGHT_KEYS,
    "gap": {"sigma": next(f for f in GAPParams.parameters() if f.name == "group_sigma").metadata["kind"].value},
}
#: the sections and their shapes: a table, an array of tables, or tables by name
_TABLES = ("data", "descriptor", "model", "baseline", "output", "search")
_SECTIONS = {*_TABLES, "two_body", "groups"}
_BOOL = _Type("a boolean (true or false)", lambda v: isinstance(v, bool), {"type": "boolean"})
_TABLE = _Type("a table", lambda v: isinstance(v, dict), {"type": "object"})
#: [search] (mlpot.tune's keywords; space and metric are tables, checked by tune)
_SEARCH_KEYS = {
    "folds": _INT, "trials": _INT, "seed": _INT, "search": _STRING, "stratify": _STRING, "refine": _INT,
    "keep_force_rows": _BOOL, "metric": _TABLE, "space": _TABLE, "out": _STRING,
}


class ConfigError(ValueError):
    """The fit configuration is invalid; the message names the key."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mlpot", description="Machine-learning interatomic potentials: fit, evaluate, demo."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser(
        "fit",
        help="fit a potential from a TOML configuration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("config", type=Path, help="the TOML configuration (described above)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("eval", help="error table of a model on data")
    evaluate.add_argument("model", type=Path, help="an mlpot model file")
    evaluate.add_argument("data", nargs="+", help="files, directories or globs mlpot.io reads")
    evaluate.add_argument("--plot", type=Path, help="write energy and force parity plots here")

    commands.add_parser(
        "schema", help="print the JSON schema of a fit configuration (generated from the parameter specs)"
    )

    demo = commands.add_parser("demo", help="fit SNAP to EMT-labelled Cu data, run MD with it, show a GAP's uncertainty")
    demo.add_argument("--seed", type=int, default=0)

    args = parser.parse_args(argv)
    prog = f"mlpot {args.command}"
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(prog)
        try:
            if args.command == "fit":
                run_fit(args.config, progress=not args.quiet)
            elif args.command == "eval":
                run_eval(args.model, args.data, plot=args.plot)
            elif args.command == "schema":
                print(json.dumps(config_schema(), indent=1))
            else:
                run_demo(seed=args.seed)
        except (ValueError, TypeError, OSError) as error:
            print(f"{prog}: error: {error}", file=sys.stderr)
            return 1
    return 0


def _warning_printer(prog: str):
    """warnings.showwarning for the command line: "mlpot fit: warning: ..." on stderr (the
    warnings point at the user's Python call, which a command has none of)."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {message}", file=sys.stderr if file is None else file)

    return show


def load_config(path: Path) -> dict:
    """Read and check a fit configuration (`check_config`); ConfigError naming the file
    if it is not UTF-8 TOML."""
    return check_config(_read_toml(path), path)


def check_config(config: dict, path: Path | str = "configuration") -> dict:
    """Check a fit configuration as read from TOML: unknown sections or keys, keys that
    belong to the other model type, sections of the wrong shape and values of the wrong
    type are errors (ConfigError naming ``path``, the section and key, the type expected
    and the value got), not ignored. Returns the configuration."""
    _check_shapes(path, config)
    for section in ("data", "descriptor"):
        if section not in config:
            raise ConfigError(f"{path}: the [{section}] section is required")
    if "train" not in config["data"]:
        raise ConfigError(f"{path}: [data] needs `train`, a list of files, directories or globs")
    _check_table(path, "[data]", config["data"], _DATA_KEYS)
    _check_data(path, config["data"])
    _check_table(path, "[output]", config.get("output", {}), _OUTPUT_KEYS)
    _check_table(path, "[baseline]", config.get("baseline", {}), _BASELINE_KEYS)
    _check_table(path, "[search]", config.get("search", {}), _SEARCH_KEYS)
    stratify = config.get("search", {}).get("stratify", "group")
    if stratify not in ("group", "none"):
        raise ConfigError(f"{path}: [search]: stratify must be \"group\" or \"none\", got {stratify!r}")

    kind = model_type(config, path)
    _check_table(path, "[model]", config.get("model", {}), _MODEL_KEYS[kind] | {"type": _STRING}, kind)
    descriptor = dict(config["descriptor"])
    descriptor.pop("type", None)
    _check_table(path, "[descriptor]", descriptor, _DESCRIPTOR_KEYS[descriptor_type(config, path)], kind)

    two_body = config.get("two_body", [])
    if two_body and not _MODELS[kind].takes_pair_terms:
        owners = " and ".join(f"{cls.kind} ([model] type = \"{k}\")" for k, cls in _MODELS.items() if cls.takes_pair_terms)
        raise ConfigError(f"{path}: [[two_body]] terms belong to {owners}")
    for k, term in enumerate(two_body):
        _check_table(path, f"[[two_body]] {k}", term, _DESCRIPTOR_KEYS["distance_2b"])

    for name, group in config.get("groups", {}).items():
        _check_table(path, f"[groups.{name}]", group, _GROUP_KEYS[kind], kind)
    if not _MODELS[kind].writes_lammps and "lammps" in config.get("output", {}):
        writers = " and ".join(cls.kind for cls in _MODELS.values() if cls.writes_lammps)
        raise ConfigError(
            f"{path}: [output] lammps: LAMMPS files are written for {writers} only; a "
            f"{_MODELS[kind].kind} model is saved as an mlpot model file ([output] model)"
        )
    return config


def descriptor_type(config: dict, path: Path | str = "configuration") -> str:
    """The [descriptor] type of a configuration: one of the kinds its model class takes
    (`Model.descriptor_kinds`), by default the class's `default_descriptor`; ConfigError
    if it names another or none is given where the model has no default."""
    cls = _MODELS[model_type(config, path)]
    kinds = cls.descriptor_kinds()
    alternatives = " or ".join(map(repr, kinds))
    given = config["descriptor"].get("type", cls.default_descriptor)
    if given is None:
        raise ConfigError(
            f"{path}: [descriptor] type is required for [model] type {model_type(config)!r}: "
            f"the descriptor, {alternatives}"
        )
    if given not in kinds:
        raise ConfigError(
            f"{path}: [descriptor] type {given!r} does not fit [model] type {model_type(config)!r}, "
            f"which uses {alternatives}"
        )
    return given


def config_schema() -> dict:
    """The JSON schema (draft 2020-12) of a fit configuration as read from TOML, generated
    from the parameter specs of the descriptors, the baseline and the models: one of a
    configuration per [model] type (SNAP, GAP, linear), each with the descriptors its model
    class takes. It states the keys, types and ranges that `check_config` and
    the constructors enforce (not the relations between keys, such as rmin0 below the
    smallest pair cutoff, nor which output paths can be written)."""

    def table(keys: dict, required=()) -> dict:
        out = {"type": "object", "properties": {k: v.schema() for k, v in keys.items()}, "additionalProperties": False}
        return {**out, "required": list(required)} if required else out

    def typed(schema: dict, kind: str, required: bool = False) -> dict:
        schema = {**schema, "properties": {"type": {"const": kind}, **schema["properties"]}}
        if required:
            schema["required"] = ["type", *schema.get("required", [])]
        return schema

    data = table(_DATA_KEYS, ["train"])
    data["properties"]["validation_fraction"].update(minimum=0, exclusiveMaximum=1)
    baseline = typed(ZBLParams.json_schema(config=True), "zbl", required=True)

    def variant(kind: str) -> dict:
        cls = _MODELS[kind]
        descriptors = [
            typed(_DESCRIPTOR_SPECS[d].json_schema(config=True), d, required=d != cls.default_descriptor)
            for d in cls.descriptor_kinds()
        ]
        descriptor = descriptors[0] if len(descriptors) == 1 else {"oneOf": descriptors}
        model = {"type": "object", "properties": {}, "additionalProperties": False}
        for spec in _MODEL_SPECS[kind]:
            model["properties"].update(spec.json_schema(config=True)["properties"])
        model = typed(model, kind, required=kind != _DEFAULT_MODEL)
        output = table(_OUTPUT_KEYS if cls.writes_lammps else {"model": _STRING})
        properties = {
            "data": data,
            "descriptor": descriptor,
            "model": model,
            "baseline": baseline,
            "output": output,
            "groups": {"type": "object", "additionalProperties": table(_GROUP_KEYS[kind])},
            "search": table(_SEARCH_KEYS),
        }
        if kind == "gap":
            properties["two_body"] = {"type": "array", "items": _DESCRIPTOR_SPECS["distance_2b"].json_schema(config=True)}
        required = ["data", "descriptor", *(["model"] if kind != _DEFAULT_MODEL else [])]
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mlpot fit configuration",
        "oneOf": [variant(kind) for kind in _MODEL_TYPES],
    }


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        where = f"{error.reason} at byte {error.start}"
        raise ConfigError(f"{path}: not a TOML file: not UTF-8 text ({where})") from None


def _check_shapes(path, config: dict) -> None:
    """Every section is known and of its shape: [data], [descriptor], [model], [baseline]
    and [output] tables, [[two_body]] an array of tables, [groups.NAME] tables."""
    unknown = set(config) - _SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown sections {sorted(unknown)}; expected {sorted(_SECTIONS)}")
    for name in _TABLES:
        if name in config and not isinstance(config[name], dict):
            got = _section_got(name, config[name])
            raise ConfigError(f"{path}: [{name}] must be one table, written [{name}]; got {got}")
    two_body = config.get("two_body", [])
    if not (isinstance(two_body, list) and all(isinstance(term, dict) for term in two_body)):
        got = _describe(two_body)
        raise ConfigError(f"{path}: two_body must be an array of tables: write [[two_body]]; got {got}")
    groups = config.get("groups", {})
    if not isinstance(groups, dict):
        got = _section_got("groups", groups)
        raise ConfigError(f"{path}: groups must be one table per group, written [groups.NAME]; got {got}")
    for name, group in groups.items():
        if not isinstance(group, dict):
            got = _describe(group)
            raise ConfigError(f"{path}: groups.{name} must be a table: write [groups.{name}]; got {got}")


def _check_data(path, data: dict) -> None:
    if "validation" in data and "validation_fraction" in data:
        raise ConfigError(
            f"{path}: [data] gives both validation and validation_fraction: use one (the validation "
            "files, or a fraction of the training frames)"
        )
    fraction = data.get("validation_fraction", 0.0)
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"{path}: [data]: validation_fraction must be in [0, 1), got {fraction!r}")


def model_type(config: dict, path: Path | str = "configuration") -> str:
    """The [model] type of a configuration: "snap" (default), "gap" or "linear"."""
    kind = config.get("model", {}).get("type", _DEFAULT_MODEL)
    if kind not in _MODEL_TYPES:
        raise ConfigError(f"{path}: [model] type must be one of {list(_MODEL_TYPES)}, got {kind!r}")
    return kind


def _check_table(path, where: str, table, schema: dict, kind: str | None = None) -> None:
    """``table`` is a table of known keys (ConfigError naming the unknown ones, and the
    model type they do not belong to) whose values have the schema's types."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where} must be a table; got {_describe(table)}")
    unknown = set(table) - set(schema)
    if unknown:
        context = f" for [model] type {kind!r}" if kind else ""
        raise ConfigError(
            f"{path}: unknown {where} keys {sorted(unknown)}{context}; expected {sorted(schema)}"
        )
    for key, value in table.items():
        if not schema[key].accepts(value):
            raise ConfigError(f"{path}: {where}: {key} must be {schema[key].toml}, got {_describe(value)}")


def _is_array_of_tables(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _section_got(name: str, value) -> str:
    """What a section of the wrong shape was written as."""
    return f"[[{name}]], an array of tables" if _is_array_of_tables(value) else _describe(value)


def _describe(value) -> str:
    """A TOML value as messages show it: shortened, with its TOML type."""
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a float"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, dict):
        kind = "a table"
    elif _is_array_of_tables(value):
        kind = "an array of tables"
    elif isinstance(value, list):
        kind = "an array"
    else:
        kind = "a date or time"
    return f"{reprlib.repr(value)} ({kind})"


def build_model(config: dict):
    """The unfitted model of a checked configuration (`load_config`) and the keywords of its
    fit() besides the frames. Invalid values raise ConfigError naming the section."""
    kind = model_type(config)
    model_config = {k: v for k, v in config.get("model", {}).items() if k != "type"}
    descriptor = {k: v for k, v in config["descriptor"].items() if k != "type"}
    groups = config.get("groups")
    baseline = make_baseline(config.get("baseline"))
    with _section("[descriptor]"):
        descriptor = DESCRIPTORS[descriptor_type(config)](**descriptor)
    pair_terms = []
    for k, term in enumerate(config.get("two_body", [])):
        with _section(f"[[two_body]] {k}"):
            pair_terms.append(DESCRIPTORS["distance_2b"](**term))
    cls = _MODELS[kind]
    with _section("[groups]"):
        cls.check_groups(groups or {})
    with _section("[model]"):
        return cls.from_config(descriptor, model_config, groups or {}, baseline, pair_terms)


@contextlib.contextmanager
def _section(where: str):
    """Turn a constructor's ValueError/TypeError into a ConfigError naming the section (and,
    for a parameter a spec refused, the TOML type of the value)."""
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:
        issue = getattr(error, "parameter", None)
        message = str(error)
        if issue is not None and issue.value is not dataclasses.MISSING and message == issue.message():
            message = f"{issue.name} {issue.requirement}, got {_describe(issue.value)}"
        raise ConfigError(f"{where}: {message}") from None


def run_fit(config_path: Path, progress: bool = True):
    """Fit the model a configuration describes, save it and print its error tables."""
    config = load_config(config_path)
    base = config_path.resolve().parent
    # bad values and an unwritable output fail before the data are read and the model fitted
    try:
        model, fit_keywords = build_model(config)
        # the [model] paths of a fit (an NNP's log, checkpoint, restart), like every path
        # of a configuration, are relative to it
        for key in type(model).fit_path_keys:
            if isinstance(fit_keywords.get(key), str):
                fit_keywords[key] = str(base / fit_keywords[key])
                if key not in type(model).fit_input_keys:
                    check_writable(Path(fit_keywords[key]), f"[model] {key}")
        model_path, lammps_prefix = output_paths(config, base)
        check_writable(model_path, "[output] model")
        if lammps_prefix is not None:
            for suffix in (".snapcoeff", ".snapparam"):
                check_writable(Path(f"{lammps_prefix}{suffix}"), "[output] lammps")
    except ConfigError as error:
        raise ConfigError(f"{config_path}: {error}") from None
    data = config["data"]
    train = io.read(_paths(data["train"], base))
    if "validation" in data:
        validation = io.read(_paths(data["validation"], base))
    else:
        train, validation = split_frames(
            train, float(data.get("validation_fraction", 0.0)), int(data.get("seed", 0))
        )
    print(f"training frames: {len(train)}, validation frames: {len(validation)}")

    if "search" in config:
        try:
            search, space = search_settings(config["search"], model, fit_keywords)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{config_path}: [search]: {error}") from None
        out = base / config["search"].get("out", f"{model_path.name}.cv.json")
        check_writable(out, "[search] out")
        result = tune(model, train, space, progress=progress, out=out, **search)
        print(f"\n{result}\ncross-validation results saved to {out}")
    else:
        model.fit(train, progress=progress, **fit_keywords)

    model.save(model_path)
    print(f"model saved to {model_path}")
    if lammps_prefix is not None:
        lammps.write_snap(model, lammps_prefix)
        print(f"LAMMPS files written: {lammps_prefix}.snapcoeff / .snapparam")
    print("\ntraining errors\n" + str(errors(model, train)))
    if validation:
        print("\nvalidation errors\n" + str(errors(model, validation)))
    return model


def search_settings(section: dict, model, fit_keywords: dict) -> tuple[dict, dict]:
    """`mlpot.tune`'s keywords and search space from a checked [search] table: the space
    starts from the [model] and [groups] settings of the fit (fixed values), and
    [search.space] replaces or adds to them (`space_from_toml`)."""
    keywords = {k: v for k, v in section.items() if k not in ("space", "out")}
    if keywords.get("stratify") == "none":
        keywords["stratify"] = None
    defaults = model.hyperparameters()
    space = {k: v for k, v in fit_keywords.items() if k in defaults}
    searched = space_from_toml(section.get("space", {}), defaults)
    for name, value in searched.items():
        if isinstance(value, dict) and isinstance(space.get(name), dict):  # group tables merge
            merged = {g: dict(w) for g, w in space[name].items()}
            for group, entries in value.items():
                merged[group] = {**merged.get(group, {}), **entries} if isinstance(entries, dict) else entries
            space[name] = merged
        else:
            space[name] = value
    if "space" not in section:  # the model's default space, whatever [model] fixed
        space.update(model.default_space())
    return keywords, space


def output_paths(config: dict, base: Path) -> tuple[Path, Path | None]:
    """The model file and the LAMMPS files' prefix (None if not asked for) of a checked
    configuration, relative paths taken from ``base``."""
    output = config.get("output", {})
    model_path = base / output.get("model", DEFAULT_MODEL_FILE)
    return model_path, (base / output["lammps"] if "lammps" in output else None)


def check_writable(path: Path, where: str) -> None:
    """ConfigError naming ``where`` and the problem unless a file can be written at
    ``path``: its directory exists (no file in the way) and takes new files (a temporary
    file is created and removed, as the model's atomic save does), and the path is not a
    directory or a read-only file."""
    if path.is_dir():
        raise ConfigError(f"{where}: {path} is a directory; give a file name")
    directory = path.parent
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{where}: cannot write {path}: {existing} is a file, not a directory")
    if existing != directory:
        raise ConfigError(f"{where}: cannot write {path}: the directory {directory} does not exist")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise ConfigError(f"{where}: cannot write files in {directory}: {error.strerror}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{where}: {path} exists and is read-only")


def run_eval(model_path: Path, data: list[str], plot: Path | None = None):
    """Print the error table of a saved model on data; optionally draw parity plots."""
    model = load(model_path)
    frames = io.read(_paths(data, Path.cwd()))
    table = errors(model, frames)
    print(table)
    if plot is not None:
        parity_plot(table.parity, plot)
        print(f"parity plots written to {plot}")
    return table


def make_baseline(section: dict | None):
    if section is None:
        return None
    section = dict(section)
    kind = section.pop("type", None)
    if kind != "zbl":
        raise ConfigError(f"[baseline] type must be \"zbl\", got {kind!r}")
    with _section("[baseline]"):
        return ZBL(**section)


def split_frames(frames: list, fraction: float, seed: int) -> tuple[list, list]:
    """Random validation split by frames, stratified by group so every group is represented
    in training; ``fraction`` of each group (rounded down) goes to validation."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for k, atoms in enumerate(frames):
        groups.setdefault(atoms.info.get("group", ""), []).append(k)
    held_out = set()
    for members in groups.values():
        n = int(fraction * len(members))
        held_out.update(rng.choice(members, size=n, replace=False).tolist())
    train = [f for k, f in enumerate(frames) if k not in held_out]
    validation = [f for k, f in enumerate(frames) if k in held_out]
    return train, validation


def parity_plot(parity, path: Path) -> None:
    """Energy-per-atom and force-component parity plots (reference x, model y) from the
    compared values of an error report (``mlpot.errors(...).parity``), one colour per group."""
    # matplotlib is optional (the plot extra) and slow to import: only `eval --plot` needs it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True)
    force_groups = parity.groups[parity.forces_frame]
    panels = (
        (axes[0], parity.energy_reference, parity.energy_predicted, parity.groups, "energy (eV/atom)"),
        (axes[1], parity.forces_reference, parity.forces_predicted, force_groups, "force component (eV/Å)"),
    )
    for ax, reference, predicted, groups, label in panels:
        reference, predicted = np.asarray(reference), np.asarray(predicted)
        if reference.ndim == 2:  # forces: one point per component, its atom's group
            groups = np.repeat(groups, reference.shape[1])
        x, y = reference.ravel(), predicted.ravel()
        if x.size == 0:
            ax.set_visible(False)
            continue
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        for group in np.unique(groups):
            mask = groups == group
            ax.scatter(x[mask], y[mask], s=6, alpha=0.6, label=str(group))
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"model {label}")
        unit = label[label.index("(") + 1 : -1]
        ax.set_title(f"RMSE {np.sqrt(np.mean((x - y) ** 2)):.4g} {unit}")
    axes[0].legend(fontsize=7, markerscale=2)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _paths(entries, base: Path) -> list[str]:
    if isinstance(entries, (str, Path)):
        entries = [entries]
    return [str(p if Path(p).is_absolute() else base / p) for p in entries]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
