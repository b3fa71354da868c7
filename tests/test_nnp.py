"""mlpot.NNP on mlpot.ACSF (and on other descriptors): forces and stress against finite
differences for every activation, n2p2 files written and read back (several elements,
per-element topologies, every scaling mode, functions in any order), and bad input."""

import numpy as np
import pytest
from ase.build import bulk

import mlpot
from mlpot import n2p2
from mlpot.models.nnp import ACTIVATIONS, Layer, Scaling

SPECIES = ("Cu", "Al")


def acsf():
    """Two elements, every function type, a cutoff with an inner radius."""
    functions = []
    for c in SPECIES:
        functions += [
            {"type": 2, "center": c, "neighbors": ["Cu"], "eta": 1.2, "r_s": 2.3, "cutoff": 4.2},
            {"type": 2, "center": c, "neighbors": ["Al"], "eta": 0.4, "r_s": 0.0, "cutoff": 4.5},
            {"type": 3, "center": c, "neighbors": ["Al", "Cu"], "eta": 0.05, "lambda": 1.0, "zeta": 2.0, "r_s": 0.3},
            {"type": 9, "center": c, "neighbors": ["Cu", "Cu"], "eta": 0.1, "lambda": -1.0, "zeta": 1.0},
            {"type": 12, "center": c, "eta": 0.3, "r_s": 1.0},
        ]
    functions.append({"type": 13, "center": "Al", "eta": 0.02, "lambda": -1.0, "zeta": 4.0, "cutoff": 3.9})
    return mlpot.ACSF(cutoff=4.4, species=list(SPECIES), functions=functions, cutoff_function="poly2", cutoff_alpha=0.1)


def random_nnp(descriptor, hidden=(7, 5), activations="ttl", seed=0, mode="scale", **options):
    rng = np.random.default_rng(seed)
    networks, scaling = {}, {}
    for e in descriptor.species:
        n_in = descriptor.n_functions(e) if hasattr(descriptor, "n_functions") else descriptor.n_features
        sizes = [n_in, *hidden, 1]
        networks[e] = [
            Layer(rng.normal(0, 0.5, (sizes[k + 1], sizes[k])), rng.normal(0, 0.2, sizes[k + 1]), activations[k])
            for k in range(len(sizes) - 1)
        ]
        g_min = rng.uniform(0, 0.1, n_in)
        scaling[e] = Scaling(mode, g_min, g_min + rng.uniform(0.5, 3, n_in), g_min + 0.2, rng.uniform(0.1, 1, n_in),
                             s_min=-1.0, s_max=1.0)
    return mlpot.NNP(descriptor, networks=networks, scaling=scaling, energy_scale=0.3, atom_energies={"Cu": -1.5, "Al": -0.25}, **options)


def structure(seed=0):
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
    atoms.set_chemical_symbols(rng.choice(list(SPECIES), len(atoms)))
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += 0.15 * rng.standard_normal(atoms.positions.shape)
    return atoms


def check_derivatives(model, atoms, h=1e-5):
    p = model.predict(atoms)
    assert p["energy"] == pytest.approx(p["energies"].sum(), rel=1e-13)
    fd = np.zeros_like(p["forces"])
    for i in range(len(atoms)):
        for a in range(3):
            e = []
            for s in (h, -h):
                b = atoms.copy()
                b.positions[i, a] += s
                e.append(model.predict(b)["energy"])
            fd[i, a] = -(e[0] - e[1]) / (2 * h)
    np.testing.assert_allclose(p["forces"], fd, atol=1e-6 * max(1.0, np.abs(fd).max()))
    volume = atoms.get_volume()
    for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        e = []
        for s in (h, -h):
            eps = np.zeros((3, 3))
            eps[a, b] += s / (1 if a == b else 2)
            eps[b, a] += 0 if a == b else s / 2
            c = atoms.copy()
            c.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            e.append(model.predict(c)["energy"])
        assert p["stress"][v] == pytest.approx((e[0] - e[1]) / (2 * h) / volume, rel=1e-6, abs=1e-7)


def test_forces_and_stress_are_derivatives_of_the_energy():
    check_derivatives(random_nnp(acsf()), structure(1))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_gives_consistent_forces(activation):
    model = random_nnp(acsf(), hidden=(4,), activations=activation + "l", seed=3)
    check_derivatives(model, structure(2))


@pytest.mark.parametrize("mode", ["none", "scale", "center", "scalecenter", "scalesigma"])
def test_scaling_modes_are_affine_as_n2p2_defines_them(mode):
    s = random_nnp(acsf(), mode=mode).scaling["Cu"]
    g = np.random.default_rng(0).uniform(0, 3, (5, s.n_inputs))
    width = s.s_max - s.s_min
    expected = {
        "none": g,
        "center": g - s.g_mean,
        "scale": s.s_min + width * (g - s.g_min) / (s.g_max - s.g_min),
        "scalecenter": s.s_min + width * (g - s.g_mean) / (s.g_max - s.g_min),
        "scalesigma": s.s_min + width * (g - s.g_mean) / s.g_sigma,
    }[mode]
    np.testing.assert_allclose(s.apply(g), expected, rtol=1e-14, atol=1e-14)


def test_an_nnp_on_another_descriptor_works_the_same_way():
    soap = mlpot.SOAP(cutoff=3.5, n_max=2, l_max=2, species=list(SPECIES))
    check_derivatives(random_nnp(soap, hidden=(3,), activations="tl"), structure(4))


def test_normalize_nodes_divides_each_weighted_sum_by_its_inputs():
    d = acsf()
    plain = random_nnp(d, hidden=(3,), activations="ll")
    normalized = random_nnp(d, hidden=(3,), activations="ll", normalize_nodes=True)
    atoms = structure(5)
    # linear networks: n2p2 divides each neuron's sum, bias included, by its inputs:
    # y = (W2 (W1 s + b1) / n_in + b2) / 3 against y = W2 (W1 s + b1) + b2
    e = {}
    for name, model in (("plain", plain), ("normalized", normalized)):
        x = model.scaling["Cu"].apply(d.compute(atoms)[[0]])
        e[name] = (model.atomic_energies("Cu", d.compute(atoms)[[0]])[0][0] - model.atom_energies["Cu"]) / model.energy_scale
    w1, b1 = plain.networks["Cu"][0].weights, plain.networks["Cu"][0].biases
    w2, b2 = plain.networks["Cu"][1].weights, plain.networks["Cu"][1].biases
    assert e["plain"] == pytest.approx((w2 @ (w1 @ x[0] + b1) + b2)[0], rel=1e-12)
    assert e["normalized"] == pytest.approx(((w2 @ ((w1 @ x[0] + b1) / w1.shape[1]) + b2) / w2.shape[1])[0], rel=1e-12)
    check_derivatives(normalized, atoms)


def shuffled_acsf():
    """acsf() with its functions in another order (not n2p2's)."""
    d = acsf()
    functions = list(d.functions)[::-1]
    return mlpot.ACSF(cutoff=4.4, species=list(SPECIES), functions=functions, cutoff_function="poly2", cutoff_alpha=0.1)


@pytest.mark.parametrize("mode", ["none", "scale", "center", "scalecenter", "scalesigma"])
def test_n2p2_files_read_back_to_the_same_model(tmp_path, mode):
    """Functions not in n2p2's order, every scaling mode, other units: the same potential.
    (Checked once against n2p2 v2.3.0 itself: files written so, every function type, the
    poly2 cutoff with alpha, normalisation keywords, nm/meV units, give n2p2's energies and
    forces to 2e-16 relative; n2p2 is not on PyPI, so CI cannot run it.)"""
    model = random_nnp(shuffled_acsf(), mode=mode, activations="spl")
    n2p2.write(model, tmp_path, cflength=1.3, cfenergy=0.7)
    again = n2p2.read(tmp_path, cflength=1.3, cfenergy=0.7)
    atoms = structure(8)
    p, q = model.predict(atoms), again.predict(atoms)
    assert q["energy"] == pytest.approx(p["energy"], rel=1e-13)
    np.testing.assert_allclose(q["forces"], p["forces"], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(q["energies"], p["energies"], rtol=1e-12, atol=1e-13)


def test_per_element_topologies_are_refused_both_ways(tmp_path):
    rng = np.random.default_rng(7)
    model = random_nnp(acsf())
    n_in = model.n_inputs("Al")
    other = mlpot.NNP(
        model.descriptor,
        networks={"Cu": model.networks["Cu"],
                  "Al": [Layer(rng.normal(size=(3, n_in)), rng.normal(size=3), "t"), Layer(rng.normal(size=(1, 3)), rng.normal(size=1), "l")]},
    )
    with pytest.raises(n2p2.N2P2Error, match="per-element network topologies"):
        n2p2.write(other, tmp_path)
    assert not (tmp_path / "input.nn").exists()
    n2p2.write(model, tmp_path)
    edit(tmp_path / "input.nn", "global_hidden_layers_short 2", "global_hidden_layers_short 2\nelement_nodes_short Al 1 9")
    with pytest.raises(n2p2.N2P2Error, match="element_nodes_short: per-element"):
        n2p2.read(tmp_path)


def test_model_files_round_trip_exactly(tmp_path):
    model = random_nnp(acsf())
    model.save(tmp_path / "m.mlpot")
    again = mlpot.load(tmp_path / "m.mlpot")
    atoms = structure(9)
    p, q = model.predict(atoms), again.predict(atoms)
    assert p["energy"] == q["energy"]
    np.testing.assert_array_equal(p["forces"], q["forces"])


def test_an_element_without_a_network_is_refused():
    d = acsf()
    model = random_nnp(d)
    with pytest.raises(ValueError, match="missing"):
        mlpot.NNP(d, networks={"Cu": model.networks["Cu"]})
    atoms = structure(0)
    atoms[0].symbol = "Ni"
    with pytest.raises(ValueError, match="Ni"):
        model.predict(atoms)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda n: {**n, "Cu": n["Cu"][:-1]}, "one output"),
        (lambda n: {**n, "Cu": [Layer(np.ones((7, 3)), np.ones(7), "t"), *n["Cu"][1:]]}, "inputs"),
        (lambda n: {**n, "Cu": [n["Cu"][0], Layer(np.ones((5, 6)), np.ones(5), "t"), n["Cu"][2]]}, "layer 1 takes 6"),
    ],
)
def test_inconsistent_networks_are_refused(change, match):
    d = acsf()
    model = random_nnp(d)
    with pytest.raises(ValueError, match=match):
        mlpot.NNP(d, networks=change(model.networks), scaling=model.scaling)


def test_bad_layers_and_scalings_are_refused():
    with pytest.raises(ValueError, match="activation"):
        Layer(np.ones((2, 2)), np.ones(2), "x")
    with pytest.raises(ValueError, match="finite"):
        Layer(np.full((2, 2), np.nan), np.ones(2), "t")
    with pytest.raises(ValueError, match="biases"):
        Layer(np.ones((2, 2)), np.ones(3), "t")
    with pytest.raises(ValueError, match="mode"):
        Scaling("minmax", [0.0], [1.0], [0.5], [0.1])
    with pytest.raises(ValueError, match="energy_scale"):
        mlpot.NNP(acsf(), networks=random_nnp(acsf()).networks, energy_scale=0.0)


def test_an_untrained_model_says_so(tmp_path):
    untrained = mlpot.NNP(acsf(), hidden=(24, 24), activation="tanh")
    assert untrained.hidden == (24, 24) and untrained.networks is None
    with pytest.raises(RuntimeError, match="no trained networks"):
        untrained.predict(structure(0))
    with pytest.raises(RuntimeError, match="no trained networks"):
        untrained.save(tmp_path / "m.mlpot")
    with pytest.raises(ValueError, match="activation"):
        mlpot.NNP(acsf(), activation="swish")
    with pytest.raises(ValueError, match="hidden"):
        mlpot.NNP(acsf(), hidden=(0,))


# ------------------------------------------------------------------ n2p2 file errors


@pytest.fixture
def files(tmp_path):
    n2p2.write(random_nnp(acsf()), tmp_path)
    return tmp_path


def edit(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("number_of_elements 2", "number_of_elements 2\nbogus_keyword 1", "unknown keyword 'bogus_keyword'"),
        ("number_of_elements 2", "number_of_elements 2\newald_prec 1e-6", "4G-HDNNP"),
        ("number_of_elements 2", "number_of_elements 2\nnnp_type 4", "2G"),
        ("symfunction_short Al 2", "symfunction_short Al 21 Al 1 2 3\nsymfunction_short Al 2", "type 21 is not supported"),
        ("symfunction_short Al 2 Al", "symfunction_short Al 2 Xx", "'Xx' is not in elements"),
        ("global_activation_short t t l", "global_activation_short t q l", "activation 'q'"),
        ("cutoff_type 6", "cutoff_type 12", "cutoff_type must be"),
        ("conv_length 1.0\n", "", "all or none"),
    ],
)
def test_input_nn_problems_are_named(files, old, new, match):
    edit(files / "input.nn", old, new)
    with pytest.raises(n2p2.N2P2Error, match=match) as error:
        n2p2.read(files)
    assert "input.nn" in str(error.value)


def test_training_keywords_are_accepted(files):
    edit(files / "input.nn", "number_of_elements 2", "number_of_elements 2\nepochs 20\nkalman_q0 0.01\nshort_force_fraction 0.1")
    n2p2.read(files)


def test_weight_and_scaling_file_problems_are_named(files):
    weights = files / "weights.029.data"
    lines = weights.read_text().splitlines()
    weights.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(n2p2.N2P2Error, match="weights of layer 3 are missing"):
        n2p2.read(files)
    weights.write_text("\n".join(lines + [lines[-1]]) + "\n")
    with pytest.raises(n2p2.N2P2Error, match="given twice"):
        n2p2.read(files)
    weights.write_text("\n".join(lines + ["1.0 a 999 0 99 1 1"]) + "\n")
    with pytest.raises(n2p2.N2P2Error, match="outside the network"):
        n2p2.read(files)
    weights.write_text("\n".join(lines) + "\n")
    scaling = files / "scaling.data"
    rows = scaling.read_text().splitlines()
    scaling.write_text("\n".join(rows[1:]) + "\n")
    with pytest.raises(n2p2.N2P2Error, match="function 1 has no scaling data"):
        n2p2.read(files)
    (files / "weights.013.data").unlink()
    with pytest.raises(FileNotFoundError, match="weights.013"):
        n2p2.read(files)


def test_only_acsf_models_are_written(tmp_path):
    soap = mlpot.SOAP(cutoff=3.5, n_max=2, l_max=1, species=list(SPECIES))
    with pytest.raises(n2p2.N2P2Error, match="soap"):
        n2p2.write(random_nnp(soap, hidden=(3,), activations="tl"), tmp_path)
    with pytest.raises(ValueError, match="cflength"):
        n2p2.read(tmp_path, cflength=-1.0)
