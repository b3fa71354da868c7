"""Parameter specs of the models and the GAP pair term (see `mlpot.params`): one typed
declaration each, serving the constructors, the ``mlpot fit`` configuration ([model],
[[two_body]]), the model files and the JSON schema.

(They live here, not beside their classes, while models/gap.py is being split; each spec
moves beside its class in one cut and paste.)
"""

from __future__ import annotations

from dataclasses import dataclass

from mlpot.params import (
    Choice, Elements, Flag, Integer, Integers, Optional, ParameterValueError, PerElement, Real, Reals, Spec, Table,
    Text, param,
)

__all__ = [
    "Distance2bParams", "GAPParams", "LinearParams", "MAX_SPARSE", "NNPFitParams", "NNPParams", "SNAPFitParams", "SNAPParams",
    "SPARSE_METHODS",
]

#: Largest n_sparse of a term (per central species for SOAP). Published GAPs use a few
#: thousand per species (up to ~10^4); at 10^5 K_MM alone is 80 GB and its factorization
#: 10^15 flops, so larger values are a typo, refused before anything is computed.
MAX_SPARSE = 100_000

#: GAP's sparse point selections (see mlpot.models.gap.select_sparse)
SPARSE_METHODS = ("cur", "fps", "random")

_POSITIVE = Real(0.0, low_open=True)
_SIGMAS = Reals(_POSITIVE, length=3)


@dataclass(frozen=True, kw_only=True)
class Distance2bParams(Spec):
    """The parameters of `mlpot.Distance2b` (gap_fit ``distance_2b``), checked."""

    kind = "distance_2b"

    cutoff: float = param(_POSITIVE, 5.0, doc="pair cutoff, Angstrom")
    cutoff_transition_width: float = param(Real(0.0), 0.5, doc="width of the cosine switch, Angstrom, <= cutoff")
    theta: float = param(_POSITIVE, 1.0, doc="length scale of the kernel, Angstrom")
    delta: float | None = param(Optional(_POSITIVE), None, doc="signal standard deviation, eV (default: from the data)")
    n_sparse: int = param(Integer(1, MAX_SPARSE), 20, doc="number of sparse distances")
    species: tuple | None = param(
        Optional(Elements(length=2, distinct=False)), None, doc="the pair's two elements (default: every pair)"
    )
    sparse_points: tuple | None = param(
        Optional(Reals(Real(0.0), min_length=1)), None, doc="fixed sparse distances, Angstrom"
    )

    def _relations(self):
        if self.cutoff_transition_width > self.cutoff:
            raise ParameterValueError(
                "cutoff_transition_width", f"must be in [0, cutoff] = [0, {self.cutoff}]", self.cutoff_transition_width
            )


@dataclass(frozen=True, kw_only=True)
class GAPParams(Spec):
    """The hyperparameters of `mlpot.GAP` (gap_fit's names), checked. The descriptors, the
    baseline and fixed sparse points are objects and data, checked by GAP itself."""

    kind = "gap"

    zeta: float = param(_POSITIVE, 4.0, doc="exponent of the SOAP dot-product kernel")
    n_sparse: int = param(Integer(1, MAX_SPARSE), 1000, doc="sparse points per central species of each SOAP term")
    delta: float | None = param(
        Optional(_POSITIVE), None, doc="signal standard deviation of a SOAP local energy, eV (default: from the data)"
    )
    sparse_method: str = param(Choice(SPARSE_METHODS), "cur", doc="sparse point selection")
    default_sigma: tuple = param(
        _SIGMAS, (0.01, 0.05, 0.01), doc="noise: energy per atom (eV), force (eV/Angstrom), virial per atom (eV)"
    )
    group_sigma: dict = param(
        Table(_SIGMAS), None, doc="default_sigma by configuration group ([groups.NAME] sigma)", config=False
    )
    e0: dict | None = param(
        Optional(PerElement(min_length=0)), None, doc="energy of an isolated atom by element, eV (default: least squares)"
    )
    jitter: float = param(Real(0.0), 1e-10, doc="added to the diagonal of K_MM, eV^2")
    seed: int = param(Integer(0), 0, doc="seed of the random sparse point selections")


@dataclass(frozen=True, kw_only=True)
class LinearParams(Spec):
    """The hyperparameters of `mlpot.LinearModel` (the descriptor and baseline are objects)."""

    kind = "linear"

    quadratic: bool = param(Flag(), False, doc="add the products of descriptor components (a quadratic model)")


@dataclass(frozen=True, kw_only=True)
class SNAPParams(Spec):
    """The hyperparameters of `mlpot.SNAP` (the bispectrum and baseline are objects)."""

    kind = "snap"

    quadratic: bool = param(Flag(), False, doc="add the products of bispectrum components (quadratic SNAP)")


@dataclass(frozen=True, kw_only=True)
class SNAPFitParams(Spec):
    """The keywords of `mlpot.LinearModel.fit` (and so `mlpot.SNAP.fit`) besides the frames,
    the group weights and progress."""

    kind = "snap_fit"

    energy_weight: float | None = param(
        Optional(Real(0.0)), None, doc="weight of the energy rows, per eV/atom (default: 50 sqrt(3 x mean atoms per frame))"
    )
    force_weight: float = param(Real(0.0), 1.0, doc="weight of the force rows, per eV/Angstrom")
    stress_weight: float = param(Real(0.0), 1e-4, doc="weight of the stress rows, per bar")
    ridge: float = param(Real(0.0), 0.0, doc="ridge penalty of the coefficients (not the per-element constants)")
    solver: str = param(Choice(("svd", "normal")), "svd", doc="least-squares solver")


#: the activations of NNP's hidden layers by name (mlpot.models.nnp.ACTIVATION_NAMES)
_ACTIVATIONS = ("linear", "tanh", "logistic", "softplus", "relu", "gaussian", "cos", "reverse_logistic", "exp", "harmonic")


@dataclass(frozen=True, kw_only=True)
class NNPParams(Spec):
    """The hyperparameters of `mlpot.NNP` for training (the descriptor and baseline are
    objects)."""

    kind = "nnp"

    hidden: tuple = param(Integers(Integer(1, 100_000), min_length=1), (24, 24), doc="neurons per hidden layer")
    activation: str = param(Choice(_ACTIVATIONS), "tanh", doc="activation of the hidden layers (the output is linear)")
    committee: int = param(Integer(1, 1000), 1, doc="members of the committee (>= 2: predict(variance=True))")


@dataclass(frozen=True, kw_only=True)
class NNPFitParams(Spec):
    """The keywords of `mlpot.NNP.fit` besides the frames, the group weights and progress
    (see `mlpot.models.nnp_fit.Settings`); the Kalman filter's settings with n2p2's names
    (kalman_epsilon, ...)."""

    kind = "nnp_fit"

    energy_weight: float | None = param(Optional(Real(0.0)), None, doc="weight of the energy per atom, in units of its spread (default 30)")
    force_weight: float | None = param(Optional(Real(0.0)), None, doc="weight of the force components, in units of their RMS (default 1)")
    stress_weight: float | None = param(Optional(Real(0.0)), None, doc="weight of the stress components (default 0; lbfgs or adam)")
    optimizer: str = param(Choice(("kalman", "lbfgs", "adam")), "kalman", doc="the optimiser")
    epochs: int | None = param(Optional(Integer(1)), None, doc="most epochs (default: 40 for kalman, 300 otherwise)")
    patience: int | None = param(Optional(Integer(0)), None, doc="epochs without a better validation loss before stopping")
    validation: float = param(Real(0.0, 1.0, high_open=True), 0.1, doc="fraction held out for early stopping, by group")
    batch_size: int = param(Integer(1), 8, doc="frames per Adam step")
    learning_rate: float = param(Real(0.0, low_open=True), 3e-3, doc="Adam's first learning rate")
    final_learning_rate: float = param(Real(0.0, low_open=True), 3e-5, doc="Adam's last learning rate")
    lbfgs_iterations: int = param(Integer(1), 20, doc="L-BFGS iterations per epoch")
    scaling: str = param(Choice(("none", "scale", "center", "scalecenter", "scalesigma")), "scalesigma",
                         doc="n2p2's input scaling mode, from the training frames")
    scaling_range: tuple = param(Reals(length=2), (0.0, 1.0), doc="[s_min, s_max] of the input scaling")
    bootstrap: bool = param(Flag(), False, doc="committee members after the first train on bootstrap resamples")
    seed: int = param(Integer(0), 0, doc="seed of the split, the initial weights and the update order")
    log: str | None = param(Optional(Text()), None, doc="learning-curve CSV path")
    checkpoint: str | None = param(Optional(Text()), None, doc="checkpoint (.npz) path, written every epoch")
    restart: str | None = param(Optional(Text()), None, doc="checkpoint to continue from")
    kalman_epsilon: float = param(Real(0.0, low_open=True), 0.01, doc="initial covariance I / epsilon")
    kalman_q0: float = param(Real(0.0), 0.01, doc="initial process noise")
    kalman_qmin: float = param(Real(0.0), 1e-6, doc="least process noise")
    kalman_eta: float = param(Real(0.0, low_open=True), 0.01, doc="initial learning rate")
    kalman_etamax: float = param(Real(0.0, low_open=True), 1.0, doc="largest learning rate")
    kalman_tau: float = param(Real(0.0, low_open=True), 2.302, doc="rate per epoch at which q falls and eta rises (by e^tau)")
    kalman_energy_updates: int = param(Integer(0, 10_000), 1, doc="updates per training frame and epoch of its energy")
    kalman_force_updates: int = param(Integer(0, 10_000), 8, doc="updates per training frame and epoch of random force components")
    kalman_max_error: float | None = param(
        Optional(Real(0.0, low_open=True)), None, doc="errors beyond this many observation units count as this many (none: no limit)"
    )
    kalman_force_threshold: float = param(
        Real(0.0), 0.0, doc="force updates prefer components whose error exceeds this many force RMSEs (n2p2's selection_mode 2)"
    )
    kalman_threshold_trials: int = param(Integer(1, 100), 3, doc="components drawn per force update under the threshold")

    #: the fit keyword of each kalman_ key
    KALMAN = {"kalman_epsilon": "epsilon", "kalman_q0": "q0", "kalman_qmin": "q_min", "kalman_eta": "eta0",
              "kalman_etamax": "eta_max", "kalman_tau": "tau", "kalman_energy_updates": "energy_updates",
              "kalman_force_updates": "force_updates", "kalman_max_error": "max_error",
              "kalman_force_threshold": "force_threshold", "kalman_threshold_trials": "threshold_trials"}

    def fit_keywords(self, given) -> dict:
        """The keywords of `NNP.fit` for the keys ``given`` in a configuration."""
        out = {k: getattr(self, k) for k in given if k not in self.KALMAN}
        kalman = {self.KALMAN[k]: getattr(self, k) for k in given if k in self.KALMAN and getattr(self, k) is not None}
        if kalman:
            out["kalman"] = kalman
        return out
