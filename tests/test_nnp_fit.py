"""Training NNPs (mlpot.NNP.fit): the loss gradient against finite differences, the
optimisers, early stopping, learning curves, checkpoints and restarts, thread determinism,
committees and their spread, files. Labels come from ASE's EMT, standing in for DFT."""

import numpy as np
import pytest
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT

import mlpot
from mlpot.models import nnp_fit
from mlpot.models.nnp_fit import History, Settings
from snap_helpers import labelled


def cu_frames(n, seed, group="bulk", rattle=0.1, strain=0.02, reps=(2, 2, 2)):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(reps)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True)
        atoms.positions += rattle * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        frame = labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())
        frame.info["group"] = group
        out.append(frame)
    return out


def cual_frames(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 2, 1))
        atoms.set_chemical_symbols(rng.choice(["Cu", "Al"], len(atoms)))
        atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        out.append(labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


def acsf(species=("Cu",)):
    return mlpot.ACSF(cutoff=4.5, species=list(species))


@pytest.fixture(scope="module")
def frames():
    return cu_frames(24, seed=1) + cu_frames(8, seed=2, group="hot", rattle=0.2)


@pytest.fixture(scope="module")
def test_frames():
    return cu_frames(8, seed=9) + cu_frames(4, seed=10, group="hot", rattle=0.2)


def weights_of(model):
    return np.concatenate([np.concatenate([l.weights.ravel(), l.biases]) for m in model.members for e in m for l in m[e]])


# ------------------------------------------------------------------ the loss


@pytest.mark.parametrize("weights", [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (3.0, 1.0, 0.5)])
def test_the_loss_gradient_matches_finite_differences(weights):
    """Energy, force and stress parts separately and together, with per-group weights, two
    elements and a frame without forces."""
    frames = cual_frames(4, seed=3)
    frames[1].info["group"] = "other"
    frames[2].calc.results.pop("forces")
    model = mlpot.NNP(acsf(("Cu", "Al")), hidden=(4,), activation="softplus")
    model.fit(frames, *weights, group_weights={"other": {"eweight": 2.0, "fweight": 0.5}}, optimizer="lbfgs",
              epochs=1, lbfgs_iterations=1, validation=0.0, progress=False)
    data = nnp_fit._data(model, frames, *weights, {"other": {"eweight": 2.0, "fweight": 0.5}})
    objective = nnp_fit._Objective(data, model._term, nnp_fit._Units(0.01, 0.3, 0.002))
    theta = np.concatenate([np.concatenate([l.weights.ravel(), l.biases]) for e in model.species for l in model.networks[e]])
    frames_idx = np.arange(4)
    loss, g = objective.loss_and_gradient(theta, frames_idx)
    assert loss == pytest.approx(objective.loss(theta, frames_idx), rel=1e-14)
    rng = np.random.default_rng(0)
    for k in rng.choice(len(theta), 12, replace=False):
        h = 1e-6
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        numeric = (objective.loss(up, frames_idx) - objective.loss(down, frames_idx)) / (2 * h)
        assert g[k] == pytest.approx(numeric, rel=1e-5, abs=1e-8 * max(1.0, abs(loss))), k
    assert np.abs(g).max() > 0


# ------------------------------------------------------------------ training


def test_fit_alone_trains_a_good_model(frames, test_frames):
    model = mlpot.NNP(acsf()).fit(frames, progress=False)
    e = mlpot.errors(model, test_frames).overall
    # EMT Cu: the per-element energies alone are off by ~10 meV/atom; the forces' RMS is 2.1 eV/A
    force_rms = np.sqrt(np.mean(np.concatenate([f.get_forces() for f in test_frames]) ** 2))
    assert e.energy_rmse < 3e-3 and e.force_rmse < 0.08 * force_rms, (e.energy_rmse, e.force_rmse, force_rms)
    assert model.history.column("epoch")[-1] >= 5
    assert model.hidden == (24, 24) and model.activation == "t"
    assert all(model.scaling[el].mode == "scalesigma" for el in model.species)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_every_optimizer_learns(frames, optimizer):
    model = mlpot.NNP(acsf(), hidden=(8, 8)).fit(frames, optimizer=optimizer, epochs=15, progress=False)
    loss = model.history.column("loss")
    assert loss[-1] < 0.6 * loss[0], loss


def test_two_elements_train_one_network_each():
    frames = cual_frames(30, seed=4)
    model = mlpot.NNP(acsf(("Cu", "Al")), hidden=(8, 8)).fit(frames, epochs=8, progress=False)
    e = mlpot.errors(model, cual_frames(6, seed=5)).overall
    assert e.energy_rmse < 0.02 and e.force_rmse < 0.15, (e.energy_rmse, e.force_rmse)
    assert set(model.networks) == {"Cu", "Al"}
    assert model.atom_energies["Cu"] != model.atom_energies["Al"]


def test_the_kept_model_is_the_best_validation_epoch(frames):
    model = mlpot.NNP(acsf(), hidden=(8,)).fit(frames, epochs=12, patience=3, progress=False, seed=2)
    h = model.history
    best = int(np.argmin(h.column("validation_loss")))
    _, validation = nnp_fit.split([f.info["group"] for f in frames], 0.1, 2)
    e = mlpot.errors(model, [frames[k] for k in validation]).overall
    assert e.energy_rmse == pytest.approx(h.column("validation_energy_rmse")[best], rel=1e-9)
    assert e.force_rmse == pytest.approx(h.column("validation_force_rmse")[best], rel=1e-9)
    # stopped by patience: at most `patience` epochs after the best one
    assert len(h.column("epoch")) <= best + 1 + 3


def test_the_validation_split_is_stratified_by_group():
    groups = ["a"] * 20 + ["b"] * 10 + ["c"] * 2
    train, validation = nnp_fit.split(groups, 0.2, seed=0)
    labels = np.array(groups)
    assert (labels[validation] == "a").sum() == 4 and (labels[validation] == "b").sum() == 2
    assert sorted(np.concatenate([train, validation])) == list(range(32))
    assert np.array_equal(nnp_fit.split(groups, 0.2, seed=0)[1], validation)


def test_learning_curves_are_logged_and_plotted(frames, tmp_path):
    log = tmp_path / "curve.csv"
    model = mlpot.NNP(acsf(), hidden=(6,)).fit(frames, epochs=3, log=str(log), progress=False)
    h = History.read_csv(log)
    assert [r["epoch"] for r in h.rows] == [1, 2, 3]
    assert np.allclose(h.column("train_force_rmse"), model.history.column("train_force_rmse"))
    assert set(nnp_fit.COLUMNS) == set(h.rows[0])
    model.history.plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


@pytest.mark.parametrize("optimizer", ["kalman", "adam"])
def test_a_restart_continues_exactly(frames, tmp_path, optimizer, monkeypatch):
    options = dict(hidden=(6,), committee=2)
    settings = dict(optimizer=optimizer, patience=0, progress=False, seed=3)
    straight = mlpot.NNP(acsf(), **options).fit(frames, epochs=4, **settings)
    path = tmp_path / "check.npz"
    save = nnp_fit._save_checkpoint

    def crash_after_two(path, epoch, *args):
        save(path, epoch, *args)
        if epoch == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(nnp_fit, "_save_checkpoint", crash_after_two)
        with pytest.raises(KeyboardInterrupt):
            mlpot.NNP(acsf(), **options).fit(frames, epochs=4, checkpoint=str(path), **settings)
    resumed = mlpot.NNP(acsf(), **options).fit(frames, epochs=4, restart=str(path), **settings)
    assert np.array_equal(weights_of(straight), weights_of(resumed))
    assert len(resumed.history.rows) == len(straight.history.rows)
    with pytest.raises(ValueError, match="cannot restart"):
        mlpot.NNP(acsf(), hidden=(7,)).fit(frames, epochs=4, restart=str(path), **settings)
    with pytest.raises(ValueError, match="cannot restart"):
        mlpot.NNP(acsf(), **options).fit(frames, epochs=4, restart=str(tmp_path / "missing.npz"), **settings)


@pytest.mark.parametrize("optimizer", ["kalman", "lbfgs"])
def test_training_is_the_same_for_any_thread_count(frames, optimizer):
    results = []
    for threads in (1, 2):
        mlpot.set_num_threads(threads)
        try:
            m = mlpot.NNP(acsf(), hidden=(6,), committee=2).fit(frames, epochs=2, optimizer=optimizer, progress=False)
        finally:
            mlpot.set_num_threads(0)
        results.append(weights_of(m))
    assert np.array_equal(results[0], results[1])


def test_stress_training_lowers_the_stress_error(frames):
    """On the training frames (32 frames of 6 components: a heavy stress weight overfits
    them, at the cost of energies and forces)."""
    def stress_rmse(w):
        m = mlpot.NNP(acsf(), hidden=(8,)).fit(frames, 10.0, 1.0, w, optimizer="lbfgs", epochs=10, progress=False)
        return mlpot.errors(m, frames).overall.stress_rmse

    assert stress_rmse(30.0) < 0.7 * stress_rmse(0.0)


def test_a_baseline_is_subtracted_before_training(frames, test_frames):
    """ZBL reaching into the first neighbour shell (it is large there): the network learns
    the rest, and the model (network + ZBL) is as good as one without it."""
    def fitted(baseline):
        return mlpot.NNP(acsf(), hidden=(8,), baseline=baseline).fit(frames, epochs=8, progress=False)

    zbl = mlpot.ZBL(2.0, 2.8)
    atoms = test_frames[0]
    assert abs(zbl.predict(atoms)["energy"]) > 0.1 * len(atoms)
    with_zbl, without = mlpot.errors(fitted(zbl), test_frames).overall, mlpot.errors(fitted(None), test_frames).overall
    assert with_zbl.energy_rmse < 2 * without.energy_rmse + 1e-3
    assert with_zbl.force_rmse < 2 * without.force_rmse


# ------------------------------------------------------------------ committees


def test_a_committee_predicts_its_mean_and_spread(frames):
    model = mlpot.NNP(acsf(), hidden=(8,), committee=3).fit(frames, epochs=4, progress=False, bootstrap=True)
    assert model.committee == 3 and model.has_variance and len(model.members) == 3
    assert not np.array_equal(weights_of(model)[:50], weights_of(mlpot.NNP(acsf(), hidden=(8,), networks=model.members[1]))[:50])
    atoms = cu_frames(1, seed=20)[0]
    p = model.predict(atoms, variance=True)
    singles = [mlpot.NNP(acsf(), networks=m, scaling=model.scaling, energy_scale=model.energy_scale,
                         atom_energies=model.atom_energies).predict(atoms) for m in model.members]
    assert p["energy"] == pytest.approx(np.mean([s["energy"] for s in singles]), rel=1e-12)
    np.testing.assert_allclose(p["forces"], np.mean([s["forces"] for s in singles], axis=0), atol=1e-12)
    np.testing.assert_allclose(p["energies_std"], np.std([s["energies"] for s in singles], axis=0, ddof=1), atol=1e-12)
    np.testing.assert_allclose(p["forces_std"], np.std([s["forces"] for s in singles], axis=0, ddof=1), atol=1e-12)
    assert p["energy_std"] == pytest.approx(np.std([s["energy"] for s in singles], ddof=1), rel=1e-10)
    atoms.calc = model.calculator(variance=True)
    assert atoms.calc.get_property("energy_std", atoms) == pytest.approx(p["energy_std"])
    np.testing.assert_allclose(atoms.calc.get_property("forces_std", atoms), p["forces_std"])
    with pytest.raises(ValueError, match="committee"):
        mlpot.NNP(acsf(), networks=model.members[0], scaling=model.scaling).predict(atoms, variance=True)


def test_the_committee_spread_grows_away_from_the_training_data(frames):
    model = mlpot.NNP(acsf(), hidden=(12,), committee=4).fit(frames, epochs=8, progress=False)
    inside = cu_frames(1, seed=30)[0]
    slab = fcc111("Cu", size=(2, 2, 4), vacuum=5.0, a=3.6)
    slab.pbc = True
    compressed = bulk("Cu", "fcc", a=3.2, cubic=True).repeat((2, 2, 2))
    spread = lambda a: model.predict(a, variance=True)["energies_std"].mean()
    assert spread(slab) > 3 * spread(inside) and spread(compressed) > 3 * spread(inside)


def test_committee_files_round_trip_and_export_one_member(frames, tmp_path):
    model = mlpot.NNP(acsf(), hidden=(6,), committee=2).fit(frames, epochs=2, progress=False)
    model.save(tmp_path / "m.mlpot")
    loaded = mlpot.load(tmp_path / "m.mlpot")
    atoms = cu_frames(1, seed=40)[0]
    p, q = model.predict(atoms, variance=True), loaded.predict(atoms, variance=True)
    for key in p:
        assert np.asarray(p[key]).tobytes() == np.asarray(q[key]).tobytes(), key
    with pytest.raises(mlpot.n2p2.N2P2Error, match="member"):
        mlpot.n2p2.write(model, tmp_path / "n2p2")
    mlpot.n2p2.write(model, tmp_path / "n2p2", member=1)
    one = mlpot.n2p2.read(tmp_path / "n2p2")
    single = mlpot.NNP(acsf(), networks=model.members[1], scaling=model.scaling, energy_scale=model.energy_scale,
                       atom_energies=model.atom_energies)
    assert one.predict(atoms)["energy"] == pytest.approx(single.predict(atoms)["energy"], abs=1e-10)


# ------------------------------------------------------------------ bad input


def test_bad_settings_and_data_are_clear_errors(frames):
    model = mlpot.NNP(acsf(), hidden=(4,))
    with pytest.raises(TypeError, match="unknown setting"):
        model.fit(frames, epoch=3)
    with pytest.raises(ValueError, match="optimizer"):
        model.fit(frames, optimizer="sgd")
    with pytest.raises(ValueError, match="kalman.eta0"):
        model.fit(frames, kalman={"eta0": -1.0})
    with pytest.raises(ValueError, match="unknown kalman"):
        model.fit(frames, kalman={"lambda": 0.9})
    with pytest.raises(ValueError, match="validation"):
        model.fit(frames, validation=1.0)
    with pytest.raises(ValueError, match="stress"):
        model.fit(frames, stress_weight=1.0, progress=False)
    with pytest.raises(ValueError, match="Al"):
        model.fit(cual_frames(2, seed=1), progress=False)
    with pytest.raises(ValueError, match="at least one frame"):
        model.fit([], progress=False)
    with pytest.raises(ValueError, match="committee"):
        mlpot.NNP(acsf(), committee=0)
    with pytest.raises(ValueError, match="energy_weight"):
        model.fit(frames, energy_weight=-1.0, progress=False)
    assert Settings().n_epochs == 40 and Settings(optimizer="adam").n_epochs == 300


def test_mlpot_fit_trains_an_nnp_from_a_configuration(tmp_path):
    from ase.io import write

    from mlpot.cli import ConfigError, main, run_fit

    write(tmp_path / "train.extxyz", cu_frames(16, seed=50))
    config = """
[data]
train = ["train.extxyz"]
validation_fraction = 0.25
[descriptor]
cutoff = 4.5
species = ["Cu"]
[model]
type = "nnp"
hidden = [6]
committee = 2
epochs = 2
kalman_force_updates = 2
log = "curve.csv"
[groups.bulk]
eweight = 5.0
[output]
model = "cu.mlpot"
"""
    (tmp_path / "nnp.toml").write_text(config)
    main(["fit", str(tmp_path / "nnp.toml")])
    model = mlpot.load(tmp_path / "cu.mlpot")
    assert model.kind == "NNP" and model.committee == 2 and model.hidden == (6,)
    assert len(History.read_csv(tmp_path / "curve.csv").rows) == 4  # 2 members x 2 epochs
    (tmp_path / "bad.toml").write_text(config.replace("kalman_force_updates = 2", "kalman_force_updates = -2"))
    with pytest.raises(ConfigError, match=r"\[model\].*kalman_force_updates"):
        run_fit(tmp_path / "bad.toml", progress=False)
    (tmp_path / "bad.toml").write_text(config.replace("hidden = [6]", "hidden = [6.5]"))
    with pytest.raises(ConfigError, match=r"\[model\].*hidden"):
        run_fit(tmp_path / "bad.toml", progress=False)


def test_the_kalman_error_limit_bounds_each_update(frames):
    """max_error clamps each observation's error: at a tiny limit the weights barely move."""
    settings = dict(hidden=(6,))
    free = mlpot.NNP(acsf(), **settings).fit(frames, epochs=2, patience=0, progress=False)
    held = mlpot.NNP(acsf(), **settings).fit(frames, epochs=2, patience=0, progress=False, kalman={"max_error": 1e-9})
    assert held.history.column("loss")[-1] > 10 * free.history.column("loss")[-1]
    with pytest.raises(ValueError, match="max_error"):
        mlpot.NNP(acsf(), **settings).fit(frames, kalman={"max_error": 0.0})


def test_the_force_threshold_sends_updates_where_the_errors_are(frames):
    """n2p2's selection_mode 2: with a threshold, force updates land on the components
    whose error exceeds it far more often than uniform draws do (one of 3 x 32 x 24 here),
    and without errors to go by the draws are uniform."""
    model = mlpot.NNP(acsf(), hidden=(4,))
    data = nnp_fit._data(model, frames, 30.0, 1.0, 0.0, None)
    units = nnp_fit._Units(0.01, 1.0, 1.0)
    error = np.full((len(data.types), 3), 0.01)
    hot = data.starts[:-1] + 5  # atom 5 of each frame, axis 1, is badly predicted
    error[hot, 1] = 1.0
    idx = np.arange(len(frames))

    def hits(settings, force_error):
        rows, _ = nnp_fit.kalman_schedule(data, idx, settings, units, np.random.default_rng(7), force_error)
        forces = rows[rows[:, 1] >= 0]
        return np.mean((forces[:, 1] == 5) & (forces[:, 2] == 1)), len(rows)

    uniform, n_uniform = hits(Settings(), error)
    chosen, n_chosen = hits(Settings(kalman={"force_threshold": 1.0, "threshold_trials": 100}), error)
    unaware, _ = hits(Settings(kalman={"force_threshold": 1.0}), None)
    assert n_uniform == n_chosen  # the same number of updates
    assert uniform < 0.05 and unaware < 0.05
    assert chosen > 0.5
    with pytest.raises(ValueError, match="force_threshold"):
        model.fit(frames, kalman={"force_threshold": -1.0})
    with pytest.raises(ValueError, match="threshold_trials"):
        model.fit(frames, kalman={"threshold_trials": 0})
    trained = mlpot.NNP(acsf(), hidden=(6,)).fit(frames, epochs=2, patience=0, progress=False, kalman={"force_threshold": 1.0})
    assert np.isfinite(trained.history.column("loss")).all()
