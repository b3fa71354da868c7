"""mlpot.SOAP against featomic's SoapPowerSpectrum, the reference implementation: values,
position gradients and strain gradients for equal hyperparameters."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

import mlpot
from conftest import oracle

VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]

HYPERS = [
    dict(cutoff=4.0, n_max=5, l_max=4, atom_sigma=0.5, cutoff_transition_width=0.5),
    dict(cutoff=3.3, n_max=3, l_max=6, atom_sigma=0.3, cutoff_transition_width=1.2),
    dict(cutoff=4.5, n_max=8, l_max=2, atom_sigma=0.7, cutoff_transition_width=0.0),
    dict(cutoff=5.0, n_max=8, l_max=6, atom_sigma=0.5, cutoff_transition_width=0.5,
         center_atom_weight=0.3),
    # the published GAP settings for Si
    dict(cutoff=5.4, n_max=8, l_max=8, atom_sigma=0.5, cutoff_transition_width=0.5),
]


def featomic_calculator(featomic, soap: mlpot.SOAP, spline_accuracy=None):
    """featomic's calculator with the hyperparameters of ``soap`` (the mapping of the
    SOAP docstring); spline_accuracy=None computes the radial integral exactly."""
    width = soap.cutoff_transition_width
    smoothing = {"type": "ShiftedCosine", "width": width} if width > 0 else {"type": "Step"}
    return featomic.SoapPowerSpectrum(
        cutoff={"radius": soap.cutoff, "smoothing": smoothing},
        density={
            "type": "Gaussian",
            "width": soap.atom_sigma,
            "center_atom_weight": soap.center_atom_weight,
        },
        basis={
            "type": "TensorProduct",
            "max_angular": soap.l_max,
            "radial": {"type": "Gto", "max_radial": soap.n_max - 1},
            "spline_accuracy": spline_accuracy,
        },
    )


def featomic_dense(featomic, soap, atoms, gradients=False, spline_accuracy=None):
    """featomic's spectrum in mlpot's layout: P (n_atoms, nf); with gradients also
    dP_i/dr_j (n_atoms, n_atoms, 3, nf) and dP_i/d(strain) (n_atoms, 3, 3, nf)."""
    calc = featomic_calculator(featomic, soap, spline_accuracy)
    tensor = calc.compute(atoms, gradients=["positions", "strain"] if gradients else [])
    tensor = tensor.keys_to_samples("center_type").keys_to_properties(
        ["neighbor_1_type", "neighbor_2_type"]
    )
    block = tensor.block(0)
    species = [int(z) for z in soap._numbers]
    pair_index = {}
    for a in range(len(species)):
        for b in range(a, len(species)):
            pair_index[(species[a], species[b])] = len(pair_index)
    n, nl = soap.n_max, soap.l_max + 1
    columns = np.array(
        [
            pair_index[(z1, z2)] * nl * n * n + l * n * n + n1 * n + n2
            for z1, z2, l, n1, n2 in block.properties.values
        ]
    )
    atoms_of_sample = block.samples.values[:, 1]
    n_atoms = len(atoms)
    values = np.zeros((n_atoms, soap.n_features))
    values[atoms_of_sample[:, None], columns[None, :]] = block.values
    if not gradients:
        return values
    positions = block.gradient("positions")
    dense = np.zeros((n_atoms, n_atoms, 3, soap.n_features))
    samples = positions.samples.values
    centers = atoms_of_sample[samples[:, 0]]
    np.add.at(dense, (centers[:, None], samples[:, 2][:, None], slice(None), columns[None, :]),
              np.moveaxis(positions.values, 2, 1))
    strain = block.gradient("strain")
    dense_strain = np.zeros((n_atoms, 3, 3, soap.n_features))
    centers = atoms_of_sample[strain.samples.values[:, 0]]
    for k, i in enumerate(centers):
        dense_strain[i][:, :, columns] += strain.values[k]
    return values, dense, dense_strain


def structures():
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    si.rattle(0.1, seed=1)
    mixed = bulk("Si", "diamond", a=5.43, cubic=True)
    mixed.rattle(0.15, seed=2)
    mixed.set_chemical_symbols(["Si", "C", "O", "Si", "C", "Si", "Si", "O"])
    skew = mixed.copy()
    cell = skew.cell.array.copy()
    cell[1, 0], cell[2, 1] = 0.8, -0.6
    skew.set_cell(cell, scale_atoms=True)
    small = Atoms("SiC", positions=[[0, 0, 0], [1.2, 0.9, 0.4]], cell=np.eye(3) * 2.9, pbc=True)
    cluster = molecule("CH3CH2OH")
    cluster.set_chemical_symbols(["C", "C", "O", "Si", "Si", "Si", "Si", "Si", "Si"])
    cluster.rattle(0.05, seed=3)
    return {"Si": si, "mixed": mixed, "skew": skew, "small cell": small, "cluster": cluster}


SPECIES = ["O", "Si", "C"]


@pytest.mark.parametrize("hypers", HYPERS)
@pytest.mark.parametrize("name", list(structures()))
def test_values_match_featomic(hypers, name):
    featomic = oracle("featomic")
    atoms = structures()[name]
    soap = mlpot.SOAP(species=SPECIES, **hypers)
    expected = featomic_dense(featomic, soap, atoms)
    got = soap.compute(atoms)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("hypers", HYPERS[:3])
@pytest.mark.parametrize("name", ["mixed", "skew", "small cell", "cluster"])
def test_gradients_match_featomic(hypers, name):
    featomic = oracle("featomic")
    atoms = structures()[name]
    soap = mlpot.SOAP(species=SPECIES, **hypers)
    values, dense, dense_strain = featomic_dense(featomic, soap, atoms, gradients=True)
    p, g = soap.compute(atoms, gradients=True)
    np.testing.assert_allclose(p, values, rtol=0, atol=1e-10 * np.abs(values).max())
    ours = np.zeros_like(dense)
    ours[g.centers, g.neighbors] = g.values
    # the splined derivative of the radial integral is good to 1e-10 (values to 1e-11)
    np.testing.assert_allclose(ours, dense, rtol=0, atol=1e-9 * np.abs(dense).max())
    # featomic's strain gradient is dP/d(eps_ab) = sum_j (r_ij)_a (dP/dr_ij)_b = -W[b, a]
    expected_virial = -np.stack([dense_strain[:, b, a] for a, b in VOIGT], axis=1)
    np.testing.assert_allclose(g.virial, expected_virial, rtol=0,
                               atol=1e-9 * np.abs(expected_virial).max())


def test_values_match_featomic_default_splines():
    """featomic's default splined radial integral (accuracy 1e-8) agrees to its accuracy."""
    featomic = oracle("featomic")
    atoms = structures()["mixed"]
    soap = mlpot.SOAP(species=SPECIES, **HYPERS[3])
    expected = featomic_dense(featomic, soap, atoms, spline_accuracy=1e-8)
    np.testing.assert_allclose(soap.compute(atoms), expected, rtol=0, atol=1e-7)


def test_large_basis_matches_featomic_to_1e8():
    """n_max 12: the GTO overlap matrix has condition number ~1e8, so both codes carry
    rounding noise near 1e-9 from the orthonormalisation; they still agree to 1e-8."""
    featomic = oracle("featomic")
    atoms = structures()["mixed"]
    soap = mlpot.SOAP(cutoff=6.0, n_max=12, l_max=12, atom_sigma=0.3,
                      cutoff_transition_width=0.5, species=SPECIES)
    values, dense, _ = featomic_dense(featomic, soap, atoms, gradients=True)
    p, g = soap.compute(atoms, gradients=True)
    np.testing.assert_allclose(p, values, rtol=0, atol=1e-8)
    ours = np.zeros_like(dense)
    ours[g.centers, g.neighbors] = g.values
    np.testing.assert_allclose(ours, dense, rtol=0, atol=1e-8)
