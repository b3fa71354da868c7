"""The descriptor contract: every descriptor, listed once in DESCRIPTORS, runs the same checks.

- values: (n_atoms, n_features) float64, finite; the values of a gradient call are those of
  compute();
- position gradients against central finite differences of compute(), every atom and
  direction, on periodic, slab and open structures;
- per-atom virials against finite differences under a small strain;
- capabilities, declared per case and run only for the cases that declare them:
  ``forces`` (Bispectrum's adjoint), ``backprop`` (the generic adjoint) against the
  explicit gradients, ``forward`` (the forward-mode product) against finite differences;
- invariances (hypothesis): rotation and reflection, translation, permutation, periodic
  wrapping and lattice shifts, supercell replication;
- bit-identical results on 1 and 2 threads;
- bad input: a ValueError naming the problem.

Adding a descriptor: register it (mlpot.descriptors.register_descriptor) and add one or more
Case rows below; `test_every_registered_descriptor_has_a_case` fails until it is listed.

Conventions checked (units: positions in Angstrom, derivatives per Angstrom):

- gradients: row k of ``g.values`` is dX_i/dr_j, i = g.centers[k], j = g.neighbors[k], with the
  periodic images of j summed into the row;
- virial: W_i[ab] = -sum_j (dX_i/dr_ij)_a (r_ij)_b, Voigt order (xx, yy, zz, yz, xz, xy).
  Under the homogeneous deformation r -> (1 + eps) r of every position (and of the cell),
  dX_i = sum_ab (dX_i/dr_ij)_a eps_ab (r_ij)_b = -sum_ab W_i[ab] eps_ab. For the symmetric
  strain of Voigt component v with amplitude e (eps_aa = e, or eps_ab = eps_ba = e / 2) and a
  symmetric W_i (X_i is rotation invariant, so the antisymmetric part of W_i vanishes),
  dX_i/de = -W_i[v]: the virial is minus the strain derivative, per atom and so in the sum;
- forces/backprop of E = sum_i dE/dX_i . X_i: forces_k = -sum_i dE/dX_i . dX_i/dr_k
  (eV/Angstrom), virial = sum_i dE/dX_i . W_i (eV, Voigt), the LAMMPS virial (ASE's stress is
  -virial / volume);
- forward(atoms, u): dX_i = sum_k dX_i/dr_k . u_k, (n_atoms, n_features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpot
from mlpot import descriptors as descriptor_module

#: the optional capabilities a case can declare (see the module docstring)
CAPABILITIES = frozenset({"forces", "backprop", "forward"})


@dataclass(frozen=True)
class Case:
    """One configuration of one descriptor: ``factory()`` returns a fresh descriptor (with
    ``compute``, ``species``, ``cutoff`` and ``n_features``); ``capabilities`` lists the optional
    methods it provides, a subset of CAPABILITIES."""

    id: str
    factory: Callable[[], object]
    capabilities: frozenset = frozenset()

    def __post_init__(self):
        assert self.capabilities <= CAPABILITIES, self.capabilities - CAPABILITIES


RADELEM = {"Ni": 0.5, "Al": 0.57, "O": 0.45}
WJ = {"Ni": 1.0, "Al": 0.73, "O": 1.31}
SPECIES = ["Si", "C", "O"]


def bispectrum(twojmax=4, radelem=RADELEM, wj=WJ, **flags):
    return lambda: mlpot.Bispectrum(twojmax, 4.1, radelem=radelem, wj=wj, **flags)


def soap(**options):
    hypers = dict(cutoff=3.4, n_max=4, l_max=3, atom_sigma=0.45, cutoff_transition_width=0.8,
                  species=SPECIES) | options
    return lambda: mlpot.SOAP(**hypers)


def acsf(cutoff_function="cos", cutoff_alpha=0.0, species=SPECIES, functions=None):
    """Every function type over every central element (or the standard set)."""
    if functions is None:
        functions = []
        for c in species:
            a, b = species[0], species[-1]
            functions += [
                {"type": 2, "center": c, "neighbors": [a], "eta": 1.1, "r_s": 1.9},
                {"type": 2, "center": c, "neighbors": [b], "eta": 0.3, "r_s": 0.0, "cutoff": 3.1},
                {"type": 3, "center": c, "neighbors": [a, b], "eta": 0.05, "lambda": 1.0, "zeta": 2.0, "r_s": 0.4},
                {"type": 3, "center": c, "neighbors": [b, b], "eta": 0.2, "lambda": -1.0, "zeta": 1.0},
                {"type": 9, "center": c, "neighbors": [a, a], "eta": 0.1, "lambda": -1.0, "zeta": 3.5, "cutoff": 3.0},
                {"type": 12, "center": c, "eta": 0.4, "r_s": 1.0},
                {"type": 13, "center": c, "eta": 0.02, "lambda": 1.0, "zeta": 4.0, "r_s": 0.2},
            ]
        functions = functions[:-3]  # the last element has fewer functions: zero-padded features
    return lambda: mlpot.ACSF(cutoff=3.4, species=list(species), functions=functions,
                              cutoff_function=cutoff_function, cutoff_alpha=cutoff_alpha)


def ace(species=SPECIES, **options):
    """A small basis of ranks 1-4 (two elements: per-bond radial bases, an inner cutoff)."""
    settings = dict(cutoff=3.4, species=list(species), nradmax_by_orders=(3, 2, 2, 1), lmax_by_orders=(0, 2, 2, 1),
                    dcut=0.3) | options
    return lambda: mlpot.ACE(**settings)


BISPECTRUM = frozenset({"forces", "backprop", "forward"})
ACE = frozenset({"backprop", "forward"})
ACSF = frozenset({"backprop", "forward"})
SOAP = frozenset({"backprop", "forward"})

#: every descriptor configuration the contract runs on
DESCRIPTORS = [
    Case("bispectrum-Ni-2j6", bispectrum(6, {"Ni": 0.5}, {"Ni": 1.0}), BISPECTRUM),
    Case("bispectrum-NiAlO", bispectrum(), BISPECTRUM),
    Case("bispectrum-bzero-noswitch-rmin0",
         bispectrum(bzeroflag=True, switchflag=False, rmin0=0.4), BISPECTRUM),
    Case("bispectrum-chem-bnorm", bispectrum(chemflag=True, bnormflag=True), BISPECTRUM),
    Case("bispectrum-chem-bzero-wselfall",
         bispectrum(chemflag=True, bzeroflag=True, wselfallflag=True), BISPECTRUM),
    Case("soap-Si", soap(species=["Si"]), SOAP),
    Case("soap-SiCO", soap(), SOAP),
    Case("soap-SiC-normalize", soap(species=["Si", "C"], normalize=True), SOAP),
    Case("soap-SiCO-normalize", soap(normalize=True), SOAP),
    Case("soap-SiCO-step-cutoff-center-weight", soap(cutoff_transition_width=0.0, center_atom_weight=0.4), SOAP),
    Case("acsf-Si-standard", lambda: mlpot.ACSF(cutoff=3.4, species=["Si"]), ACSF),
    Case("acsf-SiCO-every-type", acsf(), ACSF),
    Case("acsf-SiCO-poly2-alpha", acsf("poly2", 0.2), ACSF),
    Case("acsf-SiC-exp", acsf("exp", 0.1, species=["Si", "C"]), ACSF),
    Case("acsf-SiC-tanh", acsf("tanh", species=["Si", "C"]), ACSF),
    Case("acsf-SiO-poly4-alpha", acsf("poly4", 0.5, species=["Si", "O"]), ACSF),
    Case("acsf-SiC-hard", acsf("hard", species=["Si", "C"]), ACSF),
    Case("ace-Si-ChebExpCos", ace(species=["Si"]), ACE),
    Case("ace-SiC-SBessel", ace(species=["Si", "C"], radbase="SBessel", nradmax_by_orders=(3, 2, 1),
                               lmax_by_orders=(0, 2, 1)), ACE),
    Case("ace-SiC-ChebPow-inner-bonds", ace(
        species=["Si", "C"], radbase="ChebPow", radial_lambda=2.0, r_in=1.2, delta_in=0.4, nradmax_by_orders=(3, 2),
        lmax_by_orders=(0, 2), bonds=[{"center": "Si", "neighbor": "C", "radbase": "ChebExpCos", "rcut": 3.0},
                                      {"center": "C", "neighbor": "Si", "radbase": "ChebExpCos", "rcut": 3.0}]), ACE),
]

cases = pytest.mark.parametrize("case", DESCRIPTORS, ids=lambda c: c.id)

_CACHE: dict[str, object] = {}


def shared(case):
    """One descriptor per case for the hypothesis tests (SOAP tabulates its radial integral
    when built, ~25 ms); the descriptors are immutable."""
    if case.id not in _CACHE:
        _CACHE[case.id] = case.factory()
    return _CACHE[case.id]


def providing(*capabilities):
    """Parametrize over (case, capability) for every case that provides one of
    ``capabilities``: a case without it has nothing to test there, so it is not listed
    (and nothing is skipped)."""
    pairs = [(c, name) for c in DESCRIPTORS for name in capabilities if name in c.capabilities]
    return pytest.mark.parametrize(("case", "capability"), pairs, ids=[f"{c.id}-{name}" for c, name in pairs])


# ------------------------------------------------------------------ structures

SYSTEMS = {"periodic": (True, True, True), "slab": (True, True, False), "open": (False, False, False)}
#: volume per atom, Angstrom^3 (between fcc Ni, 10.9, and diamond Si, 20)
VOLUME_PER_ATOM = 14.0
#: closest approach of two atoms (or of an atom and its image), Angstrom
MIN_DISTANCE = 1.7
#: pair distances this close to a cutoff are avoided: a hard cutoff (switchflag off, SOAP
#: with no transition width) makes the values jump there, which finite differences would see
CUTOFF_MARGIN = 1e-3


def cutoff_radii(d) -> set[float]:
    """Every cutoff the descriptor uses: the pair cutoffs if it has several, and the largest."""
    return set(getattr(d, "cutoffs", {}).values()) | {d.cutoff}


def random_structure(d, seed: int, system: str = "periodic", n_atoms: int | None = None) -> Atoms:
    """3-12 atoms at random positions (no two closer than MIN_DISTANCE, images included), in a
    random triclinic cell; every species of ``d`` appears when there are enough atoms.
    ``system`` sets the periodicity: "periodic", "slab" (x, y) or "open" (a cluster in the cell)."""
    rng = np.random.default_rng(seed)
    species = list(d.species)
    radii = sorted(cutoff_radii(d))
    pbc = SYSTEMS[system]
    while True:  # rejection: a random cell or arrangement that is too tight is drawn again
        n = int(rng.integers(3, 13)) if n_atoms is None else n_atoms
        symbols = list(species[:n]) + list(rng.choice(species, n - min(n, len(species))))
        rng.shuffle(symbols)
        cell = (n * VOLUME_PER_ATOM) ** (1 / 3) * (np.eye(3) + rng.uniform(-0.3, 0.3, (3, 3)))
        if abs(np.linalg.det(cell)) < 0.5 * n * VOLUME_PER_ATOM:
            continue
        atoms = Atoms(symbols, cell=cell, pbc=pbc)  # open: a cluster filling the cell
        for k in range(n):
            for _ in range(200):
                atoms.positions[k] = rng.uniform(0, 1, 3) @ atoms.cell.array
                if k == 0 or atoms.get_distances(k, range(k), mic=any(pbc)).min() >= MIN_DISTANCE:
                    break
            else:
                break
        else:
            distances = ase_neighbor_list("d", atoms, max(radii) + 1.0)
            if len(distances) == 0 or distances.min() < MIN_DISTANCE:
                continue  # an atom too close to its own periodic image
            if all(np.abs(distances - r).min() > CUTOFF_MARGIN for r in radii):
                return atoms


def displaced(atoms, u, h):
    moved = atoms.copy()
    moved.positions = atoms.positions + h * u
    return moved


VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def strained(atoms, voigt: int, e: float):
    """atoms under the symmetric strain of amplitude e along Voigt component ``voigt``
    (positions and cell deformed by 1 + eps)."""
    a, b = VOIGT[voigt]
    eps = np.zeros((3, 3))
    eps[a, b] += e / 2
    eps[b, a] += e / 2
    deformed = atoms.copy()
    deformed.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=False)
    deformed.positions = atoms.positions @ (np.eye(3) + eps).T
    return deformed


def dense(g, n_atoms, n_features):
    """The sparse gradients as a dense (n_atoms, n_atoms, 3, n_features) array D[i, k] = dX_i/dr_k."""
    out = np.zeros((n_atoms, n_atoms, 3, n_features))
    np.add.at(out, (g.centers, g.neighbors), g.values)
    return out


def voigt_to_tensor(w):
    """(..., 6, F) in Voigt order -> (..., 3, 3, F), symmetric."""
    out = np.empty(w.shape[:-2] + (3, 3, w.shape[-1]))
    for v, (a, b) in enumerate(VOIGT):
        out[..., a, b, :] = out[..., b, a, :] = w[..., v, :]
    return out


def close(actual, expected, rel, scale=None, what=""):
    """|actual - expected| <= rel * scale elementwise, scale = max(1, max |expected|) by default:
    the error measured against the size of the quantity, not element by element."""
    scale = max(1.0, float(np.abs(expected).max(initial=0.0))) if scale is None else scale
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rel * scale, err_msg=what)


# the finite-difference step and the tolerance of the comparison, relative to the size of the
# derivative: the central difference's error is ~h^2 X''' plus ~1e-16 X / h of rounding
FD_STEP = 1e-5
FD_REL = 1e-7
#: invariances hold up to rounding; relative to the size of the values
INVARIANCE_REL = 1e-10

# adapters: the optional methods, called the same way in every test


def adjoint(d, capability, atoms, dE_dX):
    """(forces (n_atoms, 3), virial (6,)) of E = sum_i dE_dX_i . X_i through ``capability``."""
    if capability == "forces":
        return d.forces(atoms, dE_dX)
    return d.backprop(atoms, dE_dX)


def forward(d, atoms, u):
    """dX (n_atoms, n_features) along the displacement u (n_atoms, 3)."""
    return d.forward(atoms, u)


# ------------------------------------------------------------------ the list is complete


#: registered kinds that cannot run the per-atom contract, with the reason; a kind leaves this
#: list (for a Case) as soon as it has compute()
NOT_PER_ATOM = {
    "distance_2b": "GAP's pair term: one distance per pair, no per-atom compute(); its rows are "
                   "tested with the GAP (test_gap.py, test_bad_input.py)",
}


def test_every_registered_descriptor_has_a_case():
    listed = {type(case.factory()) for case in DESCRIPTORS}
    registry = descriptor_module.DESCRIPTORS
    missing = [kind for kind, cls in registry.items() if cls not in listed and kind not in NOT_PER_ATOM]
    assert not missing, f"descriptor kinds {missing} have no Case in DESCRIPTORS"
    for kind in NOT_PER_ATOM:
        assert kind in registry, f"{kind} is no longer registered: remove it from NOT_PER_ATOM"
        assert not hasattr(registry[kind], "compute"), (
            f"{kind} has compute(): give it a Case instead of listing it in NOT_PER_ATOM"
        )
    assert len({case.id for case in DESCRIPTORS}) == len(DESCRIPTORS), "case ids must be unique"


@cases
def test_factories_give_fresh_descriptors_and_capabilities_are_declared(case):
    d = case.factory()
    assert d is not case.factory()
    # a method of the contract that exists but is not declared would be skipped silently
    for capability in CAPABILITIES - case.capabilities:
        assert not callable(getattr(d, capability, None)), (
            f"{case.id}: the descriptor provides {capability}(); add it to the case's capabilities"
        )


# ------------------------------------------------------------------ values


@cases
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_values_have_the_shape_type_and_are_finite(case, system):
    d = case.factory()
    atoms = random_structure(d, 10, system)
    x = d.compute(atoms)
    assert isinstance(x, np.ndarray) and x.dtype == np.float64
    assert x.shape == (len(atoms), d.n_features)
    assert np.isfinite(x).all()
    assert np.abs(x).max() > 0
    x2, g = d.compute(atoms, gradients=True)
    np.testing.assert_array_equal(x2, x)
    n_rows = len(g.centers)
    assert g.neighbors.shape == (n_rows,)
    assert g.values.shape == (n_rows, 3, d.n_features) and g.values.dtype == np.float64
    assert g.virial.shape == (len(atoms), 6, d.n_features) and g.virial.dtype == np.float64
    assert np.isfinite(g.values).all() and np.isfinite(g.virial).all()
    empty = d.compute(Atoms(cell=np.eye(3) * 5, pbc=system != "open"))
    assert empty.shape == (0, d.n_features)


# ------------------------------------------------------------------ derivatives


@cases
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_position_gradients_match_finite_differences(case, system):
    d = case.factory()
    atoms = random_structure(d, 20, system)
    n = len(atoms)
    _, g = d.compute(atoms, gradients=True)
    analytic = dense(g, n, d.n_features)
    for k in range(n):
        for c in range(3):
            u = np.zeros((n, 3))
            u[k, c] = 1.0
            fd = (d.compute(displaced(atoms, u, FD_STEP)) - d.compute(displaced(atoms, u, -FD_STEP))) / (2 * FD_STEP)
            close(analytic[:, k, c], fd, FD_REL, what=f"dX/dr of atom {k}, direction {c}")


@cases
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_virial_is_minus_the_strain_derivative(case, system):
    d = case.factory()
    atoms = random_structure(d, 30, system)
    _, g = d.compute(atoms, gradients=True)
    for v in range(6):
        fd = (d.compute(strained(atoms, v, FD_STEP)) - d.compute(strained(atoms, v, -FD_STEP))) / (2 * FD_STEP)
        close(-g.virial[:, v], fd, FD_REL, what=f"per-atom virial, Voigt {v}")
        close(-g.virial[:, v].sum(axis=0), fd.sum(axis=0), FD_REL, what=f"total virial, Voigt {v}")


@providing("forces", "backprop")
@pytest.mark.parametrize("system", ["periodic", "open"])
def test_adjoint_matches_the_explicit_gradients(case, capability, system):
    d = case.factory()
    atoms = random_structure(d, 40, system)
    n = len(atoms)
    _, g = d.compute(atoms, gradients=True)
    dE_dX = np.random.default_rng(1).normal(size=(n, d.n_features))
    forces, virial = adjoint(d, capability, atoms, dE_dX)
    assert forces.shape == (n, 3) and virial.shape == (6,)
    expected_forces = -np.einsum("if,ikcf->kc", dE_dX, dense(g, n, d.n_features))
    expected_virial = np.einsum("if,ivf->v", dE_dX, g.virial)
    close(forces, expected_forces, 1e-10, what="forces")
    close(virial, expected_virial, 1e-10, what="virial")


@providing("forward")
@pytest.mark.parametrize("system", ["periodic", "open"])
def test_forward_product_matches_finite_differences(case, capability, system):
    d = case.factory()
    atoms = random_structure(d, 50, system)
    n = len(atoms)
    u = np.random.default_rng(2).normal(size=(n, 3))
    dx = forward(d, atoms, u)
    assert dx.shape == (n, d.n_features) and dx.dtype == np.float64
    fd = (d.compute(displaced(atoms, u, FD_STEP)) - d.compute(displaced(atoms, u, -FD_STEP))) / (2 * FD_STEP)
    close(dx, fd, FD_REL, what="forward product against finite differences")
    _, g = d.compute(atoms, gradients=True)
    close(dx, np.einsum("ikcf,kc->if", dense(g, n, d.n_features), u), 1e-10,
          what="forward product against the explicit gradients")


# ------------------------------------------------------------------ invariances

# per case and test; the whole file stays well under 30 s
invariance = settings(max_examples=4, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def orthogonal(seed):
    """A random orthogonal matrix (proper or improper: the descriptors are O(3) invariant)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def same(actual, expected, what=""):
    close(actual, expected, INVARIANCE_REL, what=what)


@cases
@invariance
@given(seed=seeds, system=st.sampled_from(sorted(SYSTEMS)), rotation=seeds)
def test_rotation_rotates_gradients_and_leaves_values(case, seed, system, rotation):
    d = shared(case)
    atoms = random_structure(d, seed, system)
    q = orthogonal(rotation)
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ q.T, scale_atoms=False)
    moved.positions = atoms.positions @ q.T
    x, g = d.compute(atoms, gradients=True)
    xm, gm = d.compute(moved, gradients=True)
    same(xm, x, "values")
    np.testing.assert_array_equal(gm.centers, g.centers)
    np.testing.assert_array_equal(gm.neighbors, g.neighbors)
    # dX/dr is a vector and W a tensor: they rotate with the structure
    same(gm.values, np.einsum("ab,rbf->raf", q, g.values), "gradients")
    w, wm = voigt_to_tensor(g.virial), voigt_to_tensor(gm.virial)
    same(wm, np.einsum("ac,bd,icdf->iabf", q, q, w), "virial")


@cases
@invariance
@given(seed=seeds, system=st.sampled_from(sorted(SYSTEMS)),
       shift=st.tuples(*[st.floats(-20, 20, allow_nan=False)] * 3), order=seeds)
def test_translation_and_permutation(case, seed, system, shift, order):
    d = shared(case)
    atoms = random_structure(d, seed, system)
    x = d.compute(atoms)
    moved = atoms.copy()
    moved.positions += np.array(shift)
    same(d.compute(moved), x, "translation")
    perm = np.random.default_rng(order).permutation(len(atoms))
    same(d.compute(atoms[perm]), x[perm], "permutation: rows permute")


@cases
@invariance
@given(seed=seeds, atom=st.integers(0, 11), lattice=st.tuples(*[st.integers(-2, 2)] * 3))
def test_periodic_images_are_the_same_atom(case, seed, atom, lattice):
    d = shared(case)
    atoms = random_structure(d, seed, "periodic")
    atoms.positions += 3.0 * atoms.cell.array.sum(axis=0)  # out of the cell: wrap has work to do
    x, g = d.compute(atoms, gradients=True)
    wrapped = atoms.copy()
    wrapped.wrap()
    xw, gw = d.compute(wrapped, gradients=True)
    same(xw, x, "wrapped values")
    same(gw.values, g.values, "wrapped gradients")
    same(gw.virial, g.virial, "wrapped virial")
    shifted = atoms.copy()
    shifted.positions[atom % len(atoms)] += np.array(lattice) @ atoms.cell.array
    same(d.compute(shifted), x, "an atom moved by a lattice vector")


@cases
@invariance
@given(seed=seeds, reps=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)))
def test_supercell_repeats_each_row(case, seed, reps):
    d = shared(case)
    atoms = random_structure(d, seed, "periodic")
    x, g = d.compute(atoms, gradients=True)
    xb, gb = d.compute(atoms.repeat(reps), gradients=True)
    copies = int(np.prod(reps))  # ase repeats the whole cell: atom k of copy m is row m n + k
    same(xb, np.tile(x, (copies, 1)), "values")
    same(gb.virial, np.tile(g.virial, (copies, 1, 1)), "per-atom virial")


# ------------------------------------------------------------------ threads


def every_result(case, d, atoms):
    """Every array the descriptor computes for ``atoms``: values, gradients and the outputs of
    its capabilities."""
    n = len(atoms)
    x, g = d.compute(atoms, gradients=True)
    out = [d.compute(atoms), x, g.centers, g.neighbors, g.values, g.virial]
    rng = np.random.default_rng(3)
    for capability in sorted(case.capabilities & {"forces", "backprop"}):
        out += adjoint(d, capability, atoms, rng.normal(size=(n, d.n_features)))
    if "forward" in case.capabilities:
        out.append(forward(d, atoms, rng.normal(size=(n, 3))))
    return out


@pytest.fixture
def thread_count():
    before = mlpot.get_num_threads()
    yield
    mlpot.set_num_threads(before)


@cases
def test_one_and_two_threads_agree_bit_for_bit(case, thread_count):
    d = case.factory()
    atoms = random_structure(d, 60, "periodic", n_atoms=8).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=1)  # the images differ, so that a mixed-up order would show
    mlpot.set_num_threads(1)
    one = every_result(case, d, atoms)
    mlpot.set_num_threads(2)
    two = every_result(case, d, atoms)
    for a, b in zip(one, two, strict=True):
        assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ bad input


def calls(case, d):
    """Every way of passing a structure to the descriptor."""
    out = {"compute": d.compute, "compute gradients": lambda a: d.compute(a, gradients=True)}
    for capability in sorted(case.capabilities & {"forces", "backprop"}):
        out[capability] = lambda a, c=capability: adjoint(d, c, a, np.ones((len(a), d.n_features)))
    if "forward" in case.capabilities:
        out["forward"] = lambda a: forward(d, a, np.ones((len(a), 3)))
    return out


def nan_position(d):
    atoms = random_structure(d, 70, "periodic")
    atoms.positions[1, 2] = np.nan
    return atoms, "not finite"


def unknown_element(d):
    atoms = random_structure(d, 71, "periodic")
    symbol = next(s for s in ("Cu", "Xe", "Au") if s not in d.species)
    atoms[1].symbol = symbol
    return atoms, f"element.*{symbol}"


def zero_volume_cell(d):
    atoms = random_structure(d, 72, "periodic")
    atoms.set_cell([[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]], scale_atoms=False)
    return atoms, "volume"


def coincident_atoms(d):
    atoms = random_structure(d, 73, "open")
    atoms.positions[2] = atoms.positions[0]
    return atoms, "same position"


BAD = [nan_position, unknown_element, zero_volume_cell, coincident_atoms]


@cases
@pytest.mark.parametrize("problem", BAD, ids=lambda f: f.__name__)
def test_bad_structures_raise_a_value_error_naming_the_problem(case, problem):
    d = case.factory()
    atoms, message = problem(d)
    for name, call in calls(case, d).items():
        with pytest.raises(ValueError, match=message):
            call(atoms)
