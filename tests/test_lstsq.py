"""The streamed least-squares solvers against numpy's dense ones."""

import numpy as np
import pytest

from mlpot.models.lstsq import NormalAccumulator, QRAccumulator, RankDeficientWarning, make_accumulator


def _stream(acc, a, b, rng):
    """Adds the rows in chunks of random sizes (some larger than the QR batch)."""
    start = 0
    while start < len(b):
        n = int(rng.integers(1, 6000))
        acc.add(a[start : start + n], b[start : start + n])
        start += n


@pytest.mark.parametrize("cls", [QRAccumulator, NormalAccumulator])
def test_streamed_solution_equals_dense_lstsq(cls):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(15000, 40)) * np.logspace(0, 3, 40)
    b = a @ rng.normal(size=40) + rng.normal(size=15000)
    acc = cls(40)
    _stream(acc, a, b, rng)
    assert acc.n_rows == 15000
    expected, *_ = np.linalg.lstsq(a, b, rcond=None)
    np.testing.assert_allclose(acc.solve(0.0, np.ones(40, bool)), expected, rtol=1e-9)


@pytest.mark.parametrize("cls", [QRAccumulator, NormalAccumulator])
def test_ridge_and_unpenalized_columns(cls):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5000, 12))
    b = rng.normal(size=5000)
    penalized = np.ones(12, bool)
    penalized[[0, 5]] = False
    acc = cls(12)
    _stream(acc, a, b, rng)
    expected = np.linalg.solve(a.T @ a + 30.0 * np.diag(penalized.astype(float)), a.T @ b)
    np.testing.assert_allclose(acc.solve(30.0, penalized), expected, rtol=1e-9)


def test_rank_deficient_problems():
    """Both solvers warn that the system is rank deficient (rank 4 of 6; the empty column
    does not count) and give the minimum-norm solution."""
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 6))
    a[:, 4] = a[:, 1] + a[:, 2]  # dependent column
    a[:, 5] = 0.0  # an element absent from the data
    b = rng.normal(size=300)
    expected = np.linalg.pinv(a) @ b
    qr = QRAccumulator(6)
    qr.add(a, b)
    with pytest.warns(RankDeficientWarning, match="rank"):
        np.testing.assert_allclose(qr.solve(0.0, np.ones(6, bool)), expected, rtol=1e-7, atol=1e-10)
    normal = NormalAccumulator(6)
    normal.add(a, b)
    with pytest.warns(RankDeficientWarning, match="rank"):
        x = normal.solve(0.0, np.ones(6, bool))
    assert np.isfinite(x).all() and x[5] == 0.0
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-8)


def test_empty_and_unknown_solvers():
    with pytest.raises(ValueError, match="no rows"):
        QRAccumulator(3).solve(0.0, np.ones(3, bool))
    with pytest.raises(ValueError, match="no rows"):
        NormalAccumulator(3).solve(0.0, np.ones(3, bool))
    with pytest.raises(ValueError, match="solver"):
        make_accumulator("cholesky", 3)
