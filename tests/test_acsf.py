"""mlpot.ACSF: every function type and cutoff function against an independent brute-force
evaluation of the definitions (NumPy over ASE's neighbour list), DScribe's G2/G4/G5 as an
oracle (its conventions mapped below), the standard set, and bad parameters.

DScribe (2.1) against mlpot/n2p2, as measured here: DScribe's G2 is type 2; its G4 is
type 3 and its G5 type 9, both with r_s = 0 (DScribe has no shift) and summed over the
same unordered neighbour pairs; its output adds a G1 (the bare cutoff sum) per element
and lays out the features per neighbour element (G1, G2s) and then per neighbour pair
(G4s, G5s), element pairs in the order of their atomic numbers.
"""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list

import mlpot
from conftest import oracle
from mlpot.acsf import CUTOFF_FUNCTIONS, standard_functions


def cutoff_function(name, r, rc, alpha):
    """n2p2's cutoff functions (CutoffFunction.h), written out again for the test."""
    rci = alpha * rc
    x = np.clip((r - rci) / (rc - rci), 0.0, 1.0)
    inner = r < rci
    f = {
        "hard": np.ones_like(r),
        "cos": 0.5 * (np.cos(np.pi * x) + 1),
        "tanhu": np.tanh(1 - r / rc) ** 3,
        "tanh": np.tanh(1 - r / rc) ** 3 / np.tanh(1.0) ** 3,
        "exp": np.exp(1 - 1 / np.maximum(1 - x**2, 1e-300)),
        "poly1": (2 * x - 3) * x**2 + 1,
        "poly2": ((15 - 6 * x) * x - 10) * x**3 + 1,
        "poly3": (x * (x * (20 * x - 70) + 84) - 35) * x**4 + 1,
        "poly4": (x * (x * ((315 - 70 * x) * x - 540) + 420) - 126) * x**5 + 1,
    }[name]
    if name not in ("tanhu", "tanh"):
        f = np.where(inner, 1.0, f)
    return np.where(r < rc, f, 0.0)


def reference(atoms, d):
    """G of every atom by the definitions (module docstring of mlpot.acsf), brute force."""
    functions = d.functions
    rc_max = d.cutoff
    i_, j_, dist, vec = neighbor_list("ijdD", atoms, rc_max)
    z = atoms.numbers
    symbols = np.array(atoms.get_chemical_symbols())
    out = np.zeros((len(atoms), d.n_features))
    for i in range(len(atoms)):
        mine = [f for f in functions if f["center"] == symbols[i]]
        sel = i_ == i
        r, v, j = dist[sel], vec[sel], j_[sel]
        a, b = np.triu_indices(len(r), 1)
        cos = np.einsum("kx,kx->k", v[a], v[b]) / (r[a] * r[b])
        rjk = np.linalg.norm(v[a] - v[b], axis=1)
        for col, f in enumerate(mine):
            fc = lambda x: cutoff_function(d.cutoff_function, x, f["cutoff"], d.cutoff_alpha)
            radial = np.exp(-f["eta"] * (r - f["r_s"]) ** 2) * fc(r)
            if f["type"] in (2, 12):
                weight = (symbols[j] == f["neighbors"][0]) if f["type"] == 2 else z[j]
                out[i, col] = np.sum(weight * radial)
                continue
            if f["type"] == 13:
                weight = z[j[a]] * z[j[b]]
            else:
                e1, e2 = f["neighbors"]
                sa, sb = symbols[j[a]], symbols[j[b]]
                weight = ((sa == e1) & (sb == e2)) | ((sa == e2) & (sb == e1))
            base = np.maximum(1 + f["lambda"] * cos, 0.0) ** f["zeta"]
            g = base * radial[a] * radial[b]
            if f["type"] in (3, 13):
                g = g * np.exp(-f["eta"] * (rjk - f["r_s"]) ** 2) * fc(rjk)
            out[i, col] = 2 ** (1 - f["zeta"]) * np.sum(weight * g)
    return out


def alloy(seed, symbols=("Si", "C", "O"), pbc=True):
    rng = np.random.default_rng(seed)
    atoms = bulk("Si", "diamond", a=5.0).repeat((2, 1, 1)) if pbc else molecule("CH3CH2OH")
    if pbc:
        atoms.set_chemical_symbols(rng.choice(list(symbols), len(atoms)))
        atoms.positions += 0.2 * rng.standard_normal(atoms.positions.shape)
    else:
        atoms.set_chemical_symbols([s if s != "H" else "O" for s in atoms.get_chemical_symbols()])
        atoms.symbols[[0, 2]] = "Si"
    return atoms


def every_type(species, rc=4.1):
    functions = []
    for c in species:
        for e1 in species:
            functions.append({"type": 2, "center": c, "neighbors": [e1], "eta": 0.7, "r_s": 1.3})
            for e2 in species:
                functions.append({"type": 3, "center": c, "neighbors": [e1, e2], "eta": 0.03, "lambda": -1.0, "zeta": 2.0, "r_s": 0.3})
                functions.append({"type": 9, "center": c, "neighbors": [e1, e2], "eta": 0.06, "lambda": 1.0, "zeta": 16.0})
        functions.append({"type": 12, "center": c, "eta": 0.2, "r_s": 0.5, "cutoff": rc - 0.6})
        functions.append({"type": 13, "center": c, "eta": 0.01, "lambda": 1.0, "zeta": 5.5})
    return functions


@pytest.mark.parametrize("name", CUTOFF_FUNCTIONS)
@pytest.mark.parametrize("pbc", [True, False], ids=["periodic", "molecule"])
def test_every_type_and_cutoff_function_is_the_definition(name, pbc):
    species = ["Si", "C", "O"]
    d = mlpot.ACSF(cutoff=4.1, species=species, functions=every_type(species), cutoff_function=name,
                   cutoff_alpha=0.25)
    for seed in range(2):
        atoms = alloy(seed, pbc=pbc)
        expected = reference(atoms, d)
        np.testing.assert_allclose(d.compute(atoms), expected, rtol=1e-12, atol=1e-14 * np.abs(expected).max())


def test_an_atom_counts_its_own_periodic_images():
    """A cell thinner than the cutoff: the atom's own images are neighbours (n2p2 v2.3.0)."""
    atoms = bulk("Si", "diamond", a=5.43)  # 2 atoms, 3.84 A lattice vectors
    d = mlpot.ACSF(cutoff=6.0, species=["Si"])
    np.testing.assert_allclose(d.compute(atoms), reference(atoms, d), rtol=1e-12, atol=1e-14)
    assert d.compute(atoms).shape == (2, 33)


def test_dscribe_g2_g4_g5_are_types_2_3_and_9():
    dscribe = oracle("dscribe.descriptors")
    species = ["H", "O"]
    rc = 5.0
    g2, g4, g5 = [[0.5, 1.2], [0.1, 0.0]], [[0.02, 1.0, -1.0], [0.05, 4.0, 1.0]], [[0.03, 2.0, 1.0]]
    theirs = dscribe.ACSF(r_cut=rc, g2_params=g2, g4_params=g4, g5_params=g5, species=species, periodic=False)
    atoms = molecule("H2O")
    atoms += molecule("H2O")
    atoms.positions[3:] += [2.2, 0.6, 0.4]
    functions = []
    for c in species:
        for e in species:
            functions += [{"type": 2, "center": c, "neighbors": [e], "eta": eta, "r_s": rs, "cutoff": rc} for eta, rs in g2]
        for k, e1 in enumerate(species):
            for e2 in species[k:]:
                functions += [{"type": 3, "center": c, "neighbors": [e1, e2], "eta": eta, "zeta": zeta, "lambda": lam,
                               "cutoff": rc} for eta, zeta, lam in g4]
                functions += [{"type": 9, "center": c, "neighbors": [e1, e2], "eta": eta, "zeta": zeta, "lambda": lam,
                               "cutoff": rc} for eta, zeta, lam in g5]
    ours = mlpot.ACSF(species=species, functions=functions).compute(atoms)
    x = theirs.create(atoms)
    # DScribe: per neighbour element [G1, G2...], then per element pair [G4..., G5...]
    n2, n45 = 1 + len(g2), len(g4) + len(g5)
    g2_cols = [e * n2 + 1 + k for e in range(len(species)) for k in range(len(g2))]
    pair_cols = [len(species) * n2 + p * n45 + k for p in range(3) for k in range(n45)]
    np.testing.assert_allclose(ours, x[:, g2_cols + pair_cols], rtol=1e-10, atol=1e-12)


def test_the_standard_set():
    d = mlpot.ACSF(cutoff=6.0, species=["Si"])
    assert d.n_features == 33 and d.n_functions("Si") == 33
    f = d.functions
    radial = [g for g in f if g["type"] == 2]
    assert len(radial) == 9 and radial[0]["r_s"] == 1.5 and radial[-1]["r_s"] == pytest.approx(5.5)
    assert all(g["eta"] == pytest.approx(1 / (2 * 0.5**2)) for g in radial)
    angular = [g for g in f if g["type"] == 3]
    assert {g["zeta"] for g in angular} == {1.0, 2.0, 4.0, 16.0} and {g["lambda"] for g in angular} == {-1.0, 1.0}
    two = mlpot.ACSF(cutoff=5.0, species=["Cu", "Al"])
    # per centre: 2 x 9 radial + 3 neighbour pairs x 24 angular
    assert two.n_functions("Cu") == two.n_functions("Al") == 18 + 72
    assert standard_functions(["Cu", "Al"], 5.0) == [dict(g) for g in two.functions]


def test_features_of_an_element_with_fewer_functions_are_zero_padded():
    functions = [{"type": 2, "center": "Si", "neighbors": ["O"], "eta": 0.5}] * 3
    functions += [{"type": 12, "center": "O", "eta": 0.5}]
    d = mlpot.ACSF(cutoff=4.0, species=["Si", "O"], functions=functions)
    atoms = Atoms("SiO2", positions=[[0, 0, 0], [1.6, 0, 0], [-1.6, 0.2, 0]])
    g = d.compute(atoms)
    assert g.shape == (3, 3) and d.n_functions("O") == 1
    assert (g[1:, 1:] == 0).all() and (g[0] > 0).all() and (g[1:, 0] > 0).all()


def test_a_saved_descriptor_keeps_its_functions():
    d = mlpot.ACSF(cutoff=5.0, species=["Cu", "Al"], cutoff_function="poly3", cutoff_alpha=0.1)
    again = mlpot.ACSF.from_dict(d.to_dict())
    assert again.functions == d.functions and again.cutoff_function == "poly3"
    atoms = bulk("Cu", "fcc", a=3.6).repeat(2)
    atoms.symbols[:3] = "Al"
    np.testing.assert_array_equal(again.compute(atoms), d.compute(atoms))


@pytest.mark.parametrize(
    "function, match",
    [
        ({"type": 4, "center": "Si", "eta": 1.0}, "type"),
        ({"type": 2, "center": "Si", "eta": 1.0}, "needs.*neighbors"),
        ({"type": 2, "center": "Si", "neighbors": ["Si"], "eta": 1.0, "zeta": 2.0}, "takes no.*zeta"),
        ({"type": 3, "center": "Si", "neighbors": ["Si"], "eta": 1.0, "lambda": 1.0, "zeta": 1.0}, "2 element"),
        ({"type": 3, "center": "Si", "neighbors": ["Si", "Si"], "eta": 1.0, "lambda": 1.0, "zeta": 0.5}, "zeta"),
        ({"type": 3, "center": "Si", "neighbors": ["Si", "Si"], "eta": 1.0, "lambda": 2.0, "zeta": 1.0}, "lambda"),
        ({"type": 2, "center": "Si", "neighbors": ["Si"], "eta": -1.0}, "eta"),
        ({"type": 2, "center": "Si", "neighbors": ["Si"], "eta": 1.0, "cutoff": 0.0}, "cutoff"),
        ({"type": 2, "center": "Si", "neighbors": ["C"], "eta": 1.0}, "not in species"),
        ({"type": 12, "center": "Xq", "eta": 1.0}, "center"),
        ({"type": 2, "center": "Si", "neighbors": ["Si"], "eta": float("nan")}, "eta"),
    ],
)
def test_bad_functions_are_named(function, match):
    with pytest.raises((TypeError, ValueError), match=match):
        mlpot.ACSF(cutoff=4.0, species=["Si"], functions=[function])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="cutoff_function"):
        mlpot.ACSF(species=["Si"], cutoff_function="cosine")
    with pytest.raises(ValueError, match="cutoff_alpha"):
        mlpot.ACSF(species=["Si"], cutoff_alpha=1.0)
    with pytest.raises(ValueError, match="functions"):
        mlpot.ACSF(species=["Si"], functions=[])
    with pytest.raises(ValueError, match="r_inner"):
        standard_functions(["Si"], 1.8)
    with pytest.raises(ValueError, match="Ni"):
        mlpot.ACSF(cutoff=4.0, species=["Si"]).compute(bulk("Ni"))


def copper_frames(n):
    """Rattled fcc Cu cells labelled by ASE's EMT (standing in for DFT)."""
    from ase.calculators.emt import EMT

    from snap_helpers import labelled

    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
        atoms.rattle(0.1, seed=k)
        atoms.calc = EMT()
        frames.append(labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return frames


def test_acsf_in_a_linear_model_and_in_gap():
    """The models take the descriptor through the interface, nothing ACSF-specific."""
    frames = copper_frames(6)
    d = mlpot.ACSF(cutoff=4.5, species=["Cu"], functions=standard_functions(["Cu"], 4.5, n_radial=5, n_angular=2, zetas=(1, 4)))
    linear = mlpot.LinearModel(d).fit(frames, progress=False)
    gap = mlpot.GAP(d, n_sparse=20).fit(frames, progress=False)
    for model in (linear, gap):
        p = model.predict(frames[0])
        assert abs(p["energy"] - frames[0].get_potential_energy()) / len(frames[0]) < 0.01


ACSF_CONFIG = """
[data]
train = ["train.extxyz"]

[descriptor]
type = "acsf"
species = ["Cu"]
cutoff = 4.5
cutoff_function = "poly2"
functions = [
  {type = 2, center = "Cu", neighbors = ["Cu"], eta = 2.0, r_s = 2.5},
  {type = 2, center = "Cu", neighbors = ["Cu"], eta = 0.5},
  {type = 3, center = "Cu", neighbors = ["Cu", "Cu"], eta = 0.05, lambda = -1.0, zeta = 2.0},
  {type = 9, center = "Cu", neighbors = ["Cu", "Cu"], eta = 0.05, lambda = 1.0, zeta = 4.0, cutoff = 4.0},
]

[model]
type = "linear"
ridge = 1e-10

[output]
model = "acsf.mlpot"
"""


def test_an_acsf_configuration_fits_from_the_command_line(tmp_path):
    import tomllib

    from ase.io import write as ase_write
    from jsonschema import Draft202012Validator

    from mlpot import cli

    ase_write(tmp_path / "train.extxyz", copper_frames(5))
    (tmp_path / "fit.toml").write_text(ACSF_CONFIG)
    assert Draft202012Validator(cli.config_schema()).is_valid(tomllib.loads(ACSF_CONFIG))
    assert cli.main(["fit", str(tmp_path / "fit.toml"), "--quiet"]) == 0
    model = mlpot.load(tmp_path / "acsf.mlpot")
    assert isinstance(model.descriptor, mlpot.ACSF) and model.descriptor.n_features == 4
    assert model.descriptor.cutoff_function == "poly2" and model.descriptor.functions[3]["cutoff"] == 4.0
    bad = ACSF_CONFIG.replace("zeta = 2.0", "zeta = 0.5")
    (tmp_path / "bad.toml").write_text(bad)
    assert cli.main(["fit", str(tmp_path / "bad.toml"), "--quiet"]) != 0
