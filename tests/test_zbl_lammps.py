"""mlpot.ZBL against LAMMPS pair_style zbl: energy, per-atom energies, forces, virial and
per-atom virials of periodic rattled structures with short distances."""

from types import SimpleNamespace

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers

import mlpot
from lammps_oracle import NKTV2P, _start

RTOL = 1e-10


def lammps_zbl(atoms, inner: float, outer: float):
    """LAMMPS pair_style zbl on `atoms` (lower-triangular cell): energy (eV), per-atom
    energies, forces (eV/Angstrom), virial (6,) and per-atom virials (n, 6) in eV, Voigt order
    xx yy zz yz xz xy, LAMMPS's sign (positive under compression)."""
    elements = sorted(set(atoms.get_chemical_symbols()))
    z = [atomic_numbers[e] for e in elements]
    wrapped = atoms.copy()
    wrapped.wrap()
    lines = [f"pair_style zbl {inner!r} {outer!r}"]
    lines += [
        f"pair_coeff {a + 1} {b + 1} {z[a]} {z[b]}"
        for a in range(len(z))
        for b in range(a, len(z))
    ]
    lines += [
        "compute pe all pe/atom",
        "compute w all stress/atom NULL virial",
        "compute vir all pressure NULL virial",
        "thermo_style custom pe",
        "run 0",
    ]
    lammps, lmp = _start(wrapped, SimpleNamespace(elements=elements), lines)
    n = len(atoms)
    order = lmp.numpy.extract_atom("id")[:n] - 1

    def per_atom(values):
        out = np.empty_like(values[:n])
        out[order] = values[:n]
        return out

    energy = lmp.get_thermo("pe")
    energies = per_atom(lmp.numpy.extract_compute("pe", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_VECTOR))
    forces = per_atom(lmp.numpy.extract_atom("f"))
    # stress/atom: (xx, yy, zz, xy, xz, yz) in bar Angstrom^3, the negative of the virial
    s = per_atom(lmp.numpy.extract_compute("w", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_ARRAY))
    virials = -s[:, [0, 1, 2, 5, 4, 3]] / NKTV2P
    # pressure vector (pxx, pyy, pzz, pxy, pxz, pyz) in bar, from the virial only
    p = lmp.numpy.extract_compute("vir", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR)
    virial = np.array([p[0], p[1], p[2], p[5], p[4], p[3]]) * atoms.get_volume() / NKTV2P
    lmp.close()
    return energy, energies, forces, virial, virials


def assert_close(actual, expected, what):
    scale = np.abs(expected).max()
    error = np.abs(actual - expected).max()
    assert error <= RTOL * scale, f"{what}: max difference {error:.3e}, relative {error / scale:.3e}"


def rattled(symbols, a, reps, seed, amplitude, structure="bcc", tilt=(0.3, -0.4, 0.2)):
    """A rattled supercell with a tilted lower-triangular cell, random element labels and one
    pair pushed to 40% of its distance so that the ZBL repulsion is large."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", structure, a=a, cubic=True) * reps
    cell = atoms.cell.array.copy()
    cell[1, 0], cell[2, 0], cell[2, 1] = tilt
    atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(0.0, amplitude, atoms.positions.shape)
    atoms.set_chemical_symbols(rng.choice(symbols, len(atoms)))
    atoms.set_chemical_symbols(list(symbols) + atoms.get_chemical_symbols()[len(symbols) :])
    # squeeze atom 1 towards its nearest neighbour
    d = atoms.get_distances(1, range(len(atoms)), mic=True, vector=True)
    d[1] = np.inf
    k = np.argmin(np.linalg.norm(d, axis=1))
    atoms.positions[1] += 0.6 * d[k]
    atoms.positions += 0.7  # some atoms now lie outside the cell: mlpot sees them unwrapped
    return atoms


# (symbols, lattice, repetitions, inner, outer, seed, amplitude, structure)
CASES = {
    "Ta": (["Ta"], 3.3, (2, 2, 2), 4.0, 4.8, 0, 0.25, "bcc"),
    "Ta_small_cell": (["Ta"], 3.3, (1, 1, 1), 4.0, 4.8, 1, 0.3, "bcc"),
    "H": (["H"], 2.4, (2, 2, 2), 1.0, 2.2, 2, 0.2, "fcc"),
    "TaH": (["Ta", "H"], 3.3, (2, 2, 2), 2.5, 3.8, 3, 0.3, "bcc"),
    "WLi": (["W", "Li"], 3.4, (2, 2, 2), 1.5, 3.0, 4, 0.3, "bcc"),
    "MoSiC": (["Mo", "Si", "C"], 3.8, (2, 2, 2), 2.0, 3.5, 5, 0.3, "fcc"),
    "AuOHe": (["Au", "O", "He"], 3.6, (2, 2, 1), 3.0, 5.5, 6, 0.35, "fcc"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_lammps(case):
    symbols, a, reps, inner, outer, seed, amplitude, structure = CASES[case]
    atoms = rattled(symbols, a, reps, seed, amplitude, structure)
    assert set(atoms.get_chemical_symbols()) == set(symbols)
    energy, energies, forces, virial, virials = lammps_zbl(atoms, inner, outer)
    out = mlpot.ZBL(inner, outer).predict(atoms)
    assert abs(out["energy"] - energy) <= RTOL * abs(energy)
    assert out["free_energy"] == out["energy"]
    assert_close(out["energies"], energies, "per-atom energies")
    assert_close(out["forces"], forces, "forces")
    assert_close(-out["stress"] * atoms.get_volume(), virial, "virial")
    structure = mlpot._core.Structure(atoms.positions, atoms.cell.array, [True] * 3, atoms.numbers)
    _, _, per_atom_virials = mlpot._core.ZBL(inner, outer).compute(structure)
    assert_close(per_atom_virials, virials, "per-atom virials")
    # the largest pair energy should be far above the switching constant: ZBL is "large"
    assert energies.max() > 1.0


def test_open_cluster_matches_lammps_in_a_large_box():
    """A non-periodic cluster (ASE pbc=False) equals LAMMPS with a box far larger than outer."""
    rng = np.random.default_rng(8)
    positions = rng.uniform(0.0, 4.0, (12, 3)) + 10.0
    atoms = Atoms(rng.choice(["Ta", "O", "H"], 12), positions=positions, cell=np.eye(3) * 30.0)
    energy, energies, forces, _, _ = lammps_zbl(atoms, 1.5, 3.0)
    atoms.pbc = False
    out = mlpot.ZBL(1.5, 3.0).predict(atoms)
    assert "stress" not in out
    assert abs(out["energy"] - energy) <= RTOL * abs(energy)
    assert_close(out["energies"], energies, "per-atom energies")
    assert_close(out["forces"], forces, "forces")
