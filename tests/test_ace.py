"""mlpot.ACE without the oracle: the generator's rules, bad parameters and files, the
linear model over ACE (fit, model file, `mlpot fit` configuration). python-ace is the
oracle in test_ace_pyace.py; the derivatives and invariances are in the descriptor
contract."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

import mlpot
from mlpot.ace import coupling_coefficients, generate_functions, read_basis, write_yace


def cu_frames(n, seed=0):
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.rattle(0.1, seed=seed + k)
        atoms.calc = EMT()
        atoms.get_potential_energy()
        atoms.get_forces()
        out.append(atoms)
    return out


def test_the_generator_keeps_independent_invariant_functions():
    functions = generate_functions(["Si"], (4, 3, 2, 2), (0, 2, 2, 2))
    keys = [(tuple(f["ns"]), tuple(f["ls"]), tuple(f["lint"])) for f in functions]
    assert len(keys) == len(set(keys))
    for f in functions:
        assert sum(f["ls"]) % 2 == 0
        slots = list(zip(f["ns"], f["ls"]))
        assert [n for n, _ in slots] == sorted(n for n, _ in slots)
    # rank 3, one radial index, ls (1, 1, 2): one invariant (lint 2), the (1, 1) -> 0 coupling
    # of l = 2 with 0 cannot close; rank 4 with four copies of one l = 1 vector v: one
    # quartic invariant, (v . v)^2, though lint (0, 0) and (2, 2) both couple it
    assert ((1, 1, 1), (1, 1, 2), (2,)) in keys and ((1, 1, 1), (1, 1, 2), (1,)) not in keys
    four = {k[2] for k in keys if k[0] == (1, 1, 1, 1) and k[1] == (1, 1, 1, 1)}
    assert four == {(0, 0)}
    budget = generate_functions(["Si"], (4, 3, 2, 2), (0, 2, 2, 2), n_functions=20)
    assert len(budget) == 20 and all(f in functions for f in budget)


def test_coupling_coefficients_are_clebsch_gordan_products():
    # <1 m 1 -m | 0 0> = (-1)^(1-m) / sqrt(3)
    ms, c = coupling_coefficients((1, 1), ())
    for m, value in zip(ms, c):
        assert value == pytest.approx((-1) ** (1 - m[0]) / np.sqrt(3), abs=1e-15)
    # the rank-3 invariant of three l = 1 vanishes (odd); of (1, 1, 2): sum of squares is 1
    _, c = coupling_coefficients((1, 1, 2), (2,))
    assert np.sum(c**2) == pytest.approx(1.0, abs=1e-14)


def test_bad_parameters_are_clear_errors():
    with pytest.raises(ValueError, match="lmax_by_orders"):
        mlpot.ACE(species=["Si"], nradmax_by_orders=(4, 2), lmax_by_orders=(0,))
    with pytest.raises(ValueError, match="rank 1"):
        mlpot.ACE(species=["Si"], nradmax_by_orders=(4, 2), lmax_by_orders=(1, 2))
    with pytest.raises(ValueError, match="radbase"):
        mlpot.ACE(species=["Si"], radbase="Gaussian")
    with pytest.raises(ValueError, match="even"):
        mlpot.ACE(species=["Si"], functions=[{"center": "Si", "mus": ["Si", "Si"], "ns": [1, 1], "ls": [1, 2]}])
    with pytest.raises(ValueError, match="not in species"):
        mlpot.ACE(species=["Si"], functions=[{"center": "O", "mus": ["Si"], "ns": [1], "ls": [0]}])
    with pytest.raises(ValueError, match="unknown key"):
        mlpot.ACE(species=["Si"], functions=[{"center": "Si", "mus": ["Si"], "ns": [1], "ls": [0], "LS": []}])
    with pytest.raises(ValueError, match="crad"):
        mlpot.ACE(species=["Si"], nradmax_by_orders=(2, 1), lmax_by_orders=(0, 0),
                  bonds=[{"center": "Si", "neighbor": "Si", "crad": [[1.0]]}])
    with pytest.raises(ValueError, match="Al"):
        mlpot.ACE(species=["Si"], nradmax_by_orders=(2,), lmax_by_orders=(0,)).compute(bulk("Al"))


def test_a_linear_ace_fits_saves_and_loads(tmp_path):
    frames = cu_frames(16)
    ace = mlpot.ACE(cutoff=4.5, species=["Cu"], nradmax_by_orders=(6, 3, 2), lmax_by_orders=(0, 2, 2))
    model = mlpot.LinearModel(ace).fit(frames[:12], progress=False)
    held = mlpot.errors(model, frames[12:]).overall
    assert held.energy_mae < 1e-3 and held.force_mae < 0.02  # EMT copper, eV/atom and eV/A
    model.save(tmp_path / "ace.mlpot")
    again = mlpot.load(tmp_path / "ace.mlpot")
    assert again.descriptor.functions == ace.functions
    a, b = model.predict(frames[13]), again.predict(frames[13])
    assert a["energy"] == b["energy"] and np.array_equal(a["forces"], b["forces"])
    with pytest.raises(ValueError, match="quadratic"):
        write_yace(mlpot.LinearModel(ace, quadratic=True).fit(frames[:12], progress=False), tmp_path / "q.yace")


def test_mlpot_fit_takes_an_ace_configuration(tmp_path):
    from ase.io import write

    from mlpot.cli import main

    write(tmp_path / "train.extxyz", cu_frames(8))
    (tmp_path / "ace.toml").write_text("""
[data]
train = ["train.extxyz"]
[descriptor]
type = "ace"
cutoff = 4.5
species = ["Cu"]
nradmax_by_orders = [4, 2]
lmax_by_orders = [0, 2]
[model]
type = "linear"
[output]
model = "cu.mlpot"
""")
    main(["fit", str(tmp_path / "ace.toml")])
    model = mlpot.load(tmp_path / "cu.mlpot")
    assert model.descriptor.kind == "ace" and model.descriptor.n_features == len(model.descriptor.functions)


def test_bad_basis_files_are_named(tmp_path):
    path = tmp_path / "basis.yaml"
    path.write_text("global: {DeltaSplineBins: 0.001}\n")
    with pytest.raises(ValueError, match="species"):
        read_basis(path)
    path.write_text("""species:
  - speciesblock: Si
    ndensityi: 2
    npoti: FinnisSinclairShiftedScaled
    parameters: [1, 1, 1, 0.5]
""")
    with pytest.raises(ValueError, match="ndensityi"):
        read_basis(path)


def test_the_extrapolation_grade_flags_structures_unlike_the_training_set(tmp_path):
    """pacemaker's D-optimality: gamma <= 1 (to MaxVol's tolerance) on every training atom,
    well above 1 on a surface and a compressed cell; kept in the model file, given by the
    calculator; and the same machinery serves any linear model (SNAP here)."""
    from ase.build import fcc111

    frames = cu_frames(20)
    ace = mlpot.ACE(cutoff=4.5, species=["Cu"], nradmax_by_orders=(5, 2, 2), lmax_by_orders=(0, 2, 1))
    model = mlpot.LinearModel(ace).fit(frames, progress=False)
    with pytest.raises(ValueError, match="active set"):
        model.predict(frames[0], variance=True)
    assert not model.has_variance
    seen = model.select_active_set(frames, progress=False)
    assert seen == {"Cu": 20 * 32} and model.has_variance
    inside = max(model.predict(f, variance=True)["max_gamma"] for f in frames)
    assert inside <= 1.01 + 1e-9
    surface = fcc111("Cu", size=(2, 2, 4), vacuum=6.0, a=3.6)
    surface.pbc = True
    squeezed = bulk("Cu", "fcc", a=3.3, cubic=True).repeat(2)
    for atoms in (surface, squeezed):
        p = model.predict(atoms, variance=True)
        assert p["gamma"].shape == (len(atoms),) and p["max_gamma"] > 2.0
    model.save(tmp_path / "m.mlpot")
    again = mlpot.load(tmp_path / "m.mlpot")
    assert np.array_equal(again.predict(surface, variance=True)["gamma"], model.predict(surface, variance=True)["gamma"])
    surface.calc = again.calculator(variance=True)
    assert surface.calc.get_property("max_gamma", surface) == pytest.approx(model.predict(surface, variance=True)["max_gamma"])
    snap = mlpot.SNAP(mlpot.Bispectrum(4, 4.5, radelem={"Cu": 0.5})).fit(frames, progress=False)
    snap.select_active_set(frames, progress=False)
    assert snap.predict(squeezed, variance=True)["max_gamma"] > 1.0
    with pytest.raises(ValueError, match="at least"):
        mlpot.LinearModel(ace).fit(frames, progress=False).select_active_set([frames[0][:4]], progress=False)
