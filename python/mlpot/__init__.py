"""mlpot: machine-learning interatomic potentials with a multithreaded Rust core.

Units throughout: eV, Angstrom, eV/Angstrom; stress in eV/Angstrom^3 with ASE's sign and
Voigt order.
"""

from mlpot import io
from mlpot._core import __version__, get_num_threads, set_num_threads
from mlpot.baselines import ZBL
from mlpot.descriptors import SOAP, Bispectrum, BispectrumGradients, SOAPGradients
from mlpot.metrics import errors
from mlpot.modelfile import ModelFileError, load
from mlpot.models import GAP, SNAP, Distance2b
from mlpot import lammps
from mlpot.neighborlist import neighbor_list, primitive_neighbor_list

__all__ = [
    "Bispectrum",
    "BispectrumGradients",
    "SOAP",
    "SOAPGradients",
    "ZBL",
    "ModelFileError",
    "SNAP",
    "GAP",
    "Distance2b",
    "__version__",
    "errors",
    "get_num_threads",
    "io",
    "lammps",
    "load",
    "neighbor_list",
    "primitive_neighbor_list",
    "set_num_threads",
]
