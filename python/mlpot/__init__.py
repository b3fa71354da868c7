"""mlpot: machine-learning interatomic potentials with a multithreaded Rust core.

Units throughout: eV, Angstrom, eV/Angstrom; stress in eV/Angstrom^3 with ASE's sign and
Voigt order.
"""

from mlpot import _core, io
from mlpot._core import __version__
from mlpot.baselines import ZBL
from mlpot.descriptors import SOAP, Bispectrum, BispectrumGradients, SOAPGradients
from mlpot.ace import ACE, ACEGradients
from mlpot.acsf import ACSF, ACSFGradients
# the models before modelfile: importing mlpot.models registers the model kinds, and
# mlpot.modelfile (which the models use) reads the registry, a leaf module of mlpot.models
from mlpot.models import GAP, NNP, SNAP, Distance2b, LinearModel
from mlpot.modelfile import ModelFileError, load
from mlpot.metrics import errors
from mlpot.models.lstsq import RankDeficientWarning
from mlpot import lammps, n2p2
from mlpot.neighborlist import neighbor_list, primitive_neighbor_list
from mlpot.tuning import LogUniform, TuneResult, Uniform, tune

__all__ = [
    "ACE",
    "ACEGradients",
    "ACSF",
    "ACSFGradients",
    "NNP",
    "n2p2",
    "Bispectrum",
    "BispectrumGradients",
    "SOAP",
    "SOAPGradients",
    "ZBL",
    "ModelFileError",
    "SNAP",
    "LinearModel",
    "GAP",
    "Distance2b",
    "RankDeficientWarning",
    "LogUniform",
    "Uniform",
    "TuneResult",
    "tune",
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


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in each call of the Rust core from now on; ``0`` restores the default.

    The default is ``MLPOT_NUM_THREADS`` if set, else ``RAYON_NUM_THREADS``, else one thread
    per available core; ``0`` in a variable also means one per core. A variable that is not
    a count from 0 to 1024 (or to the core count, if larger) is ignored with a
    RuntimeWarning at the first computation. The variables are read once, at mlpot's first
    use of threads.

    Threading model: mlpot owns its thread pools (it does not use Rayon's global pool).
    A call from Python releases the GIL and runs on a pool no other call is using, so calls
    from several Python threads run side by side and share the cores (a small prediction
    does not wait for another thread's long gradient call); up to 4 calls get a pool each,
    further concurrent calls wait for one to finish. A process created by ``os.fork`` (the
    default start method of ``multiprocessing`` on Linux) starts its own pools, with the
    parent's thread count, on its first call. Results are bit-identical whatever the thread
    count and however many calls run at once.

    Raises ValueError if ``n`` is negative or larger than the bound above (past the core
    count more threads only add overhead, and each reserves a stack), or if the system
    cannot start the threads; nothing changes then.
    """
    try:
        _core.set_num_threads(n)
    except OverflowError:  # beyond a C long: as absurd as any count above the bound
        raise ValueError(f"the number of threads must be from 0 (the default) to max(1024, cores), got {n}") from None


def get_num_threads() -> int:
    """Threads each call of the Rust core uses (see :func:`set_num_threads`). Never raises,
    and starts no threads."""
    return _core.get_num_threads()
