"""GAP: sparse Gaussian-process potentials on SOAP (and a two-body term), as QUIP's gap_fit.

The energy of a structure is a sum of local terms, each a Gaussian process against fixed
sparse points with weights alpha:

    E = sum_t e0_t n_t + sum_i sum_m alpha_m k_soap(i, m) + sum_pairs sum_m' alpha_m' k_2b(r, m')
        (+ a fixed baseline such as ZBL),

k_soap(i, m) = delta^2 (p_i . x_m)^zeta on normalised SOAP vectors (zero between different
central species: one GP per species, as gap_fit's add_species), k_2b gap_fit's distance_2b
with a squared-exponential kernel. Total energies, forces and virials are observations,
all linear in alpha: y = K_NM alpha + noise, noise sigma per observation. The weights are the
sparse-GP (DTC/projected-process) mean

    alpha = (K_MM + K_MN Sigma^-1 K_NM)^-1 K_MN Sigma^-1 y,

obtained as gap_fit does, by QR of the augmented system [Sigma^-1/2 K_NM; L^T] (K_MM + jitter
= L L^T) against [Sigma^-1/2 y; 0], streamed frame by frame (mlpot.models.lstsq): only one
frame's kernel rows exist at a time, and memory is O(n_sparse^2).

One module per job: `terms` (the kernel terms, `Distance2b`, K_MM), `sparse` (sparse-point
selection), `fit` (the fit pipeline and the solve), `predict` (energies, forces, virial and
variance), `files` (the model-file document); `model` holds the `GAP` class.
"""

from mlpot.models.gap.fit import ABSOLUTE_SIGMAS as _ABSOLUTE_SIGMAS
from mlpot.models.gap.model import GAP
from mlpot.models.gap.sparse import SPARSE_METHODS as _SPARSE_METHODS
from mlpot.models.gap.sparse import select_sparse
from mlpot.models.gap.terms import MAX_SPARSE, Distance2b
from mlpot.models.gap.terms import Term as _Term
from mlpot.models.gap.terms import prior_factor as _prior_factor
from mlpot.models.gap.terms import structure as _structure
from mlpot.models.system import GAPSystem

__all__ = ["GAP", "MAX_SPARSE", "Distance2b", "GAPSystem", "select_sparse"]
