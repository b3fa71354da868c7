"""The EMT demonstration data set and the NVE energy-drift helper."""

import ase.atom
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from mlpot.demo_data import CU_LATTICE_CONSTANT_EMT, emt_dataset, nve_energy_drift

GROUPS = {"bulk_rattled", "strained", "vacancy", "surface", "md_300K", "md_900K"}


@pytest.fixture(scope="module")
def dataset():
    return emt_dataset(seed=0)


def test_groups_sizes_and_split(dataset):
    train, validation = dataset
    assert {a.info["group"] for a in train} == GROUPS
    assert {a.info["group"] for a in validation} == GROUPS
    # 8 frames per group by default, 2 of them (20 %, rounded) for validation
    assert len(train) == 6 * len(GROUPS) and len(validation) == 2 * len(GROUPS)
    # split by frames: no validation frame is also a training frame
    train_positions = {a.positions.tobytes() for a in train}
    assert not any(a.positions.tobytes() in train_positions for a in validation)
    assert all(a.pbc.all() for a in train + validation)
    sizes = {a.info["group"]: len(a) for a in train}
    assert sizes["bulk_rattled"] == 32 and sizes["vacancy"] == 31 and sizes["surface"] == 36


def test_labels_are_emt(dataset):
    for atoms in sum(dataset, []):
        stored = atoms.calc.results
        fresh = atoms.copy()
        fresh.calc = EMT()
        assert stored["energy"] == pytest.approx(fresh.get_potential_energy(), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(stored["forces"], fresh.get_forces(), rtol=1e-12, atol=1e-12)
        if atoms.info["group"] == "surface":
            assert "stress" not in stored
        else:
            np.testing.assert_allclose(stored["stress"], fresh.get_stress(), rtol=1e-12, atol=1e-14)


def test_frames_span_the_physics(dataset):
    train, validation = dataset
    frames = train + validation

    def of(group):
        return [a for a in frames if a.info["group"] == group]

    def per_atom(group):
        return np.mean([a.get_potential_energy() / len(a) for a in of(group)])

    assert per_atom("md_900K") > per_atom("md_300K")
    perfect = bulk("Cu", "fcc", a=CU_LATTICE_CONSTANT_EMT, cubic=True)
    perfect.calc = EMT()
    e0 = perfect.get_potential_energy() / len(perfect)
    for group in ("bulk_rattled", "vacancy", "surface", "md_300K"):
        assert per_atom(group) > e0 + 0.01, group
    assert abs(perfect.get_stress()).max() < 1e-7  # the lattice constant is EMT's equilibrium
    volumes = [a.get_volume() for a in of("strained")]
    assert max(volumes) / min(volumes) > 1.2
    # the most compressed cell pushes outwards: negative stress (ASE's sign)
    compressed = min(of("strained"), key=lambda a: a.get_volume())
    assert compressed.get_stress()[:3].sum() < 0
    assert any(abs(a.cell.array[0, 1]) > 1e-3 for a in of("strained"))  # sheared cells
    slab = of("surface")[0]
    assert np.ptp(slab.positions[:, 2]) < slab.cell[2, 2] - 10.0  # 2 x 6 Angstrom of vacuum


def test_deterministic_for_a_seed(dataset):
    again = emt_dataset(seed=0)
    other = emt_dataset(seed=1)
    for a, b in zip(sum(dataset, []), sum(again, []), strict=True):
        assert a.info["group"] == b.info["group"]
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell.array, b.cell.array)
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.array_equal(a.get_forces(), b.get_forces())
    assert not np.array_equal(dataset[0][0].positions, other[0][0].positions)


def test_no_python_loops_over_atoms(monkeypatch):
    """Iterating over an ase.Atoms creates one ase.Atom per atom; the data set never does."""

    def forbidden(self, *args, **kwargs):
        raise AssertionError("an ase.Atom was created: a Python loop over atoms")

    monkeypatch.setattr(ase.atom.Atom, "__init__", forbidden)
    train, validation = emt_dataset(seed=3, frames_per_group=2, temperatures_K=(500.0,))
    assert len(train) == len(validation) == 5


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(frames_per_group=1), ValueError),
        (dict(frames_per_group=2.5), TypeError),
        (dict(repeat=0), ValueError),
        (dict(validation_fraction=1.0), ValueError),
        (dict(seed=-1), ValueError),
        (dict(seed="0"), TypeError),
        (dict(temperatures_K=(-5.0,)), ValueError),
        (dict(timestep_fs=float("nan")), ValueError),
    ],
)
def test_bad_dataset_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs)).replace("temperatures_K", "temperature")):
        emt_dataset(**kwargs)


class Leaky(Calculator):
    """Zero forces but an energy that grows with the atoms' x coordinates: energy is not
    conserved, and with constant velocities it drifts at a known rate."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha  # eV/Angstrom per atom

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy = self.alpha * self.atoms.positions[:, 0].sum()
        self.results = {"energy": energy, "free_energy": energy, "forces": np.zeros((len(self.atoms), 3))}


def test_drift_of_a_known_leak():
    from ase import units

    atoms = Atoms("Cu3", positions=np.arange(9.0).reshape(3, 3) * 3.0)
    speed = 2e-3  # Angstrom/fs
    atoms.set_velocities(np.tile([speed / units.fs, 0.0, 0.0], (3, 1)))
    alpha = 3e-4
    drift = nve_energy_drift(atoms, Leaky(alpha), steps=50, timestep_fs=2.0)
    # d(E/N)/dt = alpha * speed eV/fs = alpha * speed * 1e6 meV/ps
    assert drift == pytest.approx(alpha * speed * 1e6, rel=1e-9)
    assert np.array_equal(atoms.positions, np.arange(9.0).reshape(3, 3) * 3.0)  # untouched


def test_emt_conserves_energy_until_the_timestep_is_too_large():
    atoms = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(2)
    small = nve_energy_drift(atoms, EMT(), steps=100, timestep_fs=2.0, temperature_K=600.0)
    large = nve_energy_drift(atoms, EMT(), steps=25, timestep_fs=20.0, temperature_K=600.0)
    assert abs(small) < 0.1 < abs(large)
    assert nve_energy_drift(atoms, EMT(), steps=10, timestep_fs=2.0, temperature_K=600.0, seed=1) == (
        nve_energy_drift(atoms, EMT(), steps=10, timestep_fs=2.0, temperature_K=600.0, seed=1)
    )


def test_bad_drift_arguments():
    atoms = bulk("Cu", "fcc", a=3.59, cubic=True)
    with pytest.raises(ValueError, match="steps"):
        nve_energy_drift(atoms, EMT(), steps=0, timestep_fs=1.0)
    with pytest.raises(ValueError, match="timestep_fs"):
        nve_energy_drift(atoms, EMT(), steps=5, timestep_fs=-1.0)
    with pytest.raises(ValueError, match="no atoms"):
        nve_energy_drift(Atoms(), EMT(), steps=5, timestep_fs=1.0)
