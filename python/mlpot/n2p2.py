"""n2p2 / RuNNer neural-network potentials: read and write input.nn, scaling.data and
weights.ZZZ.data, so that an `mlpot.NNP` runs in n2p2 and LAMMPS ``pair_style hdnnp`` and
n2p2's models run in mlpot.

Units. n2p2 has none of its own: its files are in the units of the data it was trained on.
``cflength`` (file length units per Angstrom) and ``cfenergy`` (file energy units per eV)
say which, as the keywords of the same name of LAMMPS ``pair_style hdnnp``: 1 and 1 for
Angstrom and eV; for Bohr and Hartree (the published mlearn models) 1.8897261328 and
0.0367493254 (`BOHR_HARTREE`). mlpot's NNP is in Angstrom and eV: eta_A = eta cflength^2,
r_s and r_c divided by cflength, energies divided by cfenergy. The data-set normalisation
of n2p2 (mean_energy, conv_energy, conv_length) is folded in the same way: E = E_NN /
conv_energy + N mean_energy + sum of atom_energy, in file units.

What is read: the keywords that define the potential (`PREDICTION_KEYWORDS`); n2p2's
training keywords (`TRAINING_KEYWORDS`) do not change a prediction and are passed over (a
model read and written again loses them; keep the original input.nn for training with
n2p2). Any other keyword, the 4G-HDNNP electrostatics, and symmetry-function types other
than 2, 3, 9, 12 and 13 are an `N2P2Error` naming them: nothing that changes the potential
is silently dropped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from mlpot.acsf import ACSF, CUTOFF_FUNCTIONS, n2p2_sort_key
from mlpot.models.nnp import ACTIVATIONS, NNP, Layer, Scaling

__all__ = ["BOHR_HARTREE", "N2P2Error", "PREDICTION_KEYWORDS", "TRAINING_KEYWORDS", "read", "write"]

#: (cflength, cfenergy) of files in Bohr and Hartree, the factors of mlearn's LAMMPS inputs
BOHR_HARTREE = (1.8897261328, 0.0367493254)

#: the keywords that define an n2p2 potential, all read
PREDICTION_KEYWORDS = frozenset({
    "number_of_elements", "elements", "atom_energy", "cutoff_type", "symfunction_short",
    "scale_symmetry_functions", "scale_min_short", "scale_max_short", "center_symmetry_functions",
    "scale_symmetry_functions_sigma", "global_hidden_layers_short", "global_nodes_short",
    "global_activation_short", "element_hidden_layers_short", "element_nodes_short",
    "element_activation_short", "normalize_nodes", "mean_energy", "conv_length", "conv_energy", "nnp_type",
})
#: n2p2's other names of keywords (Settings.cpp)
_ALIASES = {
    "symfunction": "symfunction_short", "nnp_generation": "nnp_type", "nnp_type_gen": "nnp_type",
    "nnp_gen": "nnp_type", "short_energy_error_threshold": "rmse_threshold_energy",
    "short_force_error_threshold": "rmse_threshold_force", "short_energy_fraction": "energy_fraction",
    "short_force_fraction": "force_fraction",
}
#: n2p2's training keywords: they do not change a prediction
TRAINING_KEYWORDS = frozenset({
    "random_seed", "test_fraction", "epochs", "normalize_data_set", "use_short_forces", "rmse_threshold",
    "rmse_threshold_energy", "rmse_threshold_force", "rmse_threshold_charge", "rmse_threshold_trials",
    "rmse_threshold_trials_energy", "rmse_threshold_trials_force", "rmse_threshold_trials_charge",
    "energy_fraction", "force_fraction", "force_energy_ratio", "charge_fraction", "use_old_weights_short",
    "use_old_weights_charge", "weights_min", "weights_max", "initial_hardness", "nguyen_widrow_weights_short",
    "nguyen_widrow_weights_charge", "precondition_weights", "main_error_metric", "write_trainpoints",
    "write_trainforces", "write_traincharges", "write_weights_epoch", "write_neuronstats", "write_trainlog",
    "repeated_energy_update", "updater_type", "parallel_mode", "jacobian_mode", "update_strategy",
    "selection_mode", "selection_mode_energy", "selection_mode_force", "selection_mode_charge",
    "task_batch_size_energy", "task_batch_size_force", "task_batch_size_charge", "gradient_type",
    "gradient_eta", "gradient_adam_eta", "gradient_adam_beta1", "gradient_adam_beta2", "gradient_adam_epsilon",
    "kalman_type", "kalman_epsilon", "kalman_eta", "kalman_etatau", "kalman_etamax", "kalman_q0",
    "kalman_qtau", "kalman_qmin", "kalman_lambda_short", "kalman_nue_short", "memorize_symfunc_results",
    "force_weight",
})
#: keywords of n2p2's 4G-HDNNP (charges and electrostatics), which mlpot does not evaluate
_ELECTROSTATIC = frozenset({
    "global_hidden_layers_electrostatic", "global_nodes_electrostatic", "global_activation_electrostatic",
    "element_hidden_layers_electrostatic", "element_nodes_electrostatic", "element_activation_electrostatic",
    "conv_charge", "fixed_gausswidth", "ewald_truncation_error_method", "ewald_prec", "screen_electrostatics",
    "four_pi_epsilon",
})
#: n2p2 documents these per layer and node ("element layer nodes", as RuNNer) but its
#: Mode.cpp (v2.3.0) reads whole lists, skipping the last hidden layer: files using them
#: do not mean the same in both, so mlpot reads and writes one topology for all elements
_PER_ELEMENT_TOPOLOGY = ("element_hidden_layers_short", "element_nodes_short", "element_activation_short")
_TOPOLOGY_WHY = (
    "n2p2's documentation and its v2.3.0 code read element_nodes_short/element_activation_short "
    "differently; mlpot reads and writes one topology, global_*_short, for every element"
)
_SCALING_KEYWORDS = ("scale_symmetry_functions", "center_symmetry_functions", "scale_symmetry_functions_sigma")


class N2P2Error(ValueError):
    """An n2p2 file mlpot cannot read, or a model it cannot write: names the file, the line
    and the problem."""


def _fail(path, line: int | None, message: str):
    where = f"{path}" + (f", line {line}" if line else "")
    raise N2P2Error(f"{where}: {message}")


def _float(text: str, path, line, what: str) -> float:
    try:
        x = float(text.replace("D", "E").replace("d", "e"))  # Fortran exponents, as RuNNer writes
    except ValueError:
        _fail(path, line, f"{what} must be a number, got {text!r}")
    if not math.isfinite(x):
        _fail(path, line, f"{what} must be finite, got {text!r}")
    return x


def _int(text: str, path, line, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        _fail(path, line, f"{what} must be an integer, got {text!r}")


def _settings(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, keyword, arguments) of every setting of input.nn, comments removed."""
    out = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if words:
            keyword = _ALIASES.get(words[0], words[0])
            out.append((number, keyword, words[1:]))
    return out


def _one(settings, keyword):
    found = [(n, a) for n, k, a in settings if k == keyword]
    return found[-1] if found else None


def read(path, *, cflength: float = 1.0, cfenergy: float = 1.0, weights=None, scaling=None) -> NNP:
    """The NNP of n2p2 files: ``path`` is their directory (input.nn, scaling.data and
    weights.ZZZ.data, ZZZ the atomic number with three digits) or the input.nn file;
    ``weights`` ({element: file}) and ``scaling`` (a file) name other files. ``cflength``
    and ``cfenergy``: the files' length units per Angstrom and energy units per eV (see the
    module docstring; `BOHR_HARTREE` for the mlearn models). Raises N2P2Error naming the
    file and line of anything it cannot read."""
    cflength = _factor("cflength", cflength)
    cfenergy = _factor("cfenergy", cfenergy)
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    input_nn = path / "input.nn" if path.is_dir() else path
    if not input_nn.is_file():
        raise FileNotFoundError(f"no n2p2 input.nn at {input_nn}")
    settings = _settings(input_nn)
    for number, keyword, _ in settings:
        if keyword in _ELECTROSTATIC:
            _fail(input_nn, number, f"{keyword}: 4G-HDNNP electrostatics are not supported by mlpot (2G only)")
        if keyword not in PREDICTION_KEYWORDS and keyword not in TRAINING_KEYWORDS:
            _fail(input_nn, number, f"unknown keyword {keyword!r} (mlpot reads n2p2's keywords; see mlpot.n2p2.PREDICTION_KEYWORDS)")
    nnp_type = _one(settings, "nnp_type")
    if nnp_type is not None and nnp_type[1] and nnp_type[1][0] not in ("2", "2G", "2G-HDNNP", "1", "short"):
        _fail(input_nn, nnp_type[0], f"nnp_type {' '.join(nnp_type[1])}: only 2G-HDNNPs (short-range) are supported")

    species = _species(settings, input_nn)
    index = {e: k for k, e in enumerate(species)}  # n2p2's element index: by atomic number
    cutoff_type, alpha = _cutoff_type(settings, input_nn)
    functions = _functions(settings, input_nn, species)
    # n2p2's internal order: the inputs of the networks and the rows of scaling.data
    for e in species:
        functions[e].sort(key=lambda f: n2p2_sort_key(f[0], index, cutoff_type, alpha))
    length = cflength
    acsf_functions = [
        {**f, "eta": f["eta"] * length**2, "r_s": f["r_s"] / length, "cutoff": f["cutoff"] / length}
        for e in species for f, _ in functions[e]
    ]
    descriptor = ACSF(species=species, functions=acsf_functions, cutoff_function=CUTOFF_FUNCTIONS[cutoff_type],
                      cutoff_alpha=alpha)
    counts = {e: len(functions[e]) for e in species}

    layers = _topology(settings, input_nn, species)
    networks = {}
    for e in species:
        file = Path(weights[e]) if weights and e in weights else directory / f"weights.{atomic_numbers[e]:03d}.data"
        networks[e] = _read_weights(file, counts[e], layers)

    mode = _scaling_mode(settings)
    s_min = _scalar(settings, "scale_min_short", input_nn, 0.0)
    s_max = _scalar(settings, "scale_max_short", input_nn, 1.0)
    scaling_file = Path(scaling) if scaling is not None else directory / "scaling.data"
    stats = _read_scaling(scaling_file, species, counts) if (mode != "none" or scaling_file.is_file()) else None
    scalings = None
    if stats is not None:
        scalings = {e: Scaling(mode, *stats[e], s_min=s_min, s_max=s_max) for e in species}
    elif mode != "none":
        raise FileNotFoundError(f"no scaling.data at {scaling_file} (input.nn asks for {mode} scaling)")

    atom_energy = {e: 0.0 for e in species}
    for number, keyword, args in settings:
        if keyword == "atom_energy":
            if len(args) != 2 or args[0] not in index:
                _fail(input_nn, number, f"atom_energy needs an element of {species} and a value, got {' '.join(args)}")
            atom_energy[args[0]] = _float(args[1], input_nn, number, "atom_energy")
    normalization = [_one(settings, k) for k in ("mean_energy", "conv_energy", "conv_length")]
    if any(normalization) and not all(normalization):
        _fail(input_nn, None, "use all or none of mean_energy, conv_energy and conv_length (as n2p2 requires)")
    mean_energy, conv_energy = 0.0, 1.0
    if all(normalization):
        mean_energy = _scalar(settings, "mean_energy", input_nn, 0.0)
        conv_energy = _scalar(settings, "conv_energy", input_nn, 1.0)
        # conv_length scales positions and the functions' lengths alike: G does not change
        _scalar(settings, "conv_length", input_nn, 1.0)
    return NNP(
        descriptor, networks=networks, scaling=scalings,
        energy_scale=1.0 / (conv_energy * cfenergy),
        atom_energies={e: (atom_energy[e] + mean_energy) / cfenergy for e in species},
        normalize_nodes=_one(settings, "normalize_nodes") is not None,
    )


def _factor(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a positive number (file units per mlpot unit), got {value!r}")
    return float(value)


def _scalar(settings, keyword, path, default: float) -> float:
    found = _one(settings, keyword)
    if found is None:
        return default
    number, args = found
    if len(args) != 1:
        _fail(path, number, f"{keyword} takes one number, got {' '.join(args) or 'none'}")
    return _float(args[0], path, number, keyword)


def _species(settings, path) -> list[str]:
    found = _one(settings, "elements")
    if found is None:
        _fail(path, None, "the keyword elements is missing")
    number, names = found
    for e in names:
        if e not in atomic_numbers or e == "X":
            _fail(path, number, f"elements: {e!r} is not an element symbol")
    count = _one(settings, "number_of_elements")
    if count is not None and (len(count[1]) != 1 or _int(count[1][0], path, count[0], "number_of_elements") != len(names)):
        _fail(path, count[0], f"number_of_elements {' '.join(count[1])} does not match elements {' '.join(names)}")
    if len(set(names)) != len(names):
        _fail(path, number, f"elements names an element twice: {' '.join(names)}")
    return sorted(names, key=lambda e: atomic_numbers[e])


def _cutoff_type(settings, path) -> tuple[int, float]:
    found = _one(settings, "cutoff_type")
    if found is None:
        _fail(path, None, "the keyword cutoff_type is missing")
    number, args = found
    kind = _int(args[0], path, number, "cutoff_type") if args else -1
    if not 0 <= kind < len(CUTOFF_FUNCTIONS):
        _fail(path, number, f"cutoff_type must be 0 to {len(CUTOFF_FUNCTIONS) - 1} ({', '.join(CUTOFF_FUNCTIONS)})")
    alpha = _float(args[1], path, number, "cutoff alpha") if len(args) > 1 else 0.0
    if not 0.0 <= alpha < 1.0:
        _fail(path, number, f"the cutoff parameter alpha must be in [0, 1), got {alpha}")
    return kind, alpha


def _functions(settings, path, species) -> dict[str, list]:
    """Each element's functions as (function dict in file units, input.nn line)."""
    out = {e: [] for e in species}
    for number, keyword, args in settings:
        if keyword != "symfunction_short":
            continue
        if len(args) < 2 or args[0] not in out:
            _fail(path, number, f"symfunction_short needs a central element of {species} and a type")
        center, kind = args[0], _int(args[1], path, number, "the symmetry-function type")
        rest = args[2:]
        num = lambda k, what: _float(rest[k], path, number, what)

        def neighbors(n):
            names = rest[:n]
            for e in names:
                if e not in out:
                    _fail(path, number, f"neighbour element {e!r} is not in elements {species}")
            return names

        if kind == 2 and len(rest) == 4:
            f = {"type": 2, "center": center, "neighbors": neighbors(1), "eta": num(1, "eta"), "r_s": num(2, "rs"),
                 "cutoff": num(3, "rc")}
        elif kind in (3, 9) and len(rest) in (6, 7):
            f = {"type": kind, "center": center, "neighbors": sorted(neighbors(2), key=species.index),
                 "eta": num(2, "eta"), "lambda": num(3, "lambda"), "zeta": num(4, "zeta"), "cutoff": num(5, "rc"),
                 "r_s": num(6, "rs") if len(rest) == 7 else 0.0}
        elif kind == 12 and len(rest) == 3:
            f = {"type": 12, "center": center, "eta": num(0, "eta"), "r_s": num(1, "rs"), "cutoff": num(2, "rc")}
        elif kind == 13 and len(rest) == 5:
            f = {"type": 13, "center": center, "eta": num(0, "eta"), "r_s": num(1, "rs"), "lambda": num(2, "lambda"),
                 "zeta": num(3, "zeta"), "cutoff": num(4, "rc")}
        elif kind in (2, 3, 9, 12, 13):
            _fail(path, number, f"a type-{kind} symmetry function has the wrong number of parameters: {' '.join(args)}")
        else:
            _fail(path, number, f"symmetry-function type {kind} is not supported (mlpot reads types 2, 3, 9, 12, 13)")
        out[center].append((f, number))
    for e in species:
        if not out[e]:
            _fail(path, None, f"element {e} has no symmetry functions")
    return out


def _topology(settings, path, species) -> list[tuple[int, str]]:
    """The (neurons, activation) of every layer after the input, the same for every
    element (global_hidden_layers_short, global_nodes_short, global_activation_short)."""
    for number, keyword, _ in settings:
        if keyword in _PER_ELEMENT_TOPOLOGY:
            _fail(path, number, f"{keyword}: per-element network topologies are not supported ({_TOPOLOGY_WHY})")
    found = {k: _one(settings, k) for k in ("global_hidden_layers_short", "global_nodes_short", "global_activation_short")}
    for keyword, value in found.items():
        if value is None:
            _fail(path, None, f"the keyword {keyword} is missing")
    (n_line, n_args), (s_line, s_args), (a_line, acts) = found.values()
    if len(n_args) != 1:
        _fail(path, n_line, "global_hidden_layers_short takes one count")
    n = _int(n_args[0], path, n_line, "global_hidden_layers_short")
    if len(s_args) != n:
        _fail(path, s_line, f"global_nodes_short must give {n} layer sizes (global_hidden_layers_short {n})")
    if len(acts) != n + 1:
        _fail(path, a_line, f"global_activation_short must give {n + 1} activations, one per layer after the input")
    sizes = [_int(x, path, s_line, "global_nodes_short") for x in s_args]
    if any(size < 1 for size in sizes):
        _fail(path, s_line, "layer sizes must be at least 1")
    for a in acts:
        if a not in ACTIVATIONS:
            _fail(path, a_line, f"activation {a!r} is not supported (mlpot has {', '.join(ACTIVATIONS)})")
    return list(zip(sizes + [1], acts))


def _read_weights(path: Path, n_in: int, layers: list[tuple[int, str]]) -> list[Layer]:
    """One element's network from its weights file, by the labels of each line (``value a
    index layer_from node_from layer_to node_to`` or ``value b index layer node``, nodes
    from 1); every weight and bias must be given exactly once."""
    if not path.is_file():
        raise FileNotFoundError(f"no n2p2 weights file at {path}")
    sizes = [n_in] + [n for n, _ in layers]
    weights = [np.full((sizes[k + 1], sizes[k]), np.nan) for k in range(len(layers))]
    biases = [np.full(sizes[k + 1], np.nan) for k in range(len(layers))]
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        value = _float(words[0], path, number, "a weight")
        try:
            if len(words) == 7 and words[1] == "a":
                l0, n0, l1, n1 = (int(w) for w in words[3:])
                if l1 != l0 + 1 or not 0 <= l0 < len(layers) or not (1 <= n0 <= sizes[l0] and 1 <= n1 <= sizes[l1]):
                    raise IndexError
                if not np.isnan(weights[l0][n1 - 1, n0 - 1]):
                    raise KeyError
                weights[l0][n1 - 1, n0 - 1] = value
            elif len(words) == 5 and words[1] == "b":
                l1, n1 = int(words[3]), int(words[4])
                if not 1 <= l1 <= len(layers) or not 1 <= n1 <= sizes[l1]:
                    raise IndexError
                if not np.isnan(biases[l1 - 1][n1 - 1]):
                    raise KeyError
                biases[l1 - 1][n1 - 1] = value
            else:
                _fail(path, number, "expected 'value a index layer node layer node' or 'value b index layer node'")
        except (ValueError, IndexError):
            _fail(path, number, f"a connection outside the network {'-'.join(map(str, sizes))}: {raw.strip()}")
        except KeyError:
            _fail(path, number, f"a weight given twice: {raw.strip()}")
    for k in range(len(layers)):
        if np.isnan(weights[k]).any() or np.isnan(biases[k]).any():
            _fail(path, None, f"weights of layer {k + 1} are missing (the network is {'-'.join(map(str, sizes))})")
    return [Layer(weights[k], biases[k], layers[k][1]) for k in range(len(layers))]


def _scaling_mode(settings) -> str:
    has = {k: _one(settings, k) is not None for k in _SCALING_KEYWORDS}
    if has["scale_symmetry_functions"] and has["center_symmetry_functions"]:
        return "scalecenter"
    if has["scale_symmetry_functions"]:
        return "scale"
    if has["center_symmetry_functions"]:
        return "center"
    if has["scale_symmetry_functions_sigma"]:
        return "scalesigma"
    return "none"


def _read_scaling(path: Path, species, counts) -> dict[str, tuple]:
    """Per element (G_min, G_max, G_mean, G_sigma) in n2p2's order, from scaling.data
    (``element function Gmin Gmax Gmean Gsigma``, indices from 1). A last line of three
    numbers (RuNNer's energy statistics) is not about the functions and is passed over."""
    if not path.is_file():
        raise FileNotFoundError(f"no n2p2 scaling.data at {path}")
    stats = {e: np.full((counts[e], 4), np.nan) for e in species}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words or len(words) == 3:
            continue
        if len(words) not in (5, 6):
            _fail(path, number, f"expected 'element function Gmin Gmax Gmean [Gsigma]', got {raw.strip()}")
        e_index, f_index = _int(words[0], path, number, "the element index"), _int(words[1], path, number, "the function index")
        if not 1 <= e_index <= len(species) or not 1 <= f_index <= counts[species[e_index - 1]]:
            _fail(path, number, f"element {e_index}, function {f_index} does not exist in input.nn")
        row = stats[species[e_index - 1]][f_index - 1]
        if not np.isnan(row[0]):
            _fail(path, number, f"element {e_index}, function {f_index} is given twice")
        row[:] = [_float(w, path, number, "a scaling value") for w in words[2:]] + ([0.0] if len(words) == 5 else [])
    for e in species:
        if np.isnan(stats[e]).any():
            missing = int(np.isnan(stats[e][:, 0]).argmax()) + 1
            _fail(path, None, f"element {e}: function {missing} has no scaling data")
    return {e: tuple(stats[e].T) for e in species}


# ---------------------------------------------------------------------- writing


def write(model: NNP, directory, *, cflength: float = 1.0, cfenergy: float = 1.0, member: int | None = None) -> None:
    """Write ``model`` (an `mlpot.NNP` on an `mlpot.ACSF`) as n2p2 files in ``directory``
    (created if needed): input.nn, scaling.data and weights.ZZZ.data, in file units of
    ``cflength`` per Angstrom and ``cfenergy`` per eV. The functions are written in n2p2's
    internal order, with the network inputs and scaling rows permuted to match, so that
    n2p2 and LAMMPS pair_style hdnnp evaluate the same potential. N2P2Error if the model
    cannot be written (another descriptor; different scaling settings per element).

    n2p2 holds one network per element: for a committee, ``member`` picks the member to
    write (0 to K-1; n2p2 runs a committee as K potentials)."""
    cflength = _factor("cflength", cflength)
    cfenergy = _factor("cfenergy", cfenergy)
    if not isinstance(model, NNP):
        raise TypeError(f"model must be an mlpot.NNP, got {type(model).__name__}")
    if model.members is None:
        raise N2P2Error("the NNP has no trained networks to write")
    if member is None:
        if model.committee > 1:
            raise N2P2Error(f"the model is a committee of {model.committee}; n2p2 files hold one network per element: "
                            "write each with member=0, 1, ...")
        member = 0
    if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < model.committee:
        raise ValueError(f"member must be an integer from 0 to {model.committee - 1}, got {member!r}")
    networks = model.members[member]
    d = model.descriptor
    if not isinstance(d, ACSF):
        raise N2P2Error(f"n2p2 files hold symmetry-function (ACSF) models; this NNP is on a {d.kind} descriptor")
    species = sorted(model.species, key=lambda e: atomic_numbers[e])
    index = {e: k for k, e in enumerate(species)}
    cutoff_type = CUTOFF_FUNCTIONS.index(d.cutoff_function)
    alpha = d.cutoff_alpha
    scalings = model.scaling
    modes = {(s.mode, s.s_min, s.s_max) if s is not None else None for s in scalings.values()}
    if len(modes) != 1:
        raise N2P2Error(f"n2p2 scales every element alike; this model's scalings differ: {sorted(map(str, modes))}")
    (mode_key,) = modes
    mode, s_min, s_max = mode_key if mode_key is not None else ("none", 0.0, 1.0)
    # n2p2 reads energies in file units: E = y / conv_energy + N mean_energy + atom_energy
    conv_energy = 1.0 / (model.energy_scale * cfenergy)

    by_element = {e: [f for f in d.functions if f["center"] == e] for e in species}
    order = {e: sorted(range(len(fs)), key=lambda k: n2p2_sort_key(fs[k], index, cutoff_type, alpha, cflength))
             for e, fs in by_element.items()}
    r = repr
    lines = [
        "# n2p2 potential written by mlpot "
        f"(lengths: {cflength!r} per Angstrom, energies: {cfenergy!r} per eV)",
        f"number_of_elements {len(species)}",
        "elements " + " ".join(species),
        *(f"atom_energy {e} {r(model.atom_energies[e] * cfenergy)}" for e in species),
        f"cutoff_type {cutoff_type} {r(alpha)}" if alpha else f"cutoff_type {cutoff_type}",
    ]
    if mode == "scalecenter":
        lines += ["scale_symmetry_functions", "center_symmetry_functions"]
    elif mode == "scale":
        lines += ["scale_symmetry_functions"]
    elif mode == "center":
        lines += ["center_symmetry_functions"]
    elif mode == "scalesigma":
        lines += ["scale_symmetry_functions_sigma"]
    lines += [f"scale_min_short {r(s_min)}", f"scale_max_short {r(s_max)}"]
    if not math.isclose(conv_energy, 1.0, rel_tol=1e-14):
        lines += ["mean_energy 0.0", f"conv_energy {r(conv_energy)}", "conv_length 1.0"]
    if model.normalize_nodes:
        lines += ["normalize_nodes"]
    shapes = {e: [l.weights.shape[0] for l in networks[e]] for e in species}
    acts = {e: [l.activation for l in networks[e]] for e in species}
    first = species[0]
    lines += [
        f"global_hidden_layers_short {len(shapes[first]) - 1}",
        "global_nodes_short " + " ".join(map(str, shapes[first][:-1])),
        "global_activation_short " + " ".join(acts[first]),
    ]
    for e in species[1:]:
        if shapes[e] != shapes[first] or acts[e] != acts[first]:
            raise N2P2Error(
                f"the networks of {first} and {e} differ in layers or activations; "
                f"per-element network topologies are not supported ({_TOPOLOGY_WHY})"
            )
    for e in species:
        for k in order[e]:
            lines.append(_function_line(by_element[e][k], cflength))
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "input.nn", "\n".join(lines) + "\n")

    rows = []
    for ei, e in enumerate(species, start=1):
        s = scalings[e]
        n = len(order[e])
        stats = np.array([s.g_min, s.g_max, s.g_mean, s.g_sigma]).T if s is not None else np.tile([0.0, 1.0, 0.0, 1.0], (n, 1))
        for fi, k in enumerate(order[e], start=1):
            rows.append(f"{ei:4d} {fi:4d} " + " ".join(f"{v:24.16E}" for v in stats[k]))
    _write_text(out / "scaling.data", "\n".join(rows) + "\n")

    for e in species:
        layers = networks[e]
        weights = [layers[0].weights[:, order[e]]] + [l.weights for l in layers[1:]]
        text = ["# weights written by mlpot: value, a/b, index, layer/node of the connection"]
        count = 0
        for k, (w, layer) in enumerate(zip(weights, layers)):
            for n0 in range(w.shape[1]):
                for n1 in range(w.shape[0]):
                    count += 1
                    text.append(f"{w[n1, n0]:24.16E} a {count:9d} {k:5d} {n0 + 1:5d} {k + 1:5d} {n1 + 1:5d}")
            for n1 in range(w.shape[0]):
                count += 1
                text.append(f"{layer.biases[n1]:24.16E} b {count:9d} {k + 1:5d} {n1 + 1:5d}")
        _write_text(out / f"weights.{atomic_numbers[e]:03d}.data", "\n".join(text) + "\n")


def _function_line(f: Mapping, length: float) -> str:
    r = repr
    eta, r_s, rc = f["eta"] / length**2, f["r_s"] * length, f["cutoff"] * length
    head = f"symfunction_short {f['center']} {f['type']}"
    if f["type"] == 2:
        return f"{head} {f['neighbors'][0]} {r(eta)} {r(r_s)} {r(rc)}"
    if f["type"] in (3, 9):
        return f"{head} {' '.join(f['neighbors'])} {r(eta)} {r(f['lambda'])} {r(f['zeta'])} {r(rc)} {r(r_s)}"
    if f["type"] == 12:
        return f"{head} {r(eta)} {r(r_s)} {r(rc)}"
    return f"{head} {r(eta)} {r(r_s)} {r(f['lambda'])} {r(f['zeta'])} {r(rc)}"


def _write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
