"""The model contract: every registered model kind, with a small fitted instance listed
once in MODELS, saves and loads exactly (both file versions), round-trips through
to_dict/from_dict, works as an ASE calculator consistent with predict, and refuses bad
input with a ValueError."""

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

import mlpot
from mlpot import modelfile
from mlpot.models import registry
from mlpot.models.base import Model
from snap_helpers import descriptor, labelled


def emt_frames(n, seed, symbols=("Cu", "Al"), reps=(2, 1, 1)):
    """Rattled, strained fcc cells of random elements labelled by ASE's EMT."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(reps)
        atoms.set_chemical_symbols(rng.choice(list(symbols), len(atoms)))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))), scale_atoms=True)
        atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        out.append(labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


def snap_model():
    model = mlpot.SNAP(descriptor(2, elements=("Ni", "Al")), quadratic=True, baseline=mlpot.ZBL(1.0, 1.5))
    return model, emt_frames(6, seed=1, symbols=("Ni", "Al")), ("Ni", "Al"), {}


def gap_model():
    model = mlpot.GAP(
        [mlpot.SOAP(cutoff=3.5, n_max=3, l_max=2, species=["Cu", "Al"]),
         mlpot.Distance2b(cutoff=3.5, n_sparse=6)],
        n_sparse=12, baseline=mlpot.ZBL(1.0, 1.5),
    )
    return model, emt_frames(5, seed=2), ("Cu", "Al"), {"variance": True}


def linear_soap_model():
    """The linear model on another descriptor than the bispectrum (SOAP, not normalised)."""
    soap = mlpot.SOAP(cutoff=3.5, n_max=3, l_max=2, species=["Cu", "Al"])
    return mlpot.LinearModel(soap, baseline=mlpot.ZBL(1.0, 1.5)), emt_frames(8, seed=3), ("Cu", "Al"), {}


def linear_bispectrum_model():
    model = mlpot.LinearModel(descriptor(2, elements=("Ni", "Al")), quadratic=True)
    return model, emt_frames(6, seed=4, symbols=("Ni", "Al")), ("Ni", "Al"), {}


def nnp_model():
    """An NNP on ACSF with random weights (training comes later: no frames, nothing to fit)."""
    from test_nnp import acsf, random_nnp

    return random_nnp(acsf()), None, ("Cu", "Al"), {}


def nnp_committee_model():
    """An NNP committee trained on frames (two epochs: the contract, not the accuracy)."""
    model = mlpot.NNP(mlpot.ACSF(cutoff=4.0, species=["Cu", "Al"]), hidden=(5,), committee=2, baseline=mlpot.ZBL(1.0, 1.5))
    return model, emt_frames(6, seed=5), ("Cu", "Al"), {"variance": True}


#: every registered kind, by case: (an unfitted model, its training frames, the elements
#: to probe it with, the options of predict that give its extras)
MODELS = {
    "SNAP": snap_model,
    "GAP": gap_model,
    "Linear-SOAP": linear_soap_model,
    "Linear-Bispectrum": linear_bispectrum_model,
    "NNP": nnp_model,
    "NNP-committee": nnp_committee_model,
}
#: the kinds that came after model-file version 1 (no version-1 file of theirs exists)
NEWER_THAN_VERSION_1 = {"Linear", "NNP"}
V1_FILES = Path(__file__).parent / "data" / "model_v1"


def test_every_registered_kind_is_in_the_contract():
    assert {make()[0].kind for make in MODELS.values()} == set(registry.kinds())


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request):
    model, frames, symbols, options = MODELS[request.param]()
    if frames is not None:  # None: a model that is built, not fitted
        model.fit(frames, progress=False)
    assert isinstance(model, Model) and request.param.split("-")[0] == model.kind
    assert set(model.species) == set(symbols)
    return model, symbols, options


def probe(symbols, seed=7, pbc=True):
    atoms = emt_frames(1, seed, symbols, reps=(1, 2, 1))[0]
    atoms.calc = None
    atoms.pbc = pbc
    return atoms


def assert_same_predictions(a, b, atoms, options):
    p, q = a.predict(atoms, **options), b.predict(atoms, **options)
    assert p.keys() == q.keys()
    for key in p:
        assert np.asarray(p[key]).tobytes() == np.asarray(q[key]).tobytes(), key


@pytest.mark.parametrize("version", [2, 1])
def test_save_and_load_give_bit_identical_predictions(tmp_path, fitted, version):
    model, symbols, options = fitted
    path = tmp_path / "model.mlpot"
    modelfile.save(model, path, version=version)
    loaded = mlpot.load(path)
    assert type(loaded) is type(model)
    for pbc in (True, False):
        assert_same_predictions(model, loaded, probe(symbols, pbc=pbc), options)
    model.save(path)  # the default: the current version, binary arrays
    assert path.read_bytes()[:2] == b"PK"


def test_to_dict_is_plain_json_and_from_dict_inverts_it(fitted):
    model, symbols, options = fitted
    data = model.to_dict()
    text = json.dumps(data, allow_nan=False)  # plain JSON data: no numpy arrays
    again = type(model).from_dict(json.loads(text))
    assert json.dumps(again.to_dict(), allow_nan=False) == text
    assert_same_predictions(model, again, probe(symbols), options)


@pytest.mark.parametrize("kind", registry.kinds())
def test_version_1_files_of_the_previous_release_load(kind):
    """A version-1 file of each kind that version 1 knew, written by the previous release,
    exists and loads (tests/test_modelfile.py checks its predictions bit for bit); the
    later kinds have none."""
    path = V1_FILES / f"{kind.lower()}.json"
    if kind in NEWER_THAN_VERSION_1:
        assert not path.exists()
        return
    loaded = mlpot.load(path)
    assert type(loaded) is registry.model_class(kind)


def test_the_calculator_gives_what_predict_gives(fitted):
    model, symbols, options = fitted
    atoms = probe(symbols)
    expected = model.predict(atoms)
    atoms.calc = model.calculator()
    for name in ("energy", "free_energy", "forces", "stress", "energies"):
        assert name in atoms.calc.implemented_properties
    assert atoms.get_potential_energy() == expected["energy"]
    np.testing.assert_array_equal(atoms.get_forces(), expected["forces"])
    np.testing.assert_array_equal(atoms.get_stress(), expected["stress"])
    np.testing.assert_array_equal(atoms.get_potential_energies(), expected["energies"])
    assert set(atoms.calc.results) == set(expected)
    atoms.positions[0, 0] += 0.01  # a change is a new evaluation
    assert atoms.get_potential_energy() == model.predict(atoms)["energy"] != expected["energy"]
    open_cell = probe(symbols, pbc=False)
    open_cell.calc = model.calculator()
    assert "stress" not in model.predict(open_cell)
    assert open_cell.get_potential_energy() == model.predict(open_cell)["energy"]


def test_the_stress_is_minus_the_strain_derivative_of_the_energy_per_volume(fitted):
    model, symbols, _ = fitted
    atoms = probe(symbols)
    stress = model.predict(atoms)["stress"]
    h = 1e-5
    for k, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h / (1 if a == b else 2)
            strain[b, a] = strain[a, b]
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            energies.append(model.predict(strained)["energy"])
        derivative = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
        assert stress[k] == pytest.approx(derivative, abs=1e-6 * max(1.0, abs(derivative)))


def test_variance_is_offered_only_by_models_that_have_one(fitted):
    model, symbols, options = fitted
    if model.has_variance:
        atoms = probe(symbols)
        atoms.calc = model.calculator(variance=True)
        atoms.get_potential_energy()
        assert atoms.calc.results["energy_std"] == model.predict(atoms, variance=True)["energy_std"]
    else:
        with pytest.raises(ValueError, match="no predictive variance"):
            model.calculator(variance=True)
    with pytest.raises(TypeError, match="variance"):
        model.calculator(variance="yes")


def test_bad_input_is_a_value_error_naming_the_problem(fitted):
    model, symbols, options = fitted
    atoms = probe(symbols)
    atoms.symbols[0] = "Au"
    with pytest.raises(ValueError, match="Au"):
        model.predict(atoms, **options)
    atoms = probe(symbols)
    atoms.positions[1, 2] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        model.predict(atoms, **options)


#: the cases whose model is fitted to frames (an NNP is built with its weights: never unfitted)
FITTED_TO_FRAMES = sorted(set(MODELS) - {"NNP"})


@pytest.mark.parametrize("case", FITTED_TO_FRAMES)
def test_an_unfitted_model_refuses_to_predict_and_to_save(case, tmp_path):
    unfitted, _, symbols, _ = MODELS[case]()
    with pytest.raises(RuntimeError):
        unfitted.predict(probe(symbols))
    with pytest.raises(RuntimeError):
        unfitted.save(tmp_path / "m.mlpot")
    assert list(tmp_path.iterdir()) == []


PACKAGE = Path(mlpot.__file__).parent


def _imports(path: Path):
    """(module imported, whether at module level) of every import statement of a file."""
    import ast

    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, id(node) in top, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, id(node) in top, []


def test_modelfile_knows_models_only_through_the_registry():
    """No import cycle: mlpot.modelfile imports the registry (a leaf module), never a model
    module; the models and modelfile import mlpot at module level only."""
    for module, _, names in _imports(PACKAGE / "modelfile.py"):
        if module.startswith("mlpot.models"):
            assert module == "mlpot.models.registry" or (module == "mlpot.models" and names == ["registry"])
    assert not [m for m, _, _ in _imports(PACKAGE / "models" / "registry.py") if m.startswith("mlpot")]
    for path in [PACKAGE / "modelfile.py", *(PACKAGE / "models").rglob("*.py")]:
        local = [m for m, top, _ in _imports(path) if m.startswith("mlpot") and not top]
        assert not local, f"{path.relative_to(PACKAGE)} imports {local} inside functions"
