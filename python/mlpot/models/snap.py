"""SNAP and quadratic SNAP potentials: `mlpot.LinearModel` on the bispectrum.

Atom i of element e has the energy (LAMMPS ``pair_style snap``)

    E_i = beta0_e + sum_k beta_ek B_ik + sum_{k<=l} alpha_ekl q_kl(B_i),
    q_kk = B_k^2 / 2,  q_kl = B_k B_l (k < l; quadratic SNAP only),

with B_i the bispectrum of `mlpot.Bispectrum`. Fit, prediction and files are those of the
linear model (`mlpot.models.linear`); SNAP adds the bispectrum's name, its own model-file
form (kind "SNAP", the bispectrum under "bispectrum", as every SNAP file since the first
release) and the LAMMPS files (`mlpot.lammps.write_snap`).
"""

from __future__ import annotations

from mlpot.descriptors import Bispectrum
from mlpot.models.linear import LinearModel
from mlpot.models.parts import bispectrum_from_dict, bispectrum_to_dict
from mlpot.models.registry import register
from mlpot.models.specs import SNAPParams
from mlpot.models.system import LinearSystem

__all__ = ["LinearSystem", "SNAP"]


@register("SNAP")
class SNAP(LinearModel):
    """A linear (``quadratic=False``) or quadratic SNAP potential on a bispectrum descriptor.

    Parameters
    ----------
    bispectrum
        The descriptor (`mlpot.Bispectrum`); its elements are the model's elements.
    quadratic
        Add the K(K+1)/2 products of bispectrum components (Wood and Thompson,
        J. Chem. Phys. 148, 241721 (2018)).
    baseline
        Optional fixed reference potential (e.g. ``mlpot.baselines.ZBL``): any object with
        ``predict(atoms) -> dict(energy, forces, stress, energies)``. It is subtracted from
        the references before a fit and added to every prediction.

    `coefficients` are in snapcoeff order; `mlpot.lammps.write_snap` writes the model for
    LAMMPS ``pair_style snap``. Fit, prediction and everything else: `mlpot.LinearModel`.
    """

    Params = SNAPParams
    _descriptor_name = "bispectrum"
    default_descriptor = Bispectrum.kind
    #: [output] lammps of a configuration: pair_style snap files
    writes_lammps = True
    _descriptor_field = "bispectrum"
    _write_descriptor = staticmethod(bispectrum_to_dict)
    _read_descriptor = staticmethod(bispectrum_from_dict)

    def __init__(self, bispectrum: Bispectrum, quadratic: bool = False, baseline=None):
        super().__init__(bispectrum, quadratic=quadratic, baseline=baseline)

    @classmethod
    def accepts(cls, descriptor_class: type) -> bool:
        """SNAP is the linear model on the bispectrum only."""
        return isinstance(descriptor_class, type) and issubclass(descriptor_class, Bispectrum)

    def _check_descriptor(self, descriptor) -> None:
        if not isinstance(descriptor, Bispectrum):
            raise TypeError(f"bispectrum must be an mlpot.Bispectrum, got {type(descriptor).__name__}")

    @property
    def bispectrum(self) -> Bispectrum:
        return self._descriptor
