"""mlpot.SOAP on its own: layout of the sparse gradients, normalisation, isolated atoms and bad
input. Gradients, virials, invariances and thread determinism of every descriptor are in
test_descriptor_contract.py."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import mlpot
from test_bispectrum import displaced

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
