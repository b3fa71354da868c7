"""The bispectrum on its own: the adjoint against finite differences of the energy, counts,
bad hyperparameters and input. Gradients, virials, invariances and thread determinism of every
descriptor are in test_descriptor_contract.py."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import mlpot

RADELEM = {"Ni": 0.5, "Al": 0.57, "O": 0.45}
WJ = {"Ni": 1.0, "Al": 0.73, "O": 1.31}
FLAG_SETS = [
    dict(),
    dict(bzeroflag=True, switchflag=False, rmin0=0.4),
    dict(chemflag=True, bnormflag=True),
    dict(chemflag=True, bzeroflag=True, wselfallflag=True),
]


def bispectrum(twojmax=4, **flags):
    return mlpot.Bispectrum(twojmax, 4.1, radelem=RADELEM, wj=WJ, **flags)


def rattled(seed, reps=(1, 1, 2), n_elements=3):
    rng = np.random.default_rng(seed)
    atoms = bulk("Ni", "fcc", a=3.52, cubic=True) * reps
    cell = atoms.cell.array.copy()
    cell[1, 0], cell[2, 0] = 0.5, -0.3
    atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(0.0, 0.15, atoms.positions.shape)
    atoms.set_chemical_symbols(rng.choice(list(RADELEM)[:n_elements], len(atoms)))
    return atoms


def displaced(atoms, k, c, h):
    moved = atoms.copy()
    moved.positions[k, c] += h
    return moved


def strained(atoms, voigt, h):
    """atoms under a small strain along one Voigt component (symmetric shear)."""
    a, b = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)][voigt]
    eps = np.zeros((3, 3))
    eps[a, b] += h / (1 if a == b else 2)
    eps[b, a] += 0 if a == b else h / 2
    deformed = atoms.copy()
    deformed.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return deformed


@pytest.mark.parametrize("flags", FLAG_SETS)
def test_adjoint_forces_and_virial_match_finite_differences(flags):
    atoms = rattled(3)
    bs = bispectrum(**flags)
    rng = np.random.default_rng(0)
    beta = rng.normal(size=(len(atoms), bs.n_features))

    def energy(a):
        return (beta * bs.compute(a)).sum()

    b, forces, virial = bs.forces(atoms, beta, return_descriptors=True)
    np.testing.assert_array_equal(b, bs.compute(atoms))
    h = 1e-5
    for k in range(len(atoms)):
        for c in range(3):
            fd = -(energy(displaced(atoms, k, c, h)) - energy(displaced(atoms, k, c, -h))) / (2 * h)
            assert forces[k, c] == pytest.approx(fd, rel=1e-6, abs=1e-6)
    for v in range(6):
        fd = -(energy(strained(atoms, v, h)) - energy(strained(atoms, v, -h))) / (2 * h)
        assert virial[v] == pytest.approx(fd, rel=1e-6, abs=1e-6)
    # one beta row for every atom is the same as the broadcast form
    f1, w1 = bs.forces(atoms, beta[0])
    f2, w2 = bs.forces(atoms, np.tile(beta[0], (len(atoms), 1)))
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(w1, w2)


def test_properties_and_lammps_counts():
    for twojmax, k in [(2, 5), (4, 14), (6, 30), (8, 55)]:
        assert mlpot.Bispectrum(twojmax, 4.1, radelem={"Ni": 0.5}).n_features == k
    bs = bispectrum(6, chemflag=True)
    assert bs.n_features == 27 * 30
    assert bs.elements == ("Ni", "Al", "O")
    assert bs.cutoffs[("Ni", "Al")] == pytest.approx(4.1 * 1.07)
    assert bs.cutoff == pytest.approx(4.1 * 1.14)
    assert bs.wj == WJ
    assert "twojmax=6" in repr(bs)


def test_isolated_atom_and_empty_structure():
    bs = mlpot.Bispectrum(6, 4.1, radelem={"Ni": 0.5}, bzeroflag=True)
    assert np.abs(bs.compute(Atoms("Ni"))).max() < 1e-12
    assert bs.compute(Atoms()).shape == (0, 30)
    b, g = bs.compute(Atoms(), gradients=True)
    assert g.values.shape == (0, 3, 30) and g.virial.shape == (0, 6, 30)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(twojmax=5), "twojmax"),
        (dict(twojmax=-2), "twojmax"),
        (dict(rfac0=0.0), "rfac0"),
        (dict(rfac0=1.2), "rfac0"),
        (dict(rfac0=float("nan")), "rfac0"),
        (dict(rcutfac=float("nan")), "rcutfac"),
        (dict(rcutfac=-1.0), "rcutfac"),
        (dict(rmin0=4.1), "rmin0"),
        (dict(rmin0=float("inf")), "rmin0"),
        (dict(radelem={"Ni": float("nan")}), "radelem"),
        (dict(radelem={"Ni": 0.0}), "radelem"),
        (dict(radelem={"Xx": 0.5}), "Xx"),
        (dict(radelem={}), "radelem"),
        (dict(wj={"Al": 1.0}), "Ni"),
        (dict(wj={"Ni": float("nan")}), "wj"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    args = dict(twojmax=4, rcutfac=4.1, radelem={"Ni": 0.5}, wj={"Ni": 1.0}) | kwargs
    with pytest.raises(ValueError, match=message):
        mlpot.Bispectrum(**args)


def test_bad_structures_and_beta():
    bs = mlpot.Bispectrum(4, 4.1, radelem={"Ni": 0.5})
    atoms = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(ValueError, match="Cu.*missing from radelem"):
        bs.compute(atoms)
    ni = bulk("Ni", "fcc", a=3.52)
    with pytest.raises(ValueError, match="beta must have shape"):
        bs.forces(ni, np.zeros((2, bs.n_features)))
    with pytest.raises(ValueError, match="NaN"):
        bs.forces(ni, np.full(bs.n_features, np.nan))
    ni.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="atom 0"):
        bs.compute(ni)
    with pytest.raises(TypeError, match="ase.Atoms"):
        bs.compute(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="twojmax"):
        mlpot.Bispectrum(4.0, 4.1, radelem={"Ni": 0.5})
