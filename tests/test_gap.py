"""mlpot.GAP: predictions against finite differences, the fit against the closed-form sparse-GP
mean, fits to independent potentials (ASE's EMT and Lennard-Jones), the predicted variance as
an extrapolation warning, model files and bad input."""

import json

import numpy as np
import pytest
import scipy.linalg
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

import mlpot
from mlpot.models.gap import select_sparse
from snap_helpers import labelled, numeric_forces_and_stress


def emt_frames(n, seed, elements=("Cu",), reps=(2, 2, 2), rattle=0.08, strain=0.02, group=None):
    """Rattled and strained fcc cells labelled by ASE's EMT (an independent potential)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
        atoms.set_chemical_symbols(rng.choice(list(elements), len(atoms)))
        deformation = np.eye(3) + strain * rng.standard_normal((3, 3))
        atoms.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
        atoms.positions += rattle * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        out.append(
            labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(), group)
        )
    return out


def soap(species=("Cu",), cutoff=4.0):
    return mlpot.SOAP(cutoff=cutoff, n_max=4, l_max=3, atom_sigma=0.5, species=list(species))


@pytest.fixture(scope="module")
def cu_model():
    frames = emt_frames(10, seed=1)
    model = mlpot.GAP(
        [soap(), mlpot.Distance2b(cutoff=4.0, n_sparse=12)],
        n_sparse=60,
        default_sigma=(0.001, 0.02, 0.01),
    )
    return model.fit(frames, progress=False), frames


@pytest.fixture(scope="module")
def alloy_model():
    frames = emt_frames(8, seed=2, elements=("Cu", "Al"))
    model = mlpot.GAP([soap(("Cu", "Al")), mlpot.Distance2b(cutoff=3.5, n_sparse=8, species=("Cu", "Al"))], n_sparse=30)
    return model.fit(frames, progress=False), frames


def test_forces_and_stress_are_energy_derivatives(alloy_model):
    model, _ = alloy_model
    atoms = emt_frames(1, seed=9, elements=("Cu", "Al"), reps=(1, 1, 2))[0]
    p = model.predict(atoms)
    forces, stress = numeric_forces_and_stress(model, atoms, h=1e-4)  # alpha ~1e5: roundoff
    # alpha is large (K_MM is near singular, as in gap_fit), so the differences carry
    # roundoff of about 1e-16 |alpha| / h
    np.testing.assert_allclose(p["forces"], forces, atol=1e-6)
    np.testing.assert_allclose(p["stress"], stress, atol=1e-6)
    assert p["energy"] == pytest.approx(p["energies"].sum(), abs=1e-12)
    # an open cluster: forces only, no stress
    cluster = atoms.copy()
    cluster.pbc = False
    q = model.predict(cluster)
    assert "stress" not in q
    np.testing.assert_allclose(q["forces"], numeric_forces_and_stress(model, cluster, h=1e-4)[0], atol=1e-6)
    np.testing.assert_allclose(q["forces"].sum(axis=0), 0, atol=1e-10)


def test_kernel_rows_are_derivatives_of_the_energy_row(alloy_model):
    model, _ = alloy_model
    atoms = emt_frames(1, seed=3, elements=("Cu", "Al"), reps=(1, 1, 1))[0]
    structure = lambda a: mlpot.models.gap._structure(a, [13, 29])  # noqa: E731
    h = 1e-5
    for term in model._terms:
        rows = term.core.rows(structure(atoms))
        for k, c in [(0, 0), (2, 1), (3, 2)]:
            e = []
            for s in (h, -h):
                moved = atoms.copy()
                moved.positions[k, c] += s
                e.append(term.core.rows(structure(moved))["energy"])
            np.testing.assert_allclose(rows["forces"][3 * k + c], -(e[0] - e[1]) / (2 * h), atol=1e-6)


def dense_system(model, frames):
    """K_NM, y and the noise sigma of every observation, stacked by hand from the per-frame
    rows (the fit streams them; here they are all held, for a closed-form check)."""
    e0 = model.e0_values
    ks, ys, sigmas = [], [], []
    for atoms in frames:
        s = mlpot.models.gap._structure(atoms, [29])
        rows = [t.core.rows(s) for t in model._terms]
        n = len(atoms)
        se, sf, sv = (np.array(model.default_sigma) * [np.sqrt(n), 1, np.sqrt(n)])
        ks += [np.concatenate([r["energy"] for r in rows])[None], np.hstack([r["forces"] for r in rows]),
               np.hstack([r["virial"] for r in rows])]
        ys += [[atoms.get_potential_energy() - n * e0["Cu"]], atoms.get_forces().ravel(),
               -atoms.get_stress() * atoms.get_volume()]
        sigmas += [[se], np.full(3 * n, sf), np.full(6, sv)]
    return np.vstack(ks), np.concatenate(ys), np.concatenate(sigmas)


def test_fit_is_the_sparse_gp_mean_and_variance():
    """The streamed QR solve against the closed form (normal equations, dense), on a
    well-conditioned problem (a large jitter) so that the closed form is accurate too."""
    frames = emt_frames(5, seed=1)
    model = mlpot.GAP(
        [soap(), mlpot.Distance2b(cutoff=4.0, n_sparse=6, theta=0.5)],
        n_sparse=25,
        default_sigma=(0.001, 0.02, 0.01),
        jitter=1e-3,
    ).fit(frames, progress=False)
    knm, y, sigma = dense_system(model, frames)
    kmm = scipy.linalg.block_diag(*[t.prior() for t in model._terms]) + model.jitter * np.eye(knm.shape[1])
    a = kmm + knm.T @ (knm / sigma[:, None] ** 2)
    alpha = np.linalg.solve(a, knm.T @ (y / sigma**2))
    np.testing.assert_allclose(model.alpha, alpha, rtol=1e-6, atol=1e-6 * np.abs(alpha).max())
    # DTC variance of the local SOAP energies, from the dense matrices
    atoms = emt_frames(1, seed=50)[0]
    p = model.predict(atoms, variance=True)
    soap_term = model._terms[0]
    structure = mlpot.models.gap._structure(atoms, [29])
    k = np.hstack([t.core.predict(structure, np.zeros(t.n_sparse), True)[3] for t in model._terms])
    m = soap_term.n_sparse
    ks = k[:, :m]
    nystrom = soap_term.delta**2 - np.einsum("im,im->i", ks, np.linalg.solve(kmm[:m, :m], ks.T).T)
    expected = nystrom + np.einsum("im,im->i", k, np.linalg.solve(a, k.T).T)
    np.testing.assert_allclose(p["energies_variance"], expected, rtol=1e-6, atol=1e-12)
    kt = k.sum(axis=0)
    np.testing.assert_allclose(p["energy_variance"], nystrom.sum() + kt @ np.linalg.solve(a, kt), rtol=1e-6)


def test_fit_reproduces_a_pair_potential():
    """Distance2b alone represents any smooth pair potential: fit ASE's Lennard-Jones."""
    lj = dict(sigma=2.3, epsilon=0.2, rc=4.5, smooth=True, ro=3.5)
    rng = np.random.default_rng(0)
    frames = []
    for k in range(14):
        atoms = bulk("Cu", "fcc", a=3.5 + 0.2 * rng.random(), cubic=True).repeat((2, 2, 1))
        atoms.rattle(0.1, seed=k)
        atoms.calc = LennardJones(**lj)
        frames.append(labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    # the smooth LJ switches off over [ro, rc], like the 2b cutoff function with width 1
    model = mlpot.GAP(
        mlpot.Distance2b(cutoff=4.5, cutoff_transition_width=1.0, theta=0.4, n_sparse=25, delta=1.0),
        default_sigma=(1e-4, 1e-3, 1e-3),
        e0={"Cu": 0.0},
    ).fit(frames[:10], progress=False)
    for atoms in frames[10:]:
        p = model.predict(atoms)
        assert abs(p["energy"] - atoms.get_potential_energy()) / len(atoms) < 2e-3
        assert np.abs(p["forces"] - atoms.get_forces()).max() < 0.02


def test_fit_to_emt_generalizes(cu_model):
    model, _ = cu_model
    report = mlpot.errors(model, emt_frames(4, seed=77))
    assert report.overall.energy_mae < 0.01  # eV/atom
    assert report.overall.force_mae < 0.08  # eV/Angstrom (10 frames of 32 atoms)


def test_variance_is_small_on_training_data_and_grows_away_from_it(cu_model):
    model, frames = cu_model
    train = [model.predict(a, variance=True) for a in frames[:3]]
    compressed = frames[0].copy()
    compressed.set_cell(compressed.cell * 0.85, scale_atoms=True)
    rattled = frames[0].copy()
    rattled.rattle(0.35, seed=3)
    for far in (compressed, rattled):
        p = model.predict(far, variance=True)
        for q in train:
            assert p["energy_std"] > 10 * q["energy_std"]
            assert p["energies_std"].mean() > 5 * q["energies_std"].mean()
    # never above the prior: delta per SOAP atom
    assert (model.predict(compressed, variance=True)["energies_std"] <= 1.01 * model._terms[0].delta + 1).all()
    calc = model.calculator(variance=True)
    atoms = compressed.copy()
    atoms.calc = calc
    atoms.get_potential_energy()
    assert calc.results["energy_std"] == pytest.approx(model.predict(compressed, variance=True)["energy_std"])
    assert calc.results["energies_std"].shape == (len(atoms),)
    assert "energy_std" not in model.predict(atoms)


def test_prediction_is_identical_for_any_thread_count(alloy_model):
    model, _ = alloy_model
    atoms = emt_frames(1, seed=5, elements=("Cu", "Al"), reps=(3, 3, 2))[0]
    try:
        mlpot.set_num_threads(1)
        one = model.predict(atoms, variance=True)
        mlpot.set_num_threads(2)
        two = model.predict(atoms, variance=True)
    finally:
        mlpot.set_num_threads(0)
    for key in ("energies", "forces", "stress", "energies_std"):
        np.testing.assert_array_equal(one[key], two[key])


def test_group_and_frame_sigmas():
    """A group with a huge sigma carries no weight: the fit equals the fit without it."""
    good = emt_frames(6, seed=11)
    junk = emt_frames(3, seed=12, group="junk")
    for a in junk:
        a.calc.results["energy"] += 5.0
        a.calc.results["forces"] = a.calc.results["forces"] + 1.0
    points = soap().compute(good[0])
    points /= np.linalg.norm(points, axis=1)[:, None]
    kw = dict(sparse_points=(points[:20], ["Cu"] * 20), e0={"Cu": -0.1}, delta=0.5)
    ref = mlpot.GAP(soap(), **kw).fit(good, progress=False)
    big = mlpot.GAP(soap(), group_sigma={"junk": (1e6, 1e6, 1e6)}, **kw).fit(good + junk, progress=False)
    np.testing.assert_allclose(big.alpha, ref.alpha, rtol=1e-6, atol=1e-9)
    for a in junk:
        a.info.update(energy_sigma=1e7, force_sigma=1e7, virial_sigma=1e7)
    per_frame = mlpot.GAP(soap(), **kw).fit(good + junk, progress=False)
    np.testing.assert_allclose(per_frame.alpha, ref.alpha, rtol=1e-6, atol=1e-9)
    for a in junk:
        del a.info["energy_sigma"], a.info["force_sigma"], a.info["virial_sigma"]
    plain = mlpot.GAP(soap(), **kw).fit(good + junk, progress=False)
    assert np.abs(plain.alpha - ref.alpha).max() > 1e-3


def test_e0_default_is_the_least_squares_energy_per_atom(alloy_model):
    model, frames = alloy_model
    counts = np.array([[np.sum(a.numbers == 13), np.sum(a.numbers == 29)] for a in frames])
    energies = np.array([a.get_potential_energy() for a in frames])
    e0 = np.linalg.lstsq(counts, energies, rcond=None)[0]
    assert model.e0_values == pytest.approx({"Al": e0[0], "Cu": e0[1]})
    # a single atom of each kind: e0 plus nothing within the cutoff (its own density only)
    given = mlpot.GAP(soap(), n_sparse=10, e0={"Cu": -0.25}).fit(emt_frames(3, seed=4), progress=False)
    assert given.e0_values == {"Cu": -0.25}


def test_sparse_point_selection():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 4))
    x[:, :2] = rng.standard_normal((50, 2))
    x[17] = [0, 0, 1.0, 0]  # the only point with a component along z: leverage 1
    x /= np.linalg.norm(x, axis=1)[:, None]
    for method in ("cur", "fps", "random"):
        chosen = select_sparse(x, 5, method, zeta=2)
        assert len(chosen) == len(set(chosen)) == 5
    assert 17 in select_sparse(x, 3, "fps", zeta=2)
    # duplicates count once, and fewer distinct rows than asked returns them all
    np.testing.assert_array_equal(select_sparse(np.vstack([x[:3], x[:3]]), 10, "cur"), [0, 1, 2])
    with pytest.raises(ValueError, match="sparse_method"):
        select_sparse(x, 3, "kmeans")


def _cluster_and_outposts(n_cluster=300, seed=1):
    """A dense cluster of unit vectors near e_0 (noise 0.01 in five directions) and three
    distinct points along e_6, e_7, e_8 (the last rows)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_cluster + 3, 9))
    x[:n_cluster, 0] = 1.0
    x[:n_cluster, 1:6] = 0.01 * rng.standard_normal((n_cluster, 5))
    x[n_cluster:, 6:] = np.eye(3)
    return x / np.linalg.norm(x, axis=1)[:, None]


def test_cur_is_randomised_leverage_sampling():
    x = _cluster_and_outposts()
    outposts = {300, 301, 302}
    picks = [select_sparse(x, 10, "cur", seed=s) for s in range(20)]
    # deterministic for a seed, different between seeds (the rest of the cluster is sampled)
    np.testing.assert_array_equal(select_sparse(x, 10, "cur", seed=3), picks[3])
    assert len({tuple(p) for p in picks}) > 1
    for p in picks:
        assert len(p) == len(set(p)) == 10
        # the distinct points carry leverage 1/4 each on the top half of the spectrum (a cluster
        # point 1/1200): kept for every seed
        assert outposts <= set(p.tolist())
    # uniform sampling finds them only by chance (3 of 303 rows, 10 draws: about 1 in 10)
    hits = sum(len(outposts & set(select_sparse(x, 10, "random", seed=s).tolist())) for s in range(20))
    assert hits < 20 * 3 / 2


def test_save_and_load_round_trip_exactly(tmp_path, alloy_model):
    model, _ = alloy_model
    model.baseline = mlpot.ZBL(1.5, 2.0)
    try:
        path = tmp_path / "gap.json"
        model.save(path)
        loaded = mlpot.load(path)
        atoms = emt_frames(1, seed=6, elements=("Cu", "Al"))[0]
        a, b = model.predict(atoms, variance=True), loaded.predict(atoms, variance=True)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        assert loaded.to_dict() == model.to_dict()
        mlpot.modelfile.save(model, path, version=1)  # the JSON text of version 1, to edit
    finally:
        model.baseline = None
    document = json.loads(path.read_text())
    document["terms"][0]["alpha"] = document["terms"][0]["alpha"][:-1]
    path.write_text(json.dumps(document))
    with pytest.raises(mlpot.ModelFileError, match="alpha"):
        mlpot.load(path)
    del document["terms"]
    path.write_text(json.dumps(document))
    with pytest.raises(mlpot.ModelFileError, match="terms"):
        mlpot.load(path)


def test_bad_input_raises_clear_errors(cu_model):
    model, frames = cu_model
    with pytest.raises(RuntimeError, match="not fitted"):
        mlpot.GAP(soap()).predict(frames[0])
    with pytest.raises(ValueError, match="Al"):
        model.predict(emt_frames(1, seed=0, elements=("Cu", "Al"))[0])
    nan = frames[0].copy()
    nan.positions[0, 0] = np.nan
    with pytest.raises(ValueError):
        model.predict(nan)
    with pytest.raises(ValueError, match="zeta"):
        mlpot.GAP(soap(), zeta=-1)
    with pytest.raises(ValueError, match="sparse_method"):
        mlpot.GAP(soap(), sparse_method="pivot")
    with pytest.raises(TypeError, match="default_sigma"):
        mlpot.GAP(soap(), default_sigma=0.1)
    with pytest.raises(ValueError, match="default_sigma"):
        mlpot.GAP(soap(), default_sigma=(0.1, -1, 0.1))
    with pytest.raises(TypeError, match="SOAP or mlpot.Distance2b"):
        mlpot.GAP(mlpot.ZBL(1, 2))
    with pytest.raises(ValueError, match="e0 lacks"):
        mlpot.GAP(soap(), e0={"Al": 0.0}).fit(frames[:2], progress=False)
    bare = frames[0].copy()
    with pytest.raises(ValueError, match="no calculator"):
        mlpot.GAP(soap()).fit([bare], progress=False)
    with pytest.raises(ValueError, match="no frames"):
        mlpot.GAP(soap()).fit([], progress=False)
    with pytest.raises(ValueError, match="Al"):
        mlpot.GAP(soap()).fit(emt_frames(1, seed=0, elements=("Cu", "Al")), progress=False)
    with pytest.raises(ValueError, match="cutoff_transition_width"):
        mlpot.Distance2b(cutoff=3.0, cutoff_transition_width=4.0)


def test_one_neighbor_list_per_structure_for_soap_pair_and_zbl(alloy_model):
    """The terms of a model (SOAP, distance_2b, the ZBL baseline) share one neighbor list,
    built at the largest cutoff; each reads only its own pairs (tests/test_descriptor
    contract and the Rust contract tests check that a longer list changes nothing)."""
    from mlpot import _core

    model, _ = alloy_model
    atoms = emt_frames(1, seed=12, elements=("Cu", "Al"))[0]
    own = model.predict(atoms)
    model.baseline = mlpot.ZBL(1.5, 2.0)
    try:
        before = _core.lists_built()
        p = model.predict(atoms, variance=True)
        assert _core.lists_built() - before == 1
        zbl = mlpot.ZBL(1.5, 2.0).predict(atoms)
    finally:
        model.baseline = None
    for key in ("energy", "forces", "stress", "energies"):
        np.testing.assert_allclose(p[key], own[key] + zbl[key], rtol=1e-12, atol=1e-12)


def test_a_gap_on_the_bispectrum():
    """The GAP kernel takes any per-atom descriptor: on the bispectrum (its vectors used as
    they are) it fits EMT copper, with forces and stress the derivatives of its energy, and
    round-trips through a model file."""
    frames = emt_frames(8, seed=4)
    bs = mlpot.Bispectrum(twojmax=4, rcutfac=2.0, radelem={"Cu": 1.0})
    model = mlpot.GAP(bs, zeta=2, n_sparse=40, default_sigma=(0.001, 0.03, 0.01)).fit(frames, progress=False)
    assert model.descriptors[0] is bs
    test = emt_frames(4, seed=5)
    errors = mlpot.errors(model, test)
    assert errors.overall.energy_mae < 0.01 and errors.overall.force_mae < 0.1  # eV/atom, eV/A
    atoms = emt_frames(1, seed=6, reps=(1, 1, 2))[0]
    p = model.predict(atoms)
    # raw bispectrum components reach ~80, so the kernel values are large and the energy
    # differences lose digits to roundoff below h ~ 1e-3 (measured: 1e-5 at 1e-3, 2e-4 at 1e-4)
    forces, stress = numeric_forces_and_stress(model, atoms, h=1e-3)
    np.testing.assert_allclose(p["forces"], forces, atol=1e-4)
    np.testing.assert_allclose(p["stress"], stress, atol=3e-6)


def test_a_gap_on_the_bispectrum_round_trips(tmp_path):
    frames = emt_frames(4, seed=7)
    bs = mlpot.Bispectrum(twojmax=2, rcutfac=2.0, radelem={"Cu": 1.0})
    model = mlpot.GAP(bs, n_sparse=10).fit(frames, progress=False)
    path = tmp_path / "model.mlpot"
    model.save(path)
    loaded = mlpot.load(path)
    a, b = model.predict(frames[0], variance=True), loaded.predict(frames[0], variance=True)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert loaded.to_dict() == model.to_dict()
