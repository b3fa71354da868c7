"""mlpot.SNAP.assemble: a training set's unweighted rows reduced once, then fitted with many
weights. Every fit from the assembled system must equal the least-squares solution of
FitSNAP's weighted system assembled independently (tests/test_snap.py::_fitsnap_system),
and the fit from frames."""

import warnings

import numpy as np
import pytest
import scipy.linalg
from ase.build import bulk
from test_snap import _fitsnap_system

import mlpot
from mlpot.models.lstsq import SVD_RCOND, QRAccumulator, RankDeficientWarning, make_accumulator
from snap_helpers import PairBaseline, descriptor, frames_from, known_model, labelled, noisy_frames


def _flat(model):
    return np.concatenate([model.coefficients[e] for e in model.elements])


WEIGHTS = [
    (dict(eweight=7.0, fweight=1.5, vweight=2e-5), {"bulk": dict(eweight=50.0, fweight=0.3, vweight=1e-3)}, 0.0),
    (dict(eweight=300.0, fweight=0.1, vweight=0.0), {"strained": dict(fweight=3.0)}, 0.0),
    (dict(eweight=1.0, fweight=1.0, vweight=1e-4), {"bulk": dict(fweight=0.0)}, 1e-3),
]


@pytest.mark.parametrize("solver", ["svd", "normal"])
def test_fits_from_an_assembled_system_equal_the_weighted_least_squares_solution(solver):
    bs = descriptor(2)
    frames = noisy_frames(bs, 9, seed=30)
    model = mlpot.SNAP(bs)
    system = model.assemble(frames, progress=False)
    assert system.n_frames == 9 and set(system.groups) == {"bulk", "strained", None}
    assert system.n_rows("bulk", "energy") == 3 and system.n_rows("bulk", "stress") == 18
    assert system.n_rows(None, "forces") == 3 * sum(len(f) for f in frames[2::3])
    penalty = np.ones(model.n_coefficients * len(bs.elements))
    penalty[:: model.n_coefficients] = 0.0  # beta0 is not penalized
    for defaults, group_weights, ridge in WEIGHTS:
        keywords = dict(
            energy_weight=defaults["eweight"],
            force_weight=defaults["fweight"],
            stress_weight=defaults["vweight"],
            group_weights=group_weights,
            ridge=ridge,
            solver=solver,
            progress=False,
        )
        got = _flat(model.fit(system, **keywords))
        resolved = {g: {**defaults, **w} for g, w in group_weights.items()}
        a, b = _fitsnap_system(model, frames, resolved, defaults)
        expected = np.linalg.solve(a.T @ a + ridge * np.diag(penalty), a.T @ b)
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())
        streamed = _flat(mlpot.SNAP(bs).fit(frames, **keywords))
        np.testing.assert_allclose(got, streamed, rtol=1e-8, atol=1e-10 * np.abs(expected).max())


def test_assembled_quadratic_fit_with_a_baseline_recovers_the_truth():
    """Exact data over a baseline: the system keeps the targets less the baseline."""
    bs = descriptor(2)
    baseline = PairBaseline()
    truth = known_model(bs, True, seed=40, baseline=baseline)
    frames = frames_from(truth, 8, seed=41)
    model = mlpot.SNAP(bs, quadratic=True, baseline=baseline)
    system = model.assemble(frames, progress=False)
    model.fit(system, progress=False)
    for e in bs.elements:
        np.testing.assert_allclose(model.coefficients[e], truth.coefficients[e], atol=1e-8)


def test_a_system_only_fits_the_model_kind_that_assembled_it():
    bs = descriptor(2)
    frames = frames_from(known_model(bs, False, seed=50), 3, seed=51)
    system = mlpot.SNAP(bs).assemble(frames, progress=False)
    for other in (mlpot.SNAP(bs, quadratic=True), mlpot.SNAP(descriptor(4)), mlpot.SNAP(bs, baseline=PairBaseline())):
        with pytest.raises(ValueError, match="LinearSystem"):
            other.fit(system, progress=False)
    with pytest.warns(UserWarning, match="no frame belongs"):
        mlpot.SNAP(bs).fit(system, group_weights={"nowhere": dict(eweight=1.0)}, progress=False)
    with pytest.raises(ValueError, match="solver"):
        mlpot.SNAP(bs).fit(system, solver="qr", progress=False)
    with pytest.raises(ValueError, match="no frames"):
        mlpot.SNAP(bs).assemble([], progress=False)
    with pytest.raises(RuntimeError, match="finished"):
        system.add_frame("late", {}, np.array([28]))


def test_qr_factor_reproduces_the_gram_matrix_and_solves_stacked():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(700, 9)) * np.logspace(0, 4, 9)
    y = rng.normal(size=700)
    acc = QRAccumulator(9, batch=50)
    acc.add(a[:5], y[:5])
    small = acc.factor()  # fewer rows than columns
    assert small.shape[1] == 10
    full = np.column_stack([a[:5], y[:5]])
    np.testing.assert_allclose(small.T @ small, full.T @ full, rtol=1e-12, atol=1e-6)
    # leading zero columns (elements absent from these rows) move R's non-zero rows down
    zeros = np.column_stack([np.zeros((3, 4)), a[:3, 4:]])
    acc_zero = QRAccumulator(9, batch=50)
    acc_zero.add(zeros, y[:3])
    r = acc_zero.factor()
    full = np.column_stack([zeros, y[:3]])
    np.testing.assert_allclose(r.T @ r, full.T @ full, rtol=1e-12, atol=1e-6)
    acc.add(a[5:], y[5:])
    r = acc.factor()
    assert r.shape == (10, 10) and np.allclose(r, np.triu(r))
    full = np.column_stack([a, y])
    np.testing.assert_allclose(r.T @ r, full.T @ full, rtol=1e-11, atol=1e-6)
    # two weighted factors stacked give the weighted problem of all rows
    top, bottom = QRAccumulator(9), QRAccumulator(9)
    top.add(a[:300], y[:300])
    bottom.add(a[300:], y[300:])
    combined = QRAccumulator(9)
    for acc, w in ((top, 2.0), (bottom, 0.5)):
        f = acc.factor() * w
        combined.add(f[:, :-1], f[:, -1])
    w = np.where(np.arange(700) < 300, 2.0, 0.5)
    expected, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    np.testing.assert_allclose(combined.solve(0.0, np.ones(9, bool)), expected, rtol=1e-9)
    assert QRAccumulator(4).factor().shape == (0, 5)


def test_design_rows_times_coefficients_are_the_prediction():
    bs = descriptor(2)
    model = known_model(bs, True, seed=60)
    atoms = frames_from(model, 1, seed=61)[0]
    rows = model.design_rows(atoms)
    c = _flat(model)
    p = model.predict(atoms)
    np.testing.assert_allclose(rows["energy"] @ c, p["energy"], rtol=1e-12)
    np.testing.assert_allclose((rows["forces"] @ c).reshape(-1, 3), p["forces"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(-rows["virial"] @ c / atoms.get_volume(), p["stress"], rtol=1e-10, atol=1e-14)


def test_align_energy_zero_recovers_per_element_shifts():
    bs = descriptor(2)
    truth = known_model(bs, False, seed=70)
    frames = frames_from(truth, 5, seed=71)
    shifted = mlpot.SNAP(bs)
    shifted.coefficients = {e: c + np.eye(len(c))[0] * d for (e, c), d in zip(truth.coefficients.items(), (-3.0, 5.5))}
    aligned = shifted.align_energy_zero(frames)
    for e in bs.elements:
        np.testing.assert_allclose(aligned.coefficients[e], truth.coefficients[e], atol=1e-9)
    atoms = frames[0]
    np.testing.assert_allclose(aligned.predict(atoms)["forces"], shifted.predict(atoms)["forces"], atol=0)
    with pytest.raises(RuntimeError, match="no coefficients"):
        mlpot.SNAP(bs).align_energy_zero(frames)


# ------------------------------------------------------------- rank-deficient fits

DEFAULTS = dict(eweight=100.0, fweight=1.0, vweight=1e-4)  # SNAP.fit's default weights


def _one_energy_row(bs):
    """One frame with only its energy: one row (FitSNAP's, built from mlpot.Bispectrum
    values, not the design rows) for 2 x n_coefficients unknowns."""
    (atoms,) = frames_from(known_model(bs, False, seed=80), 1, seed=81)
    atoms = labelled(atoms, atoms.get_potential_energy())
    types = np.array([bs.elements.index(s) for s in atoms.get_chemical_symbols()])
    assert set(types) == {0, 1}  # both elements: no column is all zero
    design = np.zeros((len(bs.elements), 1 + bs.n_features))
    np.add.at(design, (types, 0), 1.0)
    np.add.at(design[:, 1:], types, bs.compute(atoms))
    n = len(atoms)
    a = design.reshape(1, -1) / n * DEFAULTS["eweight"]
    return [atoms], a, np.array([atoms.get_potential_energy() / n * DEFAULTS["eweight"]])


def _perfect_crystals(bs):
    """Perfect crystals (L1_2 Ni3Al, or fcc Ni for a Ni-only descriptor) at three volumes,
    labelled by a known model: forces vanish by symmetry and the stress is hydrostatic, so
    each frame gives 2 independent rows for len(elements) x n_coefficients unknowns."""
    truth = known_model(bs, False, seed=82)
    frames = []
    for a in (3.50, 3.56, 3.62):
        atoms = bulk("Ni", "fcc", a=a, cubic=True)
        if "Al" in bs.elements:
            atoms.symbols[0] = "Al"
        p = truth.predict(atoms)
        assert np.abs(p["forces"]).max() < 1e-12
        frames.append(labelled(atoms, p["energy"], p["forces"], p["stress"]))
    a, b = _fitsnap_system(mlpot.SNAP(bs), frames, {}, DEFAULTS)
    return frames, a, b


def _check_rank_warning(record, rank, n_columns):
    (warning,) = [w for w in record if issubclass(w.category, RankDeficientWarning)]
    assert f"numerical rank {rank} for {n_columns} coefficients" in str(warning.message)
    assert "ridge" in str(warning.message) and "more varied structures" in str(warning.message)
    assert warning.filename == __file__  # points at the user's call, not into mlpot


@pytest.mark.parametrize("data", [_one_energy_row, _perfect_crystals])
@pytest.mark.parametrize("solver", ["svd", "normal"])
def test_rank_deficient_fits_warn_and_give_the_minimum_norm_solution(data, solver):
    """Data that do not determine the coefficients: both solvers say so (rank versus
    number of coefficients) and return numpy's minimum-norm least-squares solution, from
    frames and from an assembled system (whose rank is recorded). The normal equations
    used to return coefficients 1e4 times larger."""
    bs = descriptor(2)
    frames, a, b = data(bs)
    expected, _, rank, _ = np.linalg.lstsq(a, b, rcond=None)
    n_columns = a.shape[1]
    assert rank < n_columns
    # the normal equations square the condition number of the determined part (~1e6 for
    # the crystals): a bound of eps * 1e12 on their error; 1e-6 reached
    atol = (1e-4 if solver == "normal" else 1e-8) * np.abs(expected).max()
    model = mlpot.SNAP(bs)
    system = model.assemble(frames, progress=False)
    for source in (frames, system):
        with pytest.warns(RankDeficientWarning) as record:
            got = _flat(model.fit(source, solver=solver, progress=False))
        _check_rank_warning(record, rank, n_columns)
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
        np.testing.assert_allclose(a @ got, a @ expected, rtol=0, atol=1e-10 * np.abs(b).max())
    assert system.rank == rank


@pytest.mark.parametrize("solver", ["svd", "normal"])
def test_a_ridge_makes_the_rank_full_and_silent(solver):
    """With one element the energy rows fix beta0, which the ridge leaves alone."""
    bs = descriptor(2, elements=("Ni",))
    frames, a, b = _perfect_crystals(bs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        system = mlpot.SNAP(bs).assemble(frames, progress=False)
        mlpot.SNAP(bs).fit(system, ridge=1e-6, solver=solver, progress=False)
    assert system.rank == a.shape[1]


@pytest.mark.parametrize("quadratic", [False, True])
@pytest.mark.parametrize("solver", ["svd", "normal"])
def test_full_rank_fits_do_not_warn_and_keep_their_solution(quadratic, solver):
    """Full-rank fits, including the ill-conditioned quadratic one whose normal equations
    (condition number ~1e11) get the eigenvalue check, give no warning, rank = number of
    coefficients, and the bits of the plain solve: an SVD of R, or Cholesky on the
    Jacobi-scaled normal equations."""
    bs = descriptor(4)
    frames = frames_from(known_model(bs, quadratic, seed=6), 10, seed=7)
    model = mlpot.SNAP(bs, quadratic=quadratic)
    system = model.assemble(frames, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(system, solver=solver, progress=False)
    n_columns = len(bs.elements) * model.n_coefficients
    assert system.rank == n_columns

    accumulator = make_accumulator(solver, n_columns)
    for _, kind, w, factor in system.weighted_factors(lambda group, kind: 1.0):
        w *= {"energy": 100.0, "forces": 1.0, "stress": 1e-4}[kind]
        accumulator.add(w * factor[:, :-1], w * factor[:, -1])
    if solver == "svd":
        accumulator._reduce()
        r = accumulator._r
        plain, *_ = scipy.linalg.lstsq(r[:, :-1], r[:, -1], cond=SVD_RCOND, check_finite=False)
    else:
        ata, atb = accumulator._ata, accumulator._atb
        scale = 1.0 / np.sqrt(np.diag(ata))
        factor = scipy.linalg.cho_factor(ata * np.outer(scale, scale), check_finite=False)
        plain = scipy.linalg.cho_solve(factor, atb * scale, check_finite=False) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = accumulator.solve(0.0, np.ones(n_columns, bool))
    assert got.tobytes() == plain.tobytes() and accumulator.rank == n_columns


def test_a_ridge_leaves_the_constants_of_one_composition_undetermined():
    """Perfect Ni3Al crystals of one composition: the unpenalized per-element constants
    enter only as 1 x beta0(Al) + 3 x beta0(Ni), whatever the ridge; the warning says so."""
    bs = descriptor(2)
    frames, a, b = _perfect_crystals(bs)
    with pytest.warns(RankDeficientWarning, match="ridge does not reach unpenalized coefficients") as record:
        mlpot.SNAP(bs).fit(frames, ridge=1e-6, progress=False)
    _check_rank_warning(record, a.shape[1] - 1, a.shape[1])
