"""Reproduce the published FitSNAP tantalum fit (../shared/data/fitsnap_Ta) with mlpot's
pieces: mlpot.io.read, mlpot.Bispectrum (values, gradients, virial) and mlpot.ZBL, put
together as FitSNAP does (tests/fitsnap_reference.py; docs/fitsnap-conventions.md).

The published coefficients (Ta_pot.snapcoeff) and error table (Ta_metrics.md) were written
by FitSNAP with LAMMPS on 2021-05-26: they are the independent oracle. Skipped when the data
are absent, except in CI.
"""

import numpy as np
import pytest
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator
from fitsnap_reference import (
    GroupWeights,
    error_table,
    frame_rows,
    linear_system,
    read_input,
    read_metrics,
    read_snapcoeff,
    solve_svd,
)
from scipy.spatial.transform import Rotation

import mlpot
from mlpot.io import read

#: Below this force RMSE (eV/Angstrom) an error is floating-point noise: the Volume_* groups
#: are perfect crystals whose forces vanish by symmetry, so their force rows hold ~1e-15
#: residues that differ between LAMMPS and mlpot and cannot be compared digit by digit.
NOISE = 1e-10


@pytest.fixture(scope="module")
def ta(data):
    folder = data / "fitsnap_Ta"
    setup = read_input(folder / "Ta-example.in")
    frames = read(folder / "JSON")
    system = linear_system(frames, setup.bispectrum, setup.weights, setup.baseline)
    return folder, setup, frames, system


def test_input_is_the_published_setup(ta):
    _, setup, frames, system = ta
    bs = setup.bispectrum
    assert (bs.twojmax, bs.rcutfac, bs.rfac0, bs.rmin0) == (6, 4.67637, 0.99363, 0.0)
    assert bs.radelem == {"Ta": 0.5} and bs.wj == {"Ta": 1.0} and not bs.bzeroflag
    assert setup.baseline == mlpot.ZBL(4.0, 4.8)
    assert setup.weights["Liquid"] == GroupWeights(467.0, 1.0, 1e-8)
    assert setup.weights["Elastic_BCC"] == GroupWeights(1e-8, 1e-8, 1e-4)
    assert len(setup.weights) == 12 and len(frames) == 363
    assert system.a.shape == (363 + 12672 + 2178, 1 + bs.n_features)  # rows as Ta_metrics.md


def test_coefficients_equal_published(ta):
    folder, _, _, system = ta
    published = read_snapcoeff(folder / "Ta_pot.snapcoeff")
    coef = solve_svd(system)
    assert coef.shape == published.shape == (31,)
    # reached: 2e-12; the issue asks 1e-6
    np.testing.assert_allclose(coef, published, rtol=1e-9, atol=0)


def test_error_table_equals_published(ta):
    folder, _, _, system = ta
    published = read_metrics(folder / "Ta_metrics.md")
    ours = error_table(system, solve_svd(system))
    assert set(ours) == set(published) and len(published) == 78
    for key, (count, mae, rmse, rsq) in published.items():
        group, _, row_type = key
        assert ours[key][0] == count, key
        if published[group, "Unweighted", row_type][2] < NOISE:
            assert ours[group, "Unweighted", row_type][2] < NOISE, key
            continue
        # the table prints 6 significant figures
        np.testing.assert_allclose(ours[key][1:], (mae, rmse, rsq), rtol=1e-5, err_msg=str(key))


@pytest.mark.parametrize("convention", ["no ZBL reference", "sqrt weights", "stress in eV/A^3"])
def test_other_conventions_miss_the_published_fit(ta, convention):
    """The comparison can fail: each plausible alternative convention moves the
    coefficients far beyond the tolerance."""
    folder, setup, frames, system = ta
    if convention == "no ZBL reference":
        system = linear_system(frames, setup.bispectrum, setup.weights, baseline=None)
    elif convention == "sqrt weights":
        system = type(system)(system.a, system.b, np.sqrt(system.w), system.row_type, system.group)
    else:
        bar = np.where(system.row_type == "Stress", units.bar, 1.0)
        system = type(system)(
            system.a * bar[:, None], system.b * bar, system.w, system.row_type, system.group
        )
    published = read_snapcoeff(folder / "Ta_pot.snapcoeff")
    assert np.max(np.abs(solve_svd(system) - published) / np.abs(published)) > 1e-2


def test_rows_do_not_depend_on_the_input_orientation(ta):
    """FitSNAP rotates every cell into LAMMPS's orientation, stress tensor included: a
    rotated copy of a frame must give the same rows."""
    _, setup, frames, _ = ta
    atoms = next(a for a in frames if a.info["group"] == "Elastic_BCC")  # nonzero shear stress
    rot = Rotation.from_euler("zyx", [0.3, -1.1, 0.7]).as_matrix()
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell @ rot.T)
    rotated.positions = atoms.positions @ rot.T
    xx, yy, zz, yz, xz, xy = atoms.get_stress()
    sigma = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    rotated.calc = SinglePointCalculator(
        rotated,
        energy=atoms.get_potential_energy(),
        forces=atoms.get_forces() @ rot.T,
        stress=rot @ sigma @ rot.T,
    )
    a0, b0 = frame_rows(atoms, setup.bispectrum, setup.baseline)
    a1, b1 = frame_rows(rotated, setup.bispectrum, setup.baseline)
    assert np.abs(sigma[[1, 0, 0], [2, 2, 1]]).max() > 1e-4  # shear rows are tested
    np.testing.assert_allclose(a1, a0, rtol=0, atol=1e-9 * np.abs(a0).max())
    np.testing.assert_allclose(b1, b0, rtol=0, atol=1e-9 * np.abs(b0).max())


class _PublishedModel:
    """ZBL + linear SNAP with the published coefficients, predicted through mlpot's adjoint
    path (Bispectrum.forces), independent of the gradient rows the fit uses."""

    def __init__(self, bispectrum, baseline, coef):
        self.bispectrum, self.baseline = bispectrum, baseline
        self.beta0, self.beta = coef[0], coef[1:]

    def predict(self, atoms):
        out = self.baseline.predict(atoms)
        b, forces, virial = self.bispectrum.forces(atoms, self.beta, return_descriptors=True)
        return {
            "energy": out["energy"] + len(atoms) * self.beta0 + float((b @ self.beta).sum()),
            "forces": out["forces"] + forces,
            "stress": out["stress"] - virial / atoms.get_volume(),
        }


def test_published_coefficients_through_mlpot_errors(ta):
    """mlpot.errors on the published potential reproduces FitSNAP's unweighted MAE/RMSE
    (energy eV/atom, force eV/Angstrom, stress converted to bar)."""
    folder, setup, frames, _ = ta
    model = _PublishedModel(
        setup.bispectrum, setup.baseline, read_snapcoeff(folder / "Ta_pot.snapcoeff")
    )
    report = mlpot.errors(model, frames)
    published = read_metrics(folder / "Ta_metrics.md")
    for group, errors in [("*ALL", report.overall), *report.groups.items()]:
        for row_type, name, scale in [
            ("Energy", "energy", 1.0),
            ("Force", "force", 1.0),
            ("Stress", "stress", 1 / units.bar),
        ]:
            _, mae, rmse, _ = published[group, "Unweighted", row_type]
            ours = np.array([getattr(errors, f"{name}_mae"), getattr(errors, f"{name}_rmse")])
            if rmse < NOISE:
                assert ours[1] < NOISE
                continue
            # 6 printed figures; ASE's bar (CODATA 2014) differs from LAMMPS's nktv2p by 8e-8
            np.testing.assert_allclose(ours * scale, (mae, rmse), rtol=1e-5, err_msg=group)


def test_snap_fit_reproduces_the_published_fit(ta):
    """The user-facing path: mlpot.SNAP.fit with Ta-example.in's group weights and the ZBL
    baseline gives Ta_pot.snapcoeff to 1e-6 relative (reached: 3e-7, the gap between ASE's
    bar and LAMMPS's metal-units constant), and FitSNAP's error table to 3 figures."""
    folder, setup, frames, system = ta
    group_weights = {
        group: {"eweight": w.eweight, "fweight": w.fweight, "vweight": w.vweight}
        for group, w in setup.weights.items()
    }
    model = mlpot.SNAP(setup.bispectrum, baseline=setup.baseline)
    model.fit(frames, group_weights=group_weights, solver="svd", progress=False)
    published = read_snapcoeff(folder / "Ta_pot.snapcoeff")
    np.testing.assert_allclose(model.coefficients["Ta"], published, rtol=1e-6, atol=0)

    table = error_table(system, model.coefficients["Ta"])
    published_table = read_metrics(folder / "Ta_metrics.md")
    for key, (count, mae, rmse, rsq) in published_table.items():
        group, _, row_type = key
        assert table[key][0] == count, key
        if published_table[group, "Unweighted", row_type][2] < NOISE:
            continue
        np.testing.assert_allclose(table[key][1:], (mae, rmse, rsq), rtol=1e-3, err_msg=str(key))
