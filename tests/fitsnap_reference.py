"""FitSNAP's linear SNAP fit, rebuilt from mlpot's pieces: the reference that
``mlpot.SNAP.fit`` is held to (tests/test_fitsnap_ta.py; conventions in
docs/fitsnap-conventions.md).

It follows FitSNAP3 as it was in 2021 (the version that wrote
../shared/data/fitsnap_Ta/Ta_pot.snapcoeff on 2021-05-26), read from its public source:

- ``fitsnap3/calculators/lammps_snap.py`` (``_collect_lammps``) turns the global array of
  LAMMPS ``compute snap`` into rows of A, b and w, one configuration at a time:

  * 1 energy row: ``[1, sum_i B_i / N]``, ``b = (E - E_ref) / N`` (eV/atom). The leading
    1 is the per-element constant (written as ``B[0]`` in the snapcoeff file) and is there
    because ``bzeroflag = 0``.
  * 3N force rows: ``[0, -sum_i dB_i/dr_k]`` for atom k and x, y, z (compute snap stores
    -dB/dr, so that A @ beta is the force), ``b = F - F_ref`` (eV/Angstrom).
  * 6 stress rows: ``[0, 1.6021765e6 * W / V]`` with W the bispectrum virial
    ``-sum_pairs (dB/dr_ij) (x) r_ij`` (eV) and V the volume; ``b = sigma - p_ref``, where
    sigma is the JSON ``Stress`` and p_ref the reference potential's pressure tensor (LAMMPS
    ``compute pressure NULL virial``). Units bar, LAMMPS's pressure sign (positive under
    compression), Voigt order xx yy zz yz xz xy. 1.6021765e6 is LAMMPS's ``nktv2p`` in metal
    units (eV/Angstrom^3 -> bar) and FitSNAP's constant.
  * each row's weight is the group's ``eweight``, ``fweight`` or ``vweight``, as given
    (not its square root).

- ``fitsnap3/scrapers/scrape.py`` rotates every configuration into LAMMPS's frame (cell
  vector a along x, b in the xy plane) before anything is computed: positions, forces and
  the stress tensor rotate with it. A rotation changes the stress rows' least-squares
  weights (off-diagonal components count once), so the rotation is part of the problem.
- ``fitsnap3/solvers/svd.py``: ``scipy.linalg.lstsq(w[:, None] * A, w * b, 1e-13)`` on the
  training rows.
- ``fitsnap3/solvers/solver.py`` (``error_analysis``/``_errors``): the error table, per
  row type over all groups (``*ALL``) and per group, unweighted (the rows of b and A @ beta)
  and weighted (both multiplied by w): ncount, MAE, RMSE and ``rsq = 1 - SSR / SST``.

mlpot supplies the rest: ``mlpot.io.read`` (reference values in ASE units; converted back
here to FitSNAP's), ``mlpot.Bispectrum.compute(atoms, gradients=True)`` (identical to
LAMMPS ``compute sna/atom``, ``snad/atom`` and ``snav/atom``) and ``mlpot.ZBL`` (identical
to LAMMPS ``pair_style zbl``).
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
from ase import Atoms, units

import mlpot

#: LAMMPS metal-units nktv2p: eV/Angstrom^3 -> bar (src/update.cpp). FitSNAP multiplies the
#: bispectrum virial rows by it and LAMMPS's reference pressure carries it. (CODATA 2018's
#: 1.602176634e6 instead moves the Ta coefficients by 3e-7 relative.)
NKTV2P = 1.6021765e6

#: ``cond`` of FitSNAP's SVD solver (scipy.linalg.lstsq): singular values below
#: 1e-13 * the largest are dropped. The Ta system's condition number is ~3e5, so none are.
SVD_COND = 1.0e-13

ROW_TYPES = ("Energy", "Force", "Stress")


@dataclass(frozen=True)
class GroupWeights:
    """FitSNAP's per-group row weights; they multiply rows of A and b directly."""

    eweight: float
    fweight: float
    vweight: float


@dataclass(frozen=True)
class FitSNAPInput:
    """What a FitSNAP input file fixes for a linear SNAP fit."""

    bispectrum: mlpot.Bispectrum
    baseline: mlpot.ZBL | None
    weights: dict[str, GroupWeights]


@dataclass(frozen=True)
class LinearSystem:
    """FitSNAP's unweighted rows: ``a`` (n_rows, 1 + n_features), ``b`` and ``w``
    (n_rows,), and for each row its type (Energy, Force, Stress) and group."""

    a: np.ndarray
    b: np.ndarray
    w: np.ndarray
    row_type: np.ndarray
    group: np.ndarray


def read_input(path: str | Path) -> FitSNAPInput:
    """Read the parts of a FitSNAP input file (``Ta-example.in``) that define a linear
    single-element SNAP fit on a ZBL reference; anything else raises NotImplementedError."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
    parser.optionxform = str  # group names are case-sensitive folder names
    parser.read(path)
    bis = parser["BISPECTRUM"]

    def flag(key):
        return bis.getint(key, fallback=0)

    if int(bis["numTypes"]) != 1 or flag("quadraticflag") or flag("chemflag"):
        raise NotImplementedError("only linear single-element SNAP inputs are supported")
    element = bis["type"].strip()
    bispectrum = mlpot.Bispectrum(
        twojmax=bis.getint("twojmax"),
        rcutfac=bis.getfloat("rcutfac"),
        rfac0=bis.getfloat("rfac0"),
        rmin0=bis.getfloat("rmin0"),
        radelem={element: bis.getfloat("radelem")},
        wj={element: bis.getfloat("wj")},
        switchflag=bool(bis.getint("switchflag", fallback=1)),
        bzeroflag=bool(flag("bzeroflag")),
        wselfallflag=bool(flag("wselfallflag")),
    )
    if bispectrum.bzeroflag:
        raise NotImplementedError("bzeroflag = 1 (no constant column) is not handled here")

    baseline = None
    if parser.has_section("REFERENCE"):
        pair_style = parser["REFERENCE"].get("pair_style", "zero")
        zbl = re.search(r"\bzbl\s+(\S+)\s+(\S+)", pair_style)
        if zbl:
            baseline = mlpot.ZBL(float(zbl.group(1)), float(zbl.group(2)))
        elif pair_style.split()[0] != "zero":
            raise NotImplementedError(f"reference pair_style {pair_style!r}")

    if parser.has_section("ESHIFT") and any(float(v) for v in parser["ESHIFT"].values()):
        raise NotImplementedError("nonzero ESHIFT energies are not handled here")

    groups = parser["GROUPS"]
    columns = groups["group_sections"].split()
    if groups.getint("smartweights", fallback=0) or groups.getint("random_sampling", fallback=0):
        raise NotImplementedError("smartweights and random_sampling are not handled here")
    settings = {"group_sections", "group_types", "smartweights", "random_sampling", "BOLTZT"}
    weights = {}
    for name, line in groups.items():
        if name in settings:
            continue
        row = dict(zip(columns[1:], map(float, line.split())))
        if row.get("training_size", 1.0) != 1.0 or row.get("testing_size", 0.0) != 0.0:
            raise NotImplementedError(f"group {name}: only training_size 1.0, testing_size 0")
        weights[name] = GroupWeights(row["eweight"], row["fweight"], row["vweight"])
    return FitSNAPInput(bispectrum, baseline, weights)


def lammps_rotation(cell: np.ndarray) -> np.ndarray:
    """The rotation R that FitSNAP's scraper applies (positions @ R.T, R sigma R.T) so that
    the cell is in LAMMPS's orientation: a along +x, b in the xy plane, c with z > 0."""
    q, r = np.linalg.qr(np.asarray(cell, dtype=float).T)
    return np.diag(np.sign(np.diag(r))) @ q.T


def frame_rows(
    atoms: Atoms, bispectrum: mlpot.Bispectrum, baseline=None
) -> tuple[np.ndarray, np.ndarray]:
    """FitSNAP's unweighted rows of one configuration: 1 energy, 3N force and 6 stress
    rows of A (with the constant column first) and b, in FitSNAP's units (eV/atom,
    eV/Angstrom, bar with LAMMPS's pressure sign, Voigt xx yy zz yz xz xy).

    ``atoms`` carries the reference values as ``mlpot.io.read`` returns them (ASE units);
    ``baseline`` (e.g. ``mlpot.ZBL``) is subtracted like FitSNAP's reference potential.
    """
    n = len(atoms)
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    pressure = _voigt_to_tensor(-atoms.get_stress() / units.bar)  # bar, positive compressive

    rot = lammps_rotation(atoms.cell)
    atoms = atoms.copy()
    atoms.calc = None
    atoms.set_cell(atoms.cell @ rot.T)
    atoms.positions = atoms.positions @ rot.T
    forces = forces @ rot.T
    pressure = _tensor_to_voigt(rot @ pressure @ rot.T)
    to_bar = NKTV2P / atoms.get_volume()

    descriptors, grad = bispectrum.compute(atoms, gradients=True)
    n_features = descriptors.shape[1]
    # compute snap's force rows: -sum_i dB_i/dr_k for each atom k (A @ beta = force)
    dbdr = np.zeros((n, 3, n_features))
    np.add.at(dbdr, grad.neighbors, grad.values)
    a = np.zeros((1 + 3 * n + 6, 1 + n_features))
    a[0, 0] = 1.0
    a[0, 1:] = descriptors.sum(axis=0) / n
    a[1 : 1 + 3 * n, 1:] = -dbdr.reshape(3 * n, n_features)
    a[1 + 3 * n :, 1:] = grad.virial.sum(axis=0) * to_bar

    b = np.concatenate([[energy], forces.ravel(), pressure])
    if baseline is not None:
        ref = baseline.predict(atoms)
        # LAMMPS's reference pressure: virial * nktv2p / V = -stress(eV/A^3) * nktv2p
        b -= np.concatenate([[ref["energy"]], ref["forces"].ravel(), -ref["stress"] * NKTV2P])
    b[0] /= n
    return a, b


def linear_system(
    frames: list[Atoms], bispectrum: mlpot.Bispectrum, weights: dict[str, GroupWeights],
    baseline=None,
) -> LinearSystem:  # fmt: skip
    """FitSNAP's rows of every frame, with each row's weight from its group
    (``atoms.info["group"]``)."""
    a, b, w, row_type, group = [], [], [], [], []
    for atoms in frames:
        name = atoms.info["group"]
        a_k, b_k = frame_rows(atoms, bispectrum, baseline)
        n = len(atoms)
        g = weights[name]
        a.append(a_k)
        b.append(b_k)
        w.append(np.repeat([g.eweight, g.fweight, g.vweight], [1, 3 * n, 6]))
        row_type.append(np.repeat(ROW_TYPES, [1, 3 * n, 6]))
        group.append(np.full(len(b_k), name))
    return LinearSystem(*(np.concatenate(x) for x in (a, b, w, row_type, group)))


def solve_svd(system: LinearSystem) -> np.ndarray:
    """FitSNAP's SVD solver: least squares of the weighted rows (w multiplies each row)."""
    w = system.w
    coef, *_ = scipy.linalg.lstsq(w[:, None] * system.a, w * system.b, SVD_COND)
    return coef


def error_table(
    system: LinearSystem, coef: np.ndarray
) -> dict[tuple[str, str, str], tuple[int, float, float, float]]:
    """FitSNAP's error table: ``{(group or "*ALL", "Unweighted"/"Weighted", row type):
    (ncount, mae, rmse, rsq)}`` over the rows of ``system`` predicted by ``coef``.
    Energies are eV/atom, forces eV/Angstrom, stresses bar; weighted errors are those of
    w * b and w * (A @ coef), counted over the rows with w != 0."""
    pred = system.a @ coef
    table = {}
    for group in ["*ALL", *sorted(set(system.group))]:
        in_group = np.ones(len(pred), bool) if group == "*ALL" else system.group == group
        for weighting in ("Unweighted", "Weighted"):
            for row_type in ROW_TYPES:
                rows = in_group & (system.row_type == row_type)
                true, model = system.b[rows], pred[rows]
                count = len(true)
                if weighting == "Weighted":
                    w = system.w[rows]
                    true, model, count = w * true, w * model, np.count_nonzero(w)
                res = true - model
                ssr = np.sum(res**2)
                sst = np.sum((true - true.mean()) ** 2)
                table[group, weighting, row_type] = (
                    count, np.sum(np.abs(res)) / count, np.sqrt(ssr / count), 1 - ssr / sst
                )  # fmt: skip
    return table


def read_snapcoeff(path: str | Path) -> np.ndarray:
    """The coefficients of a single-element LAMMPS snapcoeff file (beta_0 first)."""
    words = [line.split("#")[0].split() for line in Path(path).read_text().splitlines()]
    words = [w for w in words if w]
    n_elements, n_coeff = map(int, words[0])
    if n_elements != 1:
        raise NotImplementedError("only single-element snapcoeff files")
    return np.array([float(w[0]) for w in words[2 : 2 + n_coeff]])


def read_metrics(path: str | Path) -> dict[tuple[str, str, str], tuple[int, float, float, float]]:
    """FitSNAP's markdown error table (``Ta_metrics.md``), keyed like :func:`error_table`."""
    row = re.compile(r"\|\s*\('([^']*)', '(\w+)', '(\w+)'\)\s*\|(.*)\|\s*$")
    table = {}
    for line in Path(path).read_text().splitlines():
        m = row.match(line)
        if m:
            count, mae, rmse, rsq = (float(v) for v in m.group(4).split("|"))
            table[m.group(1, 2, 3)] = (int(count), mae, rmse, rsq)
    return table


def _voigt_to_tensor(v: np.ndarray) -> np.ndarray:
    xx, yy, zz, yz, xz, xy = v
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def _tensor_to_voigt(t: np.ndarray) -> np.ndarray:
    # FitSNAP: Stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return t[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
