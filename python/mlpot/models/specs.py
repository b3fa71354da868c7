"""Parameter specs of the models and the GAP pair term (see `mlpot.params`): one typed
declaration each, serving the constructors, the ``mlpot fit`` configuration ([model],
[[two_body]]), the model files and the JSON schema.

(They live here, not beside their classes, while models/gap.py is being split; each spec
moves beside its class in one cut and paste.)
"""

from __future__ import annotations

from dataclasses import dataclass

from mlpot.params import (
    Choice, Elements, Flag, Integer, Optional, ParameterValueError, PerElement, Real, Reals, Spec, Table,
    param,
)

__all__ = ["Distance2bParams", "GAPParams", "LinearParams", "MAX_SPARSE", "SNAPFitParams", "SNAPParams", "SPARSE_METHODS"]

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
