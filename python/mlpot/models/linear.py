"""The linear and quadratic model on any per-atom descriptor: fit, predict, serialize.

Atom i of species e has the energy (LAMMPS ``pair_style snap`` when X is the bispectrum)

    E_i = beta0_e + sum_k beta_ek X_ik + sum_{k<=l} alpha_ekl q_kl(X_i),
    q_kk = X_k^2 / 2,  q_kl = X_k X_l (k < l; quadratic models only),

with X_i the descriptor vector of atom i (`mlpot.Bispectrum`, `mlpot.SOAP` or any per-atom
descriptor of `mlpot.descriptors`). Energy, forces and virial are linear in the
coefficients, so a fit is weighted linear least squares over energy, force and stress rows.
SNAP (`mlpot.SNAP`) is this model on the bispectrum; linear ACE will be it on ACE.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping

import numpy as np
from ase.data import atomic_numbers
from ase.units import bar as _BAR
from threadpoolctl import threadpool_limits

from mlpot import _core, _memory
from mlpot.descriptors import _Described, _flag
from mlpot.modelfile import anything, array, boolean, build, check_shape, fields, string
from mlpot.models import active_set, lstsq, training
from mlpot.models.base import Model, check_baseline, progress as _progress
from mlpot.models.parts import baseline_from_dict, baseline_to_dict, descriptor_document, descriptor_from_document
from mlpot.models.ranges import LogUniform
from mlpot.models.registry import register
from mlpot.models.specs import LinearParams, SNAPFitParams
from mlpot.models.system import LinearSystem, part_labels

#: The weights of a fixed term (a core baseline).
_NO_WEIGHTS = np.zeros(0)

__all__ = ["LinearModel", "LinearSystem"]


#: typical DFT noise of forces over that of energies: 0.05 eV/Angstrom to 1 meV/atom
FORCE_TO_ENERGY_NOISE = 50.0


def default_energy_weight(frames) -> float:
    """The energy weight of a fit given none (force weight 1): FORCE_TO_ENERGY_NOISE x
    sqrt(force rows per energy row), from a `LinearSystem`'s rows or a list of frames'
    atoms (3 N force rows per frame): each kind of row then carries a comparable share of
    the weighted residual when both are at their noise level."""
    if isinstance(frames, LinearSystem):
        forces = sum(frames.n_rows(g, "forces") for g in frames.groups)
        energies = sum(frames.n_rows(g, "energy") for g in frames.groups)
    else:
        forces, energies = 3 * sum(len(a) for a in frames), len(frames)
    ratio = forces / energies if energies and forces else 1.0
    return FORCE_TO_ENERGY_NOISE * math.sqrt(max(ratio, 1.0))


def _solver_bytes(solver: str, n: int) -> int:
    """Peak bytes of a least-squares solve over n coefficients (mlpot.models.lstsq): the QR
    factor with its default batch of max(2 (n + 1), 4096) rows and the SVD of R ("svd"), or
    the normal equations and their factorization ("normal")."""
    width = n + 1
    if solver == "svd":
        return 8 * (width * (width + max(2 * width, 4096)) + 2 * n * n)
    return 8 * 2 * n * n


@register("Linear")
class LinearModel(Model):
    """A linear (``quadratic=False``) or quadratic model on any per-atom descriptor: per
    species, a constant beta0, K linear coefficients and, if quadratic, K(K+1)/2 more.

    Parameters
    ----------
    descriptor
        A per-atom descriptor of `mlpot.descriptors` (`mlpot.SOAP`, `mlpot.Bispectrum`, ...;
        not a pair term such as `mlpot.Distance2b`); its species are the model's species,
        in its order (the order of the coefficients).
    quadratic
        Add the K(K+1)/2 products of descriptor components (on the bispectrum: quadratic
        SNAP, Wood and Thompson, J. Chem. Phys. 148, 241721 (2018)).
    baseline
        Optional fixed reference potential (e.g. ``mlpot.baselines.ZBL``): any object with
        ``predict(atoms) -> dict(energy, forces, stress, energies)``. It is subtracted from
        the references before a fit and added to every prediction.
    """

    #: the hyperparameters' spec (SNAP: `SNAPParams`)
    Params = LinearParams
    #: the name of the constructor's descriptor argument (in messages)
    _descriptor_name = "descriptor"

    def __init__(self, descriptor, quadratic: bool = False, baseline=None):
        self._check_descriptor(descriptor)
        quadratic = self.Params(quadratic=quadratic).quadratic
        self._descriptor = descriptor
        self._quadratic = quadratic
        self.baseline = check_baseline(baseline)
        self._coefficients: dict[str, np.ndarray] | None = None
        # the linear model on the descriptor, as a term of the core: rows for fits and the
        # prediction for the concatenated coefficients (its weights)
        self._term = _core.Term.linear(descriptor._core, quadratic)
        self._weights: np.ndarray | None = None
        # per element, the inverse of the D-optimal active set (`select_active_set`)
        self._active: dict[str, np.ndarray] | None = None

    @classmethod
    def from_config(cls, descriptor, settings: Mapping, groups: Mapping, baseline, pair_terms=()):
        """The model of a configuration's [model] (``quadratic``) and the keywords of `fit`
        (the weights, ridge and solver of [model], ``group_weights`` from [groups]),
        checked as `fit` checks them, before any data are read."""
        model = cls(descriptor, quadratic=settings.get("quadratic", False), baseline=baseline)
        keywords = {k: v for k, v in settings.items() if k != "quadratic"}
        SNAPFitParams(**keywords)
        cls.check_groups(groups)
        if groups:
            keywords["group_weights"] = dict(groups)
        return model, keywords

    @classmethod
    def check_groups(cls, groups: Mapping) -> None:
        """The groups' eweight/fweight/vweight, as `fit` checks them."""
        training.resolve_group_weights(1.0, 1.0, 1.0, groups)

    @classmethod
    def accepts(cls, descriptor_class: type) -> bool:
        """Whether the model is built on descriptors of this class: any per-atom
        descriptor (its ``per_atom`` flag)."""
        return isinstance(descriptor_class, type) and issubclass(descriptor_class, _Described) and descriptor_class.per_atom

    def _check_descriptor(self, descriptor) -> None:
        if not self.accepts(type(descriptor)):
            what = "a pair term" if isinstance(descriptor, _Described) else "not a descriptor"
            raise TypeError(
                f"{self._descriptor_name} must be a per-atom descriptor of mlpot.descriptors "
                f"(one of {', '.join(self.descriptor_kinds())}), got {type(descriptor).__name__} ({what})"
            )

    @property
    def descriptor(self):
        """The per-atom descriptor the model is built on."""
        return self._descriptor

    @property
    def quadratic(self) -> bool:
        return self._quadratic

    @property
    def species(self) -> tuple[str, ...]:
        """The species of the descriptor, in its order (the order of the coefficients)."""
        return self._descriptor.species

    @property
    def elements(self) -> tuple[str, ...]:
        """Alias of `species`."""
        return self.species

    @property
    def n_coefficients(self) -> int:
        """Coefficients per species (LAMMPS's ncoeffall): 1 + K, plus K(K+1)/2 if quadratic."""
        k = self._descriptor.n_features
        return 1 + k + (k * (k + 1) // 2 if self._quadratic else 0)

    @property
    def coefficients(self) -> dict[str, np.ndarray] | None:
        """{species: float64 array} (on the bispectrum: snapcoeff order): [beta0 (eV), the K
        linear coefficients, then the quadratic ones alpha_kl for k = 0..K-1, l = k..K-1];
        None before a fit. The arrays are read-only: assign a new dict to change them."""
        return None if self._coefficients is None else dict(self._coefficients)

    @coefficients.setter
    def coefficients(self, value: Mapping[str, Iterable[float]]) -> None:
        if not isinstance(value, Mapping):
            raise TypeError("coefficients must be a dict {element: array}")
        elements = self.elements
        missing = [e for e in elements if e not in value]
        extra = [e for e in value if e not in elements]
        if missing or extra:
            raise ValueError(
                f"coefficients must have exactly the elements {list(elements)}: "
                f"missing {missing}, unexpected {extra}"
            )
        blocks = {}
        for e in elements:
            try:
                c = np.array(value[e], dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"coefficients[{e!r}] must be an array of numbers") from None
            if c.shape != (self.n_coefficients,):
                raise ValueError(
                    f"coefficients[{e!r}] must have shape ({self.n_coefficients},), got {c.shape}"
                )
            if not np.isfinite(c).all():
                raise ValueError(f"coefficients[{e!r}] contains NaN or infinite values")
            c.flags.writeable = False
            blocks[e] = c
        self._weights = np.concatenate([blocks[e] for e in elements])
        self._coefficients = blocks

    def __repr__(self) -> str:
        state = "fitted" if self._coefficients is not None else "not fitted"
        return (
            f"{type(self).__name__}({self._descriptor!r}, quadratic={self._quadratic}, "
            f"baseline={self.baseline!r}) [{state}]"
        )

    # ---------------------------------------------------------------- fitting

    # BLAS on one thread during a fit: the streamed QR updates are small, and with more
    # threads OpenBLAS's idle workers spin after each call, taking the cores from the Rayon
    # threads that compute the next frames' rows (measured on FitSNAP's Ta set: up to twice
    # the CPU time of the fit). It also makes the solution independent of BLAS threads.
    @threadpool_limits.wrap(limits=1, user_api="blas")
    def fit(
        self,
        frames,
        energy_weight: float | None = None,
        force_weight: float = 1.0,
        stress_weight: float = 1e-4,
        group_weights: Mapping[str, Mapping[str, float]] | None = None,
        ridge: float = 0.0,
        solver: str = "svd",
        progress: bool = True,
    ) -> "LinearModel":
        """Fit the coefficients to reference data by weighted linear least squares.

        Parameters
        ----------
        frames
            ``ase.Atoms`` with reference energy (eV), forces (eV/Angstrom) and optionally
            stress (eV/Angstrom^3, ASE's sign) on their calculator, and their configuration
            group in ``atoms.info["group"]``. Any of the three may be missing per frame;
            stress is used only for periodic 3D cells. Any iterable: frames are streamed.
            Or a `LinearSystem` from ``model.assemble(frames)``: the same fit without
            recomputing the descriptors (for trying many weights or ridges).
        energy_weight, force_weight, stress_weight
            Weights of the rows of frames whose group is not in ``group_weights``, with
            FitSNAP's meaning: one row per frame of energy per atom (per eV/atom), 3 N
            rows of forces (per eV/Angstrom) and 6 rows of stress in bar (per bar;
            1 eV/Angstrom^3 = 1.602e6 bar). 0 drops those rows. ``energy_weight=None``
            (the default): 50 sqrt(3 N) with N the mean number of atoms per frame
            (`default_energy_weight`), the ratio of typical DFT force to energy noise
            (0.05 eV/Angstrom to 1 meV/atom) times the square root of force rows per
            energy row. Cross-validation of the nine shipped SNAP/qSNAP configurations
            (examples/fits, docs/published-fits.md) chose 0.2 to 2.4 times it (median
            0.5), where the former fixed default of 100 was 1.1 to 16 times too low. An
            iterable of frames is read into a list to count their atoms.
        group_weights
            ``{group: {"eweight": .., "fweight": .., "vweight": ..}}`` as in FitSNAP's
            [GROUPS] section; missing keys take the global weights.
        ridge
            L2 penalty ridge * |c|^2 on the descriptor coefficients (not on the per-species
            constants beta0), in the units of the squared weighted residuals.
        solver
            "svd": streamed QR then an SVD solve, the conditioning of A itself, singular
            values below 1e-13 of the largest cut off (as FitSNAP's SVD solver).
            "normal": streamed normal equations (half the work, conditioning squared; for
            rank-deficient data a least-squares solution, not the minimum-norm one).
            Both hold O(n_coefficients^2) memory whatever the number of frames: a frame's
            rows are formed, added and dropped before the next.
        progress
            Show a progress bar over frames (tqdm).

        Returns the model, fitted.
        """
        progress = _flag("progress", progress)
        if energy_weight is None:
            if not isinstance(frames, LinearSystem):
                if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
                    raise TypeError("frames must be an iterable of ase.Atoms")
                frames = list(frames)
            energy_weight = default_energy_weight(frames)
        default, groups = training.resolve_group_weights(
            energy_weight, force_weight, stress_weight, group_weights
        )
        ridge = training._number(ridge, "ridge")
        n_el, per = len(self.elements), self.n_coefficients
        _memory.ensure_fits(
            _solver_bytes(solver, n_el * per),
            f"the {self.kind} least-squares solve ({n_el * per} coefficients, solver {solver!r})",
        )
        penalized = self._penalized().reshape(n_el, per)
        if isinstance(frames, LinearSystem):
            if frames.signature != self._signature():
                raise ValueError(
                    "the LinearSystem was assembled by a model with another descriptor, "
                    "quadratic flag or baseline"
                )
            self._check_coverage(groups, frames.groups, frames.elements)
            solution = frames.solve(default, groups, ridge, penalized.ravel(), solver)
        else:
            accumulator = lstsq.make_accumulator(solver, n_el * per)
            seen_elements: set[int] = set()
            seen_groups: set = set()
            for group, atoms, ref, rows in self._design(frames, progress):
                seen_groups.add(group)
                seen_elements.update(np.unique(atoms.numbers).tolist())
                weights = groups.get(group, default)
                weighted = training.frame_rows(rows, ref, weights, atoms, self.baseline)
                if weighted is not None:
                    accumulator.add(*weighted)
            self._check_coverage(groups, seen_groups, seen_elements)
            solution = accumulator.solve(ridge, penalized.ravel())
        self.coefficients = dict(zip(self.elements, solution.reshape(n_el, per)))
        return self

    def assemble(self, frames, progress: bool = True, parts=None, keep_rows: bool = False):
        """The unweighted least-squares problem of ``frames`` (as in `fit`), reduced per
        (group, row kind) to small triangular factors: ``model.fit(system, ...)`` then fits
        with any weights, ridge and solver in a fraction of the time of a fit from frames
        (no descriptors are recomputed), with the same result. Memory
        O(n_groups x n_coefficients^2).

        ``parts``: one integer label 0..k-1 per frame (the folds of a cross-validation):
        a list of k systems, system p of the frames labelled p, each frame's rows computed
        once; `LinearSystem.merged` joins any of them exactly. ``keep_rows``: the systems
        also keep the energy and stress rows as they are (one and six per frame), for
        `LinearSystem.scores`."""
        progress = _flag("progress", progress)
        n = len(self.elements) * self.n_coefficients
        _memory.ensure_fits(_solver_bytes("svd", n), f"the {self.kind} least-squares factors ({n} coefficients)")
        frames, labels, n_parts = part_labels(frames, parts)
        systems = [LinearSystem(n, self._signature(), keep_rows=keep_rows) for _ in range(n_parts)]
        for k, (group, atoms, ref, rows) in enumerate(self._design(frames, progress)):
            blocks = training.frame_blocks(rows, ref, atoms, self.baseline)
            # residuals of the stress rows are in bar
            systems[labels[k] if parts is not None else 0].add_frame(group, blocks, atoms.numbers, {"stress": _BAR})
        systems = [system.finish() for system in systems]
        return systems if parts is not None else systems[0]

    # ------------------------------------------------- tuning hooks (mlpot.tune)

    def hyperparameters(self) -> dict:
        """The settings `mlpot.tune` searches without recomputing descriptors, with the
        values of `fit`'s defaults (energy_weight None: from the data, see
        `resolve_hyperparameters`): energy_weight, force_weight, stress_weight, ridge and
        group_weights ``{group: {"eweight", "fweight", "vweight"}}``."""
        return {"energy_weight": None, "force_weight": 1.0, "stress_weight": 1e-4, "ridge": 0.0, "group_weights": {}}

    @staticmethod
    def resolve_hyperparameters(params: Mapping, system: LinearSystem) -> dict:
        """``params`` with the defaults that depend on the data (energy_weight None:
        `default_energy_weight` of ``system``) made numbers."""
        params = dict(params)
        if params.get("energy_weight") is None:
            params["energy_weight"] = default_energy_weight(system)
        return params

    @staticmethod
    def default_space() -> dict:
        """What `mlpot.tune` searches when given no space: the energy and stress weights and
        the ridge over log ranges (the force weight 1 sets the scale)."""
        return {"energy_weight": LogUniform(1.0, 1e4), "stress_weight": LogUniform(1e-7, 1e-2),
                "ridge": LogUniform(1e-6, 1e4)}

    def block_weights(self, params: Mapping):
        """weight(group, kind) of the rows of a `LinearSystem` for `hyperparameters`-like
        ``params`` (checked as `fit` checks them)."""
        default, groups = training.resolve_group_weights(
            params["energy_weight"], params["force_weight"], params["stress_weight"], params.get("group_weights")
        )
        return lambda group, kind: training.weight_of(groups.get(group, default), kind)

    def _penalized(self) -> np.ndarray:
        penalized = np.ones((len(self.elements), self.n_coefficients), dtype=bool)
        penalized[:, 0] = False  # the per-species constants beta0 are not penalized
        return penalized.ravel()

    def solve_gram(self, gram: np.ndarray, n_rows: int, params: Mapping, system) -> np.ndarray:
        """The coefficients from the weighted normal matrix ``gram`` of [A | y]
        (`LinearSystem.weighted_gram` with `block_weights`) and the ridge of ``params``."""
        accumulator = lstsq.NormalAccumulator(self.n_columns)
        accumulator.add_products(gram[:-1, :-1], gram[:-1, -1], n_rows)
        return accumulator.solve(training._number(params["ridge"], "ridge"), self._penalized(), check_rank=False)

    def solve_system(self, system: LinearSystem, params: Mapping) -> np.ndarray:
        """The coefficients of `fit` (solver "svd") from ``system`` for ``params``, the model
        left as it is."""
        default, groups = training.resolve_group_weights(
            params["energy_weight"], params["force_weight"], params["stress_weight"], params.get("group_weights")
        )
        return system.solve(default, groups, training._number(params["ridge"], "ridge"), self._penalized(), "svd")

    @property
    def solution(self) -> np.ndarray | None:
        """The fitted coefficients as the unknowns of a `LinearSystem` (species in order,
        concatenated); None before a fit."""
        return None if self._weights is None else self._weights.copy()

    @property
    def n_columns(self) -> int:
        """Unknowns of a fit: species x `n_coefficients`."""
        return len(self.elements) * self.n_coefficients

    def align_energy_zero(self, frames) -> "LinearModel":
        """A copy of the model with each element's constant beta0 (eV) shifted so that its
        energies best match the reference energies of ``frames``: least squares over the
        frames of E_ref - E_model = sum_e n_e delta_e. Forces and stresses are unchanged.
        For comparing with data a model whose energy zero differs (published potentials
        are often fitted to energies relative to isolated atoms). Elements no frame holds
        keep their beta0 (minimum-norm solution)."""
        if self._coefficients is None:
            raise RuntimeError("the model has no coefficients yet: fit it or set model.coefficients")
        numbers = [atomic_numbers[e] for e in self.elements]
        counts, differences = [], []
        for atoms in frames:
            counts.append([np.count_nonzero(atoms.numbers == z) for z in numbers])
            differences.append(atoms.get_potential_energy() - self.predict(atoms)["energy"])
        if not counts:
            raise ValueError("align_energy_zero needs at least one frame with a reference energy")
        shift, *_ = np.linalg.lstsq(np.array(counts, dtype=float), np.array(differences), rcond=None)
        aligned = type(self)(self._descriptor, quadratic=self._quadratic, baseline=self.baseline)
        coefficients = {e: c.copy() for e, c in self._coefficients.items()}
        for e, delta in zip(self.elements, shift):
            coefficients[e][0] += delta
        aligned.coefficients = coefficients
        return aligned

    def design_rows(self, atoms) -> dict:
        """The rows of the linear model for ``atoms`` (baseline excluded): ``energy``
        (n_columns,), ``forces`` (3 n_atoms, n_columns; atom-major, x y z) and ``virial``
        (6, n_columns; Voigt order xx yy zz yz xz xy, eV), with n_columns = len(elements)
        x n_coefficients and columns in the order of the concatenated coefficients. With
        c that concatenation, energy (eV) = rows["energy"] @ c, forces (eV/Angstrom) =
        (rows["forces"] @ c).reshape(-1, 3) and stress = -rows["virial"] @ c / volume.
        For custom regressions or fast re-evaluation of many coefficient sets."""
        return self._term.rows(self._structure(atoms))

    def _signature(self):
        """What a LinearSystem's rows depend on: descriptor, quadratic flag, baseline."""
        return (self._write_descriptor(self._descriptor), self._quadratic, self.baseline)

    def _design(self, frames, progress: bool):
        """(group, atoms, reference, design rows) of each frame, frames checked one by one;
        ValueError if there are none."""
        if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
            raise TypeError("frames must be an iterable of ase.Atoms")
        n_frames = 0
        for k, atoms in enumerate(_progress(frames, progress, f"{self.kind} fit")):
            where, ref = training.frame_reference(k, atoms)
            group = atoms.info.get("group")
            try:
                structure = self._structure(atoms)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            rows = self._term.rows(structure)
            yield group, atoms, ref, rows
            n_frames += 1
        if n_frames == 0:
            raise ValueError("no frames to fit")

    def _check_coverage(self, groups, seen_groups, seen_elements) -> None:
        """Warns about weighted groups no frame belongs to and elements no frame holds."""
        unused = [g for g in groups if g not in seen_groups]
        if unused:
            warnings.warn(f"group_weights names group(s) {unused} that no frame belongs to", stacklevel=3)
        absent = [e for e in self.elements if atomic_numbers[e] not in seen_elements]
        if absent:
            warnings.warn(
                f"element(s) {absent} appear in no training frame; their coefficients are 0",
                stacklevel=3,
            )

    # ------------------------------------------------------- extrapolation grade

    @property
    def has_variance(self) -> bool:
        """Whether ``predict(atoms, variance=True)`` gives the extrapolation grade: once an
        active set is selected (`select_active_set`)."""
        return self._active is not None

    def _element_features(self, element: str) -> int:
        """The leading features that atoms of ``element`` have (the rest are zero padding
        for descriptors whose elements have different numbers of functions)."""
        count = getattr(self._descriptor, "n_functions", None)
        return count(element) if callable(count) else self._descriptor.n_features

    def select_active_set(self, frames, progress: bool = True) -> dict[str, int]:
        """pacemaker's D-optimal active set from the training ``frames`` (see
        `mlpot.models.active_set`): per element, the atoms whose descriptor vectors span
        the largest volume. After it, ``predict(atoms, variance=True)`` and
        ``calculator(variance=True)`` add "gamma" (per atom) and "max_gamma", the
        extrapolation grade: <= 1 within the training set, > 1 beyond it. Returns the atoms
        seen per element. Stored in the model file."""
        rows = {e: [] for e in self.elements}
        for atoms in _progress(list(frames), progress, "active set"):
            x = self._descriptor.compute(atoms)
            symbols = np.array(atoms.get_chemical_symbols())
            for e in self.elements:
                rows[e].append(x[symbols == e, : self._element_features(e)])
        inverse = {}
        for e in self.elements:
            x = np.concatenate(rows[e]) if rows[e] else np.zeros((0, self._element_features(e)))
            try:
                chosen = active_set.maxvol(x)
            except ValueError as error:
                raise ValueError(f"the active set of {e}: {error}") from None
            inverse[e] = np.linalg.inv(x[chosen])
        self._active = inverse
        return {e: sum(len(r) for r in rows[e]) for e in self.elements}

    def _grades(self, atoms) -> dict:
        x = self._descriptor.compute(atoms)
        symbols = np.array(atoms.get_chemical_symbols())
        gamma = np.zeros(len(atoms))
        for e, inverse in self._active.items():
            mine = symbols == e
            gamma[mine] = active_set.grades(x[mine, : len(inverse)], inverse)
        return {"gamma": gamma, "max_gamma": float(gamma.max()) if len(gamma) else 0.0}

    # ------------------------------------------------------------- prediction

    def _structure(self, atoms) -> _core.Structure:
        return self._descriptor._structure(atoms)

    def _predict_core(self, atoms, terms=(), variance: bool = False):
        if self._weights is None:
            raise RuntimeError("the model has no coefficients yet: fit it or set model.coefficients")
        variance = _flag("variance", variance)
        if variance and self._active is None:
            raise ValueError("predict(variance=True) of a linear model needs its active set: call "
                             "model.select_active_set(training_frames) first")
        weights = [self._weights] + [_NO_WEIGHTS] * len(terms)
        energies, forces, virial, _ = _core.predict_terms(
            [self._term, *terms], self._structure(atoms), weights, False
        )
        return energies, forces, virial, (self._grades(atoms) if variance else {})

    # ---------------------------------------------------------- serialization

    # the model-file field of the descriptor and its form (SNAP keeps its own, "bispectrum")
    _descriptor_field = "descriptor"
    _write_descriptor = staticmethod(descriptor_document)
    _read_descriptor = staticmethod(descriptor_from_document)

    def _document(self) -> dict:
        if self._coefficients is None:
            raise RuntimeError("the model has no coefficients yet: fit it before saving")
        return {
            "kind": self.kind,
            self._descriptor_field: self._write_descriptor(self._descriptor),
            "quadratic": self._quadratic,
            "coefficients": dict(self._coefficients),
            "baseline": baseline_to_dict(self.baseline),
            **({"active_set": dict(self._active)} if self._active is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "LinearModel":
        """Inverse of `to_dict` (arrays as lists or float64 arrays); raises
        mlpot.ModelFileError naming what is wrong."""
        key = cls._descriptor_field
        expected = {"kind": string([cls.kind]), key: anything, "quadratic": boolean, "coefficients": anything,
                    "baseline": anything}
        if isinstance(data, Mapping) and "active_set" in data:
            expected["active_set"] = anything
        d = fields(data, expected)
        descriptor = cls._read_descriptor(d[key], key)
        baseline = baseline_from_dict(d["baseline"])
        model = build(key, lambda: cls(descriptor, quadratic=d["quadratic"], baseline=baseline))
        per = model.n_coefficients
        kind = f"{'quadratic' if d['quadratic'] else 'linear'} {cls.kind}"
        c = fields(d["coefficients"], {e: array(1) for e in descriptor.species}, "coefficients")
        for e, values in c.items():
            check_shape(values, (per,), f"coefficients.{e}", f"{per} per element for a {kind} on this {descriptor.kind}")
        model.coefficients = c
        if "active_set" in d:
            inverse = fields(d["active_set"], {e: array(2) for e in descriptor.species}, "active_set")
            for e, a in inverse.items():
                n = model._element_features(e)
                check_shape(a, (n, n), f"active_set.{e}", f"the inverse active set of {e}, {n} x {n}")
            model._active = {e: np.array(a) for e, a in inverse.items()}
        return model
