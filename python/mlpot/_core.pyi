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

class Structure:
    """A validated structure (positions and cell in Angstrom, atomic numbers); raises
    ValueError on NaN positions, degenerate periodic cells or unknown elements."""

    def __init__(
        self,
        positions: npt.NDArray[np.float64],
        cell: npt.NDArray[np.float64],
        pbc: list[bool],
        numbers: npt.NDArray[np.int64],
    ) -> None: ...
    def __len__(self) -> int: ...

class Bispectrum:
    """The SNAP bispectrum core; use ``mlpot.Bispectrum``, which validates the arguments."""

    def __init__(
        self,
        twojmax: int,
        rcutfac: float,
        rfac0: float,
        rmin0: float,
        species: list[int],
        radelem: list[float],
        wj: list[float],
        switchflag: bool,
        bzeroflag: bool,
        chemflag: bool,
        bnormflag: bool,
        wselfallflag: bool,
    ) -> None: ...
    @property
    def n_features(self) -> int: ...
    def compute(
        self,
        structure: Structure,
    ) -> npt.NDArray[np.float64]:
        """B, (n_atoms, n_features)."""
    def compute_gradients(
        self,
        structure: Structure,
    ) -> dict[str, np.ndarray]:
        """descriptors (n_atoms, n_features); centers, atoms (n_rows,) int64; values
        (n_rows, 3, n_features) dB_i/dr_j; virial (n_atoms, 6, n_features)."""
    def adjoint(
        self,
        structure: Structure,
        beta: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(B (n_atoms, n_features), forces (n_atoms, 3), virial (6,)) of E = sum beta * B."""

class ZBL:
    """ZBL repulsion as LAMMPS pair_style zbl; use ``mlpot.ZBL``. Raises ValueError unless
    0 < inner < outer (Angstrom)."""

    def __init__(self, inner: float, outer: float) -> None: ...
    def compute(
        self,
        structure: Structure,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(energies (n_atoms,) eV, forces (n_atoms, 3) eV/Angstrom, virials (n_atoms, 6) eV
        in Voigt order xx yy zz yz xz xy, LAMMPS's sign: the stress is -sum / volume)."""

class SOAP:
    """The SOAP power spectrum core; use ``mlpot.SOAP``, which validates the arguments."""

    def __init__(
        self,
        cutoff: float,
        n_max: int,
        l_max: int,
        atom_sigma: float,
        cutoff_transition_width: float,
        species: list[int],
        center_atom_weight: float,
        normalize: bool,
    ) -> None: ...
    @property
    def n_features(self) -> int: ...
    @property
    def species(self) -> list[int]:
        """Atomic numbers, sorted: the order of the species pairs."""
    def compute(self, structure: Structure) -> npt.NDArray[np.float64]:
        """P, (n_atoms, n_features)."""
    def compute_gradients(self, structure: Structure) -> dict[str, np.ndarray]:
        """descriptors (n_atoms, n_features); centers, atoms (n_rows,) int64; values
        (n_rows, 3, n_features) dP_i/dr_j; virial (n_atoms, 6, n_features)."""
