"""Behler-Parrinello high-dimensional neural-network potentials (Behler and Parrinello,
Phys. Rev. Lett. 98, 146401 (2007)), evaluated by the Rust core.

Atom i of element e has the energy

    E_i = energy_scale * NN_e(s_e(X_i)) + atom_energies[e]   (eV),

with X_i its descriptor vector (the first n_in features of any per-atom descriptor; for
n2p2 models `mlpot.ACSF`), s_e the affine input scaling of n2p2's symmetry-function
scaling modes and NN_e a feed-forward network with one output. Forces and the virial come
from the descriptor's adjoint at the slopes dE_i/dX_i, never storing dX/dr.

``mlpot.n2p2.read`` builds one from n2p2/RuNNer files; training comes in a later release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import json
import numpy as np
from ase.data import atomic_numbers

from mlpot import _core
from mlpot.descriptors import _Described
from mlpot.modelfile import (
    anything, array, at, boolean, build, check_shape, fail, fields, listed, mapping, element, real, string,
)
from mlpot.models.base import Model, check_baseline
from mlpot.models.parts import baseline_from_dict, baseline_to_dict, descriptor_document, descriptor_from_document
from mlpot.models.registry import register

__all__ = ["ACTIVATIONS", "ACTIVATION_NAMES", "Layer", "NNP", "SCALINGS", "Scaling"]

#: n2p2's activation functions by their input.nn letter
ACTIVATIONS = {
    "l": "linear (identity)",
    "t": "tanh",
    "s": "logistic 1 / (1 + exp(-x))",
    "p": "softplus ln(1 + exp(x))",
    "r": "ReLU max(0, x)",
    "g": "Gaussian exp(-x^2 / 2)",
    "c": "cos(x)",
    "S": "reverse logistic 1 - 1 / (1 + exp(-x))",
    "e": "exp(-x)",
    "h": "harmonic x^2",
}

#: n2p2's symmetry-function scaling modes (its keywords: scale_symmetry_functions,
#: center_symmetry_functions, both, scale_symmetry_functions_sigma; none)
SCALINGS = ("none", "scale", "center", "scalecenter", "scalesigma")

#: activation names (for NNP's ``activation``) and their n2p2 letters
ACTIVATION_NAMES = {
    "linear": "l", "tanh": "t", "logistic": "s", "softplus": "p", "relu": "r", "gaussian": "g", "cos": "c",
    "reverse_logistic": "S", "exp": "e", "harmonic": "h",
}

_NO_WEIGHTS = np.zeros(0)


def _hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        sizes = tuple(hidden)
    except TypeError:
        raise TypeError(f"hidden must be a list of layer sizes, got {hidden!r}") from None
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 1 <= n <= 100_000 for n in sizes):
        raise ValueError(f"hidden must hold layer sizes from 1 to 100000, got {hidden!r}")
    return tuple(int(n) for n in sizes)


def _activation(activation) -> str:
    """The n2p2 letter of an activation given by name or letter."""
    if activation in ACTIVATIONS:
        return activation
    if activation in ACTIVATION_NAMES:
        return ACTIVATION_NAMES[activation]
    raise ValueError(f"activation must be one of {list(ACTIVATION_NAMES)} or an n2p2 letter of {list(ACTIVATIONS)}, got {activation!r}")


@dataclass(frozen=True)
class Layer:
    """One layer of a network: y = activation(weights @ x + biases); weights (n_out, n_in)
    and biases (n_out,) float64, activation one letter of `ACTIVATIONS`."""

    weights: np.ndarray
    biases: np.ndarray
    activation: str

    def __post_init__(self):
        w = np.array(self.weights, dtype=np.float64)
        b = np.array(self.biases, dtype=np.float64)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"a layer needs weights (n_out, n_in) and biases (n_out,), got {w.shape} and {b.shape}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError("a layer's weights and biases must be finite")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)} ({ACTIVATIONS}), got {self.activation!r}")
        w.flags.writeable = False
        b.flags.writeable = False
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "biases", b)


@dataclass(frozen=True)
class Scaling:
    """n2p2's scaling of one element's network inputs, from the statistics of its
    training set (scaling.data): per input G_min, G_max, G_mean, G_sigma (units of the
    descriptor), the mode of `SCALINGS` and the target range [s_min, s_max]:

    - none: G; center: G - G_mean;
    - scale: s_min + (s_max - s_min) (G - G_min) / (G_max - G_min);
    - scalecenter: s_min + (s_max - s_min) (G - G_mean) / (G_max - G_min);
    - scalesigma: s_min + (s_max - s_min) (G - G_mean) / G_sigma.

    A function constant on the training set (G_max = G_min) is scaled by 1 instead of
    dividing by zero (n2p2 would divide by zero)."""

    mode: str
    g_min: np.ndarray
    g_max: np.ndarray
    g_mean: np.ndarray
    g_sigma: np.ndarray
    s_min: float = 0.0
    s_max: float = 1.0

    def __post_init__(self):
        if self.mode not in SCALINGS:
            raise ValueError(f"scaling mode must be one of {list(SCALINGS)}, got {self.mode!r}")
        arrays = [np.array(getattr(self, k), dtype=np.float64) for k in ("g_min", "g_max", "g_mean", "g_sigma")]
        n = arrays[0].shape
        if len(n) != 1 or any(a.shape != n for a in arrays):
            raise ValueError("scaling g_min, g_max, g_mean and g_sigma must be 1-d arrays of one length")
        if not all(np.isfinite(a).all() for a in arrays) or not (np.isfinite(self.s_min) and np.isfinite(self.s_max)):
            raise ValueError("scaling statistics must be finite")
        for k, a in zip(("g_min", "g_max", "g_mean", "g_sigma"), arrays):
            a.flags.writeable = False
            object.__setattr__(self, k, a)
        object.__setattr__(self, "s_min", float(self.s_min))
        object.__setattr__(self, "s_max", float(self.s_max))

    @property
    def n_inputs(self) -> int:
        return len(self.g_min)

    def affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shift, factor, offset) with s(G) = offset + factor (G - shift), in n2p2's
        order of operations (its scaling factor computed first), so that the scaled
        inputs are n2p2's to the last bit."""
        n = self.n_inputs
        width = self.s_max - self.s_min
        spread = self.g_max - self.g_min
        safe = np.where(spread == 0.0, 1.0, spread)
        if self.mode == "none":
            return np.zeros(n), np.ones(n), np.zeros(n)
        if self.mode == "center":
            return self.g_mean.copy(), np.ones(n), np.zeros(n)
        if self.mode == "scale":
            return self.g_min.copy(), np.where(spread == 0.0, 1.0, width / safe), np.full(n, self.s_min)
        if self.mode == "scalecenter":
            return self.g_mean.copy(), np.where(spread == 0.0, 1.0, width / safe), np.full(n, self.s_min)
        sigma = np.where(self.g_sigma == 0.0, 1.0, self.g_sigma)
        return self.g_mean.copy(), np.where(self.g_sigma == 0.0, 1.0, width / sigma), np.full(n, self.s_min)

    def apply(self, g: np.ndarray) -> np.ndarray:
        """The scaled inputs of raw features ``g`` (..., n_inputs)."""
        shift, factor, offset = self.affine()
        return offset + factor * (np.asarray(g, dtype=np.float64)[..., : self.n_inputs] - shift)

    def extrapolating(self, g: np.ndarray) -> np.ndarray:
        """Boolean mask (..., n_inputs): raw features outside [G_min, G_max] of the training
        set (n2p2's extrapolation warning)."""
        g = np.asarray(g, dtype=np.float64)[..., : self.n_inputs]
        return (g < self.g_min) | (g > self.g_max)


@register("NNP")
class NNP(Model):
    """A Behler-Parrinello neural-network potential: one feed-forward network per element
    on a per-atom descriptor (see the module docstring for the energy).

    Parameters
    ----------
    descriptor
        A per-atom descriptor (`mlpot.ACSF` for n2p2 models); its species are the model's.
    hidden
        Neurons per hidden layer, for a network to be trained (with ``networks``: taken
        from them).
    activation
        The hidden layers' activation, a name of `ACTIVATION_NAMES` ("tanh", ...) or an
        n2p2 letter of `ACTIVATIONS`; the output layer is linear.
    networks
        {element: [Layer, ...]}, the trained networks; every species of the descriptor
        needs one; the first layer takes the first n_in features (with `mlpot.ACSF`: the
        element's functions, n_in = ``descriptor.n_functions(element)``), the last has one
        output. None: an untrained model.
    scaling
        {element: Scaling} with n_inputs = the first layer's n_in; None: no scaling.
    energy_scale
        eV per unit of network output (n2p2: 1 / (cfenergy conv_energy)).
    atom_energies
        {element: eV} added per atom (n2p2: (atom_energy + mean_energy) / cfenergy); 0 by
        default.
    normalize_nodes
        n2p2's ``normalize_nodes``: each neuron's weighted sum, bias included, divided by
        its number of inputs.
    baseline
        Optional fixed reference potential added to every prediction.
    """

    def __init__(
        self,
        descriptor,
        hidden: Sequence[int] = (24, 24),
        activation: str = "tanh",
        *,
        networks: Mapping[str, Sequence[Layer]] | None = None,
        scaling: Mapping[str, Scaling] | None = None,
        energy_scale: float = 1.0,
        atom_energies: Mapping[str, float] | None = None,
        normalize_nodes: bool = False,
        baseline=None,
    ):
        if not (isinstance(descriptor, _Described) and descriptor.per_atom):
            raise TypeError(f"descriptor must be a per-atom descriptor of mlpot (e.g. mlpot.ACSF), got {type(descriptor).__name__}")
        self._descriptor = descriptor
        species = descriptor.species
        self._hidden = _hidden(hidden)
        self._activation = _activation(activation)
        self._networks = None if networks is None else self._check_networks(networks, species)
        self._scaling = self._check_scaling(scaling, species)
        if isinstance(energy_scale, bool) or not isinstance(energy_scale, (int, float, np.floating, np.integer)) or not (
            np.isfinite(energy_scale) and energy_scale != 0
        ):
            raise ValueError(f"energy_scale must be a finite non-zero number (eV per network output), got {energy_scale!r}")
        self._energy_scale = float(energy_scale)
        energies = dict(atom_energies or {})
        unknown = [e for e in energies if e not in species]
        if unknown:
            raise ValueError(f"atom_energies names element(s) {unknown} that are not in species {list(species)}")
        self._atom_energies = {e: float(energies.get(e, 0.0)) for e in species}
        if not all(np.isfinite(v) for v in self._atom_energies.values()):
            raise ValueError("atom_energies must be finite")
        if not isinstance(normalize_nodes, (bool, np.bool_)):
            raise TypeError(f"normalize_nodes must be True or False, got {normalize_nodes!r}")
        self._normalize_nodes = bool(normalize_nodes)
        self.baseline = check_baseline(baseline)
        self._term = None
        if self._networks is not None:
            self._term = _core.Term.network(descriptor._core, json.dumps(self._core_networks()))

    # ------------------------------------------------------------------ checks

    def _check_networks(self, networks, species) -> dict[str, tuple[Layer, ...]]:
        if not isinstance(networks, Mapping):
            raise TypeError("networks must be a dict {element: [Layer, ...]}")
        missing = [e for e in species if e not in networks]
        extra = [e for e in networks if e not in species]
        if missing or extra:
            raise ValueError(f"networks must have exactly the species {list(species)}: missing {missing}, unexpected {extra}")
        out = {}
        n_features = self._descriptor.n_features
        for e in species:
            layers = tuple(networks[e])
            if not layers or not all(isinstance(layer, Layer) for layer in layers):
                raise TypeError(f"networks[{e!r}] must be a non-empty list of mlpot.models.nnp.Layer")
            for k in range(1, len(layers)):
                if layers[k].weights.shape[1] != layers[k - 1].weights.shape[0]:
                    raise ValueError(
                        f"networks[{e!r}]: layer {k} takes {layers[k].weights.shape[1]} inputs but layer {k - 1} "
                        f"gives {layers[k - 1].weights.shape[0]}"
                    )
            if layers[-1].weights.shape[0] != 1:
                raise ValueError(f"networks[{e!r}]: the last layer must have one output, got {layers[-1].weights.shape[0]}")
            n_in = layers[0].weights.shape[1]
            if n_in > n_features:
                raise ValueError(f"networks[{e!r}] takes {n_in} inputs but the descriptor has {n_features} features")
            expected = getattr(self._descriptor, "n_functions", None)
            if expected is not None and n_in != expected(e):
                raise ValueError(f"networks[{e!r}] takes {n_in} inputs but the descriptor has {expected(e)} functions of {e}")
            out[e] = layers
        return out

    def _check_scaling(self, scaling, species) -> dict[str, Scaling]:
        if scaling is None:
            return {e: None for e in species}
        if not isinstance(scaling, Mapping):
            raise TypeError("scaling must be None or a dict {element: Scaling}")
        extra = [e for e in scaling if e not in species]
        if extra:
            raise ValueError(f"scaling names element(s) {extra} that are not in species {list(species)}")
        out = {}
        for e in species:
            s = scaling.get(e)
            if s is not None:
                if not isinstance(s, Scaling):
                    raise TypeError(f"scaling[{e!r}] must be an mlpot.models.nnp.Scaling")
                if s.n_inputs != self.n_inputs(e):
                    raise ValueError(f"scaling[{e!r}] has {s.n_inputs} inputs, the network {self.n_inputs(e)}")
            out[e] = s
        return out

    def _core_networks(self) -> dict:
        nets = []
        for e in self.species:
            layers = self._networks[e]
            n_in = layers[0].weights.shape[1]
            s = self._scaling[e]
            shift, factor, offset = s.affine() if s is not None else (np.zeros(n_in), np.ones(n_in), np.zeros(n_in))
            nets.append({
                "species": atomic_numbers[e],
                "layers": [
                    {"weights": layer.weights.tolist(), "biases": layer.biases.tolist(), "activation": layer.activation}
                    for layer in layers
                ],
                "input_shift": shift.tolist(), "input_factor": factor.tolist(), "input_offset": offset.tolist(),
                "energy_scale": self._energy_scale, "energy_offset": self._atom_energies[e],
                "normalize_nodes": self._normalize_nodes,
            })
        return {"networks": nets}

    # ------------------------------------------------------------------ properties

    @classmethod
    def accepts(cls, descriptor_class: type) -> bool:
        return isinstance(descriptor_class, type) and issubclass(descriptor_class, _Described) and descriptor_class.per_atom

    @property
    def descriptor(self):
        return self._descriptor

    @property
    def species(self) -> tuple[str, ...]:
        return self._descriptor.species

    @property
    def networks(self) -> dict[str, tuple[Layer, ...]] | None:
        """{element: layers}; None before training."""
        return None if self._networks is None else dict(self._networks)

    @property
    def hidden(self) -> tuple[int, ...]:
        """Neurons per hidden layer (of the first species' network when trained)."""
        if self._networks is None:
            return self._hidden
        return tuple(l.weights.shape[0] for l in self._networks[self.species[0]][:-1])

    def _require_networks(self):
        if self._networks is None:
            raise RuntimeError("the NNP has no trained networks yet: read one with mlpot.n2p2.read or pass networks=")

    @property
    def scaling(self) -> dict[str, Scaling | None]:
        return dict(self._scaling)

    @property
    def energy_scale(self) -> float:
        return self._energy_scale

    @property
    def atom_energies(self) -> dict[str, float]:
        return dict(self._atom_energies)

    @property
    def normalize_nodes(self) -> bool:
        return self._normalize_nodes

    def n_inputs(self, element: str) -> int:
        """Inputs of ``element``'s network (its leading descriptor features)."""
        if self._networks is None:
            n = getattr(self._descriptor, "n_functions", None)
            return n(element) if n is not None else self._descriptor.n_features
        return self._networks[element][0].weights.shape[1]

    def __repr__(self) -> str:
        if self._networks is None:
            return f"NNP(hidden={self._hidden}, activation={self._activation!r}, untrained; {self._descriptor!r})"
        shapes = ", ".join(
            f"{e}: {'-'.join(str(n) for n in [self.n_inputs(e)] + [l.weights.shape[0] for l in self._networks[e]])} "
            f"{''.join(l.activation for l in self._networks[e])}"
            for e in self.species
        )
        return f"NNP({shapes}; {self._descriptor!r})"

    # ------------------------------------------------------------------ prediction

    def fit(self, frames, **kwargs):
        raise NotImplementedError(
            "NNP training is not available yet: build the model from n2p2/RuNNer files with mlpot.n2p2.read"
        )

    def _predict_core(self, atoms, terms=()):
        self._require_networks()
        structure = self._descriptor._structure(atoms)
        weights = [_NO_WEIGHTS] * (1 + len(terms))
        energies, forces, virial, _ = _core.predict_terms([self._term, *terms], structure, weights, False)
        return energies, forces, virial, {}

    def atomic_energies(self, element: str, features) -> tuple[np.ndarray, np.ndarray]:
        """The atomic energies E (n,) eV of atoms of ``element`` with descriptor vectors
        ``features`` (n, n_in or more; raw, unscaled), and dE/dX (n, n_in) eV per unit of
        X, as the core evaluates them: E = energy_scale y + atom_energies[element]."""
        self._require_networks()
        if element not in self.species:
            raise ValueError(f"{element!r} is not in species {list(self.species)}")
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] < self.n_inputs(element):
            raise ValueError(f"features must have shape (n, >= {self.n_inputs(element)}), got {x.shape}")
        return self._term.network_outputs(atomic_numbers[element], np.ascontiguousarray(x[:, : self.n_inputs(element)]))

    def extrapolation(self, atoms) -> np.ndarray:
        """Per atom, the number of its network inputs outside the range of the training
        set (n2p2's extrapolation warnings; needs a scaling): 0 means interpolation."""
        x = self._descriptor.compute(atoms)
        out = np.zeros(len(atoms), dtype=np.int64)
        symbols = np.array(atoms.get_chemical_symbols())
        for e in self.species:
            s = self._scaling[e]
            mask = symbols == e
            if s is not None and mask.any():
                out[mask] = s.extrapolating(x[mask]).sum(axis=1)
        return out

    # ------------------------------------------------------------------ files

    def _document(self) -> dict:
        self._require_networks()

        def scaling(s):
            if s is None:
                return None
            return {"mode": s.mode, "g_min": s.g_min, "g_max": s.g_max, "g_mean": s.g_mean, "g_sigma": s.g_sigma,
                    "s_min": s.s_min, "s_max": s.s_max}

        return {
            "kind": self.kind,
            "descriptor": descriptor_document(self._descriptor),
            "networks": {
                e: [{"activation": l.activation, "weights": l.weights, "biases": l.biases} for l in layers]
                for e, layers in self._networks.items()
            },
            "scaling": {e: scaling(s) for e, s in self._scaling.items()},
            "energy_scale": self._energy_scale,
            "atom_energies": dict(self._atom_energies),
            "normalize_nodes": self._normalize_nodes,
            "baseline": baseline_to_dict(self.baseline),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "NNP":
        """Inverse of `to_dict` (arrays as lists or float64 arrays); raises
        mlpot.ModelFileError naming what is wrong."""
        d = fields(data, {
            "kind": string([cls.kind]), "descriptor": anything, "networks": anything, "scaling": anything,
            "energy_scale": real(), "atom_energies": mapping(element, real()), "normalize_nodes": boolean,
            "baseline": anything,
        })
        descriptor = descriptor_from_document(d["descriptor"], "descriptor")
        layer = lambda v, p: fields(v, {"activation": string(list(ACTIVATIONS)), "weights": array(2), "biases": array(1)}, p)
        networks = mapping(element, listed(layer, min_length=1))(d["networks"], "networks")
        for e, layers in networks.items():
            for k, l in enumerate(layers):
                check_shape(l["biases"], (l["weights"].shape[0],), at(at("networks", e), k) + ".biases", "one per output")
        scale = lambda v, p: None if v is None else fields(v, {
            "mode": string(SCALINGS), "g_min": array(1), "g_max": array(1), "g_mean": array(1), "g_sigma": array(1),
            "s_min": real(), "s_max": real(),
        }, p)
        scaling = mapping(element, scale)(d["scaling"], "scaling")
        baseline = baseline_from_dict(d["baseline"])
        return build("", lambda: cls(
            descriptor,
            networks={e: [Layer(l["weights"], l["biases"], l["activation"]) for l in layers] for e, layers in networks.items()},
            scaling={e: None if s is None else Scaling(**s) for e, s in scaling.items()},
            energy_scale=d["energy_scale"], atom_energies=d["atom_energies"], normalize_nodes=d["normalize_nodes"],
            baseline=baseline,
        ))
