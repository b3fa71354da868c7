"""The ASE calculator: properties, molecular dynamics and optimization with a SNAP model."""

import numpy as np
import pytest
from ase import units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

import mlpot
from snap_helpers import PairBaseline, descriptor, known_model, structure


@pytest.fixture(scope="module")
def model():
    """A physical model: linear SNAP fitted to EMT Ni-Al (EMT stands in for DFT)."""
    rng = np.random.default_rng(30)
    frames = []
    for _ in range(12):
        atoms = structure(rng, reps=(2, 2, 1), rattle=0.08, strain=0.015)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress()
        )
        frames.append(atoms)
    return mlpot.SNAP(descriptor(4)).fit(frames, progress=False)


def test_calculator_properties_match_predict(model):
    atoms = structure(np.random.default_rng(31))
    atoms.calc = model.calculator()
    p = model.predict(atoms)
    assert atoms.get_potential_energy() == p["energy"]
    assert atoms.get_potential_energy(force_consistent=True) == p["free_energy"]
    np.testing.assert_array_equal(atoms.get_forces(), p["forces"])
    np.testing.assert_array_equal(atoms.get_stress(), p["stress"])
    np.testing.assert_array_equal(atoms.get_potential_energies(), p["energies"])
    atoms.pbc = False
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()
    assert np.isfinite(atoms.get_potential_energy())


@pytest.mark.filterwarnings("ignore:Use thermalize_momenta")  # ase >= 3.29 only
def test_nve_conserves_energy(model):
    atoms = structure(np.random.default_rng(32), reps=(2, 2, 2), rattle=0.02, strain=0.0)
    atoms.set_masses([58.7 if s == "Ni" else 27.0 for s in atoms.get_chemical_symbols()])
    atoms.calc = model.calculator()
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(33))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=5)
    dyn.run(200)
    kinetic = atoms.get_kinetic_energy()
    drift = max(energies) - min(energies)
    assert kinetic > 0.01 * len(atoms) * 0.5 * 3 * units.kB * 300  # it really moved
    assert drift < 2e-3 * len(atoms), f"total energy drifted by {drift} eV"


def test_langevin_runs_and_thermalizes(model):
    atoms = structure(np.random.default_rng(34), reps=(2, 2, 1), rattle=0.02, strain=0.0)
    atoms.calc = model.calculator()
    dyn = Langevin(atoms, 1.0 * units.fs, temperature_K=500, friction=0.05, fixcm=False, rng=np.random.default_rng(35))
    dyn.run(100)
    assert np.isfinite(atoms.get_potential_energy())
    assert atoms.get_temperature() > 50


def test_relaxation_converges_to_zero_force(model):
    atoms = structure(np.random.default_rng(36), reps=(2, 2, 1), rattle=0.1)
    atoms.calc = model.calculator()
    e0 = atoms.get_potential_energy()
    opt = BFGS(atoms, logfile=None)
    assert opt.run(fmax=1e-4, steps=300)
    assert np.abs(atoms.get_forces()).max() < 1e-4
    assert atoms.get_potential_energy() < e0


def test_results_are_cached_until_the_atoms_change():
    bs = descriptor(2)
    counting = PairBaseline()
    m = known_model(bs, False, seed=37, baseline=counting)
    atoms = structure(np.random.default_rng(38))
    atoms.calc = m.calculator()
    atoms.get_potential_energy()
    atoms.get_forces()
    atoms.get_stress()
    assert counting.calls == 1
    atoms.positions[0, 0] += 0.01
    atoms.get_forces()
    assert counting.calls == 2


def test_calculator_needs_a_model():
    from mlpot.calculator import MLPotCalculator

    with pytest.raises(TypeError):
        MLPotCalculator(object())
