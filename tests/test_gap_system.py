"""mlpot.GAP.assemble: kernel rows computed once, then fits with many sigmas. Every fit from
the system must equal the fit from the frames with the same sigmas (weights, predictions
and predicted variance), and the closed-form sparse-GP mean of a dense system stacked here
by hand with per-group and per-frame sigmas."""

import numpy as np
import pytest
import scipy.linalg

import mlpot
from mlpot.demo_data import emt_dataset
from mlpot.models import GAPSystem, LinearSystem
from mlpot.models.gap import _structure
from mlpot.models.lstsq import QRAccumulator
from snap_helpers import descriptor


def terms():
    return [
        mlpot.SOAP(cutoff=4.0, n_max=4, l_max=3, atom_sigma=0.5, species=["Cu"]),
        mlpot.Distance2b(cutoff=4.0, n_sparse=10),
    ]


def gap(**settings):
    return mlpot.GAP(terms(), n_sparse=40, **settings)


@pytest.fixture(scope="module")
def data():
    """EMT Cu in six groups (bulk, strained, vacancy, surface slab without stress, MD);
    one frame with an absolute energy sigma, one with an absolute force sigma."""
    train, valid = emt_dataset(seed=0, frames_per_group=4, repeat=2)
    train[0].info["energy_sigma"] = 0.05  # eV
    train[7].info["force_sigma"] = 0.3  # eV/Angstrom
    return train, valid


SETTINGS = [
    dict(default_sigma=(0.01, 0.05, 0.01), group_sigma={}),
    dict(
        default_sigma=(0.003, 0.02, 0.2),
        group_sigma={"vacancy": (0.02, 0.1, 0.5), "surface": (0.001, 0.3, 1.0)},
    ),
]


def test_fits_from_a_system_equal_fits_from_frames(data):
    train, valid = data
    model = gap()
    system = model.assemble(train, progress=False)
    assert isinstance(system, GAPSystem) and system.n_frames == len(train)
    assert set(system.groups) == {a.info["group"] for a in train}
    assert system.n_rows(train[0].info["group"], "energy_sigma") == 1
    assert system.n_rows(train[7].info["group"], "force_sigma") == 3 * len(train[7])
    assert sum(system.n_rows(g, "energy") for g in system.groups) == len(train) - 1
    assert system.n_rows("surface", "virial") == 0  # the slab has no stress
    for settings in SETTINGS:
        model.default_sigma = settings["default_sigma"]
        model.group_sigma = settings["group_sigma"]
        model.fit(system)
        reference = gap(**settings).fit(train, progress=False)
        # alpha ~1e5 (K_MM + 1e-10 is nearly singular, as in gap_fit): two orders of the
        # same QR agree to its conditioning, the predictions to rounding
        scale = np.abs(reference.alpha).max()
        np.testing.assert_allclose(model.alpha, reference.alpha, rtol=0, atol=1e-7 * scale)
        gram = reference._posterior.T @ reference._posterior  # K_MM + K_MN Sigma^-1 K_NM
        np.testing.assert_allclose(model._posterior.T @ model._posterior, gram, rtol=0, atol=1e-13 * np.abs(gram).max())
        assert model.e0_values == reference.e0_values
        for atoms in valid[::2]:
            p, q = model.predict(atoms, variance=True), reference.predict(atoms, variance=True)
            for key in ("energy", "forces", "energies_variance", "energy_variance"):
                np.testing.assert_allclose(p[key], q[key], rtol=1e-8, atol=1e-8 * np.abs(q[key]).max())


def test_a_system_fit_is_the_sparse_gp_mean_with_group_and_frame_sigmas(data):
    """Against the closed form on a dense system stacked here from the kernel rows, each
    observation with the sigma gap_fit would give it (well conditioned: jitter 1e-3)."""
    train, _ = data
    settings = SETTINGS[1]
    model = gap(jitter=1e-3)
    system = model.assemble(train, progress=False)
    model.default_sigma, model.group_sigma = settings["default_sigma"], settings["group_sigma"]
    model.fit(system)
    e0 = model.e0_values["Cu"]
    ks, ys, sigmas = [], [], []
    for atoms in train:
        rows = [t.core.rows(_structure(atoms, [29])) for t in model._terms]
        n = len(atoms)
        e, f, v = settings["group_sigma"].get(atoms.info["group"], settings["default_sigma"])
        e = atoms.info.get("energy_sigma", e * np.sqrt(n))
        f = atoms.info.get("force_sigma", f)
        ks += [np.concatenate([r["energy"] for r in rows])[None], np.hstack([r["forces"] for r in rows])]
        ys += [[atoms.get_potential_energy() - n * e0], atoms.get_forces().ravel()]
        sigmas += [[e], np.full(3 * n, f)]
        if "stress" in atoms.calc.results:
            ks.append(np.hstack([r["virial"] for r in rows]))
            ys.append(-atoms.get_stress() * atoms.get_volume())
            sigmas.append(np.full(6, v * np.sqrt(n)))
    knm, y, sigma = np.vstack(ks), np.concatenate(ys), np.concatenate(sigmas)
    kmm = scipy.linalg.block_diag(*[t.prior() for t in model._terms]) + 1e-3 * np.eye(knm.shape[1])
    # alpha = (K_MM + K_MN S^-1 K_NM)^-1 K_MN S^-1 y, by a dense SVD least-squares solve
    # of [S^-1/2 K_NM; L^T] alpha = [S^-1/2 y; 0] (the normal equations would square its
    # condition number, 1e5 here)
    augmented = np.vstack([knm / sigma[:, None], np.linalg.cholesky(kmm).T])
    alpha = scipy.linalg.lstsq(augmented, np.concatenate([y / sigma, np.zeros(len(kmm))]))[0]
    np.testing.assert_allclose(model.alpha, alpha, rtol=0, atol=1e-10 * np.abs(alpha).max())
    a = kmm + knm.T @ (knm / sigma[:, None] ** 2)
    np.testing.assert_allclose(model._posterior.T @ model._posterior, a, rtol=0, atol=1e-13 * np.abs(a).max())
    # the jitter may change too: the prior is added at solve time
    model.jitter = 1e-10
    model.fit(system)
    reference = gap(**settings).fit(train, progress=False)
    scale = np.abs(reference.alpha).max()
    np.testing.assert_allclose(model.alpha, reference.alpha, rtol=0, atol=1e-7 * scale)


def test_a_system_only_fits_a_model_with_the_same_rows(data):
    train, _ = data
    frames = train[::4]
    model = gap()
    system = model.assemble(frames, progress=False)
    other = [
        mlpot.GAP(terms(), n_sparse=40, zeta=2),
        mlpot.GAP(terms(), n_sparse=30),
        mlpot.GAP(terms()[:1], n_sparse=40),
        mlpot.GAP([terms()[0], mlpot.Distance2b(cutoff=3.5, n_sparse=10)], n_sparse=40),
        gap(e0={"Cu": -0.1}),
        gap(delta=0.3),
        gap(baseline=mlpot.ZBL(1.0, 2.0)),
        gap(sparse_method="random"),
    ]
    for model_b in other:
        with pytest.raises(ValueError, match="GAPSystem was assembled"):
            model_b.fit(system)
    # what may differ: sigmas and jitter
    gap(default_sigma=(0.5, 0.5, 0.5), group_sigma={"vacancy": (1, 1, 1)}, jitter=1e-6).fit(system)
    with pytest.warns(UserWarning, match="no frame belongs"):
        gap(group_sigma={"nowhere": (1, 1, 1)}).fit(system)
    with pytest.raises(ValueError, match="LinearSystem"):
        mlpot.SNAP(descriptor(2)).fit(system, progress=False)
    with pytest.raises(ValueError, match="default_sigma"):
        model.default_sigma = (0.01, -1.0, 0.01)
    with pytest.raises(ValueError, match="jitter"):
        model.jitter = -1.0
    with pytest.raises(ValueError, match="no frames"):
        model.assemble([], progress=False)
    bad = frames[0].copy()
    bad.calc = frames[0].calc
    bad.info["force_sigma"] = -0.1
    with pytest.raises(ValueError, match="force_sigma"):
        model.assemble([bad], progress=False)
    with pytest.raises(ValueError, match="row kind"):
        LinearSystem(3, None).add_frame("g", {"virial": (np.zeros((1, 3)), np.zeros(1))}, [29])


def test_deferred_rows_give_the_factor_of_the_accumulator_to_the_bit():
    """Blocks keep their rows until a QR batch is full: the factors are those of rows
    streamed into a QRAccumulator frame by frame (SNAP's systems are unchanged)."""
    rng = np.random.default_rng(5)
    system = LinearSystem(6, None, batch=20)
    direct = {kind: QRAccumulator(6, batch=20) for kind in ("energy", "forces")}
    for size in (1, 7, 3, 12, 5, 30, 2):
        blocks = {
            "energy": (rng.normal(size=(1, 6)), rng.normal(size=1)),
            "forces": (rng.normal(size=(size, 6)), rng.normal(size=size)),
        }
        system.add_frame("g", blocks, [29])
        for kind, (a, y) in blocks.items():
            direct[kind].add(a, y)
    system.finish()
    assert system.finish() is system
    for kind, accumulator in direct.items():
        (_, _, _, factor), = system.weighted_factors(lambda g, k, kind=kind: float(k == kind))
        np.testing.assert_array_equal(factor, accumulator.factor())
        assert system.n_rows("g", kind) == accumulator.n_rows
