"""mlpot.ZBL without LAMMPS: the published formula, finite differences of the energy, the
switching region, invariances, serialisation and bad input."""

import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

import mlpot
from mlpot.baselines import ZBL, baseline_from_dict


class EnergyOnly(Calculator):
    """Exposes only ZBL's energy to ASE, so that ASE's finite differences are independent of
    mlpot's forces and stress."""

    implemented_properties = ["energy", "free_energy"]

    def __init__(self, zbl):
        super().__init__()
        self.zbl = zbl

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy = self.zbl.predict(self.atoms)["energy"]
        self.results = {"energy": energy, "free_energy": energy}


def reference_pair_energy(zi, zj, r, inner, outer):
    """ZBL pair energy written from the formula of Ziegler, Biersack and Littmark and the
    lj/gromacs switching function of the LAMMPS documentation: E(r) = sum_k q c_k g_k(r) with
    g_k = exp(-b_k r) / r, g_k' = -g_k (b_k + 1/r), g_k'' = g_k ((b_k + 1/r)^2 + 1/r^2)."""
    c = np.array([0.18175, 0.50986, 0.28022, 0.02817])
    b = np.array([3.19980, 0.94229, 0.40290, 0.20162]) * (zi**0.23 + zj**0.23) / 0.46850
    q = 14.399645 * zi * zj

    def g(x):
        return np.exp(-b * x) / x

    e = q * np.sum(c * g(outer))
    de = -q * np.sum(c * g(outer) * (b + 1 / outer))
    d2e = q * np.sum(c * g(outer) * ((b + 1 / outer) ** 2 + 1 / outer**2))
    tc = outer - inner
    sa = (-3 * de + tc * d2e) / tc**2
    sb = (2 * de - tc * d2e) / tc**3
    sc = -e + tc / 2 * de - tc**2 / 12 * d2e
    if r >= outer:
        return 0.0
    t = max(r - inner, 0.0)
    return q * np.sum(c * g(r)) + sc + sa / 3 * t**3 + sb / 4 * t**4


def dimer(symbols, r, direction=(1.0, 0.0, 0.0)):
    u = np.asarray(direction) / np.linalg.norm(direction)
    return Atoms(symbols, positions=[[0.0, 0.0, 0.0], r * u])


def rattled_bulk(seed=0, symbols=("Ta", "H", "O")):
    rng = np.random.default_rng(seed)
    atoms = bulk("Ta", "bcc", a=3.3, cubic=True) * (2, 2, 2)
    cell = atoms.cell.array.copy()
    cell[1, 0], cell[2, 1] = 0.4, -0.3
    atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(0.0, 0.3, atoms.positions.shape)
    atoms.set_chemical_symbols(rng.choice(list(symbols), len(atoms)))
    return atoms


@pytest.mark.parametrize("pair", [("Ta", "Ta"), ("H", "H"), ("Ta", "H"), ("W", "O"), ("U", "Li")])
def test_dimer_energy_is_the_published_formula(pair):
    zbl = ZBL(2.0, 3.5)
    zi, zj = (Atoms(s).numbers[0] for s in pair)
    for r in [0.1, 0.5, 1.0, 1.99, 2.0, 2.01, 2.7, 3.49, 3.5, 4.0]:
        expected = reference_pair_energy(zi, zj, r, 2.0, 3.5)
        out = zbl.predict(dimer(pair[0] + pair[1], r))
        assert out["energy"] == pytest.approx(expected, rel=1e-12, abs=1e-14)
        assert out["energies"][0] == out["energies"][1] == pytest.approx(out["energy"] / 2, rel=1e-15)


def test_forces_are_minus_the_energy_gradient():
    atoms = rattled_bulk()
    zbl = ZBL(2.5, 3.8)
    forces = zbl.predict(atoms)["forces"]
    atoms.calc = EnergyOnly(zbl)
    numerical = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(forces, numerical, rtol=1e-6, atol=1e-6 * np.abs(forces).max())
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10 * np.abs(forces).max())


def test_stress_is_the_strain_derivative_of_the_energy():
    atoms = rattled_bulk(seed=1)
    zbl = ZBL(2.5, 3.8)
    stress = zbl.predict(atoms)["stress"]
    atoms.calc = EnergyOnly(zbl)
    numerical = calculate_numerical_stress(atoms, eps=1e-6, voigt=True)
    np.testing.assert_allclose(stress, numerical, rtol=1e-6, atol=1e-6 * np.abs(stress).max())
    # compressed ZBL pushes outwards: negative stress (ASE's sign), positive pressure
    assert stress[:3].sum() < 0


def test_switching_region_is_smooth_and_ends_at_outer():
    """Energy, force and curvature are continuous at `inner` and reach zero at `outer`."""
    inner, outer = 1.0, 2.0
    zbl = ZBL(inner, outer)

    def energy_force(r):
        out = zbl.predict(dimer("TaH", r))
        return out["energy"], out["forces"][1, 0]  # force on the second atom = -dE/dr

    def one_sided_slope(f, r0, k):
        """Second-order one-sided derivative of f at r0 from r0 + k, r0 + 2k (k may be < 0)."""
        return (-3 * f(r0) + 4 * f(r0 + k) - f(r0 + 2 * k)) / (2 * k)

    energy = lambda r: energy_force(r)[0]  # noqa: E731
    force = lambda r: energy_force(r)[1]  # noqa: E731
    k = 1e-4
    for r0 in (inner, outer - 1e-9):
        # E continuous with slope -F from both sides, F continuous with the same slope
        # (the curvature) from both sides; a jump of E, F or E'' would break these.
        for side in (k, -k):
            assert one_sided_slope(energy, r0, side) == pytest.approx(-force(r0), rel=1e-6, abs=1e-6)
        assert one_sided_slope(force, r0, k) == pytest.approx(
            one_sided_slope(force, r0, -k), rel=1e-5, abs=1e-5
        )
    # at and beyond outer nothing interacts; just inside, E ~ t^3 and F ~ t^2 (t = outer - r)
    assert energy_force(outer) == (0.0, 0.0)
    assert energy_force(outer + 0.5) == (0.0, 0.0)
    e1, f1 = energy_force(outer - 1e-2)
    e2, f2 = energy_force(outer - 2e-2)
    assert e2 / e1 == pytest.approx(8.0, rel=0.05)
    assert f2 / f1 == pytest.approx(4.0, rel=0.05)
    # the curvature just inside the switching region is much larger than near outer
    assert abs(one_sided_slope(force, inner, k)) > 1e3 * abs(one_sided_slope(force, outer - 1e-9, -k))


def test_invariances():
    atoms = rattled_bulk(seed=2)
    zbl = ZBL(2.5, 3.8)
    ref = zbl.predict(atoms)
    # translation and wrapping
    moved = atoms.copy()
    moved.positions += [0.37, -1.2, 5.1]
    moved.wrap()
    out = zbl.predict(moved)
    assert out["energy"] == pytest.approx(ref["energy"], rel=1e-12)
    np.testing.assert_allclose(out["forces"], ref["forces"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out["stress"], ref["stress"], rtol=1e-10, atol=1e-12)
    # rotation: energy invariant, forces rotate
    rotated = atoms.copy()
    rotated.rotate(37.0, (1.0, 2.0, -0.5), rotate_cell=True)
    out = zbl.predict(rotated)
    rotation = np.linalg.solve(atoms.cell.array, rotated.cell.array)
    assert out["energy"] == pytest.approx(ref["energy"], rel=1e-12)
    np.testing.assert_allclose(out["forces"], ref["forces"] @ rotation, atol=1e-9 * np.abs(ref["forces"]).max())
    # permutation of atoms
    order = np.random.default_rng(0).permutation(len(atoms))
    out = zbl.predict(atoms[order])
    np.testing.assert_allclose(out["energies"], ref["energies"][order], rtol=1e-12)
    np.testing.assert_allclose(out["forces"], ref["forces"][order], rtol=1e-12, atol=1e-12)
    # a supercell: extensive energy, same stress and per-atom values
    out = zbl.predict(atoms * (2, 1, 2))
    assert out["energy"] == pytest.approx(4 * ref["energy"], rel=1e-12)
    np.testing.assert_allclose(out["stress"], ref["stress"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["forces"][: len(atoms)], ref["forces"], rtol=1e-10, atol=1e-10)


def test_results_do_not_depend_on_the_thread_count():
    atoms = rattled_bulk(seed=3) * (3, 3, 3)
    zbl = ZBL(2.5, 3.8)
    try:
        results = []
        for n in (1, 2, 3):
            mlpot.set_num_threads(n)
            results.append(zbl.predict(atoms))
    finally:
        mlpot.set_num_threads(0)  # back to the default pool
    for out in results[1:]:
        for key in ("energy", "energies", "forces", "stress"):
            assert np.array_equal(out[key], results[0][key]), key


def test_isolated_far_apart_and_empty_structures():
    zbl = ZBL(1.0, 2.0)
    out = zbl.predict(dimer("CuCu", 2.5))
    assert out["energy"] == 0.0 and not out["forces"].any()
    out = zbl.predict(Atoms())
    assert out["energy"] == 0.0 and out["forces"].shape == (0, 3) and out["energies"].shape == (0,)
    out = zbl.predict(Atoms(cell=np.eye(3) * 3, pbc=True))
    np.testing.assert_array_equal(out["stress"], np.zeros(6))


def test_stress_only_for_3d_periodic_cells():
    atoms = rattled_bulk()
    assert "stress" in ZBL(2.5, 3.8).predict(atoms)
    atoms.pbc = (True, True, False)
    assert "stress" not in ZBL(2.5, 3.8).predict(atoms)


@pytest.mark.parametrize(
    "inner, outer, error, match",
    [
        (0.0, 1.0, ValueError, "inner"),
        (-1.0, 1.0, ValueError, "inner"),
        (2.0, 2.0, ValueError, "outer"),
        (2.0, 1.5, ValueError, "outer"),
        (float("nan"), 2.0, ValueError, "inner.*NaN"),
        (1.0, float("nan"), ValueError, "outer.*NaN"),
        (1.0, float("inf"), ValueError, "outer"),
        ("1.0", 2.0, TypeError, "inner"),
        (1.0, None, TypeError, "outer"),
        (True, 2.0, TypeError, "inner"),
    ],
)
def test_bad_cutoffs(inner, outer, error, match):
    with pytest.raises(error, match=match):
        ZBL(inner, outer)


def test_bad_structures():
    zbl = ZBL(1.0, 2.0)
    with pytest.raises(ValueError, match="same position"):
        zbl.predict(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="not finite"):
        zbl.predict(Atoms("Cu2", positions=[[0, 0, 0], [0, np.nan, 0]]))
    with pytest.raises(ValueError, match="volume"):
        zbl.predict(Atoms("Cu", cell=np.zeros((3, 3)), pbc=True))
    with pytest.raises(TypeError, match="ase.Atoms"):
        zbl.predict(np.zeros((2, 3)))


@pytest.mark.parametrize("inner, outer", [(4.0, 4.8), (0.1 + 0.2, 1 / 3 + 1), (1e-3, 2.0000000000000004)])
def test_dict_round_trip_is_exact(inner, outer):
    zbl = ZBL(inner, outer)
    d = json.loads(json.dumps(zbl.to_dict()))
    assert d["kind"] == "zbl"
    again = ZBL.from_dict(d)
    assert again == zbl and again.inner == inner and again.outer == outer
    assert baseline_from_dict(d) == zbl
    assert repr(zbl) == f"ZBL(inner={inner!r}, outer={outer!r})"
    assert eval(repr(zbl), {"ZBL": ZBL}) == zbl
    assert zbl.cutoff == outer and mlpot.ZBL is ZBL


def test_bad_dicts():
    with pytest.raises(ValueError, match="kind"):
        ZBL.from_dict({"kind": "lj", "inner": 1.0, "outer": 2.0})
    with pytest.raises(ValueError, match="keys"):
        ZBL.from_dict({"kind": "zbl", "inner": 1.0})
    with pytest.raises(ValueError, match="unknown baseline kind"):
        baseline_from_dict({"kind": "morse"})
    with pytest.raises(TypeError, match="dict"):
        baseline_from_dict([("kind", "zbl")])
    with pytest.raises(ValueError, match="outer"):
        ZBL.from_dict({"kind": "zbl", "inner": 2.0, "outer": 1.0})
    assert math.isclose(ZBL.from_dict({"kind": "zbl", "inner": 1, "outer": 2}).outer, 2.0)
