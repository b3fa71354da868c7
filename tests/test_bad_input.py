"""Every kind of bad input raises a ValueError (or TypeError) that names the problem."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import mlpot


@pytest.fixture
def atoms():
    return bulk("Si", "diamond", a=5.43) * (2, 2, 2)


def test_nan_and_inf_positions(atoms):
    atoms.positions[3, 1] = np.nan
    with pytest.raises(ValueError, match="atom 3 is not finite|position of atom 3"):
        mlpot.neighbor_list("ij", atoms, 3.0)
    atoms.positions[3, 1] = np.inf
    with pytest.raises(ValueError, match="atom 3"):
        mlpot.neighbor_list("ij", atoms, 3.0)


def test_non_finite_cell():
    with pytest.raises(ValueError, match="cell is not finite"):
        mlpot.primitive_neighbor_list("ij", True, np.diag([3.0, np.nan, 3.0]), np.zeros((1, 3)), 2.0)


@pytest.mark.parametrize(
    "cell, pbc",
    [
        (np.zeros((3, 3)), True),
        (np.diag([3.0, 0.0, 3.0]), [False, True, False]),
        ([[3, 0, 0], [6, 0, 0], [0, 0, 3]], [True, True, False]),
        ([[3, 0, 0], [0, 3, 0], [3, 3, 0]], True),
    ],
)
def test_zero_volume_periodic_cell(cell, pbc):
    with pytest.raises(ValueError, match="non-zero volume"):
        mlpot.primitive_neighbor_list("ij", pbc, cell, np.zeros((2, 3)), 2.0)


def test_degenerate_cell_is_fine_along_open_directions():
    i = mlpot.primitive_neighbor_list("i", [True, False, False], np.diag([3.0, 0.0, 0.0]), np.zeros((1, 3)), 4.0)
    assert len(i) == 2  # the two images along the periodic direction


@pytest.mark.parametrize("cutoff", [0.0, -1.0, np.nan, np.inf])
def test_bad_cutoff(atoms, cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        mlpot.neighbor_list("ij", atoms, cutoff)


def test_bad_cutoff_type(atoms):
    with pytest.raises(TypeError, match="cutoff"):
        mlpot.neighbor_list("ij", atoms, {("Si", "Si"): "far"})


def test_unknown_element_symbol_in_cutoff_dict(atoms):
    with pytest.raises(ValueError, match="unknown element symbol 'Xx'"):
        mlpot.neighbor_list("ij", atoms, {("Si", "Xx"): 3.0})


def test_bad_radii(atoms):
    with pytest.raises(ValueError, match="radii must have shape"):
        mlpot.neighbor_list("ij", atoms, [1.0, 2.0])
    with pytest.raises(ValueError, match="radius of atom 1"):
        mlpot.neighbor_list("ij", atoms, [1.0, -1.0] + [1.0] * (len(atoms) - 2))


def test_mismatched_shapes():
    with pytest.raises(ValueError, match=r"positions must have shape \(n_atoms, 3\)"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(3) * 3, np.zeros((4, 2)), 2.0)
    with pytest.raises(ValueError, match=r"cell must have shape \(3, 3\)"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(2) * 3, np.zeros((4, 3)), 2.0)
    with pytest.raises(ValueError, match="numbers must have shape"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(3) * 3, np.zeros((4, 3)), 2.0, numbers=[14, 14])
    with pytest.raises(ValueError, match="positions must be an array of numbers"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(3) * 3, [["a", "b", "c"]], 2.0)


def test_bad_quantities(atoms):
    with pytest.raises(ValueError, match="unsupported quantities"):
        mlpot.neighbor_list("ijx", atoms, 3.0)
    with pytest.raises(ValueError, match="non-empty"):
        mlpot.neighbor_list("", atoms, 3.0)


def test_not_atoms():
    with pytest.raises(TypeError, match="ase.Atoms"):
        mlpot.neighbor_list("ij", [[0, 0, 0]], 3.0)


def test_absurd_number_of_images_is_refused_quickly():
    atoms = Atoms("Si", cell=np.eye(3) * 0.5, pbc=True)
    with pytest.raises(ValueError, match="periodic images"):
        mlpot.neighbor_list("ij", atoms, 1000.0)


def test_atoms_absurdly_far_outside_the_cell():
    atoms = Atoms("Si2", positions=[[0, 0, 0], [1e15, 0, 0]], cell=np.eye(3) * 3, pbc=True)
    with pytest.raises(ValueError, match="outside the cell"):
        mlpot.neighbor_list("ij", atoms, 2.0)


def test_bad_thread_count():
    with pytest.raises(ValueError, match="number of threads"):
        mlpot.set_num_threads(-1)
