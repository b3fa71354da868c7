"""Model files: exact round trips and clear errors for every kind of bad file."""

import json
import sys
import types

import numpy as np
import pytest

import mlpot
from snap_helpers import PairBaseline, descriptor, known_model, structure


def _predictions_equal(a, b, atoms):
    p, q = a.predict(atoms), b.predict(atoms)
    for key in ("energy", "energies", "forces", "stress"):
        np.testing.assert_array_equal(p[key], q[key])


@pytest.mark.parametrize("quadratic, flags", [(False, {}), (True, dict(chemflag=True, bnormflag=True, bzeroflag=True, switchflag=False, rmin0=0.1))])
def test_round_trip_is_bit_identical(tmp_path, quadratic, flags):
    model = known_model(descriptor(4, **flags), quadratic, seed=40)
    # awkward floats: subnormal, negative zero, many digits
    c = model.coefficients
    c["Ni"] = c["Ni"].copy()
    c["Ni"][1:4] = [5e-324, -0.0, 1 / 3]
    model.coefficients = c
    path = tmp_path / "model.json"
    model.save(path)
    loaded = mlpot.load(path)
    assert isinstance(loaded, mlpot.SNAP) and loaded.quadratic == quadratic
    for e in model.elements:
        assert loaded.coefficients[e].tobytes() == model.coefficients[e].tobytes()
    assert repr(loaded.bispectrum) == repr(model.bispectrum)
    _predictions_equal(model, loaded, structure(np.random.default_rng(41)))


def test_baseline_round_trips_through_mlpot_baselines(tmp_path, monkeypatch):
    fake = types.ModuleType("mlpot.baselines")
    fake.PairBaseline = PairBaseline
    monkeypatch.setitem(sys.modules, "mlpot.baselines", fake)
    monkeypatch.setattr(mlpot, "baselines", fake, raising=False)
    model = known_model(descriptor(2), False, seed=42, baseline=PairBaseline(a=33.0, rho=0.5))
    model.save(tmp_path / "m.json")
    loaded = mlpot.load(tmp_path / "m.json")
    assert isinstance(loaded.baseline, PairBaseline) and loaded.baseline.a == 33.0
    _predictions_equal(model, loaded, structure(np.random.default_rng(43)))
    # a class outside mlpot.baselines is never imported
    doc = json.loads((tmp_path / "m.json").read_text())
    doc["baseline"]["class"] = "os.system"
    (tmp_path / "evil.json").write_text(json.dumps(doc))
    with pytest.raises(mlpot.ModelFileError, match="unknown baseline class"):
        mlpot.load(tmp_path / "evil.json")


def _saved(tmp_path):
    model = known_model(descriptor(2), True, seed=44)
    path = tmp_path / "good.json"
    model.save(path)
    return path, json.loads(path.read_text())


def _edited(tmp_path, doc, **changes):
    doc = json.loads(json.dumps(doc))
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    path = tmp_path / f"edited{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(doc))
    return path


def test_bad_files_raise_model_file_errors_that_name_the_problem(tmp_path):
    path, doc = _saved(tmp_path)
    text = path.read_text()
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: len(text) // 2])
    cases = [
        (truncated, "corrupt or truncated"),
        (_edited(tmp_path, doc, version=2), "version 2"),
        (_edited(tmp_path, doc, format="something"), "not an mlpot model file"),
        (_edited(tmp_path, doc, kind="GAP2"), "unknown kind 'GAP2'"),
        (_edited(tmp_path, doc, quadratic=None), r"lacks the field\(s\) \['quadratic'\]"),
        (_edited(tmp_path, doc, extra=1), "unknown field"),
        (_edited(tmp_path, doc, quadratic=False), "shape"),
        (_edited(tmp_path, doc, coefficients={"Ni": doc["coefficients"]["Ni"]}), "missing"),
        (_edited(tmp_path, doc, coefficients={"Ni": ["x"], "Al": []}), "list of numbers"),
        (_edited(tmp_path, doc, bispectrum={**doc["bispectrum"], "twojmax": 3}), "twojmax"),
        (_edited(tmp_path, doc, bispectrum={**doc["bispectrum"], "rcutfac": "4.1"}), "rcutfac"),
    ]
    for bad, message in cases:
        with pytest.raises(mlpot.ModelFileError, match=message):
            mlpot.load(bad)
    nan = tmp_path / "nan.json"
    nan.write_text(text.replace(repr(doc["coefficients"]["Ni"][0]), "NaN", 1))
    with pytest.raises(mlpot.ModelFileError):
        mlpot.load(nan)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\x80\x81\xff" * 10)
    with pytest.raises(mlpot.ModelFileError):
        mlpot.load(binary)
    assert issubclass(mlpot.ModelFileError, ValueError)
    # the good file is untouched and still loads
    assert path.read_text() == text
    mlpot.load(path)


def test_save_needs_a_fitted_model_and_leaves_old_files_on_failure(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="no coefficients"):
        mlpot.SNAP(descriptor(2)).save(path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
