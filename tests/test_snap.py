"""mlpot.SNAP: predictions against finite differences, fits against known models and an
independent assembly of FitSNAP's weighted least-squares problem, and bad input."""

import warnings

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.units import bar

import mlpot
from snap_helpers import (
    PairBaseline,
    descriptor,
    frames_from,
    known_model,
    labelled,
    noisy_frames,
    numeric_forces_and_stress,
    structure,
)


@pytest.mark.parametrize(
    "quadratic, flags, baseline",
    [
        (False, {}, False),
        (True, {}, False),
        (True, dict(bzeroflag=True), True),
        (True, dict(chemflag=True, bnormflag=True), False),
    ],
)
def test_forces_and_stress_are_energy_derivatives(quadratic, flags, baseline):
    bs = descriptor(4, **flags)
    model = known_model(bs, quadratic, seed=1, baseline=PairBaseline() if baseline else None)
    atoms = structure(np.random.default_rng(2), reps=(1, 1, 2))
    p = model.predict(atoms)
    forces, stress = numeric_forces_and_stress(model, atoms)
    scale = np.abs(p["forces"]).max()
    assert np.abs(p["forces"] - forces).max() <= 1e-6 * scale
    assert np.abs(p["stress"] - stress).max() <= 1e-6 * np.abs(p["stress"]).max()
    assert p["energy"] == p["free_energy"]
    np.testing.assert_allclose(p["energies"].sum(), p["energy"], rtol=1e-14)


def test_isolated_atoms_have_beta0_and_open_cells_have_no_stress():
    bs = descriptor(2, bzeroflag=True)
    model = known_model(bs, True, seed=3)
    atoms = molecule("H2")
    atoms.set_chemical_symbols(["Ni", "Al"])
    atoms.positions *= 10.0  # far apart: no neighbors, B = 0 with bzeroflag
    p = model.predict(atoms)
    assert "stress" not in p
    # B = (j+1) - (j+1) up to rounding in the Clebsch-Gordan sums
    np.testing.assert_allclose(p["energies"], [model.coefficients[e][0] for e in ("Ni", "Al")], atol=1e-14)
    np.testing.assert_array_equal(p["forces"], 0.0)


def test_prediction_is_identical_for_any_thread_count():
    model = known_model(descriptor(4), True, seed=4)
    atoms = structure(np.random.default_rng(5), reps=(3, 3, 3))
    try:
        mlpot.set_num_threads(1)
        one = model.predict(atoms)
        mlpot.set_num_threads(2)
        two = model.predict(atoms)
    finally:
        mlpot.set_num_threads(0)
    for key in ("energies", "forces", "stress"):
        np.testing.assert_array_equal(one[key], two[key])


@pytest.mark.parametrize("quadratic", [False, True])
@pytest.mark.parametrize("solver", ["svd", "normal"])
def test_fit_recovers_the_model_that_made_the_data(quadratic, solver):
    bs = descriptor(4)
    truth = known_model(bs, quadratic, seed=6)
    frames = frames_from(truth, 10, seed=7)
    # energy weight 100: the conditioning the normal-equation tolerance below was set for
    model = mlpot.SNAP(bs, quadratic=quadratic).fit(frames, energy_weight=100.0, solver=solver, progress=False)
    if quadratic and solver == "normal":
        # the normal equations square the condition number of the quadratic problem: some
        # coefficients are poorly determined, but the potential itself is recovered
        tol = 1e-2
        atoms = structure(np.random.default_rng(70))
        p, t = model.predict(atoms), truth.predict(atoms)
        assert np.abs(p["forces"] - t["forces"]).max() <= 1e-5 * np.abs(t["forces"]).max()
    else:
        tol = 1e-7
    for e in bs.elements:
        c, t = model.coefficients[e], truth.coefficients[e]
        assert np.abs(c - t).max() <= tol * np.abs(t).max(), e


def test_fit_with_a_baseline_recovers_the_model_on_top_of_it():
    bs = descriptor(4)
    baseline = PairBaseline()
    truth = known_model(bs, False, seed=8, baseline=baseline)
    frames = frames_from(truth, 8, seed=9)
    model = mlpot.SNAP(bs, baseline=baseline).fit(frames, progress=False)
    for e in bs.elements:
        np.testing.assert_allclose(model.coefficients[e], truth.coefficients[e], rtol=0, atol=1e-9)
    atoms = frames[0]
    p = model.predict(atoms)
    base = baseline.predict(atoms)
    without = mlpot.SNAP(bs)
    without.coefficients = model.coefficients
    q = without.predict(atoms)
    np.testing.assert_allclose(p["forces"], q["forces"] + base["forces"], atol=1e-12)
    np.testing.assert_allclose(p["stress"], q["stress"] + base["stress"], atol=1e-14)
    np.testing.assert_allclose(p["energy"], atoms.get_potential_energy(), rtol=1e-12)


def _fitsnap_system(model, frames, weights, defaults):
    """The weighted linear system of FitSNAP's LAMMPSSNAP calculator, built here from the
    bispectrum gradients (an independent path from the Rust design rows): per frame one
    energy row (sum of [1, B] over atoms of each element) / N * eweight, 3 N force rows
    -sum_i dB_i/dr_j * fweight, and 6 virial rows in bar * vweight."""
    bs = model.bispectrum
    n_el, k = len(bs.elements), bs.n_features
    a_rows, b_rows = [], []
    for atoms in frames:
        w = weights.get(atoms.info.get("group"), defaults)
        types = np.array([bs.elements.index(s) for s in atoms.get_chemical_symbols()])
        n = len(atoms)
        b, g = bs.compute(atoms, gradients=True)
        design = np.zeros((n_el, 1 + k))
        np.add.at(design, (types, 0), 1.0)
        np.add.at(design[:, 1:], types, b)
        a_rows.append(design.ravel() / n * w["eweight"])
        b_rows.append([atoms.get_potential_energy() / n * w["eweight"]])
        dforce = np.zeros((n, 3, n_el, 1 + k))
        np.add.at(dforce[..., 1:], (g.neighbors, slice(None), types[g.centers]), -g.values)
        a_rows.extend(dforce.reshape(3 * n, -1) * w["fweight"])
        b_rows.append(atoms.get_forces().ravel() * w["fweight"])
        virial = np.zeros((6, n_el, 1 + k))
        np.add.at(virial[..., 1:], (slice(None), types), np.moveaxis(g.virial, 1, 0))
        # FitSNAP: virial * 1.6021765e6 / V (bar); reference stress in bar with LAMMPS's sign
        a_rows.extend(virial.reshape(6, -1) / atoms.get_volume() / bar * w["vweight"])
        b_rows.append(-atoms.get_stress() / bar * w["vweight"])
    return np.vstack(a_rows), np.concatenate(b_rows)


def test_weights_have_fitsnap_meaning():
    """Noisy data that no model fits exactly, so the weights decide the answer: mlpot's fit
    equals the least-squares solution of FitSNAP's weighted system assembled independently."""
    bs = descriptor(2)
    frames = noisy_frames(bs, 6, seed=10)
    group_weights = {"bulk": dict(eweight=50.0, fweight=0.3, vweight=1e-3), "strained": dict(fweight=3.0)}
    defaults = dict(eweight=7.0, fweight=1.5, vweight=2e-5)
    model = mlpot.SNAP(bs).fit(
        frames,
        energy_weight=defaults["eweight"],
        force_weight=defaults["fweight"],
        stress_weight=defaults["vweight"],
        group_weights=group_weights,
        progress=False,
    )
    resolved = {g: {**defaults, **w} for g, w in group_weights.items()}
    a, b = _fitsnap_system(model, frames, resolved, defaults)
    expected, *_ = np.linalg.lstsq(a, b, rcond=None)
    got = np.concatenate([model.coefficients[e] for e in bs.elements])
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    # the weights matter: uniform weights give a different answer
    uniform = mlpot.SNAP(bs).fit(frames, progress=False)
    assert np.abs(np.concatenate(list(uniform.coefficients.values())) - got).max() > 1e-4


def test_ridge_penalizes_the_bispectrum_coefficients_but_not_beta0():
    bs = descriptor(2)
    frames = frames_from(known_model(bs, False, seed=13, scale=0.5), 6, seed=14)
    defaults = dict(eweight=100.0, fweight=1.0, vweight=1e-4)
    a, b = _fitsnap_system(mlpot.SNAP(bs), frames, {}, defaults)
    penalty = np.ones(a.shape[1])
    penalty[:: bs.n_features + 1] = 0.0  # beta0 of each element
    norms = []
    for ridge in (1e-3, 1.0, 1e3):
        expected = np.linalg.solve(a.T @ a + ridge * np.diag(penalty), a.T @ b)
        for solver in ("svd", "normal"):
            m = mlpot.SNAP(bs).fit(frames, energy_weight=100.0, ridge=ridge, solver=solver, progress=False)
            got = np.concatenate([m.coefficients[e] for e in bs.elements])
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())
        norms.append(np.sum((expected * penalty) ** 2))
    assert norms[0] > norms[1] > norms[2]


def test_zero_weights_drop_rows_and_missing_references_are_skipped():
    bs = descriptor(2)
    truth = known_model(bs, False, seed=15)
    frames = frames_from(truth, 6, seed=16, group="good")
    junk = [labelled(f, f.get_potential_energy() + 5.0, f.get_forces() + 1.0, None, "junk") for f in frames[:3]]
    energy_only = [labelled(f, f.get_potential_energy()) for f in frames[3:]]
    model = mlpot.SNAP(bs).fit(
        frames + junk + energy_only,
        group_weights={"junk": dict(eweight=0.0, fweight=0.0, vweight=0.0)},
        progress=False,
    )
    for e in bs.elements:
        np.testing.assert_allclose(model.coefficients[e], truth.coefficients[e], atol=1e-9)


def test_frames_may_be_a_generator_and_progress_bar_runs(capsys):
    bs = descriptor(2)
    truth = known_model(bs, False, seed=17)
    frames = frames_from(truth, 4, seed=18)
    model = mlpot.SNAP(bs).fit((f for f in frames), progress=True)
    assert "SNAP fit" in capsys.readouterr().err
    np.testing.assert_allclose(model.coefficients["Ni"], truth.coefficients["Ni"], atol=1e-9)


def test_unknown_elements_and_bad_frames_raise_value_errors():
    bs = descriptor(2)
    model = known_model(bs, False, seed=19)
    atoms = bulk("Fe", "bcc", a=2.87) * 2
    with pytest.raises(ValueError, match="Fe"):
        model.predict(atoms)
    with pytest.raises(ValueError, match="Fe"):
        model.calculator().get_potential_energy(atoms)
    frames = frames_from(model, 2, seed=20)
    with pytest.raises(ValueError, match=r"frame 2.*Fe"):
        mlpot.SNAP(bs).fit(frames + [labelled(atoms, 1.0)], progress=False)
    with pytest.raises(ValueError, match="frame 0 has no calculator"):
        mlpot.SNAP(bs).fit([structure(np.random.default_rng(0))], progress=False)
    with pytest.raises(ValueError, match="non-finite reference forces"):
        bad = frames[0].get_forces()
        bad[0, 0] = np.nan
        mlpot.SNAP(bs).fit([labelled(frames[0], 1.0, bad)], progress=False)
    with pytest.raises(ValueError, match="solver"):
        mlpot.SNAP(bs).fit(frames, solver="qr", progress=False)
    with pytest.raises(ValueError, match="energy_weight"):
        mlpot.SNAP(bs).fit(frames, energy_weight=-1.0, progress=False)
    with pytest.raises(ValueError, match="unknown key"):
        mlpot.SNAP(bs).fit(frames, group_weights={"a": {"weight": 1.0}}, progress=False)
    with pytest.raises(ValueError, match="no frames"):
        mlpot.SNAP(bs).fit([], progress=False)
    with pytest.raises(ValueError, match="no rows"):
        mlpot.SNAP(bs).fit(frames, energy_weight=0, force_weight=0, stress_weight=0, progress=False)
    with pytest.raises(TypeError):
        mlpot.SNAP(bs).fit(frames[0], progress=False)
    with pytest.raises(RuntimeError, match="no coefficients"):
        mlpot.SNAP(bs).predict(frames[0])
    with pytest.raises(TypeError):
        mlpot.SNAP("not a descriptor")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="no frame belongs"):
            mlpot.SNAP(bs).fit(frames, group_weights={"missing": {}}, progress=False)


def test_coefficients_are_validated_and_read_only():
    bs = descriptor(2)
    model = known_model(bs, True, seed=21)
    c = model.coefficients
    with pytest.raises(ValueError):
        c["Ni"][0] = 1.0
    with pytest.raises(ValueError, match="shape"):
        model.coefficients = {"Ni": np.zeros(3), "Al": np.zeros(3)}
    with pytest.raises(ValueError, match="missing"):
        model.coefficients = {"Ni": c["Ni"]}
    with pytest.raises(ValueError, match="NaN"):
        model.coefficients = {"Ni": c["Ni"] * np.nan, "Al": c["Al"]}
    # a failed assignment keeps the previous coefficients
    for e in bs.elements:
        np.testing.assert_array_equal(model.coefficients[e], c[e])
    k = bs.n_features
    assert model.n_coefficients == 1 + k + k * (k + 1) // 2


def test_absent_element_warns():
    bs = descriptor(2)
    frames = frames_from(known_model(bs, False, seed=22), 3, seed=23, elements=("Ni",))
    with pytest.warns(UserWarning, match="Al"):
        mlpot.SNAP(bs).fit(frames, progress=False)


def test_fit_runs_blas_on_one_thread_and_restores_it():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    bs = descriptor(2)
    frames = frames_from(known_model(bs, False, seed=50), 3, seed=51)
    seen = []

    def streamed():
        for f in frames:
            seen.append(blas_threads())
            yield f

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        mlpot.SNAP(bs).fit(streamed(), progress=False)
        assert blas_threads() == before
    assert seen and all(threads == [1] * len(before) for threads in seen)


def test_fit_is_identical_for_any_thread_count():
    from threadpoolctl import threadpool_limits

    bs = descriptor(2)
    # enough rows (> 4096) that the streamed QR reduces before the final solve
    frames = frames_from(known_model(bs, True, seed=52), 90, seed=53, reps=(2, 2, 1))
    frames = [labelled(f, f.get_potential_energy() + 0.01 * k, f.get_forces(), f.get_stress()) for k, f in enumerate(frames)]
    fits = []
    try:
        for threads, blas in [(1, 1), (2, 2), (2, 1)]:
            mlpot.set_num_threads(threads)
            with threadpool_limits(limits=blas, user_api="blas"):
                fits.append(mlpot.SNAP(bs, quadratic=True).fit(frames, progress=False).coefficients)
    finally:
        mlpot.set_num_threads(0)
    for other in fits[1:]:
        for e in bs.elements:
            np.testing.assert_array_equal(other[e], fits[0][e])


def test_a_frame_changed_after_labelling_has_no_reference_and_live_calculators_are_asked():
    from ase.calculators.emt import EMT

    bs = descriptor(2)
    frames = frames_from(known_model(bs, False, seed=54), 4, seed=55)
    frames[2].positions[0, 0] += 0.1  # its stored labels are now stale
    with pytest.raises(ValueError, match="frame 2: the atoms changed since they were labelled: their positions"):
        mlpot.SNAP(bs).fit(frames, progress=False)
    # a live calculator computes the references; the same numbers stored give the same fit
    live = [f.copy() for f in frames]
    for f in live:
        f.calc = EMT()
    stored = [labelled(f, f.get_potential_energy(), f.get_forces(), f.get_stress()) for f in live]
    a = mlpot.SNAP(bs).fit(live, progress=False).coefficients
    b = mlpot.SNAP(bs).fit(stored, progress=False).coefficients
    for e in bs.elements:
        np.testing.assert_array_equal(a[e], b[e])
