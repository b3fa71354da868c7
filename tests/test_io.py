"""mlpot.io.read on small files the tests write in each format, labelled by ASE's EMT.

The reference values come from EMT; the writers below put them in each format's own units,
signs and orders (mlearn/VASP: kbar, positive under compression, xx yy zz xy yz zx;
FitSNAP: 3x3 in bar, positive under compression), independently of the reader. That the
formats really use these conventions is proven on the real data in test_io_data.py.
"""

import json
import warnings

import ase.io
import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT

from mlpot import io as mio
from mlpot.io import DataFileError, read, strain_pairs

VASP_ORDER = [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]
LAMMPS_ORDER = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]


def emt_frames(n=4, seed=0, shear=True):
    """Rattled, strained Cu cells labelled by EMT (energies eV, stress eV/A^3 ASE)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
        strain = rng.normal(scale=0.02, size=(3, 3))
        if not shear:
            strain = np.diag(np.diag(strain))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        frames.append(atoms)
    return frames


def emt_values(atoms):
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)


def mlearn_record(atoms, group="Elastic", order=VASP_ORDER, xyz=True, **extra):
    energy, forces, stress = emt_values(atoms)
    kbar = -stress / (0.1 * units.GPa)  # VASP: kbar, positive under compression
    sites = []
    for symbol, position, frac in zip(
        atoms.get_chemical_symbols(), atoms.positions, atoms.get_scaled_positions(wrap=False)
    ):
        site = {"species": [{"element": symbol, "occu": 1}], "abc": frac.tolist(), "label": symbol}
        if xyz:
            site["xyz"] = position.tolist()
        sites.append(site)
    return {
        "structure": {
            "@module": "pymatgen.core.structure",
            "@class": "Structure",
            "charge": 0,
            "lattice": {"matrix": atoms.cell.array.tolist()},
            "sites": sites,
        },
        "num_atoms": len(atoms),
        "group": group,
        "outputs": {
            "energy": energy,
            "forces": forces.tolist(),
            "virial_stress": [kbar[i, j] for i, j in order],
        },
        **extra,
    }


def fitsnap_file(path, atoms, stress_style="bar"):
    energy, forces, stress = emt_values(atoms)
    per_unit = {"bar": units.bar, "kB": 1000 * units.bar, "GPa": units.GPa}[stress_style]
    data = {
        "Stress": (-stress / per_unit).tolist(),
        "Positions": atoms.positions.tolist(),
        "Energy": energy,
        "AtomTypes": atoms.get_chemical_symbols(),
        "Lattice": atoms.cell.array.tolist(),
        "NumAtoms": len(atoms),
        "Forces": forces.tolist(),
    }
    document = {
        "Dataset": {
            "Data": [data],
            "PositionsStyle": "angstrom",
            "AtomTypeStyle": "chemicalsymbol",
            "Label": "test",
            "StressStyle": stress_style,
            "LatticeStyle": "angstrom",
            "EnergyStyle": "electronvolt",
            "ForcesStyle": "electronvoltperangstrom",
        }
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# A test JSON file for QM data\n" + json.dumps(document))


def assert_matches_emt(frame, atoms, atol=1e-12):
    """(extxyz stores positions and forces with 8 decimals: atol=1e-8 there.)"""
    energy, forces, stress = emt_values(atoms)
    np.testing.assert_allclose(frame.positions, atoms.positions, rtol=0, atol=atol)
    np.testing.assert_allclose(frame.cell.array, atoms.cell.array, rtol=0, atol=atol)
    assert frame.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert frame.get_potential_energy() == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(frame.get_forces(), forces, rtol=0, atol=max(atol, 1e-10))
    np.testing.assert_allclose(frame.get_stress(voigt=False), stress, atol=1e-12)


# ---------------------------------------------------------------------------------------
# mlearn / maml


def test_mlearn_values_and_groups(tmp_path):
    frames = emt_frames(3)
    records = [
        mlearn_record(frames[0], "Elastic"),
        mlearn_record(frames[1], "Surface"),
        mlearn_record(frames[2], "Elastic", xyz=False),
    ]  # fractional coordinates only
    path = tmp_path / "training.json"
    path.write_text(json.dumps(records))
    read_back = read(path)
    assert [f.info["group"] for f in read_back] == ["Elastic", "Surface", "Elastic"]
    assert read_back[1].info["source"] == f"{path}#1"
    for frame, atoms in zip(read_back, frames):
        assert_matches_emt(frame, atoms)


def test_maml_file_is_one_group(tmp_path):
    # maml records carry "group_id"; their "group" names the chemistry, the file the group
    atoms = emt_frames(1)[0]
    path = tmp_path / "Cu_Elastic.json"
    path.write_text(json.dumps([mlearn_record(atoms, "Cu", group_id=3)]))
    assert read(path)[0].info["group"] == "Cu_Elastic"
    assert read(path, group="mine")[0].info["group"] == "mine"
    assert read(path, group=lambda p: p.stem.upper())[0].info["group"] == "CU_ELASTIC"


def test_mlearn_stress_key_and_missing_stress(tmp_path):
    atoms = emt_frames(1)[0]
    with_stress = mlearn_record(atoms)
    with_stress["outputs"]["stress"] = with_stress["outputs"].pop("virial_stress")
    without = mlearn_record(atoms)
    without["outputs"]["virial_stress"] = []
    path = tmp_path / "d.json"
    path.write_text(json.dumps([with_stress, without]))
    first, second = read(path)
    assert_matches_emt(first, atoms)
    assert "stress" not in second.calc.results
    assert second.get_potential_energy() == pytest.approx(atoms.get_potential_energy())


def test_voigt_order_detected_from_strained_copies(tmp_path):
    # strained copies written in LAMMPS's order (yz and xz swapped): the reader finds it
    frames = emt_frames(1)
    base = frames[0]
    copies = []
    for eps in [-0.02, -0.01, 0.0, 0.01, 0.02]:
        for mode in range(3):
            atoms = base.copy()
            F = np.eye(3)
            F[[(1, 2), (0, 2), (0, 1)][mode]] += eps + 0.005 * (mode + 1)
            atoms.set_cell(base.cell.array @ F.T, scale_atoms=True)
            atoms.calc = EMT()
            copies.append(atoms)
    lammps = tmp_path / "lammps.json"
    lammps.write_text(json.dumps([mlearn_record(a, order=LAMMPS_ORDER) for a in copies]))
    with pytest.warns(UserWarning, match="lammps"):
        detected = read(lammps)
    for frame, atoms in zip(detected, copies):
        assert_matches_emt(frame, atoms)
    forced = read(lammps, stress_order="vasp")  # no check when the order is given
    assert not np.allclose(forced[0].get_stress(), copies[0].get_stress())
    vasp = tmp_path / "vasp.json"
    vasp.write_text(json.dumps([mlearn_record(a) for a in copies]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for frame, atoms in zip(read(vasp), copies):
            assert_matches_emt(frame, atoms)
    explicit = read(lammps, stress_order=("xx", "yy", "zz", "xy", "xz", "yz"))
    assert_matches_emt(explicit[0], copies[0])


def test_stress_order_validation(tmp_path):
    with pytest.raises(ValueError, match="stress_order"):
        read(tmp_path, stress_order="voigt")
    with pytest.raises(ValueError, match="stress_order"):
        read(tmp_path, stress_order=("xx", "yy", "zz", "xy", "xy", "yz"))


# ---------------------------------------------------------------------------------------
# FitSNAP


@pytest.mark.parametrize("style", ["bar", "kB", "GPa"])
def test_fitsnap_values_units_and_folder_group(tmp_path, style):
    frames = emt_frames(2)
    fitsnap_file(tmp_path / "JSON" / "Volume_FCC" / "a.json", frames[0], style)
    fitsnap_file(tmp_path / "JSON" / "Displaced" / "b.json", frames[1], style)
    read_back = read(tmp_path / "JSON")
    assert [f.info["group"] for f in read_back] == ["Displaced", "Volume_FCC"]
    assert_matches_emt(read_back[0], frames[1])
    assert_matches_emt(read_back[1], frames[0])


# ---------------------------------------------------------------------------------------
# ase.io formats


def fd_stress(atoms, h=1e-5):
    """Stress by central differences of EMT's energy under symmetric strains (ASE's
    definition sigma = (1/V) dE/d(strain))."""
    volume = atoms.get_volume()
    sigma = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            energies = []
            for sign in (1, -1):
                strained = atoms.copy()
                eps = np.zeros((3, 3))
                eps[i, j] += sign * h / 2
                eps[j, i] += sign * h / 2
                strained.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
                strained.calc = EMT()
                energies.append(strained.get_potential_energy())
            sigma[i, j] = (energies[0] - energies[1]) / (2 * h * volume)
    return sigma


def test_extxyz_round_trip_matches_emt_and_finite_differences(tmp_path):
    frames = emt_frames(3)
    for k, atoms in enumerate(frames):
        atoms.info["group"] = f"g{k % 2}"
        emt_values(atoms)  # ase writes the results a calculator holds
    path = tmp_path / "data.extxyz"
    ase.io.write(path, frames, format="extxyz")
    read_back = read(path)
    assert [f.info["group"] for f in read_back] == ["g0", "g1", "g0"]
    for frame, atoms in zip(read_back, frames):
        assert_matches_emt(frame, atoms, atol=1e-8)
        # EMT's analytic stress and the file's agree with a finite-difference strain
        np.testing.assert_allclose(frame.get_stress(voigt=False), fd_stress(atoms), atol=2e-7)


def test_xyz_virial_and_default_group(tmp_path):
    # GAP/QUIP files carry a virial (eV) = -stress * volume instead of a stress
    atoms = emt_frames(1)[0]
    energy, forces, stress = emt_values(atoms)
    plain = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    plain.info["energy"] = energy
    plain.info["virial"] = -stress * atoms.get_volume()
    plain.arrays["forces"] = forces
    path = tmp_path / "gap_style.xyz"
    ase.io.write(path, plain, format="extxyz")
    (frame,) = read(path)
    assert frame.info["group"] == "gap_style"
    assert_matches_emt(frame, atoms, atol=1e-8)


# ---------------------------------------------------------------------------------------
# Paths


def test_directories_globs_and_lists(tmp_path):
    frames = emt_frames(3)
    for atoms in frames:
        emt_values(atoms)
    (tmp_path / "a" / "deep").mkdir(parents=True)
    ase.io.write(tmp_path / "a" / "x.xyz", frames[0], format="extxyz")
    ase.io.write(tmp_path / "a" / "deep" / "y.extxyz", frames[1], format="extxyz")
    (tmp_path / "a" / "notes.txt").write_text("not data")
    (tmp_path / "b.json").write_text(json.dumps([mlearn_record(frames[2])]))
    assert len(read(tmp_path / "a")) == 2
    assert len(read(str(tmp_path / "**" / "*.*xyz"))) == 2
    both = read([tmp_path / "a", str(tmp_path / "b.json")])
    assert len(both) == 3
    assert_matches_emt(both[2], frames[2])
    with pytest.raises(FileNotFoundError, match="nothing"):
        read(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        read(str(tmp_path / "*.cfg"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="no data files"):
        read(tmp_path / "empty")
    with pytest.raises(ValueError):
        read([])


# ---------------------------------------------------------------------------------------
# Bad files: the error names the file and the problem


def write_records(tmp_path, edit):
    record = mlearn_record(emt_frames(1)[0])
    edit(record)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record]).replace('"NaN"', "NaN"))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["outputs"].pop("energy"), "missing field 'energy'"),
        (lambda r: r.pop("structure"), "missing field 'structure'"),
        (
            lambda r: r["outputs"].update(forces=r["outputs"]["forces"][:-1]),
            r"forces has shape \(7, 3\), expected \(8, 3\)",
        ),
        (lambda r: r["outputs"]["forces"][2].__setitem__(1, "NaN"), "forces contains NaN"),
        (lambda r: r["outputs"].update(energy="NaN"), "energy is nan"),
        (lambda r: r["outputs"].update(energy="-3.2"), "energy must be a number"),
        (lambda r: r["outputs"].update(virial_stress=[1.0, 2.0]), r"stress has shape \(2,\)"),
        (
            lambda r: r["structure"]["sites"][0]["species"][0].update(element="Xx"),
            "unknown element 'Xx'",
        ),
        (
            lambda r: r["structure"]["sites"][0]["species"].append({"element": "Ni", "occu": 0.5}),
            "partial occupancy",
        ),
        (lambda r: r.update(num_atoms=9), "num_atoms is 9"),
        (
            lambda r: r["structure"]["lattice"].update(matrix=[[0, 0, 0], [0, 1, 0], [0, 0, 1]]),
            "zero volume",
        ),
    ],
)
def test_bad_mlearn_records(tmp_path, edit, message):
    path = write_records(tmp_path, edit)
    with pytest.raises(DataFileError, match=message) as error:
        read(path)
    assert f"{path} (record 0)" in str(error.value) or str(path) in str(error.value)


def test_bad_json_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"structure": ')
    with pytest.raises(DataFileError, match=r"broken.json: not valid JSON"):
        read(broken)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(DataFileError, match="other.json: unrecognised JSON layout"):
        read(other)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["Dataset"].update(StressStyle="atm"), "StressStyle 'atm'"),
        (lambda d: d["Dataset"].update(EnergyStyle="kcal/mol"), "EnergyStyle 'kcal/mol'"),
        (lambda d: d["Dataset"]["Data"][0].update(NumAtoms=3), "NumAtoms is 3"),
        (lambda d: d["Dataset"]["Data"][0].pop("Forces"), "missing field 'Forces'"),
        (
            lambda d: d["Dataset"]["Data"][0].update(Stress=[[1, 2, 3]]),
            r"Stress has shape \(1, 3\)",
        ),
        (lambda d: d["Dataset"]["Data"][0].update(Lattice="cubic"), "Lattice is not an array"),
    ],
)
def test_bad_fitsnap_files(tmp_path, edit, message):
    path = tmp_path / "G" / "c.json"
    fitsnap_file(path, emt_frames(1)[0])
    comment, body = path.read_text().split("\n", 1)
    document = json.loads(body)
    edit(document)
    path.write_text(comment + "\n" + json.dumps(document))
    with pytest.raises(DataFileError, match=message) as error:
        read(path)
    assert str(path) in str(error.value)


def test_bad_ase_files(tmp_path):
    no_energy = tmp_path / "no_energy.xyz"
    ase.io.write(no_energy, bulk("Cu"), format="extxyz")
    with pytest.raises(DataFileError, match="no_energy.xyz .frame 0.: no reference energy"):
        read(no_energy)
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("3\nnot a comment line\nCu 0 0\n")
    with pytest.raises(DataFileError, match="garbage.xyz: ase.io could not read it"):
        read(garbage)
    nan = emt_frames(1)[0]
    emt_values(nan)
    nan.calc.results["forces"][0, 0] = np.nan  # ase writes what the calculator holds
    path = tmp_path / "nan.xyz"
    ase.io.write(path, nan, format="extxyz")
    with pytest.raises(DataFileError, match="nan.xyz .frame 0.: forces contains NaN"):
        read(path)
    nan_position = emt_frames(1)[0]
    emt_values(nan_position)
    nan_position.positions[1, 2] = np.nan
    ase.io.write(tmp_path / "nan_position.xyz", nan_position, format="extxyz")
    with pytest.raises(DataFileError, match="nan_position.xyz#0: positions or cell contain NaN"):
        read(tmp_path / "nan_position.xyz")


# ---------------------------------------------------------------------------------------
# The finite-difference strain check itself, on exact EMT labels


def strained_emt_copies(step, n=6):
    """Copies of one rattled cell under growing homogeneous strain, with EMT's exact
    labels frozen on SinglePointCalculators."""
    from ase.calculators.singlepoint import SinglePointCalculator

    base = emt_frames(1, seed=3)[0]
    direction = np.array([[1, 0.5, 0.2], [0.5, -1, 0.8], [0.2, 0.8, 0.3]])
    copies = []
    for k in range(n):
        atoms = base.copy()
        atoms.set_cell(base.cell.array @ (np.eye(3) + step * k * direction).T, scale_atoms=True)
        atoms.calc = EMT()
        energy, forces, stress = emt_values(atoms)
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=energy,
            forces=forces,
            stress=stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]],
        )
        copies.append(atoms)
    return copies


def relabelled(frames, transform):
    """Copies of frames whose stress is transform(stress)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for a in frames:
        b = a.copy()
        b.calc = SinglePointCalculator(
            b,
            energy=a.get_potential_energy(),
            forces=a.get_forces(),
            stress=transform(a.get_stress()),
        )
        out.append(b)
    return out


def test_strain_pairs_on_emt_is_third_order_and_discriminates():
    coarse = strain_pairs(strained_emt_copies(0.004))
    fine = strain_pairs(strained_emt_copies(0.002))
    assert len(coarse.pairs) >= 3
    assert coarse.relative_residual < 5e-3
    # the trapezoid rule's error is third order in the strain step: halving it divides by ~8
    ratio = (
        np.abs(coarse.energy_difference - coarse.stress_work).max()
        / np.abs(fine.energy_difference - fine.stress_work).max()
    )
    assert 6 < ratio < 10
    copies = strained_emt_copies(0.004)
    assert strain_pairs(relabelled(copies, lambda s: -s)).relative_residual > 1.5
    assert strain_pairs(relabelled(copies, lambda s: s[[0, 1, 2, 5, 4, 3]])).relative_residual > 0.1
    assert strain_pairs(relabelled(copies, lambda s: s[[0, 1, 2, 4, 3, 5]])).relative_residual > 0.1


def test_module_exports():
    import mlpot

    assert mlpot.io is mio
    assert callable(mlpot.io.read) and callable(mlpot.errors)


def test_ase_db_json_and_comment_line_numbers(tmp_path):
    frames = emt_frames(2)
    for atoms in frames:
        emt_values(atoms)
    ase.io.write(tmp_path / "db.json", frames, format="json")
    for frame, atoms in zip(read(tmp_path / "db.json"), frames):
        assert_matches_emt(frame, atoms)
    broken = tmp_path / "G" / "broken.json"
    broken.parent.mkdir()
    broken.write_text("# comment\n# another\n{\n  oops\n}")
    with pytest.raises(DataFileError, match=r"broken.json: not valid JSON \(line 4"):
        read(broken)
