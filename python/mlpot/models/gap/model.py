"""The GAP model: its settings and the fitted state, with fit, prediction and files
delegated to the modules of this package (one stage each)."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from mlpot.descriptors import SOAP, _CoreDescriptor, _flag
from mlpot.modelfile import plain
from mlpot.models import lstsq
from mlpot.models.base import Model, check_baseline
from mlpot.models.gap import files, fit
from mlpot.models.gap.fit import Fitted
from mlpot.models.gap.predict import predict_terms
from mlpot.models.gap.terms import Distance2b
from mlpot.models.ranges import LogUniform
from mlpot.models.registry import register
from mlpot.models.specs import GAPParams
from mlpot.models.system import GAPSystem

__all__ = ["GAP"]


@register("GAP")
class GAP(Model):
    """A sparse Gaussian-process potential (GAP) on SOAP, optionally plus two-body terms and a
    fixed baseline, fitted as QUIP's gap_fit.

    Parameters
    ----------
    descriptors
        An `mlpot.SOAP` (or any other per-atom descriptor, such as `mlpot.Bispectrum`: a
        dot-product kernel on its vectors), a `Distance2b`, or a list of them (a sum of
        terms). Vectors are used normalised where the descriptor can normalise them
        (`descriptor.normalized()`: SOAP is rebuilt with ``normalize=True`` if needed).
    zeta
        Exponent of the SOAP dot-product kernel (gap_fit ``zeta``).
    n_sparse
        Sparse points per central species of each SOAP term (gap_fit ``n_sparse``), at most
        100000 (`MAX_SPARSE`).
    delta
        Signal standard deviation of a SOAP local energy, eV (gap_fit ``delta``). None: the
        root mean square of the per-atom training energies after e0 and the baseline are
        subtracted (the size of the local energies the GP must represent).
    sparse_method
        "cur" (default; randomised leverage-score CUR on the descriptor matrix, as
        gap_fit's ``cur_points``; see `select_sparse`), "fps" (farthest point
        in the kernel distance) or "random" (``seed``), per species, among the training atoms.
    default_sigma
        (energy per atom eV, force eV/Angstrom, virial per atom eV): the noise of the
        observations, gap_fit ``default_sigma`` with ``sigma_per_atom=T``: the energy and
        virial sigmas of a frame of N atoms are these times sqrt(N).
    group_sigma
        ``{group: (e, f, v)}`` overriding default_sigma for frames whose
        ``atoms.info["group"]`` is that group (gap_fit ``config_type_sigma``), same meaning.
        A frame may also carry absolute sigmas in ``atoms.info["energy_sigma"]``,
        ``["force_sigma"]``, ``["virial_sigma"]`` (eV, eV/Angstrom, eV; not scaled by N), which
        win over both (gap_fit's per-configuration sigma parameters).
    e0
        ``{element: eV}``, the energy of an isolated atom, subtracted before the fit (gap_fit
        ``e0``). None: the per-element energies that best fit the training energies by
        least squares (the mean energy per atom for one element; gap_fit ``e0_method=average``).
    jitter
        Added to the diagonal of K_MM (gap_fit ``sparse_jitter``), eV^2.
    baseline
        A fixed reference potential (e.g. `mlpot.ZBL`), subtracted from the references before
        the fit and added to predictions.
    seed
        For ``sparse_method="cur"`` (randomised) and ``"random"``.
    sparse_points
        Fixed SOAP sparse points instead of a selection: (n, n_features) normalised vectors and
        their central elements, as ``(points, elements)``.
    """

    default_descriptor = SOAP.kind
    takes_pair_terms = True

    @classmethod
    def from_config(cls, descriptor, settings: Mapping, groups: Mapping, baseline, pair_terms=()):
        """The GAP of a configuration: the descriptor plus the [[two_body]] terms, the
        [model] keywords, ``group_sigma`` from the groups' ``sigma``; `fit` takes no
        keywords."""
        group_sigma = {name: group["sigma"] for name, group in groups.items() if "sigma" in group}
        return cls([descriptor, *pair_terms], group_sigma=group_sigma, baseline=baseline, **settings), {}

    @classmethod
    def accepts(cls, descriptor_class: type) -> bool:
        """The [descriptor] of a configuration: a per-atom descriptor that offers unit
        vectors (``can_normalize``), as the kernel of normalised vectors wants (pair terms
        come from [[two_body]]; the Python API also takes other per-atom descriptors)."""
        return (
            isinstance(descriptor_class, type) and issubclass(descriptor_class, _CoreDescriptor)
            and descriptor_class.per_atom and descriptor_class.can_normalize()
        )

    @property
    def has_variance(self) -> bool:
        """False only for a model loaded from a file saved with ``variance=False``."""
        return self._fitted is None or self._fitted.has_posterior

    def __init__(
        self,
        descriptors,
        zeta: float = 4,
        n_sparse: int = 1000,
        delta: float | None = None,
        sparse_method: str = "cur",
        default_sigma=(0.01, 0.05, 0.01),
        group_sigma: Mapping | None = None,
        e0: Mapping | None = None,
        jitter: float = 1e-10,
        baseline=None,
        seed: int = 0,
        sparse_points=None,
    ):
        terms = list(descriptors) if isinstance(descriptors, (list, tuple)) else [descriptors]
        if not terms:
            raise ValueError("descriptors must name at least one SOAP or Distance2b")
        self.descriptors = []
        for d in terms:
            # a pair term, or a dot-product kernel on any per-atom descriptor (normalised)
            if isinstance(d, Distance2b):
                self.descriptors.append(d)
            elif isinstance(d, _CoreDescriptor):
                self.descriptors.append(d.normalized())
            else:
                raise TypeError(
                    "descriptors must be mlpot.SOAP or mlpot.Distance2b (or another per-atom "
                    f"descriptor, such as mlpot.Bispectrum), got {type(d).__name__}"
                )
        p = GAPParams(
            zeta=zeta, n_sparse=n_sparse, delta=delta, sparse_method=sparse_method,
            default_sigma=default_sigma, group_sigma=group_sigma, e0=e0, jitter=jitter, seed=seed,
        )
        self.zeta, self.n_sparse, self.delta, self.sparse_method = p.zeta, p.n_sparse, p.delta, p.sparse_method
        self.default_sigma, self.group_sigma, self.e0, self.jitter = p.default_sigma, p.group_sigma, p.e0, p.jitter
        self.baseline = check_baseline(baseline)
        self.seed = p.seed
        self.sparse_points = sparse_points
        self._fitted: Fitted | None = None

    # ------------------------------------------------------------------ properties

    @property
    def species(self) -> tuple[str, ...]:
        """Elements the model knows, sorted by atomic number."""
        zs = set()
        for d in self.descriptors:
            if d.species is not None:  # a Distance2b of every pair has none
                zs.update(atomic_numbers[s] for s in d.species)
        if not zs and self._fitted is not None:
            zs.update(atomic_numbers[s] for s in self._fitted.e0)
        return tuple(chemical_symbols[z] for z in sorted(zs))

    @property
    def elements(self) -> tuple[str, ...]:
        """Alias of `species`."""
        return self.species

    # the settings a fit from a GAPSystem may change, checked when set

    @property
    def default_sigma(self) -> tuple[float, float, float]:
        """(energy per atom eV, force eV/Angstrom, virial per atom eV), see `GAP`."""
        return self._default_sigma

    @default_sigma.setter
    def default_sigma(self, value) -> None:
        self._default_sigma = GAPParams.check_parameter("default_sigma", value)

    @property
    def group_sigma(self) -> dict:
        """``{group: (e, f, v)}``, see `GAP`."""
        return self._group_sigma

    @group_sigma.setter
    def group_sigma(self, value) -> None:
        self._group_sigma = GAPParams.check_parameter("group_sigma", value)

    @property
    def jitter(self) -> float:
        """Added to the diagonal of K_MM, eV^2."""
        return self._jitter

    @jitter.setter
    def jitter(self, value) -> None:
        self._jitter = GAPParams.check_parameter("jitter", value)

    @property
    def alpha(self) -> np.ndarray | None:
        """The weights of all sparse points, terms in order; None before a fit."""
        return None if self._fitted is None else self._fitted.alpha.copy()

    @property
    def e0_values(self) -> dict[str, float] | None:
        """The per-element energies used (given or fitted), eV."""
        return None if self._fitted is None else dict(self._fitted.e0)

    @property
    def terms(self) -> list[dict]:
        """Per term: kind, delta, sparse points (and species), weights."""
        return plain(files.terms_to_dicts(self._fitted))

    # the fitted state, under the names of earlier versions
    _terms = property(lambda self: None if self._fitted is None else self._fitted.terms)
    _alpha = property(lambda self: None if self._fitted is None else self._fitted.alpha)
    _e0_fitted = property(lambda self: None if self._fitted is None else self._fitted.e0)
    _posterior = property(lambda self: None if self._fitted is None else self._fitted.posterior_factor())

    def __repr__(self) -> str:
        state = "fitted" if self._fitted is not None else "not fitted"
        return (
            f"GAP({self.descriptors!r}, zeta={self.zeta}, n_sparse={self.n_sparse}, "
            f"default_sigma={self.default_sigma}, e0={self.e0}) [{state}]"
        )

    # ------------------------------------------------------------------------ fit

    def fit(self, frames, progress: bool = True, *, default_sigma=None, group_sigma=None, jitter=None) -> "GAP":
        """Fit to reference data: ``ase.Atoms`` with energy (eV), forces (eV/Angstrom) and,
        for periodic cells, optionally stress (eV/Angstrom^3, ASE's sign) on their calculator,
        and their group in ``atoms.info["group"]``. Frames are read twice (sparse point
        selection, then the kernel rows), so an iterable is materialised as a list of
        Atoms; descriptor gradients exist for one frame at a time.

        Or a `GAPSystem` from ``model.assemble(frames)``: the same fit (same weights and
        posterior, to rounding) with the model's current ``default_sigma``,
        ``group_sigma`` and ``jitter``, without recomputing kernel rows: for trying many
        sigmas. It keeps the sparse points, deltas and e0 of the assembly; every other
        setting must equal the assembling model's (ValueError otherwise). ``progress``
        does not apply (the fit takes a fraction of a second to seconds).

        ``default_sigma``, ``group_sigma``, ``jitter``: when given, set as the model's
        settings before the fit (as `mlpot.tune` refits with what it chose).
        """
        progress = _flag("progress", progress)
        for name, value in (("default_sigma", default_sigma), ("group_sigma", group_sigma), ("jitter", jitter)):
            if value is not None:
                setattr(self, name, value)
        if isinstance(frames, GAPSystem):
            self._fitted = fit.fit_system(self, frames)
        else:
            self._fitted = fit.fit_frames(self, frames, progress)
        return self

    def assemble(self, frames, progress: bool = True, parts=None, keep_rows: bool = False):
        """The observations of ``frames`` before the sigmas are applied: sparse points are
        selected and every kernel row is computed once (what takes nearly all the time of
        a fit) and reduced per (group, row kind) to a triangular factor (see `GAPSystem`).
        ``model.fit(system)`` then fits with the model's current ``default_sigma``,
        ``group_sigma`` and ``jitter`` for the cost of a few QR factorizations of
        (n_sparse + 1)-square blocks, with the same weights and posterior variance as a
        fit from the frames::

            system = model.assemble(frames)
            for sigma in [(0.01, 0.05, 0.01), (0.003, 0.02, 0.2)]:
                model.default_sigma = sigma
                model.fit(system)          # then score it, e.g. mlpot.errors(model, valid)

        Memory: at most (n_sparse + 1)^2 floats per (group, kind) kept, plus, while frames
        are added, a QR buffer of (n_sparse + 257) x (n_sparse + 1) per block with more
        than 256 rows (n_sparse: the sparse points of all terms).

        ``parts`` (an integer label per frame, as the folds of a cross-validation): a list of
        systems, one per label, with the sparse points, e0 and deltas chosen from all the
        frames, which `GAPSystem.merged` joins exactly; ``keep_rows`` keeps each frame's
        energy and virial rows as they are for `GAPSystem.scores` (see `LinearSystem`).
        """
        return fit.assemble(self, frames, _flag("progress", progress), parts, keep_rows)

    # ------------------------------------------------- tuning hooks (mlpot.tune)

    def hyperparameters(self) -> dict:
        """The settings `mlpot.tune` searches without recomputing kernel rows, with the
        model's current values: default_sigma (e, f, v), group_sigma ``{group: (e, f,
        v)}`` and jitter."""
        return {"default_sigma": tuple(self.default_sigma), "group_sigma": dict(self.group_sigma), "jitter": self.jitter}

    @staticmethod
    def default_space() -> dict:
        """What `mlpot.tune` searches when given no space: the three default sigmas over log
        ranges around gap_fit's usual values (jitter kept)."""
        return {"default_sigma": (LogUniform(1e-4, 3e-2), LogUniform(3e-3, 0.3), LogUniform(1e-3, 1.0))}

    @staticmethod
    def _sigmas(params: Mapping):
        check = GAPParams.check_parameter
        return check("default_sigma", params["default_sigma"]), check("group_sigma", params.get("group_sigma") or {})

    def block_weights(self, params: Mapping):
        """weight(group, kind) = 1/sigma of the rows of a `GAPSystem` for ``params``."""
        default_sigma, group_sigma = self._sigmas(params)
        return lambda group, kind: fit.weight_of_sigmas(default_sigma, group_sigma, group, kind)

    def solve_gram(self, gram: np.ndarray, n_rows: int, params: Mapping, system: GAPSystem) -> np.ndarray:
        """alpha from the normal equations (K_MM + jitter + K_MN Sigma^-1 K_NM) alpha =
        K_MN Sigma^-1 y, ``gram`` the weighted [K_NM | y]^T [K_NM | y] of ``system``'s
        rows: the fit's solution with the conditioning squared (for ranking trials; the
        chosen sigmas are refitted by QR)."""
        jitter = GAPParams.check_parameter("jitter", params["jitter"])
        matrix = gram[:-1, :-1] + system.prior_gram()
        matrix[np.diag_indices_from(matrix)] += jitter
        accumulator = lstsq.NormalAccumulator(system.n_columns)
        accumulator.add_products(matrix, gram[:-1, -1], n_rows)
        return accumulator.solve(0.0, np.zeros(system.n_columns, dtype=bool), check_rank=False)

    @property
    def solution(self) -> np.ndarray | None:
        """alpha, the unknowns of a `GAPSystem` (as `alpha`); None before a fit."""
        return self.alpha

    def solve_system(self, system: GAPSystem, params: Mapping) -> np.ndarray:
        """alpha of `fit` (QR, as gap_fit) from ``system`` for ``params``; the model is left
        as it is."""
        trial = copy.copy(self)
        trial.default_sigma, trial.group_sigma = self._sigmas(params)
        trial.jitter = params["jitter"]
        return fit.fit_system(trial, system).alpha


    def _signature(self) -> tuple:
        return fit.signature(self)

    # ---------------------------------------------------------------- prediction

    def predict(self, atoms, variance: bool = False) -> dict:
        """Energy (eV), free_energy, forces (eV/Angstrom), energies (per atom, eV) and, for
        cells periodic in all three directions, stress (eV/Angstrom^3, ASE's sign and Voigt
        order), baseline included.

        With ``variance=True`` also the predicted (posterior) variance of the GP part, an
        extrapolation warning rather than an error bar: it is small for environments like
        the training data and grows toward the prior (delta^2 per SOAP atom) for
        environments unlike any sparse point. Keys: energy_variance (eV^2) and energy_std
        (eV) of the total energy; energies_variance, energies_std per atom (eV^2, eV). The
        per-atom variance is the projected-process (DTC) variance of the local energy,
        k_ii - k_i K_MM^-1 k_i + k_i (K_MM + K_MN Sigma^-1 K_NM)^-1 k_i, as QUIP's
        local_gap_variance (a two-body term adds the rows of an atom's pairs (i, j) and only
        the last part). For the total energy the middle term uses the summed kernel
        row, and the Nystrom residuals k_ii - q_ii are summed over atoms as if independent
        (exact DTC would need all atom pairs, O(N^2)).
        """
        return super().predict(atoms, variance=variance)

    def _predict_core(self, atoms, terms=(), variance: bool = False):
        variance = _flag("variance", variance)
        if self._fitted is None:
            raise RuntimeError("the model is not fitted: call fit(frames) first")
        return predict_terms(self._fitted, self.jitter, atoms, variance, terms)

    # ------------------------------------------------------------- serialization

    def save(self, path, variance: bool = True) -> None:
        """Write the model to ``path`` (read it with `mlpot.load`). With ``variance=False``
        the posterior factor is left out: it is n(n+1)/2 floats for n sparse points (64 MB
        at 4000, most of the file), and without it the loaded model predicts energies,
        forces and stresses exactly but no variance."""
        super().save(path, variance=_flag("variance", variance))

    def _document(self, variance: bool = True) -> dict:
        """Hyperparameters, sparse points, weights, e0, the baseline and (with ``variance``)
        the triangular factor R of the posterior."""
        return files.document(self, variance)

    @classmethod
    def from_dict(cls, data: Mapping) -> "GAP":
        """Inverse of `to_dict` (arrays as lists or float64 arrays); raises
        mlpot.ModelFileError naming what is wrong."""
        return files.from_document(cls, data)

    @classmethod
    def _from_fitted(cls, descriptors, settings: dict, jitter: float, baseline, fitted: Fitted) -> "GAP":
        model = cls(
            descriptors,
            zeta=settings["zeta"],
            n_sparse=settings["n_sparse"],
            delta=settings["delta"],
            sparse_method=settings["sparse_method"],
            default_sigma=settings["default_sigma"],
            group_sigma=settings["group_sigma"],
            e0=settings["e0"],
            jitter=jitter,
            baseline=baseline,
            seed=settings["seed"],
        )
        model._fitted = fitted
        return model

    @classmethod
    def _from_parts(cls, descriptors, settings, terms, alpha, e0, jitter, posterior, baseline) -> "GAP":
        """A fitted GAP from its parts (the prior factors are computed when needed)."""
        fitted = Fitted(list(terms), alpha, dict(e0), posterior, None)
        return cls._from_fitted(descriptors, settings, jitter, baseline, fitted)
