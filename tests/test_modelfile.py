"""Model files: exact round trips and clear errors for every kind of bad file."""

import io
import json
import os
import stat
import sys
import types
import zipfile

import numpy as np
import pytest

import mlpot
from mlpot import modelfile
from snap_helpers import PairBaseline, descriptor, gap_from_parts, known_model, structure


def save_v1(model, path):
    """``model`` as a version-1 (JSON text) file: what the mutation tests edit as JSON."""
    modelfile.save(model, path, version=1)


def read_archive(path) -> tuple[dict, dict[str, bytes]]:
    """The model.json document and the other members (name -> bytes) of a version-2 file,
    read with zipfile alone (not with the code under test)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(members.pop("model.json")), members


def write_archive(path, document, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.json", json.dumps(document))
        for name, data in members.items():
            archive.writestr(name, data)


def npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=allow_pickle)
    return buffer.getvalue()


def load_npy(data: bytes) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)


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
    save_v1(model, tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    doc["baseline"]["class"] = "os.system"
    (tmp_path / "evil.json").write_text(json.dumps(doc))
    with pytest.raises(mlpot.ModelFileError, match="unknown baseline class"):
        mlpot.load(tmp_path / "evil.json")


def _saved(tmp_path):
    model = known_model(descriptor(2), True, seed=44)
    path = tmp_path / "good.json"
    save_v1(model, path)
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
        (_edited(tmp_path, doc, version=3), "version 3"),
        (_edited(tmp_path, doc, version=2), "version 2"),
        (_edited(tmp_path, doc, format="something"), "not an mlpot model file"),
        (_edited(tmp_path, doc, kind="GAP2"), "unknown kind 'GAP2'"),
        (_edited(tmp_path, doc, quadratic=None), r"lacks the field\(s\) \['quadratic'\]"),
        (_edited(tmp_path, doc, extra=1), "unknown field"),
        (_edited(tmp_path, doc, quadratic=False), "shape"),
        (_edited(tmp_path, doc, coefficients={"Ni": doc["coefficients"]["Ni"]}), "missing"),
        (_edited(tmp_path, doc, coefficients={"Ni": ["x"], "Al": []}), r"coefficients\.Ni\[0\]: must be a number"),
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


# ------------------------------------------------------------- full validation at load


def _gap_model():
    """A small GAP with every kind of field: two SOAP species, a distance_2b term, given e0,
    delta and group sigma, and a ZBL baseline."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from snap_helpers import labelled

    rng = np.random.default_rng(3)
    frames = []
    for k in range(3):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.set_chemical_symbols(["Cu", "Al", "Cu", "Al"][k:] + ["Cu", "Al", "Cu", "Al"][:k])
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        atoms.calc = EMT()
        frames.append(labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(), "bulk"))
    model = mlpot.GAP(
        [mlpot.SOAP(cutoff=3.5, n_max=2, l_max=2, species=["Cu", "Al"]),
         mlpot.Distance2b(cutoff=3.5, n_sparse=4, species=("Cu", "Al"), delta=0.5)],
        n_sparse=4, delta=0.3, e0={"Cu": -0.1, "Al": -0.2}, group_sigma={"bulk": (0.01, 0.1, 0.1)},
        baseline=mlpot.ZBL(1.0, 1.5),
    )
    return model.fit(frames, progress=False)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """{kind: model} of a valid SNAP (quadratic, ZBL baseline) and GAP."""
    snap = known_model(descriptor(2), True, seed=45, baseline=mlpot.ZBL(1.0, 1.5))
    return {"SNAP": snap, "GAP": _gap_model()}


@pytest.fixture(scope="module")
def saved_documents(tmp_path_factory, saved_models):
    """{kind: (text, document)} of the version-1 (JSON text) files of `saved_models`."""
    directory = tmp_path_factory.mktemp("valid")
    out = {}
    for kind, model in saved_models.items():
        path = directory / f"{kind}.json"
        save_v1(model, path)
        mlpot.load(path)  # valid before any mutation
        out[kind] = (path.read_text(), json.loads(path.read_text()))
    return out


@pytest.fixture(scope="module")
def saved_archives(tmp_path_factory, saved_models):
    """{kind: (document, members)} of the version-2 files of `saved_models`."""
    directory = tmp_path_factory.mktemp("valid2")
    out = {}
    for kind, model in saved_models.items():
        path = directory / f"{kind}.mlpot"
        model.save(path)
        mlpot.load(path)
        out[kind] = read_archive(path)
    return out


def _path_text(path) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _nodes(value, path=()):
    """(path, value) of every field, descending into the first and last entry of lists."""
    yield path, value
    if isinstance(value, dict):
        for key, v in value.items():
            yield from _nodes(v, path + (key,))
    elif isinstance(value, list) and value:
        for k in sorted({0, len(value) - 1}):
            yield from _nodes(value[k], path + (k,))


#: values out of range for a field (by its name or, for list entries, the list's name)
OUT_OF_RANGE = {
    "twojmax": [26, -2, 3, 10**30], "rcutfac": [0, -1.0, 10**400], "rfac0": [0, 1.5], "rmin0": [-1.0, 1e3],
    "radelem": [0.0, -1.0], "cutoff": [0.0, -1.0], "n_max": [0, 65, 10**30], "l_max": [-1, 31],
    "atom_sigma": [0.0, 1e-9], "cutoff_transition_width": [-1.0, 1e3], "theta": [0.0], "delta": [0.0, -1.0],
    "n_sparse": [0, 10**6], "zeta": [0.0, -1.0, 3.5], "jitter": [-1.0], "seed": [-1], "default_sigma": [0.0],
    "bulk": [0.0], "sparse_method": ["pivot"], "inner": [-1.0, 100.0], "outer": [0.5], "species": ["Xx"],
    "elements": ["Xx"], "sparse_species": ["Xx"],
}
#: versions out of range, per version of the file
BAD_VERSIONS = {1: [True, 2, 1.0], 2: [True, 1, 2.0, 3]}

#: fields that may be removed (free-form maps)
OPTIONAL = {("settings", "group_sigma", "bulk")}


def _mutations(document):
    """(path, description, mutated document) for one change at a time."""
    out_of_range = {**OUT_OF_RANGE, "version": BAD_VERSIONS[document["version"]]}

    def at(doc, path):
        for key in path[:-1]:
            doc = doc[key]
        return doc

    for path, value in _nodes(document):
        if not path:
            continue
        changes = [("a string" if not isinstance(value, str) else "a number", "x" if not isinstance(value, str) else 5),
                   ("nested in a list", [value]), ("nested in an object", {"x": value})]
        if isinstance(value, bool):
            changes.append(("an integer", 1))
        elif isinstance(value, (int, float)):
            changes.append(("a bool", True))
        name = next((k for k in reversed(path) if isinstance(k, str)), None)
        if not isinstance(value, (dict, list)):
            changes += [(f"out of range ({v!r:.20})", v) for v in out_of_range.get(name, [])]
        for what, new in changes:
            mutated = json.loads(json.dumps(document))
            at(mutated, path)[path[-1]] = new
            yield path, what, mutated
        if path not in OPTIONAL:
            mutated = json.loads(json.dumps(document))
            del at(mutated, path)[path[-1]]
            yield path, "removed", mutated


def _names(message: str, path) -> bool:
    """The message names the field: its path (list indices at the end may be dropped), or
    its parent's path and its own name."""
    while path and isinstance(path[-1], int) and _path_text(path) not in message:
        path = path[:-1]
    if _path_text(path) in message:
        return True
    return _path_text(path[:-1]) in message and str(path[-1]) in message


def _refused(target, where: str, path) -> None:
    """Loading ``target`` raises a ModelFileError naming the file and the field at ``path``,
    and leaves the file as it was."""
    before = target.read_bytes()
    try:
        mlpot.load(target)
    except mlpot.ModelFileError as error:
        message = str(error)
        assert str(target) in message, f"{where}: the message does not name the file: {message}"
        assert _names(message, path), f"{where}: the message does not name the field: {message}"
    except Exception as error:  # noqa: BLE001 - any other type is the defect under test
        pytest.fail(f"{where}: {type(error).__name__} instead of ModelFileError: {error}")
    else:
        pytest.fail(f"{where}: the mutated file loaded")
    assert target.read_bytes() == before, f"{where}: the failed load changed the file"


@pytest.mark.parametrize("kind", ["SNAP", "GAP"])
def test_every_single_field_mutation_is_a_model_file_error_naming_the_field(tmp_path, saved_documents, kind):
    _, document = saved_documents[kind]
    target = tmp_path / "mutated.json"
    seen = 0
    for path, what, mutated in _mutations(document):
        target.write_text(json.dumps(mutated))
        _refused(target, f"{_path_text(path)} {what}", path)
        seen += 1
    assert seen > 100


@pytest.mark.parametrize("kind", ["SNAP", "GAP"])
def test_every_field_mutation_of_a_version_2_file_is_a_model_file_error(tmp_path, saved_archives, kind):
    """The same mutations of the JSON document of an archive (array references included)."""
    document, members = saved_archives[kind]
    target = tmp_path / "mutated.mlpot"
    seen = 0
    for path, what, mutated in _mutations(document):
        write_archive(target, mutated, members)
        _refused(target, f"{_path_text(path)} {what}", path)
        seen += 1
    assert seen > 100


def _array_mutations(array: np.ndarray):
    """(description, .npy bytes) of arrays a model file must refuse in place of ``array``."""
    nan = array.copy()
    nan.flat[-1] = np.nan
    inf = array.copy()
    inf.flat[0] = -np.inf
    yield "float32", npy(array.astype(np.float32))
    yield "int64", npy(np.round(array).astype(np.int64))
    yield "complex", npy(array.astype(np.complex128))
    yield "bool", npy(array != 0)
    yield "object", npy(array.astype(object), allow_pickle=True)
    yield "structured", npy(np.zeros(array.shape, dtype=[("x", "<f8")]))
    yield "NaN", npy(nan)
    yield "inf", npy(inf)
    yield "one entry short", npy(array.ravel()[:-1] if array.ndim == 1 else array[:-1])
    yield "an extra dimension", npy(array[..., None])
    yield "flattened" if array.ndim == 2 else "a scalar", npy(array.ravel() if array.ndim == 2 else array[0])
    yield "truncated data", npy(array)[:-8]
    yield "declared larger than it is", npy(array).replace(f"({array.shape[0]},".encode(), b"(1000000000000,", 1)
    yield "not npy", b"\x93NUMPY garbage"


@pytest.mark.parametrize("kind", ["SNAP", "GAP"])
def test_bad_binary_arrays_are_model_file_errors_naming_the_field(tmp_path, saved_archives, kind):
    document, members = saved_archives[kind]
    target = tmp_path / "mutated.mlpot"
    assert members, "the file has binary arrays"
    for member, data in members.items():
        field = member.removeprefix("arrays/").removesuffix(".npy")
        path = tuple(int(k) if k.isdigit() else k for k in field.replace("[", ".").replace("]", "").split("."))
        for what, bad in _array_mutations(load_npy(data)):
            write_archive(target, document, {**members, member: bad})
            _refused(target, f"{member} {what}", path)
        # a missing member, and one nobody refers to
        write_archive(target, document, {k: v for k, v in members.items() if k != member})
        _refused(target, f"{member} missing", path)
    write_archive(target, document, {**members, "arrays/extra.npy": npy(np.zeros(3))})
    with pytest.raises(mlpot.ModelFileError, match="arrays/extra.npy"):
        mlpot.load(target)


def test_arrays_of_any_byte_order_and_layout_load_equal(tmp_path, saved_archives, saved_models):
    """float64 in big-endian or Fortran order is still float64: loaded as the same numbers."""
    document, members = saved_archives["GAP"]
    atoms = structure(np.random.default_rng(5), ("Cu", "Al"))
    expected = saved_models["GAP"].predict(atoms, variance=True)
    changed = {k: npy(np.asfortranarray(load_npy(v)).astype(">f8")) for k, v in members.items()}
    write_archive(tmp_path / "other.mlpot", document, changed)
    got = mlpot.load(tmp_path / "other.mlpot").predict(atoms, variance=True)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def _write(tmp_path, name, document_or_text):
    path = tmp_path / name
    path.write_text(document_or_text if isinstance(document_or_text, str) else json.dumps(document_or_text))
    return path


def test_the_reported_malformed_files_are_model_file_errors(tmp_path, saved_documents):
    snap_text, snap = saved_documents["SNAP"]
    _, gap = saved_documents["GAP"]
    deep = snap_text.replace('"bispectrum": {', '"bispectrum": ' + "[" * 100_000 + "]" * 100_000 + ', "x": {', 1)
    zero_diagonal = json.loads(json.dumps(gap))
    zero_diagonal["posterior_factor"][0] = 0.0  # R[0, 0]
    other_zeta = json.loads(json.dumps(gap))
    other_zeta["terms"][0]["zeta"] = gap["settings"]["zeta"] + 1
    other_e0 = json.loads(json.dumps(gap))
    other_e0["e0"]["Cu"] = 0.5
    cases = [
        (deep, "nested too deeply"),
        ({**snap, "bispectrum": {**snap["bispectrum"], "twojmax": 10**30}}, r"bispectrum\.twojmax: must be >= 0 and <= 24"),
        ({**gap, "e0": {}}, r"e0\.Al: is missing"),
        (zero_diagonal, r"posterior_factor: diagonal entry 0 is 0"),
        (other_zeta, r"terms\[0\]\.zeta: is 5\.0, but settings\.zeta is 4\.0"),
        ({**snap, "version": True}, "version True"),
        (other_e0, r"e0\.Cu: is 0\.5, but settings\.e0\.Cu is -0\.1"),
        ({**gap, "e0": {**gap["e0"], "Ni": 0.0}}, r"e0\.Ni: is not an element of the model"),
    ]
    for k, (bad, message) in enumerate(cases):
        path = _write(tmp_path, f"bad{k}.json", bad)
        before = path.read_bytes()
        with pytest.raises(mlpot.ModelFileError, match=message):
            mlpot.load(path)
        assert path.read_bytes() == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_permissions_of_the_umask(tmp_path, umask, mode):
    model = known_model(descriptor(2), False, seed=46)
    old = os.umask(umask)
    try:
        model.save(tmp_path / "m.json")
        model.save(tmp_path / "m.json")  # replacing a file too
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


# ------------------------------------------------------------- versions and compactness

V1 = __import__("pathlib").Path(__file__).parent / "data" / "model_v1"


@pytest.mark.parametrize("name", ["snap.json", "gap.json"])
def test_version_1_files_of_the_previous_release_predict_what_it_predicted(name):
    """Files and predictions written by the last version-1 writer (commit bdde0f1, see
    data/model_v1/generate.py): today's reader gives the same numbers, bit for bit where the
    core computes them; GAP's variances go through LAPACK (scipy's solve_triangular), whose
    last bits depend on the BLAS of the installed scipy (numpy 2.4.6 / scipy 1.17.1 moved
    them), so those agree to 1e-12."""
    from ase import Atoms

    expected = json.loads((V1 / "expected.json").read_text())[name]
    assert json.loads((V1 / name).read_text())["version"] == 1
    model = mlpot.load(V1 / name)
    atoms = Atoms(**expected["atoms"])
    got = model.predict(atoms, **expected["kwargs"])
    assert got.keys() == expected["predict"].keys()
    for key, value in expected["predict"].items():
        if key.endswith(("_variance", "_std")):
            np.testing.assert_allclose(got[key], value, rtol=1e-12, atol=0, err_msg=key)
        else:
            assert np.asarray(got[key]).tobytes() == np.asarray(value, dtype=np.float64).tobytes(), key


def test_model_files_store_arrays_in_binary(tmp_path):
    """The file of a GAP with 600 sparse points is its float64 arrays (sparse points,
    alpha, the packed posterior factor) plus a small JSON document: at most 2 % and 64 kB
    more than the array bytes (JSON text takes about three times as many)."""
    m = 600
    model = gap_from_parts(m)
    path = tmp_path / "gap.mlpot"
    model.save(path)
    array_bytes = 8 * (m * model.descriptors[0].n_features + m + m * (m + 1) // 2)
    assert os.path.getsize(path) <= 1.02 * array_bytes + 65536
    loaded = mlpot.load(path)
    assert loaded._posterior.tobytes() == model._posterior.tobytes()
    assert loaded.alpha.tobytes() == model.alpha.tobytes()


def test_a_gap_saved_without_variance_leaves_out_the_posterior_factor(tmp_path, saved_models):
    m = 600
    model = gap_from_parts(m)
    model.save(tmp_path / "small.mlpot", variance=False)
    assert os.path.getsize(tmp_path / "small.mlpot") <= 1.02 * 8 * (m * model.descriptors[0].n_features + m) + 65536
    gap = saved_models["GAP"]
    gap.save(tmp_path / "gap.mlpot", variance=False)
    loaded = mlpot.load(tmp_path / "gap.mlpot")
    atoms = structure(np.random.default_rng(8), ("Cu", "Al"))
    expected, got = gap.predict(atoms), loaded.predict(atoms)
    for key in expected:
        assert np.asarray(got[key]).tobytes() == np.asarray(expected[key]).tobytes()
    assert gap.has_variance and not loaded.has_variance
    with pytest.raises(ValueError, match="without its posterior factor"):
        loaded.predict(atoms, variance=True)
    with pytest.raises(ValueError, match="no predictive variance"):
        loaded.calculator(variance=True)
