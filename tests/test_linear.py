"""mlpot.LinearModel: the linear/quadratic model on any per-atom descriptor (issue 10).

On the bispectrum it is SNAP (same coefficients to rounding); on SOAP it fits EMT data;
files round-trip exactly; forces are the derivative of the energy; the CLI builds it from
[model] type = "linear" with any per-atom [descriptor] type."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpot
from mlpot import cli, modelfile
from mlpot.cli import ConfigError, load_config
from test_model_contract import emt_frames


def soap():
    return mlpot.SOAP(cutoff=4.0, n_max=3, l_max=2, species=["Cu", "Al"])


def bispectrum():
    return mlpot.Bispectrum(4, 4.1, radelem={"Cu": 0.5, "Al": 0.55}, wj={"Cu": 1.0, "Al": 0.9})


@pytest.fixture(scope="module")
def frames():
    return emt_frames(30, seed=0)


@pytest.fixture(scope="module")
def linear_soap(frames):
    return mlpot.LinearModel(soap()).fit(frames[:24], ridge=1e-8, progress=False)


def test_on_soap_the_fit_reaches_sensible_errors(frames, linear_soap):
    """Held-out errors well below those of predicting the mean (EMT's spread)."""
    table = mlpot.errors(linear_soap, frames[24:])
    forces = np.concatenate([f.get_forces().ravel() for f in frames[24:]])
    assert table.overall.force_rmse < 0.2 * np.sqrt(np.mean(forces**2))
    per_atom = np.array([f.get_potential_energy() / len(f) for f in frames[24:]])
    assert table.overall.energy_rmse < 0.2 * np.std(per_atom)


@pytest.mark.parametrize("quadratic", [False, True])
def test_on_the_bispectrum_it_is_snap(frames, quadratic):
    bs = bispectrum()
    linear = mlpot.LinearModel(bs, quadratic=quadratic).fit(frames[:20], ridge=1e-6, progress=False)
    snap = mlpot.SNAP(bs, quadratic=quadratic).fit(frames[:20], ridge=1e-6, progress=False)
    assert linear.species == snap.species == bs.species
    for e in bs.species:
        np.testing.assert_allclose(linear.coefficients[e], snap.coefficients[e], rtol=1e-9, atol=1e-12)
    atoms = frames[25]
    assert linear.predict(atoms)["energy"] == pytest.approx(snap.predict(atoms)["energy"], rel=1e-10)


@pytest.mark.parametrize("version", [1, 2])
def test_save_and_load_round_trip_exactly(tmp_path, frames, linear_soap, version):
    path = tmp_path / "linear.mlpot"
    modelfile.save(linear_soap, path, version=version)
    loaded = mlpot.load(path)
    assert type(loaded) is mlpot.LinearModel and loaded.kind == "Linear"
    assert loaded.descriptor.to_dict() == linear_soap.descriptor.to_dict()
    for e in linear_soap.species:
        assert loaded.coefficients[e].tobytes() == linear_soap.coefficients[e].tobytes()
    p, q = linear_soap.predict(frames[27]), loaded.predict(frames[27])
    for key in p:
        assert np.asarray(p[key]).tobytes() == np.asarray(q[key]).tobytes(), key


def test_a_normalised_soap_stays_normalised_in_the_file(frames):
    model = mlpot.LinearModel(mlpot.SOAP(cutoff=4.0, n_max=2, l_max=1, species=["Cu", "Al"], normalize=True))
    model.fit(frames[:10], ridge=1e-6, progress=False)
    again = mlpot.LinearModel.from_dict(model.to_dict())
    assert again.descriptor.normalize is True
    assert again.predict(frames[11])["energy"] == model.predict(frames[11])["energy"]


def test_a_file_with_a_pair_descriptor_is_a_model_file_error(linear_soap):
    data = linear_soap.to_dict()
    data["descriptor"] = {"kind": "distance_2b", "params": mlpot.Distance2b().to_dict()}
    with pytest.raises(mlpot.ModelFileError, match="per-atom"):
        mlpot.LinearModel.from_dict(data)
    data["descriptor"] = {"kind": "soap", "params": {**soap().to_dict(), "n_max": 2.0}}
    with pytest.raises(mlpot.ModelFileError, match=r"descriptor\.params\.n_max"):
        mlpot.LinearModel.from_dict(data)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.sampled_from(["soap", "bispectrum"]), quadratic=st.booleans())
def test_forces_are_minus_the_gradient_of_the_energy(seed, which, quadratic):
    rng = np.random.default_rng(seed)
    d = soap() if which == "soap" else bispectrum()
    model = mlpot.LinearModel(d, quadratic=quadratic)
    model.coefficients = {e: rng.normal(scale=0.05, size=model.n_coefficients) for e in d.species}
    atoms = emt_frames(1, seed)[0]
    forces = model.predict(atoms)["forces"]
    h = 1e-5
    for i, a in [(0, 0), (3, 1), (5, 2)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[i, a] += sign * h
            energies.append(model.predict(moved)["energy"])
        assert forces[i, a] == pytest.approx(-(energies[0] - energies[1]) / (2 * h), abs=1e-6)


@pytest.mark.parametrize("argument", [mlpot.Distance2b(), 3, "soap", None])
def test_a_non_per_atom_or_non_descriptor_argument_is_a_type_error(argument):
    with pytest.raises(TypeError, match="per-atom descriptor"):
        mlpot.LinearModel(argument)


def test_snap_still_takes_only_the_bispectrum():
    with pytest.raises(TypeError, match="mlpot.Bispectrum"):
        mlpot.SNAP(soap())
    assert isinstance(mlpot.SNAP(bispectrum()), mlpot.LinearModel)


def test_lammps_files_are_written_for_snap_only(tmp_path, linear_soap):
    with pytest.raises(TypeError, match="SNAP"):
        mlpot.lammps.write_snap(linear_soap, tmp_path / "pot")


def test_the_model_classes_declare_their_descriptors():
    assert mlpot.SNAP.descriptor_kinds() == ("bispectrum",) and mlpot.SNAP.default_descriptor == "bispectrum"
    assert set(mlpot.LinearModel.descriptor_kinds()) == {
        kind for kind, d in mlpot.descriptors.DESCRIPTORS.items() if d.per_atom
    } >= {"bispectrum", "soap"}
    assert "distance_2b" not in mlpot.LinearModel.descriptor_kinds()
    assert mlpot.GAP.descriptor_kinds() == ("soap",)


LINEAR_CONFIG = """
[data]
train = ["train.extxyz"]
validation = ["valid.extxyz"]

[descriptor]
type = "soap"
cutoff = 4.0
n_max = 3
l_max = 2
species = ["Cu", "Al"]

[model]
type = "linear"
quadratic = false
energy_weight = 100.0
force_weight = 1.0
ridge = 1e-8

[output]
model = "linear.mlpot"
"""


def write(tmp_path, text):
    path = tmp_path / "fit.toml"
    path.write_text(text)
    return path


def test_a_linear_soap_configuration_fits_end_to_end(tmp_path, frames, capsys):
    from ase.io import write as ase_write

    ase_write(tmp_path / "train.extxyz", frames[:24])
    ase_write(tmp_path / "valid.extxyz", frames[24:])
    path = write(tmp_path, LINEAR_CONFIG)
    assert cli.main(["fit", str(path), "--quiet"]) == 0
    assert "validation errors" in capsys.readouterr().out
    model = mlpot.load(tmp_path / "linear.mlpot")
    assert type(model) is mlpot.LinearModel and isinstance(model.descriptor, mlpot.SOAP)
    expected = mlpot.LinearModel(soap()).fit(
        mlpot.io.read(str(tmp_path / "train.extxyz")), energy_weight=100.0, ridge=1e-8, progress=False
    )
    for e in model.species:
        np.testing.assert_allclose(model.coefficients[e], expected.coefficients[e], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "replace, message",
    [
        ({'type = "soap"\n': ""}, r"\[descriptor\] type is required for \[model\] type 'linear'"),
        ({'type = "soap"': 'type = "distance_2b"'}, r"\[descriptor\] type 'distance_2b' does not fit \[model\] type 'linear'"),
        ({'type = "soap"': 'type = "sopa"'}, r"\[descriptor\] type 'sopa' does not fit"),
        ({"n_max = 3": "twojmax = 4"}, r"unknown \[descriptor\] keys \['twojmax'\]"),
        ({"n_max = 3": "n_max = 3.0"}, r"\[descriptor\]: n_max must be an integer"),
        ({"quadratic = false": "zeta = 4"}, r"unknown \[model\] keys \['zeta'\] for \[model\] type 'linear'"),
        ({"ridge = 1e-8": "ridge = -1.0"}, r"\[model\]: ridge"),
        ({'model = "linear.mlpot"': 'model = "linear.mlpot"\nlammps = "pot"'}, r"\[output\] lammps: LAMMPS files are written for SNAP only"),
    ],
)
def test_bad_linear_configurations_name_the_key(tmp_path, replace, message):
    text = LINEAR_CONFIG
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        config = load_config(path)
        cli.build_model(config)


def test_a_linear_configuration_on_the_bispectrum_builds_a_linear_model(tmp_path):
    text = LINEAR_CONFIG.replace(
        'type = "soap"\ncutoff = 4.0\nn_max = 3\nl_max = 2\nspecies = ["Cu", "Al"]',
        'type = "bispectrum"\ntwojmax = 4\nrcutfac = 4.1\nradelem = { Cu = 0.5, Al = 0.55 }',
    )
    model, keywords = cli.build_model(load_config(write(tmp_path, text)))
    assert type(model) is mlpot.LinearModel and isinstance(model.descriptor, mlpot.Bispectrum)
    assert keywords == {"energy_weight": 100.0, "force_weight": 1.0, "ridge": 1e-8}


def test_the_schema_has_a_linear_variant_with_every_per_atom_descriptor():
    import tomllib

    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(cli.config_schema())
    assert validator.is_valid(tomllib.loads(LINEAR_CONFIG))
    assert not validator.is_valid(tomllib.loads(LINEAR_CONFIG.replace('type = "soap"\n', "")))
    assert not validator.is_valid(tomllib.loads(LINEAR_CONFIG.replace("n_max = 3", "twojmax = 4")))
