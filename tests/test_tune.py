"""mlpot.tune: hyperparameters chosen by k-fold cross-validation (issue 11).

Checked against independent computations: merged fold systems solve as one system of all
frames; a fold's scores from its factors equal mlpot.errors of predictions; the CV table
equals models fitted from the training frames themselves; the refitted model equals a fit
from the frames; a grid search picks what a brute-force loop of fits picks."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpot
from mlpot.demo_data import emt_dataset
from mlpot.models.system import LinearSystem
from mlpot.tuning import CVTable, fold_labels
from test_model_contract import emt_frames


def bispectrum():
    return mlpot.Bispectrum(4, 4.1, radelem={"Cu": 0.5, "Al": 0.55}, wj={"Cu": 1.0, "Al": 0.9})


def grouped(frames, names=("rattled", "strained", "hot")):
    for k, atoms in enumerate(frames):
        atoms.info["group"] = names[k % len(names)]
    return frames


@pytest.fixture(scope="module")
def frames():
    return grouped(emt_frames(24, seed=3))


@pytest.fixture(scope="module")
def cu_frames():
    train, validation = emt_dataset(1, frames_per_group=5)
    return train + validation


def snap():
    return mlpot.SNAP(bispectrum(), quadratic=True)


def gap():
    return mlpot.GAP(mlpot.SOAP(cutoff=3.5, n_max=3, l_max=2, species=["Cu", "Al"]), n_sparse=15)


# ----------------------------------------------------------------------- folds


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=5), folds=st.integers(2, 6), seed=st.integers(0, 99))
def test_stratified_folds_split_every_group_evenly(sizes, folds, seed):
    class Frame:
        def __init__(self, group):
            self.info = {"group": group}

    frames = [Frame(f"g{g}") for g, n in enumerate(sizes) for _ in range(n)]
    if len(frames) < folds:
        with pytest.raises(ValueError, match="at least"):
            fold_labels(frames, folds, seed=seed)
        return
    labels = fold_labels(frames, folds, seed=seed)
    assert labels.shape == (len(frames),) and set(labels.tolist()) <= set(range(folds))
    start = 0
    for n in sizes:
        counts = np.bincount(labels[start : start + n], minlength=folds)
        assert counts.max() - counts.min() <= 1  # each group dealt evenly
        start += n
    total = np.bincount(labels, minlength=folds)
    assert total.max() - total.min() <= 1  # and the folds stay the same size
    assert np.array_equal(labels, fold_labels(frames, folds, seed=seed))


@pytest.mark.parametrize("folds", [1, 0, 2.5, True])
def test_bad_fold_counts_are_value_errors(frames, folds):
    with pytest.raises(ValueError, match="folds"):
        fold_labels(frames, folds)


# ------------------------------------------------------------- merged systems


@pytest.mark.parametrize("solver", ["svd", "normal"])
def test_merged_parts_solve_as_the_system_of_all_frames(frames, solver):
    model = snap()
    labels = fold_labels(frames, 3, seed=1)
    parts = model.assemble(frames, progress=False, parts=labels)
    whole = model.assemble(frames, progress=False)
    merged = LinearSystem.merged(parts)
    assert merged.n_frames == whole.n_frames and set(merged.groups) == set(whole.groups)
    for kind in ("energy", "forces", "stress"):
        for group in whole.groups:
            assert merged.n_rows(group, kind) == whole.n_rows(group, kind)
    fit = dict(energy_weight=30.0, stress_weight=1e-4, ridge=1e-6, solver=solver, progress=False)
    a = mlpot.SNAP(bispectrum(), quadratic=True).fit(merged, **fit)
    b = mlpot.SNAP(bispectrum(), quadratic=True).fit(whole, **fit)
    for e, c in b.coefficients.items():
        # normal equations square the conditioning (~1e10 here): agreement to ~1e-6
        tol = 1e-8 if solver == "svd" else 1e-5
        assert np.allclose(a.coefficients[e], c, rtol=tol, atol=tol * np.abs(c).max())
    # what the normal equations solve is the same to rounding
    weight = model.block_weights(model.resolve_hyperparameters(model.hyperparameters(), whole))
    (ga, na), (gb, nb) = merged.weighted_gram(weight), whole.weighted_gram(weight)
    assert na == nb and np.allclose(ga, gb, rtol=1e-11, atol=1e-11 * np.abs(gb).max())


def test_systems_of_other_models_do_not_merge(frames):
    a = snap().assemble(frames[:4], progress=False)
    b = mlpot.SNAP(bispectrum(), quadratic=False).assemble(frames[4:8], progress=False)
    with pytest.raises(ValueError, match="same model"):
        LinearSystem.merged([a, b])
    with pytest.raises(ValueError, match="at least one"):
        LinearSystem.merged([])


@pytest.mark.parametrize("make", [snap, gap], ids=["snap", "gap"])
def test_scores_from_the_factors_equal_errors_of_predictions(frames, make):
    model = make()
    labels = fold_labels(frames, 3, seed=0)
    parts = model.assemble(frames, progress=False, parts=labels, keep_rows=True)
    params = model.hyperparameters()
    if hasattr(model, "resolve_hyperparameters"):
        params = model.resolve_hyperparameters(params, LinearSystem.merged(parts))
    model.fit(LinearSystem.merged(parts[1:]), **params)
    x = model.solve_system(LinearSystem.merged(parts[1:]), params)
    scores = parts[0].scores(x)
    held_out = [a for a, label in zip(frames, labels) if label == 0]
    table = mlpot.errors(model, held_out)
    for group, g in table.groups.items():
        s = scores[group]
        sse, sae, n = s["energy"]
        assert n == g.n_frames
        assert math.isclose(math.sqrt(sse / n), g.energy_rmse, rel_tol=1e-7)
        assert math.isclose(sae / n, g.energy_mae, rel_tol=1e-7)
        sse, _, n = s["forces"]
        assert n == g.n_force_components
        assert math.isclose(math.sqrt(sse / n), g.force_rmse, rel_tol=1e-6)
        sse, sae, n = s["stress"]
        assert n == 6 * g.n_stress_frames
        assert math.isclose(math.sqrt(sse / n), g.stress_rmse, rel_tol=1e-6)
        assert math.isclose(sae / n, g.stress_mae, rel_tol=1e-6)


# ------------------------------------------------------------------------ tune


def test_tune_refits_on_all_frames_and_its_table_is_the_folds_own_fits(frames):
    result = mlpot.tune(snap(), frames, folds=3, trials=12, seed=2, progress=False)
    params = result.params
    assert set(params) == set(snap().hyperparameters())
    # the refit is the fit of all frames with the chosen settings
    direct = snap().fit(frames, progress=False, **params)
    for e, c in direct.coefficients.items():
        assert np.allclose(result.model.coefficients[e], c, rtol=1e-8, atol=1e-8 * np.abs(c).max())
    # each fold's row of the table is a model fitted from its training frames alone
    for v in range(3):
        train = [a for a, label in zip(frames, result.folds) if label != v]
        held_out = [a for a, label in zip(frames, result.folds) if label == v]
        fold_model = snap().fit(train, progress=False, **params)
        expected = mlpot.errors(fold_model, held_out).overall
        got = result.cv.folds[v]["overall"]
        for key in ("energy_mae", "energy_rmse", "force_mae", "force_rmse", "stress_rmse"):
            assert math.isclose(got[key], getattr(expected, key), rel_tol=1e-6), key
    # the mean and spread over folds
    maes = [f["overall"]["energy_mae"] for f in result.cv.folds]
    assert math.isclose(result.cv.rows["all"]["energy_mae"], np.mean(maes))
    assert math.isclose(result.cv.rows["all"]["energy_mae_std"], np.std(maes, ddof=1))
    # the score is the default metric of the pooled held-out errors
    s = result.scores
    assert math.isclose(result.score, s["energy_rmse"] / 1e-3 + s["forces_rmse"] / 0.05)
    assert len(result.trials) <= 12 and all(t["score"] >= 0 for t in result.trials)
    text = str(result)
    assert "rattled" in text and "E MAE" in text and "±" in text


def test_a_grid_search_picks_what_fitting_every_value_picks(cu_frames):
    descriptor = mlpot.Bispectrum(4, 4.0, radelem={"Cu": 0.5}, wj={"Cu": 1.0})
    values = [1.0, 30.0, 3000.0]
    result = mlpot.tune(
        mlpot.SNAP(descriptor), cu_frames, {"energy_weight": values, "stress_weight": 0.0}, folds=3, progress=False
    )
    assert len(result.trials) == 3
    # brute force: fit each value on each fold's training frames, pool the held-out errors
    scores = []
    for w in values:
        se = sf = 0.0
        ne = nf = 0
        for v in range(3):
            train = [a for a, label in zip(cu_frames, result.folds) if label != v]
            held_out = [a for a, label in zip(cu_frames, result.folds) if label == v]
            m = mlpot.SNAP(descriptor).fit(train, energy_weight=w, stress_weight=0.0, progress=False)
            p = mlpot.errors(m, held_out).parity
            se += float(np.sum((p.energy_predicted - p.energy_reference) ** 2))
            sf += float(np.sum((p.forces_predicted - p.forces_reference) ** 2))
            ne += p.energy_reference.size
            nf += p.forces_reference.size
        scores.append(math.sqrt(se / ne) / 1e-3 + math.sqrt(sf / nf) / 0.05)
    assert result.params["energy_weight"] == values[int(np.argmin(scores))]
    assert math.isclose(result.score, min(scores), rel_tol=1e-6)


def test_continuous_ranges_group_weights_and_a_callable_metric(frames, tmp_path):
    space = {
        "energy_weight": mlpot.LogUniform(1.0, 1e4),
        "ridge": mlpot.LogUniform(1e-8, 1e2),
        "group_weights": {"hot": {"fweight": mlpot.Uniform(0.5, 2.0)}},
    }
    metric = lambda s: s["energy_mae"] / 1e-3 + s["forces_rmse"] / 0.1  # noqa: E731
    out = tmp_path / "cv.json"
    result = mlpot.tune(snap(), frames, space, folds=3, trials=20, metric=metric, progress=False, out=out)
    p = result.params
    assert 1.0 <= p["energy_weight"] <= 1e4 and 1e-8 <= p["ridge"] <= 1e2
    assert 0.5 <= p["group_weights"]["hot"]["fweight"] <= 2.0
    assert math.isclose(result.score, metric(result.scores))
    # the search is deterministic for a seed
    again = mlpot.tune(snap(), frames, space, folds=3, trials=20, metric=metric, progress=False)
    assert again.params == p
    import json

    saved = json.loads(out.read_text())
    assert saved["params"]["energy_weight"] == p["energy_weight"] and "rows" in saved["cv"]


def test_gap_sigmas_are_tuned_and_the_refit_is_a_fit_from_frames(frames):
    space = {"default_sigma": (mlpot.LogUniform(1e-4, 1e-2), mlpot.LogUniform(0.01, 0.3), 0.05)}
    result = mlpot.tune(gap(), frames, space, folds=3, trials=8, progress=False)
    sigma = result.params["default_sigma"]
    assert isinstance(sigma, tuple) and sigma[2] == 0.05 and 1e-4 <= sigma[0] <= 1e-2
    assert result.model.default_sigma == sigma
    direct = gap()
    direct.default_sigma = sigma
    direct.fit(frames, progress=False)
    assert np.allclose(result.model.alpha, direct.alpha, rtol=1e-6, atol=1e-8 * np.abs(direct.alpha).max())
    assert "F MAE" in str(result.cv)


def test_an_outer_loop_over_descriptors_keeps_the_best(frames):
    small = mlpot.SNAP(mlpot.Bispectrum(2, 4.1, radelem={"Cu": 0.5, "Al": 0.55}, wj={"Cu": 1.0, "Al": 0.9}))
    result = mlpot.tune([small, snap()], frames, {"energy_weight": [10.0, 100.0]}, folds=3, progress=False)
    assert len(result.candidates) == 2
    best = min(result.candidates, key=lambda c: c["score"])
    assert result.score == best["score"]
    assert result.model is (small if best is result.candidates[0] else result.model)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"space": {"jitter": 1.0}}, ValueError, "not a tunable"),
        ({"space": {"energy_weight": mlpot.LogUniform(1, 10)}, "search": "grid"}, ValueError, "list of values"),
        ({"metric": {"energy": -1.0}}, ValueError, "noise level"),
        ({"metric": {"charge": 1.0}}, ValueError, "metric"),
        ({"trials": 0}, ValueError, "trials"),
        ({"search": "bayes"}, ValueError, "search"),
        ({"stratify": "element"}, ValueError, "stratify"),
        ({"space": {"energy_weight": []}}, ValueError, "empty"),
    ],
)
def test_bad_arguments_are_clear_errors(frames, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlpot.tune(snap(), frames, folds=3, progress=False, **kwargs)


def test_the_default_energy_weight_balances_force_and_energy_rows(frames):
    from mlpot.models.linear import default_energy_weight

    n_atoms = np.mean([len(a) for a in frames])
    assert math.isclose(default_energy_weight(frames), 50.0 * math.sqrt(3 * n_atoms))
    system = snap().assemble(frames, progress=False)
    assert math.isclose(default_energy_weight(system), 50.0 * math.sqrt(3 * n_atoms))
    # fit(frames) without weights uses it, from frames or from their system alike
    a = snap().fit(iter(frames), progress=False)
    b = snap().fit(frames, energy_weight=50.0 * math.sqrt(3 * n_atoms), progress=False)
    c = snap().fit(system, progress=False)
    for e, coefficients in b.coefficients.items():
        assert np.allclose(a.coefficients[e], coefficients, rtol=1e-10, atol=1e-12)
        assert np.allclose(c.coefficients[e], coefficients, rtol=1e-8, atol=1e-8 * np.abs(coefficients).max())


def test_bad_ranges_and_untunable_models():
    with pytest.raises(ValueError, match="0 < low < high"):
        mlpot.LogUniform(0.0, 1.0)
    with pytest.raises(ValueError, match="low < high"):
        mlpot.Uniform(2.0, 1.0)
    with pytest.raises(TypeError, match="cannot be tuned"):
        mlpot.tune(object(), [])


def test_the_cv_table_of_folds_missing_a_group():
    row = {"n_frames": 2, "n_atoms": 8, "energy_mae": 0.001, "energy_rmse": 0.002, "n_force_components": 24,
           "force_mae": 0.1, "force_rmse": 0.2, "n_stress_frames": 0, "stress_mae": float("nan"),
           "stress_rmse": float("nan")}
    folds = [{"overall": row, "groups": {"a": row}}, {"overall": dict(row, energy_mae=0.003), "groups": {}}]
    table = CVTable(folds)
    assert table.rows["a"]["folds"] == 1 and table.rows["a"]["energy_mae_std"] == 0.0
    assert math.isclose(table.rows["all"]["energy_mae"], 0.002)
    assert "stress_mae" not in table.rows["all"]


# ------------------------------------------------------------------- mlpot fit

SEARCH_CONFIG = """
[data]
train = ["train.extxyz"]

[descriptor]
twojmax = 4
rcutfac = 4.1
radelem = { Cu = 0.5, Al = 0.55 }
wj = { Cu = 1.0, Al = 0.9 }

[model]
quadratic = true
stress_weight = 0.0

[groups.hot]
fweight = 2.0

[search]
folds = 3
trials = 6
seed = 1
metric = { energy = 0.002, forces = 0.05 }

[search.space]
energy_weight = { log = [1.0, 1e3] }
ridge = [1e-6, 1e-2]
[search.space.group_weights.hot]
eweight = { uniform = [1.0, 100.0] }

[output]
model = "tuned.mlpot"
"""


def test_a_search_table_tunes_then_fits_in_mlpot_fit(tmp_path, frames, capsys):
    from ase.io import write as ase_write

    from mlpot import cli

    ase_write(tmp_path / "train.extxyz", frames)
    (tmp_path / "fit.toml").write_text(SEARCH_CONFIG)
    assert cli.main(["fit", str(tmp_path / "fit.toml"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cross-validation" in out and "E MAE" in out
    import json

    saved = json.loads((tmp_path / "tuned.mlpot.cv.json").read_text())
    params = saved["params"]
    assert params["stress_weight"] == 0.0 and params["ridge"] in (1e-6, 1e-2)
    assert params["group_weights"]["hot"]["fweight"] == 2.0 and 1.0 <= params["group_weights"]["hot"]["eweight"] <= 100
    # the saved model is the fit of all frames with the chosen settings
    model = mlpot.load(tmp_path / "tuned.mlpot")
    train = mlpot.io.read(str(tmp_path / "train.extxyz"))
    expected = snap().fit(train, progress=False, **params)
    for e, c in expected.coefficients.items():
        assert np.allclose(model.coefficients[e], c, rtol=1e-8, atol=1e-8 * np.abs(c).max())


@pytest.mark.parametrize(
    "replace, message",
    [
        ("folds = 3", "folds = 3\nbudget = 4"),
        ("folds = 3", 'folds = "3"'),
        ("seed = 1", 'stratify = "element"'),
        ("ridge = [1e-6, 1e-2]", "jitter = 1e-8"),
        ("ridge = [1e-6, 1e-2]", "ridge = { log = [1e-2] }"),
        ("ridge = [1e-6, 1e-2]", "ridge = { log = [1.0, 0.1] }"),
    ],
)
def test_bad_search_tables_are_config_errors(tmp_path, frames, replace, message):
    from ase.io import write as ase_write

    from mlpot import cli

    ase_write(tmp_path / "train.extxyz", frames[:6])
    (tmp_path / "fit.toml").write_text(SEARCH_CONFIG.replace(replace, message))
    with pytest.raises(cli.ConfigError, match=r"\[search"):
        cli.run_fit(tmp_path / "fit.toml", progress=False)
