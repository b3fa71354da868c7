"""mlpot.neighbor_list against ASE (the semantics it promises), vesin and matscipy."""

import concurrent.futures

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list
from ase.neighborlist import primitive_neighbor_list as ase_primitive_neighbor_list
from hypothesis import assume, given
from hypothesis import strategies as st

import mlpot
from conftest import oracle


def pair_table(i, j, S, d, D):
    """{(i, j, S): (d, D)} for comparing lists in any order."""
    return {(a, b, *s): (dist, vec) for a, b, s, dist, vec in zip(i, j, S.tolist(), d, D)}


def assert_same_pairs(ours, theirs):
    mine, ref = pair_table(*ours), pair_table(*theirs)
    assert mine.keys() == ref.keys()
    for key, (d, D) in ref.items():
        assert abs(mine[key][0] - d) <= 1e-12 * max(1.0, d)
        np.testing.assert_allclose(mine[key][1], D, rtol=0, atol=1e-12 * max(1.0, d))


@st.composite
def structures(draw, max_atoms=200):
    """Random triclinic cells (strongly skewed ones included), every pbc combination, atoms
    inside and outside the cell, cutoffs from tiny to several cell lengths."""
    pbc = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    lengths = draw(st.lists(st.floats(1.0, 8.0), min_size=3, max_size=3))
    skew = draw(st.sampled_from([0.0, 0.5, 2.0]))
    off = draw(st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6))
    cell = np.diag(lengths)
    cell[np.triu_indices(3, 1)] = skew * np.array(off[:3]) * lengths[0]
    cell[np.tril_indices(3, -1)] = skew * np.array(off[3:]) * lengths[1]
    volume = abs(np.linalg.det(cell))
    assume(volume > 0.02 * np.prod(np.linalg.norm(cell, axis=1)))
    # open directions may have a zero cell vector, as molecules do in ASE
    if draw(st.booleans()):
        for k in range(3):
            if not pbc[k]:
                cell[k] = 0.0
    n_atoms = draw(st.integers(1, max_atoms))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    fractional = rng.uniform(-0.5, 1.5, size=(n_atoms, 3))
    positions = fractional @ np.where(np.linalg.norm(cell, axis=1)[:, None] > 0, cell, np.eye(3) * lengths)
    heights = 1 / np.linalg.norm(np.linalg.inv(np.diag(lengths) + (cell - np.diag(np.diag(cell)))).T, axis=1)
    cutoff = draw(st.floats(0.05, 3.0)) * max(heights.min(), 0.5)
    # keep ASE's reference run affordable: bound the expected number of pairs
    density = n_atoms / (volume if all(pbc) else max(volume, 1.0) * 8)
    images = np.prod([2 * np.ceil(cutoff / h) + 1 for h, p in zip(heights, pbc) if p] or [1])
    assume(n_atoms * min(n_atoms * images, density * 4.2 * cutoff**3 + 1) < 3e5)
    atoms = Atoms(numbers=rng.integers(1, 4, n_atoms), positions=positions, cell=cell, pbc=pbc)
    return atoms, cutoff


@given(structures())
def test_pairs_equal_ase_for_random_cells(case):
    atoms, cutoff = case
    ours = mlpot.neighbor_list("ijSdD", atoms, cutoff)
    theirs = ase_neighbor_list("ijSdD", atoms, cutoff)
    assert_same_pairs(ours, theirs)
    # sorted by i, and S zero along open directions
    assert np.all(np.diff(ours[0]) >= 0)
    assert np.all(ours[2][:, ~atoms.pbc] == 0)


@given(structures(max_atoms=100))
def test_pairs_equal_vesin_for_random_cells(vesin, case):
    atoms, cutoff = case
    assume(abs(atoms.cell.volume) > 1e-6)  # vesin needs a full cell, even along open directions
    i, j, S, D = vesin.NeighborList(cutoff=cutoff, full_list=True).compute(
        points=atoms.positions, box=atoms.cell.array, periodic=atoms.pbc, quantities="ijSD"
    )
    theirs = (i, j, S, np.linalg.norm(D, axis=1), D)
    assert_same_pairs(mlpot.neighbor_list("ijSdD", atoms, cutoff), theirs)


@given(structures(max_atoms=60), st.booleans())
def test_per_element_and_per_atom_cutoffs_equal_ase(case, use_symbols):
    atoms, cutoff = case
    names = {1: "H", 2: "He", 3: "Li"}
    key = (lambda z: names[z]) if use_symbols else (lambda z: z)
    table = {(key(1), key(1)): cutoff, (key(1), key(2)): 0.7 * cutoff, (key(3), key(2)): 0.4 * cutoff}
    assert_same_pairs(
        mlpot.neighbor_list("ijSdD", atoms, table), ase_neighbor_list("ijSdD", atoms, table)
    )
    radii = np.linspace(0.2, 0.5, len(atoms)) * cutoff
    assert_same_pairs(
        mlpot.neighbor_list("ijSdD", atoms, radii), ase_neighbor_list("ijSdD", atoms, radii)
    )


def assume_no_pair_at_the_cutoff(atoms, cutoff):
    """Copies of a pair at d == cutoff to the last bit may land on either side after the
    rounding a replication or translation brings: keep such measure-zero cases out."""
    d = mlpot.neighbor_list("d", atoms, cutoff * (1 + 1e-7))
    assume(not np.any(np.abs(d - cutoff) <= 1e-7 * cutoff))


@given(structures(max_atoms=40), st.sampled_from([(1, 1, 2), (2, 1, 1), (1, 3, 1), (2, 2, 1)]))
def test_supercell_replication_keeps_per_atom_environments(case, reps):
    atoms, cutoff = case
    atoms.pbc = True
    assume(abs(atoms.cell.volume) > 1e-6)
    assume_no_pair_at_the_cutoff(atoms, cutoff)
    i, d = mlpot.neighbor_list("id", atoms, cutoff)
    big = atoms.repeat(reps)
    bi, bd = mlpot.neighbor_list("id", big, cutoff)
    n = len(atoms)
    for copy in range(np.prod(reps)):
        for a in range(n):
            mine = np.sort(bd[bi == copy * n + a])
            np.testing.assert_allclose(mine, np.sort(d[i == a]), atol=1e-10)


@given(structures(max_atoms=50), st.lists(st.floats(-20, 20), min_size=3, max_size=3))
def test_translation_and_permutation_invariance(case, shift):
    atoms, cutoff = case
    assume_no_pair_at_the_cutoff(atoms, cutoff)
    i, j, d = mlpot.neighbor_list("ijd", atoms, cutoff)
    moved = atoms.copy()
    moved.positions += shift
    perm = np.random.default_rng(0).permutation(len(atoms))
    moved = moved[perm]
    mi, mj, md = mlpot.neighbor_list("ijd", moved, cutoff)
    # atom k of `moved` is atom perm[k] of `atoms`
    theirs = np.array(sorted(zip(perm[mi], perm[mj], md)))
    mine = np.array(sorted(zip(i, j, d)))
    assert theirs.shape == mine.shape
    if len(mine):
        assert np.array_equal(theirs[:, :2], mine[:, :2])
        np.testing.assert_allclose(theirs[:, 2], mine[:, 2], atol=1e-9)


def test_small_cell_has_self_images_and_large_cutoffs_many_images():
    atoms = Atoms("Si", cell=np.diag([2.0, 2.5, 3.0]), pbc=True)
    i, j, S, d = mlpot.neighbor_list("ijSd", atoms, 9.0)
    assert np.all(i == 0) and np.all(j == 0) and len(d) > 100
    assert not np.any(np.all(S == 0, axis=1))
    assert_same_pairs(mlpot.neighbor_list("ijSdD", atoms, 9.0), ase_neighbor_list("ijSdD", atoms, 9.0))


def test_quantities_dtypes_and_order():
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    d = mlpot.neighbor_list("d", atoms, 3.0)
    assert isinstance(d, np.ndarray) and d.dtype == np.float64
    D, i, S = mlpot.neighbor_list("DiS", atoms, 3.0)
    assert D.shape == (len(i), 3) and S.shape == (len(i), 3)
    assert i.dtype == np.int64 and S.dtype == np.int64
    j = mlpot.neighbor_list("j", atoms, 3.0)
    assert j.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), mlpot.neighbor_list("d", atoms, 3.0))


def test_self_interaction_and_empty_structures():
    atoms = molecule("H2O")
    i, j, d = mlpot.neighbor_list("ijd", atoms, 1.2, self_interaction=True)
    ref = ase_neighbor_list("ijd", atoms, 1.2, self_interaction=True)
    assert sorted(zip(i, j)) == sorted(zip(ref[0], ref[1]))
    empty = mlpot.neighbor_list("ijdDS", Atoms(), 3.0)
    assert [a.shape for a in empty] == [(0,), (0,), (0,), (0, 3), (0, 3)]
    assert len(mlpot.neighbor_list("i", Atoms("Ar", positions=[[0, 0, 0]]), 3.0)) == 0


def test_primitive_neighbor_list_matches_ase():
    rng = np.random.default_rng(3)
    cell = np.array([[4.0, 0.0, 0.0], [3.5, 1.0, 0.0], [0.3, -0.2, 5.0]])
    positions = rng.uniform(0, 1, (30, 3)) @ cell
    pbc = [True, False, True]
    ours = mlpot.primitive_neighbor_list("ijSdD", pbc, cell, positions, 4.5)
    theirs = ase_primitive_neighbor_list("ijSdD", pbc, cell, positions, 4.5)
    assert_same_pairs(ours, theirs)


def test_bit_identical_whatever_the_thread_count():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(6)
    atoms.rattle(0.1, seed=1)
    before = mlpot.get_num_threads()
    try:
        mlpot.set_num_threads(1)
        one = mlpot.neighbor_list("ijSdD", atoms, 5.0)
        mlpot.set_num_threads(3)
        assert mlpot.get_num_threads() == 3
        three = mlpot.neighbor_list("ijSdD", atoms, 5.0)
    finally:
        mlpot.set_num_threads(0)
    assert mlpot.get_num_threads() == before
    for a, b in zip(one, three):
        assert np.array_equal(a, b)


def test_calls_from_several_python_threads_at_once():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(5)
    atoms.rattle(0.1, seed=2)
    expected = mlpot.neighbor_list("ijd", atoms, 5.0)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: mlpot.neighbor_list("ijd", atoms, 5.0), range(8)))
    for result in results:
        for a, b in zip(result, expected):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("pbc", [True, False])
def test_against_vesin(vesin, pbc):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(3)
    atoms.rattle(0.2, seed=4)
    atoms.pbc = pbc
    calculator = vesin.NeighborList(cutoff=4.7, full_list=True)
    i, j, S, D = calculator.compute(
        points=atoms.positions, box=atoms.cell.array, periodic=pbc, quantities="ijSD"
    )
    theirs = (i, j, S, np.linalg.norm(D, axis=1), D)
    assert_same_pairs(mlpot.neighbor_list("ijSdD", atoms, 4.7), theirs)


def test_against_matscipy():
    neighbours = oracle("matscipy.neighbours")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 2, 4))
    atoms.rattle(0.1, seed=5)
    atoms.pbc = [True, True, False]
    theirs = neighbours.neighbour_list("ijSdD", atoms, 5.5)
    assert_same_pairs(mlpot.neighbor_list("ijSdD", atoms, 5.5), theirs)
