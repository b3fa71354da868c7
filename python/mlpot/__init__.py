"""mlpot: machine-learning interatomic potentials with a multithreaded Rust core.

Units throughout: eV, Angstrom, eV/Angstrom; stress in eV/Angstrom^3 with ASE's sign and
Voigt order.
"""

from mlpot._core import __version__, get_num_threads, set_num_threads
from mlpot.baselines import ZBL
from mlpot.descriptors import SOAP, Bispectrum, BispectrumGradients, SOAPGradients
from mlpot.neighborlist import neighbor_list, primitive_neighbor_list

__all__ = [
    "Bispectrum",
    "BispectrumGradients",
    "SOAP",
    "SOAPGradients",
    "ZBL",
    "__version__",
    "get_num_threads",
    "neighbor_list",
    "primitive_neighbor_list",
    "set_num_threads",
]
