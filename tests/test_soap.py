"""mlpot.SOAP on its own: finite differences of every derivative, invariances, layout of
the sparse gradients, determinism and bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

import mlpot
from test_bispectrum import displaced, strained

SPECIES = ["Si", "C", "O"]


def soap(**kwargs):
    hypers = dict(cutoff=3.4, n_max=4, l_max=3, atom_sigma=0.45, cutoff_transition_width=0.8,
                  species=SPECIES)
    hypers.update(kwargs)
    return mlpot.SOAP(**hypers)


def rattled(seed, reps=(1, 1, 1)):
    rng = np.random.default_rng(seed)
    atoms = bulk("Si", "diamond", a=4.4, cubic=True) * reps
    cell = atoms.cell.array.copy()
    cell[1, 0], cell[2, 0] = 0.5, -0.3
    atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(0.0, 0.15, atoms.positions.shape)
    atoms.set_chemical_symbols(rng.choice(SPECIES, len(atoms)))
    return atoms


def cluster(seed):
    atoms = molecule("CH3CH2OH")
    atoms.set_chemical_symbols(["C", "C", "O", "Si", "Si", "O", "C", "Si", "Si"])
    atoms.rattle(0.1, seed=seed)
    atoms.center(vacuum=4.0)  # a cell to strain; the system stays open (pbc False)
    return atoms


OPTIONS = [dict(), dict(normalize=True), dict(cutoff_transition_width=0.0, center_atom_weight=0.4)]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("system", ["periodic", "open"])
def test_position_gradients_match_finite_differences(options, system):
    atoms = rattled(1) if system == "periodic" else cluster(1)
    d = soap(**options)
    p, g = d.compute(atoms, gradients=True)
    np.testing.assert_array_equal(p, d.compute(atoms))
    h = 1e-5
    for k in range(len(atoms)):
        for c in range(3):
            fd = (d.compute(displaced(atoms, k, c, h)) - d.compute(displaced(atoms, k, c, -h))) / (2 * h)
            analytic = np.zeros_like(fd)
            rows = g.neighbors == k
            analytic[g.centers[rows]] = g.values[rows, c]
            np.testing.assert_allclose(analytic, fd, rtol=0, atol=1e-7 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("system", ["periodic", "open"])
def test_virial_matches_finite_strain(options, system):
    atoms = rattled(2) if system == "periodic" else cluster(2)
    d = soap(**options)
    _, g = d.compute(atoms, gradients=True)
    h = 1e-6
    for v in range(6):
        fd = (d.compute(strained(atoms, v, h)) - d.compute(strained(atoms, v, -h))) / (2 * h)
        # the virial is -dP/d(strain)
        np.testing.assert_allclose(-g.virial[:, v], fd, rtol=0,
                                   atol=1e-7 * max(1.0, np.abs(fd).max()))


def test_small_cell_images_are_summed_into_one_row():
    """A cell smaller than the cutoff: every atom sees many images of each atom (and of
    itself); each atom still has one row per distinct atom, and they match finite
    differences."""
    atoms = Atoms("SiC", positions=[[0, 0, 0], [1.1, 0.8, 0.3]], cell=np.eye(3) * 2.2, pbc=True)
    d = soap()
    _, g = d.compute(atoms, gradients=True)
    assert g.centers.tolist() == [0, 0, 1, 1]
    assert g.neighbors.tolist() == [0, 1, 0, 1]
    h = 1e-5
    for k in range(2):
        for c in range(3):
            fd = (d.compute(displaced(atoms, k, c, h)) - d.compute(displaced(atoms, k, c, -h))) / (2 * h)
            rows = g.neighbors == k
            np.testing.assert_allclose(g.values[rows, c], fd[g.centers[rows]], rtol=0,
                                       atol=1e-7 * max(1.0, np.abs(fd).max()))


def test_gradient_rows_are_the_atoms_within_the_cutoff():
    atoms = rattled(3, reps=(2, 2, 2))
    d = soap()
    _, g = d.compute(atoms, gradients=True)
    i, j = mlpot.neighbor_list("ij", atoms, d.cutoff)
    for center in range(len(atoms)):
        expected = sorted(set(j[i == center]) | {center})
        assert g.neighbors[g.centers == center].tolist() == expected
    # translation invariance: the rows of each center sum to zero
    sums = np.zeros((len(atoms), 3, d.n_features))
    np.add.at(sums, g.centers, g.values)
    np.testing.assert_allclose(sums, 0, atol=1e-12)


def test_shape_order_and_normalization():
    d = soap(species=["O", 14, "C"])
    assert d.species == ("C", "O", "Si")
    assert d.n_features == 6 * 4 * 4 * 4
    atoms = rattled(4)
    p, g = d.compute(atoms, gradients=True)
    assert p.shape == (len(atoms), d.n_features) and p.dtype == np.float64
    assert g.values.shape == (len(g.centers), 3, d.n_features)
    assert g.virial.shape == (len(atoms), 6, d.n_features)
    unit = soap(normalize=True).compute(atoms)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(unit, p / np.linalg.norm(p, axis=1)[:, None], rtol=1e-13)
    # the blocks of species pairs absent from an atom's cutoff sphere are zero
    pure = Atoms("Si2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=np.eye(3) * 9, pbc=True)
    blocks = d.compute(pure).reshape(2, 6, -1)
    assert np.all(blocks[:, :5] == 0) and np.all(blocks[:, 5] != 0)


def test_results_do_not_depend_on_thread_count():
    atoms = rattled(5, reps=(2, 2, 2))
    d = soap()
    try:
        mlpot.set_num_threads(1)
        p1, g1 = d.compute(atoms, gradients=True)
        mlpot.set_num_threads(2)
        p2, g2 = d.compute(atoms, gradients=True)
    finally:
        mlpot.set_num_threads(0)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(g1.values, g2.values)
    np.testing.assert_array_equal(g1.virial, g2.virial)


def test_isolated_atom_and_empty_structure():
    d = soap()
    lone = Atoms("Si", positions=[[0, 0, 0]])
    p, g = d.compute(lone, gradients=True)
    assert np.count_nonzero(p) > 0  # the central atom's own density, l = 0 only
    np.testing.assert_array_equal(g.values, 0)
    p = soap(center_atom_weight=0.0, normalize=True).compute(lone)
    np.testing.assert_array_equal(p, 0)  # no density at all stays zero when normalised
    empty = d.compute(Atoms(), gradients=True)
    assert empty[0].shape == (0, d.n_features) and empty[1].values.shape == (0, 3, d.n_features)


small_floats = st.floats(-3.0, 3.0, allow_nan=False)


@given(
    angles=st.tuples(small_floats, small_floats, small_floats),
    shift=st.tuples(small_floats, small_floats, small_floats),
    seed=st.integers(0, 2**16),
)
def test_rotation_translation_permutation_invariance(angles, shift, seed):
    atoms = rattled(seed)
    d = soap()
    p = d.compute(atoms)
    rotation = Rotation.from_rotvec(angles).as_matrix()
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ rotation.T)
    moved.positions = atoms.positions @ rotation.T + np.array(shift)
    np.testing.assert_allclose(d.compute(moved), p, rtol=0, atol=1e-11)
    order = np.random.default_rng(seed).permutation(len(atoms))
    np.testing.assert_allclose(d.compute(atoms[order]), p[order], rtol=0, atol=1e-13)
    # gradients rotate as vectors; they are sparse rows in the permuted atom order
    _, g = d.compute(atoms, gradients=True)
    _, gm = d.compute(moved, gradients=True)
    np.testing.assert_array_equal(g.neighbors, gm.neighbors)
    np.testing.assert_allclose(gm.values, np.einsum("ab,rbf->raf", rotation, g.values), rtol=0,
                               atol=1e-10)


@given(reps=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)),
       seed=st.integers(0, 2**16))
def test_supercell_replication(reps, seed):
    atoms = rattled(seed)
    d = soap()
    p, g = d.compute(atoms, gradients=True)
    big = atoms * reps
    n = int(np.prod(reps))
    pb, gb = d.compute(big, gradients=True)
    np.testing.assert_allclose(pb, np.tile(p, (n, 1)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(gb.virial, np.tile(g.virial, (n, 1, 1)), rtol=0, atol=1e-11)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_max=0), "n_max"),
        (dict(l_max=-1), "l_max"),
        (dict(cutoff=0.0), "cutoff"),
        (dict(cutoff=-2.0), "cutoff"),
        (dict(cutoff=float("nan")), "cutoff"),
        (dict(atom_sigma=0.0), "atom_sigma"),
        (dict(atom_sigma=float("inf")), "atom_sigma"),
        (dict(cutoff_transition_width=-0.1), "cutoff_transition_width"),
        (dict(cutoff_transition_width=3.4), "cutoff_transition_width"),
        (dict(center_atom_weight=float("nan")), "center_atom_weight"),
        (dict(species=[]), "species"),
        (dict(species=None), "species"),
        (dict(species=["Si", "Si"]), "twice"),
        (dict(species=["Xx"]), "Xx"),
        (dict(n_max=40), "n_max"),
        (dict(l_max=100), "l_max"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        soap(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(n_max=2.5), dict(l_max="3"), dict(n_max=True),
                                    dict(cutoff="x")])
def test_hyperparameters_of_the_wrong_type(kwargs):
    with pytest.raises(TypeError):
        soap(**kwargs)


def test_bad_structures():
    d = soap()
    atoms = rattled(6)
    atoms.numbers[2] = 29
    with pytest.raises(ValueError, match="Cu"):
        d.compute(atoms)
    atoms = rattled(6)
    atoms.positions[1, 2] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        d.compute(atoms, gradients=True)
    with pytest.raises(TypeError, match="ase.Atoms"):
        d.compute(np.zeros((3, 3)))
