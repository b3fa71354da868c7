"""Type stubs for the Rust extension module. Call the wrappers in mlpot instead."""

import numpy as np
import numpy.typing as npt

__version__: str

def neighbor_list(
    positions: npt.NDArray[np.float64],
    cell: npt.NDArray[np.float64],
    pbc: list[bool],
    numbers: npt.NDArray[np.int64],
    quantities: str,
    *,
    cutoff: float | None = None,
    radii: npt.NDArray[np.float64] | None = None,
    pair_types: npt.NDArray[np.int64] | None = None,
    pair_table: npt.NDArray[np.float64] | None = None,
    self_interaction: bool = False,
) -> dict[str, np.ndarray]:
    """Pair arrays keyed by the letters of ``quantities``. Raises ValueError on bad input."""

def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the core from now on; 0 returns to the default (all cores, or
    RAYON_NUM_THREADS)."""

def get_num_threads() -> int:
    """Number of threads the core uses."""
