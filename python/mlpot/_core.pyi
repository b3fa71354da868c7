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
    """Use ``n`` threads per core call from now on; 0 returns to the default
    (MLPOT_NUM_THREADS, else RAYON_NUM_THREADS, else one per core). ValueError if ``n`` is
    negative, above max(1024, cores), or the threads cannot start. See mlpot.set_num_threads."""

def get_num_threads() -> int:
    """Threads each core call uses; never raises."""

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

def snap_design_rows(
    bispectrum: Bispectrum,
    structure: Structure,
    quadratic: bool,
) -> dict[str, np.ndarray]:
    """Design rows of one structure for (quadratic) SNAP: energy (n_columns,), forces
    (3 n_atoms, n_columns), virial (6, n_columns); one block of [1, B, q(B)] columns per
    element."""

class SnapModel:
    """A SNAP or quadratic SNAP potential; use ``mlpot.SNAP``."""

    def __init__(
        self,
        bispectrum: Bispectrum,
        quadratic: bool,
        coefficients: npt.NDArray[np.float64],
    ) -> None:
        """coefficients: (n_elements, n_coefficients) in snapcoeff order per element."""
    def predict(
        self,
        structure: Structure,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(energies (n_atoms,), forces (n_atoms, 3), virial (6,), LAMMPS sign)."""

class KernelTerm:
    """One GAP kernel term with its sparse points; use ``mlpot.GAP``."""

    @staticmethod
    def soap(
        soap: SOAP,
        zeta: float,
        delta: float,
        sparse: npt.NDArray[np.float64],
        sparse_species: list[int],
    ) -> KernelTerm:
        """delta^2 (p . x_m)^zeta on a normalised SOAP; sparse (n_sparse, n_features) grouped
        by central species in the descriptor's species order."""
    @staticmethod
    def pair(
        cutoff: float,
        cutoff_transition_width: float,
        theta: float,
        delta: float,
        sparse: list[float],
        species: tuple[int, int] | None = None,
    ) -> KernelTerm:
        """gap_fit's distance_2b (squared-exponential kernel) on sparse distances."""
    @property
    def n_sparse(self) -> int: ...
    def rows(self, structure: Structure) -> dict[str, np.ndarray]:
        """dE/dalpha: energy (n_sparse,), forces (3 n_atoms, n_sparse) (-dE/dr), virial
        (6, n_sparse) with LAMMPS's sign."""
    def predict(
        self,
        structure: Structure,
        alpha: npt.NDArray[np.float64],
        with_kernel: bool,
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64] | None,
    ]:
        """(energies (n_atoms,), forces (n_atoms, 3), virial (6,), per-atom kernel rows
        (n_atoms, n_sparse) or None)."""
