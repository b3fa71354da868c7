"""Behler-Parrinello high-dimensional neural-network potentials (Behler and Parrinello,
Phys. Rev. Lett. 98, 146401 (2007)), evaluated by the Rust core.

Atom i of element e has the energy

    E_i = energy_scale * NN_e(s_e(X_i)) + atom_energies[e]   (eV),

with X_i its descriptor vector (the first n_in features of any per-atom descriptor; for
n2p2 models `mlpot.ACSF`), s_e the affine input scaling of n2p2's symmetry-function
scaling modes and NN_e a feed-forward network with one output. Forces and the virial come
from the descriptor's adjoint at the slopes dE_i/dX_i, never storing dX/dr.

``mlpot.n2p2.read`` builds one from n2p2/RuNNer files; `NNP.fit` trains one
(`mlpot.models.nnp_fit`), optionally as a committee of K members whose spread is the
extrapolation warning (Deringer, Caro and Csanyi, Adv. Mater. 31, 1902765 (2019)): the
prediction is the members' mean and ``predict(atoms, variance=True)`` adds their standard
deviations, computed in one pass over the descriptor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import json
import numpy as np
from ase.data import atomic_numbers

from mlpot import _core
from mlpot.descriptors import _Described
from mlpot.modelfile import (
    anything, array, at, boolean, build, check_shape, fail, fields, listed, mapping, element, real, string,
)
from mlpot.models import nnp_fit
from mlpot.models.base import Model, check_baseline
from mlpot.models.layers import ACTIVATION_NAMES, ACTIVATIONS, SCALINGS, Layer, Scaling
from mlpot.models.specs import NNPFitParams, NNPParams
from mlpot.models.training import resolve_group_weights
from mlpot.models.parts import baseline_from_dict, baseline_to_dict, descriptor_document, descriptor_from_document
from mlpot.models.registry import register

__all__ = ["ACTIVATIONS", "ACTIVATION_NAMES", "Layer", "NNP", "SCALINGS", "Scaling"]

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
    committee
        Members to train (networks of the same shape from different random starts, and
        with ``fit(bootstrap=True)`` on bootstrap resamples of the frames); with more than
        one, ``predict(atoms, variance=True)`` gives their spread.
    networks
        {element: [Layer, ...]}, the trained networks; every species of the descriptor
        needs one; the first layer takes the first n_in features (with `mlpot.ACSF`: the
        element's functions, n_in = ``descriptor.n_functions(element)``), the last has one
        output. A list of such dicts is a committee (sets ``committee``). None: an
        untrained model.
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
        committee: int = 1,
        networks: Mapping[str, Sequence[Layer]] | Sequence[Mapping[str, Sequence[Layer]]] | None = None,
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
        if isinstance(committee, bool) or not isinstance(committee, (int, np.integer)) or not 1 <= committee <= 1000:
            raise ValueError(f"committee must be a number of members from 1 to 1000, got {committee!r}")
        self._committee = int(committee)
        self._members = None
        if networks is not None:
            members = [networks] if isinstance(networks, Mapping) else list(networks)
            if not members:
                raise ValueError("networks must be a dict {element: [Layer, ...]} or a non-empty list of them")
            self._members = [self._check_networks(m, species) for m in members]
            self._committee = len(self._members)
        self._networks = None if self._members is None else self._members[0]
        self._history = None
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
            self._build_term()

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

    def _build_term(self) -> None:
        if len(self._members) > 1:
            for k, m in enumerate(self._members[1:], start=1):
                for e in self.species:
                    if [l.weights.shape for l in m[e]] != [l.weights.shape for l in self._networks[e]]:
                        raise ValueError(f"committee member {k}: the network of {e} has other layer shapes than member 0's")
        self._term = _core.Term.network(self._descriptor._core, json.dumps(self._core_networks()))

    def _set_trained(self, networks, scaling, energy_scale, atom_energies, members=None) -> None:
        """Sets trained networks (members: all of a committee's; None: one member), the
        input scaling, the energy scale and the per-element energies (for `fit`)."""
        self._members = [self._check_networks(m, self.species) for m in (members or [networks])]
        self._networks = self._members[0]
        self._scaling = self._check_scaling(scaling, self.species)
        self._energy_scale = float(energy_scale)
        self._atom_energies = {e: float(atom_energies[e]) for e in self.species}
        self._build_term()

    def _core_networks(self) -> dict:
        doc = {"networks": self._core_member(self._networks)}
        if len(self._members) > 1:
            doc["committee"] = [self._core_member(m) for m in self._members[1:]]
        return doc

    def _core_member(self, networks) -> list:
        nets = []
        for e in self.species:
            layers = networks[e]
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
        return nets

    # ------------------------------------------------------------------ configurations

    default_descriptor = "acsf"
    fit_path_keys = ("log", "checkpoint", "restart")
    fit_input_keys = ("restart",)

    @classmethod
    def from_config(cls, descriptor, settings: Mapping, groups: Mapping, baseline, pair_terms=()):
        """The NNP of a configuration's [model] (hidden, activation, committee) and the
        keywords of `fit` (the other [model] keys, `NNPFitParams`; ``group_weights`` from
        [groups]), checked before any data are read."""
        names = {f.name for f in NNPParams.parameters()}
        built = NNPParams(**{k: v for k, v in settings.items() if k in names})
        fit = {k: v for k, v in settings.items() if k not in names}
        keywords = NNPFitParams(**fit).fit_keywords(fit)
        cls.check_groups(groups)
        if groups:
            keywords["group_weights"] = dict(groups)
        model = cls(descriptor, hidden=built.hidden, activation=built.activation, committee=built.committee, baseline=baseline)
        return model, keywords

    @classmethod
    def check_groups(cls, groups: Mapping) -> None:
        """The groups' eweight/fweight/vweight, as `fit` checks them."""
        resolve_group_weights(1.0, 1.0, 1.0, groups)

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
    def members(self) -> list[dict[str, tuple[Layer, ...]]] | None:
        """The networks of every committee member (a list of one for a single model);
        None before training."""
        return None if self._members is None else [dict(m) for m in self._members]

    @property
    def committee(self) -> int:
        """Members of the committee."""
        return self._committee

    @property
    def has_variance(self) -> bool:
        """Whether ``predict(atoms, variance=True)`` is available: a committee of two or
        more members."""
        return self._committee > 1

    @property
    def activation(self) -> str:
        """The hidden layers' activation (n2p2 letter)."""
        if self._networks is None:
            return self._activation
        return self._networks[self.species[0]][0].activation

    @property
    def history(self):
        """The learning curve of the last `fit` (`mlpot.models.nnp_fit.History`), or None."""
        return self._history

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

    def fit(
        self,
        frames,
        energy_weight: float | None = None,
        force_weight: float | None = None,
        stress_weight: float | None = None,
        group_weights: Mapping[str, Mapping[str, float]] | None = None,
        **settings,
    ) -> "NNP":
        """Train the networks (every committee member's) on reference energies, forces and
        optionally stresses; returns the model. The per-element reference energies, the
        energy scale and the input scaling (n2p2's "scalesigma") come from the training frames and
        are stored with the model.

        Parameters
        ----------
        frames
            ``ase.Atoms`` with reference energy (eV), forces (eV/Angstrom) and optionally
            stress (eV/Angstrom^3) on their calculator, and their configuration group in
            ``atoms.info["group"]`` (the validation split is stratified by it).
        energy_weight, force_weight, stress_weight
            Weights of the squared errors of the energy per atom, the force components and
            the stress components, each measured in units of its spread in the training
            set (`mlpot.models.nnp_fit`); None: `DEFAULT_WEIGHTS` (30, 1, 0). 0 leaves a
            quantity out. Stress needs optimizer "lbfgs" or "adam".
        group_weights
            ``{group: {"eweight": .., "fweight": .., "vweight": ..}}``: weights per
            configuration group; missing keys take the global weights.
        **settings
            `mlpot.models.nnp_fit.Settings`: optimizer ("kalman", "lbfgs", "adam"), epochs,
            patience, validation, kalman (a dict of `Kalman` settings), batch_size,
            learning_rate, final_learning_rate, lbfgs_iterations, scaling, scaling_range,
            bootstrap, seed, log,
            checkpoint, restart, progress.

        The learning curve is in ``model.history`` (and in ``log`` as CSV).
        """
        unknown = set(settings) - {f.name for f in nnp_fit.dataclass_fields(nnp_fit.Settings)}
        if unknown:
            raise TypeError(f"fit() got unknown setting(s) {sorted(unknown)}; see mlpot.models.nnp_fit.Settings")
        config = nnp_fit.Settings(**settings)
        defaults = nnp_fit.DEFAULT_WEIGHTS
        weights = [defaults[k] if w is None else w for k, w in enumerate((energy_weight, force_weight, stress_weight))]
        self._history = nnp_fit.train(self, frames, *weights, group_weights, config)
        return self

    def _predict_core(self, atoms, terms=(), variance: bool = False):
        self._require_networks()
        structure = self._descriptor._structure(atoms)
        weights = [_NO_WEIGHTS] * (1 + len(terms))
        energies, forces, virial, _ = _core.predict_terms([self._term, *terms], structure, weights, False)
        extras = {}
        if variance:
            if not self.has_variance:
                raise ValueError("variance=True needs a committee: train NNP(..., committee=K) with K >= 2")
            e, f, _ = self._term.predict_members(structure)
            extras = {
                "energy_std": float(np.std(e.sum(axis=1), ddof=1)),
                "energies_std": np.std(e, axis=0, ddof=1),
                "forces_std": np.std(f, axis=0, ddof=1),
            }
        return energies, forces, virial, extras

    def predict(self, atoms, variance: bool = False) -> dict:
        """`Model.predict` (the committee's mean); with ``variance=True`` (a committee of two
        or more) also the members' standard deviations (ddof=1): energy_std (eV),
        energies_std (per atom, eV) and forces_std (n_atoms, 3; eV/Angstrom), large where
        the members disagree, away from the training data."""
        return super().predict(atoms, variance=variance)

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
            "networks": _layers_document(self._networks),
            "committee": [_layers_document(m) for m in self._members[1:]],
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
        body = dict(data)
        body.setdefault("committee", [])  # files before committees
        d = fields(body, {
            "kind": string([cls.kind]), "descriptor": anything, "networks": anything, "committee": anything,
            "scaling": anything, "energy_scale": real(), "atom_energies": mapping(element, real()),
            "normalize_nodes": boolean, "baseline": anything,
        })
        descriptor = descriptor_from_document(d["descriptor"], "descriptor")
        layer = lambda v, p: fields(v, {"activation": string(list(ACTIVATIONS)), "weights": array(2), "biases": array(1)}, p)
        def member(value, path):
            networks = mapping(element, listed(layer, min_length=1))(value, path)
            for e, layers in networks.items():
                for k, l in enumerate(layers):
                    check_shape(l["biases"], (l["weights"].shape[0],), at(at(path, e), k) + ".biases", "one per output")
            return networks

        networks = member(d["networks"], "networks")
        committee = listed(member)(d["committee"], "committee")
        scale = lambda v, p: None if v is None else fields(v, {
            "mode": string(SCALINGS), "g_min": array(1), "g_max": array(1), "g_mean": array(1), "g_sigma": array(1),
            "s_min": real(), "s_max": real(),
        }, p)
        scaling = mapping(element, scale)(d["scaling"], "scaling")
        baseline = baseline_from_dict(d["baseline"])
        to_layers = lambda m: {e: [Layer(l["weights"], l["biases"], l["activation"]) for l in layers] for e, layers in m.items()}
        return build("", lambda: cls(
            descriptor,
            networks=[to_layers(m) for m in [networks, *committee]],
            scaling={e: None if s is None else Scaling(**s) for e, s in scaling.items()},
            energy_scale=d["energy_scale"], atom_energies=d["atom_energies"], normalize_nodes=d["normalize_nodes"],
            baseline=baseline,
        ))


def _layers_document(networks) -> dict:
    return {e: [{"activation": l.activation, "weights": l.weights, "biases": l.biases} for l in layers] for e, layers in networks.items()}
