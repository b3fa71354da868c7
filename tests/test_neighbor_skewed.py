"""Neighbor lists of strongly skewed, nearly singular and huge cases: sheared periodic cells
against ASE and against the unsheared cell, singular-cell errors, and the memory guard."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import mlpot

CUBE = np.diag([3.0, 3.0, 3.0])


def pair_set(i, j, S):
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, S.tolist())))


def assert_same_list(ours, theirs, atol=1e-9):
    """Same (i, j, S) pairs; same d and D pair by pair (compared in a common order)."""
    keys = [np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i)) for i, j, S, _, _ in (ours, theirs)]
    ours, theirs = ([a[k] for a in lst] for lst, k in zip((ours, theirs), keys))
    assert pair_set(*ours[:3]) == pair_set(*theirs[:3])
    np.testing.assert_allclose(ours[3], theirs[3], rtol=0, atol=atol)
    np.testing.assert_allclose(ours[4], theirs[4], rtol=0, atol=atol)


def sheared(atoms, shear):
    """The same atoms in the cell shear @ cell (rows), shear an integer unimodular matrix:
    the same lattice, so the same pairs with S' = S @ shear^-1."""
    out = atoms.copy()
    out.set_cell(np.asarray(shear) @ atoms.cell.array, scale_atoms=False)
    return out


def map_shifts_back(S, shear):
    """S' in the sheared cell is S = S' @ shear in the original cell (S'·shear·cell = S·cell)."""
    return S @ np.asarray(shear)


# ---- defect: pairs dropped in skewed cells ------------------------------------------------


def test_3000_fold_shear_has_the_six_neighbors_of_the_cube():
    atoms = Atoms("Cu", cell=[[3, 0, 0], [3000, 3, 0], [0, 0, 3]], pbc=True)
    i, j, S, d, D = mlpot.neighbor_list("ijSdD", atoms, 4.0)
    assert len(i) == 6  # as ASE finds (slowly: thousands of images of the unreduced cell)
    cube = Atoms("Cu", cell=CUBE, pbc=True)
    reference = mlpot.neighbor_list("ijSdD", cube, 4.0)
    assert_same_list(reference, ase_neighbor_list("ijSdD", cube, 4.0))
    shear = [[1, 0, 0], [1000, 1, 0], [0, 0, 1]]
    assert_same_list((i, j, map_shifts_back(S, shear), d, D), reference)


@pytest.mark.parametrize(
    "shear, cutoff",
    [
        ([[577, -24, 0], [-24, 1, 0], [0, 0, 1]], 5.0),  # the old search lost 8 of 1440 pairs
        ([[1, 0, -24], [0, 1, 0], [-25, 0, 601]], 4.5),
        ([[-575, -24, 576], [24, 1, -24], [0, 0, 1]], 4.5),
    ],
)
def test_rattled_fcc_cell_under_compound_24_fold_shears_keeps_every_pair(shear, cutoff):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)  # 32 atoms
    atoms.rattle(0.1, seed=3)
    reference = mlpot.neighbor_list("ijSdD", atoms, cutoff)
    assert_same_list(reference, ase_neighbor_list("ijSdD", atoms, cutoff))
    i, j, S, d, D = mlpot.neighbor_list("ijSdD", sheared(atoms, shear), cutoff)
    assert_same_list((i, j, map_shifts_back(S, shear), d, D), reference)


def test_nearly_coplanar_basis_of_a_cubic_lattice():
    """c = 1000 a + 1000 b + c0: planes 0.003 A apart in the given basis (10^7 images
    unreduced), the 3 A cube after reduction."""
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [1.4, 1.1, 0.9]], cell=CUBE, pbc=True)
    shear = [[1, 0, 0], [0, 1, 0], [1000, 1000, 1]]
    reference = mlpot.neighbor_list("ijSdD", atoms, 4.0)
    i, j, S, d, D = mlpot.neighbor_list("ijSdD", sheared(atoms, shear), 4.0)
    assert_same_list((i, j, map_shifts_back(S, shear), d, D), reference)


def ase_cost(cell, cutoff):
    """ASE's search visits prod_k (2 ceil(max(rc, 3 A) / h_k) + 1) bin images per bin (h_k
    the plane spacings of the given cell): keep its reference runs affordable."""
    heights = 1 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)
    return np.prod(2 * np.ceil(max(cutoff, 3.0) / heights) + 1)


@st.composite
def sheared_cells(draw, integer_factors: bool, max_factor: float):
    """A random triclinic base cell times a product of one to three shear matrices
    (row k += f row l), |f| up to max_factor; random pbc, a few atoms."""
    lengths = np.array(draw(st.lists(st.floats(2.0, 5.0), min_size=3, max_size=3)))
    tilt = np.array(draw(st.lists(st.floats(-0.3, 0.3), min_size=9, max_size=9))).reshape(3, 3)
    cell = np.diag(lengths) + tilt * lengths[:, None] * (1 - np.eye(3))
    pbc = np.array(draw(st.tuples(st.booleans(), st.booleans(), st.booleans())))
    shear = np.eye(3)
    for _ in range(draw(st.integers(1, 3))):
        k, l = draw(st.permutations(range(3)))[:2]
        magnitude = 10 ** draw(st.floats(-1.0, np.log10(max_factor)))
        factor = draw(st.sampled_from([-1, 1])) * magnitude
        if integer_factors:
            factor = float(np.round(factor))
        step = np.eye(3)
        step[k, l] = factor
        shear = step @ shear
    n_atoms = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    positions = rng.uniform(-0.2, 1.2, (n_atoms, 3)) @ cell
    cutoff = draw(st.floats(0.4, 1.6)) * lengths.min()
    atoms = Atoms(numbers=np.full(n_atoms, 29), positions=positions, cell=cell, pbc=pbc)
    return atoms, shear, cutoff


@settings(max_examples=60)
@given(sheared_cells(integer_factors=False, max_factor=1e3))
@example(
    case=(
        Atoms("Cu", cell=np.diag([2.0, 2.0, 3.0]), pbc=[False, True, True]),
        np.array([[1.0, -1.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1000.0, 1.0]]),
        3.0,
    )
)
def test_sheared_cells_equal_ase(case):
    """Shear factors up to 10^3 (any real value: a new, skewed lattice), against ASE on the
    cell as given."""
    atoms, shear, cutoff = case
    atoms.set_cell(shear @ atoms.cell.array, scale_atoms=False)
    assume(ase_cost(atoms.cell.array, cutoff) < 4e4)
    ours = mlpot.neighbor_list("ijSdD", atoms, cutoff)
    theirs = ase_neighbor_list("ijSdD", atoms, cutoff)
    assert_same_list(ours, theirs, atol=1e-9 * (1 + np.abs(atoms.cell.array).max()))
    assert np.all(ours[2][:, ~atoms.pbc] == 0)


@given(sheared_cells(integer_factors=True, max_factor=1e3))
def test_integer_shears_of_up_to_1e3_compounded_keep_the_pairs(case):
    """An integer shear of the periodic directions is the same lattice: the pairs must be
    those of the unsheared cell, whatever the (compounded, up to 10^9) factors."""
    atoms, shear, cutoff = case
    # open directions carry no shift: shear the periodic directions among themselves only
    both = np.outer(atoms.pbc, atoms.pbc) | np.eye(3, dtype=bool)
    shear = np.round(np.where(both, shear, np.eye(3))).astype(np.int64)
    assume(round(abs(np.linalg.det(shear))) == 1 and np.abs(shear).max() < 2**31)
    reference = mlpot.neighbor_list("ijSdD", atoms, cutoff)
    # rounding of the huge sheared vectors may move a pair lying at the cutoff to the last bits
    assume(not np.any(np.abs(reference[3] - cutoff) < 1e-6 * cutoff))
    i, j, S, d, D = mlpot.neighbor_list("ijSdD", sheared(atoms, shear), cutoff)
    scale = 1e-12 * np.abs(shear @ atoms.cell.array).max() * (1 + np.abs(S).max(initial=0))
    assert_same_list((i, j, map_shifts_back(S, shear), d, D), reference, atol=1e-9 + scale)


# ---- defect: singular and nearly singular cells --------------------------------------------


@pytest.mark.parametrize(
    "cell, pbc, volume",
    [
        ([[3, 0, 0], [0, 3, 0], [3, 3, 1e-12]], True, "9.000e-12"),
        ([[3, 0, 0], [3, 1e-13, 0], [0, 0, 3]], [True, True, False], "3.000e-13"),
    ],
)
def test_nearly_singular_cell_is_called_singular(cell, pbc, volume):
    atoms = Atoms("Cu", cell=cell, pbc=pbc)
    with pytest.raises(ValueError, match=rf"singular.*{volume}.*threshold 1e-10.*non-zero volume"):
        mlpot.neighbor_list("ij", atoms, 4.0)


def test_regular_but_absurdly_thin_cell_reports_its_plane_spacing():
    """Volume / lengths = 2.4e-10 is above the singularity threshold; reduced, it is a
    3 x 3 x 1e-9 A cell, and the error says so in numbers rather than 0.0000."""
    atoms = Atoms("Cu", cell=[[3, 0, 0], [0, 3, 0], [3, 3, 1e-9]], pbc=True)
    with pytest.raises(ValueError, match=r"1\.000e-9, 3\.000e0, 3\.000e0\] Angstrom apart") as e:
        mlpot.neighbor_list("ij", atoms, 4.0)
    assert "0.0000" not in str(e.value)


# ---- defect: memory guard by bytes --------------------------------------------------------

MEMORY_LIMITED = textwrap.dedent(
    """
    import resource
    import numpy as np
    from ase.build import bulk
    import mlpot

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(6)  # 864 atoms
    small = mlpot.neighbor_list("ijdDS", atoms, 3.0)  # threads and allocator warmed up
    # room for about 1 GB more than now; the list below needs ~4 GB (5e7 pairs)
    page = resource.getpagesize()
    used = int(open("/proc/self/statm").read().split()[0]) * page
    limit = used + 1_000_000_000
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        mlpot.neighbor_list("ijdDS", atoms, 54.0)
    except MemoryError as error:
        print("MemoryError:", error)
    else:
        raise SystemExit("no MemoryError")
    # the process is healthy afterwards
    again = mlpot.neighbor_list("ijdDS", atoms, 3.0)
    assert all(np.array_equal(a, b) for a, b in zip(small, again))
    print("done")
    """
)


def test_list_too_large_for_the_address_space_is_a_memory_error_not_an_abort():
    run = subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"returncode {run.returncode}; stderr: {run.stderr[-2000:]}"
    assert "MemoryError: the neighbor list for a cutoff of 54 Angstrom" in run.stdout
    assert "GB" in run.stdout and "pairs" in run.stdout
    assert run.stdout.strip().endswith("done")
