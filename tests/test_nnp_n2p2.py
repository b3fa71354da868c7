"""mlpot.NNP and mlpot.ACSF against n2p2 v2.3.0 on the six published mlearn NNPs (Cu, Ge,
Li, Mo, Ni, Si; ../shared/oracles/n2p2, README there): raw and scaled symmetry functions
to 1e-10 relative, atomic and total energies and forces to 1e-8 relative, read from the
published files in Bohr and Hartree. Also: n2p2 files written by mlpot.n2p2.write read
back to the same potential, in any units; extrapolation flags as n2p2's warnings."""

from pathlib import Path

import ase.io
import numpy as np
import pytest

import mlpot
from mlpot import n2p2

pytestmark = pytest.mark.slow

ELEMENTS = ["Cu", "Ge", "Li", "Mo", "Ni", "Si"]
CFLENGTH, CFENERGY = n2p2.BOHR_HARTREE


@pytest.fixture(scope="module", params=ELEMENTS)
def case(request, data, n2p2_fixtures):
    element = request.param
    model = n2p2.read(data / "mlearn" / element / "published_nnp", cflength=CFLENGTH, cfenergy=CFENERGY)
    frames = ase.io.read(n2p2_fixtures / f"{element}.extxyz", index=":")
    z = dict(np.load(n2p2_fixtures / f"{element}_symfunctions.npz"))
    return element, model, frames, z


def internal(z, columns):
    """The npz's columns (input.nn order) in n2p2's internal order (mlpot's feature order)."""
    out = np.empty_like(columns)
    out[:, z["n2p2_index"]] = columns
    return out


def close(actual, expected, rtol, floor):
    """|a - e| <= rtol |e| + floor, elementwise, with the worst entry in the message."""
    err = np.abs(actual - expected) - rtol * np.abs(expected)
    worst = np.unravel_index(np.argmax(err), err.shape)
    assert err.max() <= floor, f"worst at {worst}: {actual[worst]!r} vs {expected[worst]!r}"


def test_symmetry_functions_are_n2p2s(case):
    element, model, frames, z = case
    g = np.concatenate([model.descriptor.compute(a) for a in frames])
    n = model.n_inputs(element)
    assert g.shape == (len(z["G_raw"]), n) and model.descriptor.n_functions(element) == n
    close(g, internal(z, z["G_raw"]), 1e-10, 1e-13)
    close(model.scaling[element].apply(g), internal(z, z["G_scaled"]), 1e-10, 1e-12)


def test_functions_built_from_the_parameters_alone_are_n2p2s(case):
    """ACSF from the npz's parameter columns, converted to Angstrom, in input.nn order:
    no reader involved."""
    element, _, frames, z = case
    functions = []
    for t, eta, rs, rc, lam, zeta in zip(z["sf_type"], z["sf_eta_bohr2"], z["sf_rs_bohr"], z["sf_rc_bohr"],
                                         z["sf_lambda"], z["sf_zeta"]):
        f = {"type": int(t), "center": element, "eta": eta * CFLENGTH**2, "r_s": rs / CFLENGTH, "cutoff": rc / CFLENGTH}
        if t == 2:
            f["neighbors"] = [element]
        else:
            f |= {"neighbors": [element, element], "lambda": lam, "zeta": zeta}
        functions.append(f)
    d = mlpot.ACSF(species=[element], functions=functions)
    g = np.concatenate([d.compute(a) for a in frames])
    close(g, z["G_raw"], 1e-10, 1e-13)


def test_energies_and_forces_are_n2p2s(case):
    element, model, frames, z = case
    offset = model.atom_energies[element]
    for k, atoms in enumerate(frames):
        p = model.predict(atoms)
        assert p["energy"] == pytest.approx(atoms.info["n2p2_energy"], rel=1e-8)
        nn = atoms.arrays["n2p2_atomic_energies_nn"]
        close(p["energies"] - offset, nn, 1e-8, 1e-9)
        assert p["energy"] - offset * len(atoms) == pytest.approx(atoms.info["n2p2_energy_nn"], rel=1e-8, abs=1e-8)
        f = atoms.arrays["n2p2_forces"]
        close(p["forces"], f, 1e-8, 1e-9 * max(1.0, np.abs(f).max()))


def test_atomic_energies_are_n2p2s_from_the_raw_functions(case):
    element, model, _, z = case
    e, de = model.atomic_energies(element, internal(z, z["G_raw"]))
    assert de.shape == (len(e), model.n_inputs(element))
    ha = (e - model.atom_energies[element]) * CFENERGY
    close(ha, z["atomic_energies_nn_Ha"], 1e-8, 1e-12)


def test_extrapolation_flags_are_n2p2s_warnings(case):
    element, model, frames, _ = case
    for atoms in frames:
        flags = model.extrapolation(atoms)
        warned = atoms.info["n2p2_extrapolation_warnings"]
        assert flags.sum() == warned
        if element == "Ge" and warned:
            assert list(np.flatnonzero(flags)) == [4, 17]


@pytest.mark.parametrize("units", [n2p2.BOHR_HARTREE, (1.0, 1.0), (10.0, 1000.0)], ids=["Bohr-Hartree", "A-eV", "nm-meV"])
def test_written_files_read_back_to_the_same_potential(case, units, tmp_path):
    element, model, frames, _ = case
    n2p2.write(model, tmp_path, cflength=units[0], cfenergy=units[1])
    again = n2p2.read(tmp_path, cflength=units[0], cfenergy=units[1])
    for atoms in frames[:2]:
        p, q = model.predict(atoms), again.predict(atoms)
        assert q["energy"] == pytest.approx(p["energy"], rel=1e-13, abs=1e-10)
        np.testing.assert_allclose(q["forces"], p["forces"], rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(q["stress"], p["stress"], rtol=1e-11, atol=1e-13)


def test_model_file_round_trip_is_exact(case, tmp_path):
    element, model, frames, _ = case
    model.save(tmp_path / "nnp.mlpot")
    again = mlpot.load(tmp_path / "nnp.mlpot")
    p, q = model.predict(frames[0]), again.predict(frames[0])
    assert q["energy"] == p["energy"]
    np.testing.assert_array_equal(q["forces"], p["forces"])
    np.testing.assert_array_equal(q["stress"], p["stress"])
