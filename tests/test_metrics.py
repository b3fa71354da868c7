"""mlpot.errors against errors computed by hand with numpy, for ASE's EMT wrapped as a
model and reference data that differ from it by known perturbations."""

import json

import numpy as np
import pytest
from ase import units
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

import mlpot


class EMTModel:
    """ASE's EMT as an mlpot-style model: predict(atoms) -> dict."""

    def __init__(self, stress=True):
        self.stress = stress

    def predict(self, atoms):
        a = atoms.copy()
        a.calc = EMT()
        out = {
            "energy": a.get_potential_energy(),
            "forces": a.get_forces(),
            "energies": a.get_potential_energies(),
        }
        if self.stress and a.pbc.all():
            out["stress"] = a.get_stress()
        return out


def reference_frames(seed=0):
    """EMT labels plus known noise, in groups 'bulk' (periodic, stress) and 'cluster'
    (open boundaries, no stress); one bulk frame has no reference stress."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(5):
        atoms = bulk("Cu", "fcc", a=3.6 + 0.02 * k, cubic=True).repeat((1, 1, 1 + k % 2))
        atoms.rattle(0.05, seed=k)
        group = "bulk"
        if k == 3:
            atoms = molecule("CH4")  # not periodic: no stress compared even if given
            atoms.center(vacuum=3.0)
            atoms.pbc = False
            group = "cluster"
        atoms.calc = EMT()
        energy = atoms.get_potential_energy() + rng.normal(scale=0.05)
        forces = atoms.get_forces() + rng.normal(scale=0.1, size=(len(atoms), 3))
        stress = (atoms.get_stress() if atoms.pbc.all() else np.zeros(6)) + rng.normal(
            scale=1e-3, size=6
        )
        if k == 4:
            stress = None
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        atoms.info["group"] = group
        frames.append(atoms)
    return frames


def hand_errors(frames, model):
    """MAE/RMSE by explicit numpy over concatenated arrays."""
    e, f, s = [], [], []
    for a in frames:
        p = model.predict(a)
        e.append((p["energy"] - a.get_potential_energy()) / len(a))
        f.append((p["forces"] - a.get_forces()).ravel())
        if a.pbc.all() and "stress" in a.calc.results and "stress" in p:
            s.append(p["stress"] - a.get_stress())
    e, f = np.array(e), np.concatenate(f)
    s = np.concatenate(s) if s else np.zeros(0)

    def both(x):
        return (np.mean(np.abs(x)), np.sqrt(np.mean(x**2))) if x.size else (np.nan, np.nan)

    return both(e), both(f), both(s), len(e), f.size, s.size // 6


def check(result, frames, model):
    (e_mae, e_rmse), (f_mae, f_rmse), (s_mae, s_rmse), n, nf, ns = hand_errors(frames, model)
    assert result.n_frames == n
    assert result.n_atoms == sum(len(a) for a in frames)
    assert result.n_force_components == nf
    assert result.n_stress_frames == ns
    assert result.energy_mae == pytest.approx(e_mae, rel=1e-12)
    assert result.energy_rmse == pytest.approx(e_rmse, rel=1e-12)
    assert result.force_mae == pytest.approx(f_mae, rel=1e-12)
    assert result.force_rmse == pytest.approx(f_rmse, rel=1e-12)
    if ns:
        assert result.stress_mae == pytest.approx(s_mae, rel=1e-12)
        assert result.stress_rmse == pytest.approx(s_rmse, rel=1e-12)
    else:
        assert np.isnan(result.stress_mae) and np.isnan(result.stress_rmse)


def test_errors_overall_and_per_group_match_numpy():
    frames = reference_frames()
    model = EMTModel()
    report = mlpot.errors(model, frames)
    check(report.overall, frames, model)
    assert list(report.groups) == ["bulk", "cluster"]
    for name, result in report.groups.items():
        check(result, [a for a in frames if a.info["group"] == name], model)
    # the cluster has no stress compared; bulk frame 4 has no reference stress
    assert report.groups["cluster"].n_stress_frames == 0
    assert report.groups["bulk"].n_stress_frames == 3
    np.testing.assert_array_equal(report.parity.stress_frame, [0, 1, 2])
    assert report.parity.forces_reference.shape == (sum(len(a) for a in frames), 3)


def test_model_without_stress_and_frames_without_group():
    frames = reference_frames(seed=1)
    for a in frames:
        del a.info["group"]
    report = mlpot.errors(EMTModel(stress=False), frames)
    assert list(report.groups) == ["default"]
    assert report.overall.n_stress_frames == 0
    check(report.overall, frames, EMTModel(stress=False))
    assert "-" in str(report).splitlines()[-1]


def test_exact_model_has_zero_error():
    frames = []
    for k in range(3):
        atoms = bulk("Cu", cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **atoms.calc.results)
        frames.append(atoms)
    overall = mlpot.errors(EMTModel(), frames).overall
    assert (
        overall.energy_rmse < 1e-12 and overall.force_rmse < 1e-12 and overall.stress_rmse < 1e-12
    )


def test_table_and_dict():
    report = mlpot.errors(EMTModel(), reference_frames())
    text = str(report)
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1  # aligned
    assert lines[0].split() == [
        "group",
        "frames",
        "atoms",
        "E",
        "MAE",
        "E",
        "RMSE",
        "F",
        "MAE",
        "F",
        "RMSE",
        "S",
        "MAE",
        "S",
        "RMSE",
    ]
    assert "meV/atom" in lines[1] and "GPa" in lines[1]
    bulk_row = next(line for line in lines if line.startswith("bulk")).split()
    bulk_errors = report.groups["bulk"]
    assert float(bulk_row[3]) == pytest.approx(bulk_errors.energy_mae * 1e3, rel=1e-2)
    assert float(bulk_row[7]) == pytest.approx(bulk_errors.stress_mae / units.GPa, rel=1e-2)
    assert lines[-1].startswith("all")
    assert next(line for line in lines if line.startswith("cluster")).split()[-1] == "-"
    d = report.to_dict()
    assert d["groups"]["bulk"]["n_frames"] == 4
    assert d["overall"]["force_mae"] == report.overall.force_mae
    json.dumps(d)  # plain numbers


def test_bad_input():
    frames = reference_frames()
    with pytest.raises(ValueError, match="at least one frame"):
        mlpot.errors(EMTModel(), [])
    bare = bulk("Cu")
    with pytest.raises(ValueError, match="no reference values"):
        mlpot.errors(EMTModel(), [bare])
    with pytest.raises(TypeError, match="not ase.Atoms"):
        mlpot.errors(EMTModel(), ["Cu"])

    class WrongShape:
        def predict(self, atoms):
            return {"energy": 0.0, "forces": np.zeros((1, 3))}

    with pytest.raises(ValueError, match=r"frame 0: forces has shape \(1, 3\)"):
        mlpot.errors(WrongShape(), frames)

    class NoEnergy:
        def predict(self, atoms):
            return {"forces": np.zeros((len(atoms), 3))}

    with pytest.raises(ValueError, match="no 'energy'"):
        mlpot.errors(NoEnergy(), frames)


def test_errors_on_files_read_back(tmp_path):
    """The reader and the error table together: EMT frames written to extxyz and read back
    give EMT zero error (up to the file's 8 decimals)."""
    import ase.io

    frames = reference_frames()
    for a in frames:
        a.calc = EMT()
        a.get_stress() if a.pbc.all() else a.get_forces()
    ase.io.write(tmp_path / "d.extxyz", frames, format="extxyz")
    report = mlpot.errors(EMTModel(), mlpot.io.read(tmp_path / "d.extxyz"))
    assert report.overall.force_mae < 1e-6 and report.overall.energy_mae < 1e-6
    assert sorted(report.groups) == ["bulk", "cluster"]
