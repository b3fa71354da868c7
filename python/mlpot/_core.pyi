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

def lists_built() -> int:
    """Neighbor lists built for descriptors and models so far in this process (for tests)."""

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

Arrays = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]

class Descriptor:
    """Any descriptor of the core, by kind ("bispectrum", "soap") from its parameters as
    JSON (the fields of the core's parameter struct; unknown fields are an error). Use
    ``mlpot.Bispectrum`` or ``mlpot.SOAP``, which validate and document the parameters."""

    def __init__(self, kind: str, params: str) -> None: ...
    @property
    def kind(self) -> str: ...
    @property
    def n_features(self) -> int: ...
    @property
    def species(self) -> list[int]:
        """Atomic numbers in the order of the descriptor's species."""
    def compute(self, structure: Structure) -> npt.NDArray[np.float64]:
        """X, (n_atoms, n_features)."""
    def compute_gradients(self, structure: Structure) -> dict[str, np.ndarray]:
        """descriptors (n_atoms, n_features); centers, atoms (n_rows,) int64; values
        (n_rows, 3, n_features) dX_i/dr_j; virial (n_atoms, 6, n_features)."""
    def backprop(self, structure: Structure, de_dx: npt.NDArray[np.float64]) -> Arrays:
        """(X (n_atoms, n_features), forces (n_atoms, 3), virial (6,)) of E = sum de_dx * X."""
    def forward(self, structure: Structure, displacement: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """dX (n_atoms, n_features) along the displacement field (n_atoms, 3)."""

class ZBL:
    """ZBL repulsion as LAMMPS pair_style zbl; use ``mlpot.ZBL``. Raises ValueError unless
    0 < inner < outer (Angstrom)."""

    def __init__(self, inner: float, outer: float) -> None: ...
    def compute(self, structure: Structure) -> Arrays:
        """(energies (n_atoms,) eV, forces (n_atoms, 3) eV/Angstrom, virials (n_atoms, 6) eV
        in Voigt order xx yy zz yz xz xy, LAMMPS's sign: the stress is -sum / volume)."""

TermPrediction = tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64] | None,
]

class Term:
    """One term of a model: linear in its weights (the coefficients of a linear model, the
    alphas of a kernel), or owning its parameters (ZBL, neural networks: no weights). Rows
    and predictions: forces -dE/dr, virial with LAMMPS's sign, Voigt order xx yy zz yz xz
    xy."""

    @staticmethod
    def linear(descriptor: Descriptor, quadratic: bool) -> Term:
        """The linear (quadratic) model on a descriptor (SNAP on the bispectrum); weights:
        one block [c0, c_lin, c_quad] per element of the descriptor, in its order."""
    @staticmethod
    def dot_product(
        descriptor: Descriptor,
        zeta: float,
        delta: float,
        sparse: npt.NDArray[np.float64],
        sparse_species: list[int],
    ) -> Term:
        """delta^2 (x . x_m)^zeta; sparse (n_sparse, n_features) grouped by central species
        in the descriptor's species order; weights: one per sparse point."""
    @staticmethod
    def pair(
        cutoff: float,
        cutoff_transition_width: float,
        theta: float,
        delta: float,
        sparse: list[float],
        species: tuple[int, int] | None = None,
    ) -> Term:
        """gap_fit's distance_2b (squared-exponential kernel) on sparse distances."""
    @staticmethod
    def zbl(inner: float, outer: float) -> Term:
        """The ZBL repulsion as a fixed term (no weights)."""
    @staticmethod
    def network(descriptor: Descriptor, networks_json: str) -> Term:
        """Behler-Parrinello atomic neural networks on the descriptor (n2p2's activations),
        one per species, from JSON: {"networks": [{"species": Z, "layers": [{"weights":
        [[...] per neuron], "biases": [...], "activation": "t"}, ...], "input_shift",
        "input_factor", "input_offset" (optional, identity: x_s = offset + factor (x -
        shift)), "energy_scale" (1), "energy_offset" (0), "normalize_nodes" (false)}]}.
        The network of Z reads the first n_in features. No weights (predict with an empty
        array, with_rows False); no rows. An atom of a species without a network is an
        error."""
    def network_outputs(
        self, species: int, features: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """A network term's network of atomic number `species` on raw features (n, n_in):
        (energies (n,), gradients dE/dfeatures (n, n_in))."""
    @property
    def n_members(self) -> int:
        """Members of a network term's committee (ValueError for other terms)."""
    def predict_members(
        self, structure: Structure
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Each committee member's (energies (K, n_atoms), forces (K, n_atoms, 3), virial
        (K, 6)) from one descriptor pass."""
    @property
    def n_columns(self) -> int: ...
    def rows(self, structure: Structure) -> dict[str, np.ndarray]:
        """dE/dw: energy (n_columns,), forces (3 n_atoms, n_columns), virial (6, n_columns)."""
    def predict(
        self,
        structure: Structure,
        weights: npt.NDArray[np.float64],
        with_rows: bool,
    ) -> TermPrediction:
        """(energies (n_atoms,), forces (n_atoms, 3), virial (6,), per-atom rows (n_atoms,
        n_columns) or None)."""

def rows_terms(terms: list[Term], structure: Structure) -> list[dict[str, np.ndarray]]:
    """The rows of every term (as `Term.rows`) from one neighbor list."""

def predict_terms(
    terms: list[Term],
    structure: Structure,
    weights: list[npt.NDArray[np.float64]],
    with_rows: bool,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    list[npt.NDArray[np.float64] | None],
]:
    """The summed prediction of the terms (weights[k] for term k) from one neighbor list,
    with each term's per-atom rows on request."""

class NetworkTraining:
    """Descriptors of training frames with their gradients, cached for training networks."""

    def __init__(
        self, descriptor: Descriptor, n_inputs: list[int], structures: list[Structure], stress: list[bool]
    ) -> None: ...
    @property
    def n_frames(self) -> int: ...
    def n_atoms(self) -> npt.NDArray[np.int64]:
        """Atoms per frame."""
    def types(self) -> npt.NDArray[np.int64]:
        """The species index of every atom of every frame, concatenated."""
    def features(self, species_index: int, frames: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Raw features (n, n_inputs[s]) of the atoms of species index s in ``frames``."""
    def predict(
        self, term: Term, theta: npt.NDArray[np.float64], frames: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(energies (m,), forces (atoms of the frames, 3), virials (m, 6))."""
    def gradient(
        self,
        term: Term,
        theta: npt.NDArray[np.float64],
        frames: npt.NDArray[np.int64],
        alpha: npt.NDArray[np.float64],
        displacement: npt.NDArray[np.float64] | None = None,
        virial: npt.NDArray[np.float64] | None = None,
    ) -> tuple[float, npt.NDArray[np.float64]]:
        """(sum_f h_f, its gradient) for h_f = alpha_f E_f + sum_k d_k . dE_f/dr_k + c_f . W_f."""

class KalmanFilter:
    """n2p2's extended Kalman filter over blocks of weights."""

    def __init__(
        self,
        blocks: list[int],
        epsilon: float,
        q0: float,
        q_min: float,
        eta0: float,
        eta_max: float,
        tau: float,
        per_epoch: float,
        max_error: float,
    ) -> None: ...
    @property
    def steps(self) -> int: ...
    @property
    def q(self) -> float: ...
    @property
    def eta(self) -> float: ...
    @property
    def blocks(self) -> list[int]: ...
    def covariance(self, b: int) -> npt.NDArray[np.float64]:
        """The covariance of block b, (n_b, n_b)."""
    def restore(self, covariances: list[npt.NDArray[np.float64]], steps: int) -> None:
        """Restores the covariances of all blocks and the number of updates done."""

def kalman_epochs(
    training: NetworkTraining,
    term: Term,
    filters: list[KalmanFilter],
    thetas: list[npt.NDArray[np.float64]],
    schedules: list[npt.NDArray[np.int64]],
    targets: list[npt.NDArray[np.float64]],
) -> list[npt.NDArray[np.float64]]:
    """One epoch of Kalman updates per member, the members in parallel; the new weights."""
