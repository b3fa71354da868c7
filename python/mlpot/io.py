"""Reference data (DFT energies, forces, stresses) read into ``ase.Atoms``.

``read(path)`` returns a list of ``ase.Atoms``, each with a ``SinglePointCalculator``
holding the reference energy (eV, total), forces (eV/Angstrom) and, when the record has
one, the stress (eV/Angstrom^3, ASE's sign: positive under tension, Voigt order xx yy zz yz
xz xy), so that ``atoms.get_potential_energy()``, ``get_forces()`` and ``get_stress()``
return them. ``atoms.info["group"]`` names the configuration group and
``atoms.info["source"]`` the file and record.

The configuration group: mlpot's key is ``group``; the ecosystem's (QUIP/gap_fit, ASE and
most extxyz data sets) is ``config_type``, which every reader accepts as well. When a frame
or record has both, ``group`` wins (it is the more specific, mlpot's own); either way the
group ends up in ``atoms.info["group"]``, and a ``config_type`` in the file stays in
``atoms.info`` as it was.

Formats (``format=None`` guesses from the file):

``"mlearn"`` (alias ``"maml"``)
    JSON lists of records ``{"structure": <pymatgen Structure dict>, "outputs": {"energy",
    "forces", "virial_stress" or "stress"}, "group": ...}`` (materialsvirtuallab mlearn and
    maml). Stresses are VASP's: kbar, positive under compression, order xx yy zz xy yz zx.
    Parsed without pymatgen. The group is the record's ``"group"`` (or ``"config_type"``),
    except in maml data-group files (records carrying ``"group_id"``, where ``"group"``
    names the chemical system and each file is one data group, as maml's README says):
    there the file name.
``"fitsnap"``
    FitSNAP JSON: optional ``#`` comment lines, then ``{"Dataset": {"Data": [...],
    "StressStyle": "bar", ...}}``. Stresses are 3x3, positive under compression (LAMMPS's
    pressure tensor and VASP's sign), in ``StressStyle`` units (bar, kB or GPa). The group
    is the folder name, as FitSNAP's JSON scraper groups files.
anything ``ase.io.read`` reads (extxyz first)
    The reference values come from the calculator results ``ase.io`` attaches (energy,
    forces, stress). A ``virial`` (eV, 3x3 or 9 values, the GAP/QUIP convention
    virial = -stress * volume) is used when there is no stress. The group is
    ``atoms.info["group"]``, else ``atoms.info["config_type"]``, else the file name.

The unit and sign conversions are proven in tests/test_io_data.py by finite-difference
strain tests on the real data: between two nearby strained copies of one structure the
DFT energy difference equals the work done by the converted stress.

Voigt order of mlearn files: the finite-difference test shows that mlearn's Ge, Si and the
maml MoNbTaW files follow VASP's order, but mlearn's Mo ``training.json`` stores
xx yy zz xy xz yz (LAMMPS's order): its yz and xz are swapped. With ``stress_order=None``
the reader therefore checks each mlearn file that contains strained copies of one
structure and, when another order fits the energies decisively better than VASP's, uses it
and warns; ``stress_order="vasp"`` (or ``"lammps"``, ``"ase"``, or six component names)
forces one order.
"""

from __future__ import annotations

import glob
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers

__all__ = [
    "DataFileError",
    "GROUP_KEYS",
    "StrainPairs",
    "VOIGT_ORDERS",
    "read",
    "strain_pairs",
]


class DataFileError(ValueError):
    """A data file that cannot be read; the message names the file, the record and the
    problem."""


#: Component order of 6-vector stresses in the data formats.
#: the keys of the configuration group, in the order they win (mlpot's, then extxyz/gap_fit's)
GROUP_KEYS = ("group", "config_type")

VOIGT_ORDERS = {
    "vasp": ("xx", "yy", "zz", "xy", "yz", "zx"),
    "lammps": ("xx", "yy", "zz", "xy", "xz", "yz"),
    "ase": ("xx", "yy", "zz", "yz", "xz", "xy"),
}
_COMPONENT = {"xx": (0, 0), "yy": (1, 1), "zz": (2, 2), "yz": (1, 2), "zy": (1, 2),
              "xz": (0, 2), "zx": (0, 2), "xy": (0, 1), "yx": (0, 1)}  # fmt: skip
_ASE_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))

#: VASP and mlearn stresses are in kbar, positive under compression.
_KBAR_TO_ASE = -0.1 * units.GPa
#: FitSNAP StressStyle names -> eV/Angstrom^3 per unit, sign included (pressure-positive).
_FITSNAP_STRESS_UNITS = {
    "bar": -units.bar,
    "bars": -units.bar,
    "kb": -1000.0 * units.bar,
    "kbar": -1000.0 * units.bar,
    "gpa": -units.GPa,
}
_FITSNAP_EXPECTED_STYLES = {
    "EnergyStyle": ("electronvolt", "ev"),
    "ForcesStyle": ("electronvoltperangstrom", "ev/angstrom", "ev/a"),
    "PositionsStyle": ("angstrom",),
    "LatticeStyle": ("angstrom",),
    "AtomTypeStyle": ("chemicalsymbol",),
}

#: Files a directory search picks up.
_DATA_SUFFIXES = {".json", ".xyz", ".extxyz", ".traj"}
_DATA_NAMES = {"OUTCAR", "vasprun.xml"}

Group = str | Callable[[Path], str] | None


def read(
    path: str | os.PathLike | Iterable[str | os.PathLike],
    format: str | None = None,
    group: Group = None,
    stress_order: str | tuple[str, ...] | None = None,
) -> list[Atoms]:
    """Read reference configurations.

    Parameters
    ----------
    path
        A file, a directory (searched recursively for ``*.json``, ``*.xyz``, ``*.extxyz``,
        ``*.traj``, ``OUTCAR`` and ``vasprun.xml``), a glob pattern (``**`` recurses), or a
        list of these. Files are read in sorted order within each entry.
    format
        ``"mlearn"``/``"maml"``, ``"fitsnap"``, or an ``ase.io`` format name; None guesses
        (JSON files by their layout, others by ``ase.io``).
    group
        Overrides the configuration group: a name for every frame, or a function of the
        file's ``Path`` returning one.
    stress_order
        Order of the 6-vector stresses of mlearn/maml files (see the module docstring);
        None checks each file against its strained copies, defaulting to VASP's order.

    Returns
    -------
    list of ase.Atoms with a SinglePointCalculator (energy eV, forces eV/Angstrom, stress
    eV/Angstrom^3 in ASE's sign and Voigt order when the record has one) and
    ``info["group"]``, ``info["source"]``.
    """
    if stress_order is not None:
        _voigt_order(stress_order)  # validate early
    frames: list[Atoms] = []
    for file in _expand(path):
        frames.extend(_read_file(file, format, group, stress_order))
    return frames


# --------------------------------------------------------------------------------------
# Paths


def _expand(path) -> list[Path]:
    entries = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not entries:
        raise ValueError("read() needs at least one path")
    files: list[Path] = []
    for entry in entries:
        if not isinstance(entry, (str, os.PathLike)):
            raise TypeError(f"paths must be strings or os.PathLike, got {entry!r}")
        p = Path(entry).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _is_data_file(f))
            if not found:
                raise DataFileError(f"{p}: directory holds no data files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif glob.has_magic(str(entry)):
            matches = sorted(glob.glob(os.path.expanduser(str(entry)), recursive=True))
            if not matches:
                raise FileNotFoundError(f"no file matches {str(entry)!r}")
            files.extend(_expand(matches))
        else:
            raise FileNotFoundError(f"no such file or directory: {str(entry)!r}")
    return files


def _is_data_file(p: Path) -> bool:
    if p.name.startswith("."):
        return False
    return p.suffix.lower() in _DATA_SUFFIXES or p.name in _DATA_NAMES


# --------------------------------------------------------------------------------------
# Dispatch


def _read_file(path: Path, format, group, stress_order) -> list[Atoms]:
    fmt = None if format is None else format.lower()
    if fmt in ("mlearn", "maml", "fitsnap") or (
        fmt in (None, "json") and path.suffix.lower() == ".json"
    ):
        document = _load_json(path)
        kind = fmt if fmt in ("mlearn", "maml", "fitsnap") else _json_kind(document, path)
        if kind == "fitsnap":
            frames = _fitsnap_frames(document, path)
        elif kind == "ase":
            frames = _ase_frames(path, "json")
        else:
            frames = _mlearn_frames(document, path, stress_order)
    else:
        frames = _ase_frames(path, format)
    if not frames:
        raise DataFileError(f"{path}: holds no configurations")
    if group is not None:
        name = group(path) if callable(group) else group
        if not isinstance(name, str):
            raise TypeError(f"group must be a string or a function returning one, got {name!r}")
        for atoms in frames:
            atoms.info["group"] = name
    return frames


def _load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # FitSNAP JSON files begin with '#' comment lines, which JSON itself does not allow.
    offset = re.match(r"(?:[ \t]*#[^\n]*\n)*", text).end()
    try:
        return json.loads(text[offset:] if offset else text)
    except json.JSONDecodeError as e:
        line = e.lineno + text.count("\n", 0, offset)
        raise DataFileError(f"{path}: not valid JSON (line {line}: {e.msg})") from None


def _json_kind(document, path: Path) -> str:
    if isinstance(document, dict) and "Dataset" in document:
        return "fitsnap"
    if isinstance(document, list) and document and all(isinstance(r, dict) for r in document):
        return "mlearn"  # records are validated one by one
    if isinstance(document, dict) and "structure" in document:
        return "mlearn"
    if isinstance(document, dict) and "ids" in document and "nextid" in document:
        return "ase"  # an ase.db JSON file
    raise DataFileError(
        f"{path}: unrecognised JSON layout: expected a FitSNAP file "
        '({"Dataset": {"Data": [...]}}) or an mlearn/maml list of records with "structure" '
        'and "outputs"'
    )


# --------------------------------------------------------------------------------------
# Validation helpers


def _field(mapping, key: str, where: str):
    if not isinstance(mapping, dict):
        raise DataFileError(
            f"{where}: expected a JSON object holding {key!r}, got {type(mapping).__name__}"
        )
    if key not in mapping:
        raise DataFileError(f"{where}: missing field {key!r}")
    return mapping[key]


def _array(value, shape: tuple, name: str, where: str) -> np.ndarray:
    """A finite float64 array of the given shape (-1: any length)."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFileError(f"{where}: {name} is not an array of numbers") from None
    if a.ndim != len(shape) or any(s not in (-1, n) for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("n" if s == -1 else str(s) for s in shape) + ")"
        raise DataFileError(f"{where}: {name} has shape {a.shape}, expected {want}")
    if not np.all(np.isfinite(a)):
        raise DataFileError(f"{where}: {name} contains NaN or infinite values")
    return a


def _energy(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise DataFileError(f"{where}: energy must be a number, got {value!r}")
    if not np.isfinite(value):
        raise DataFileError(f"{where}: energy is {value}")
    return float(value)


def _to_ase_voigt(matrix: np.ndarray) -> np.ndarray:
    """3x3 -> ASE Voigt (xx yy zz yz xz xy), symmetrised."""
    sym = 0.5 * (matrix + matrix.T)
    return np.array([sym[i, j] for i, j in _ASE_VOIGT])


def _voigt_order(order) -> tuple[str, ...]:
    names = VOIGT_ORDERS.get(order.lower()) if isinstance(order, str) else tuple(order)
    if names is None:
        raise ValueError(
            f"stress_order must be one of {sorted(VOIGT_ORDERS)} or six component names, "
            f"got {order!r}"
        )
    pairs = [_COMPONENT.get(str(n).lower()) for n in names]
    if len(names) != 6 or None in pairs or len(set(pairs)) != 6:
        raise ValueError(
            f"stress_order must name the six components xx yy zz yz xz xy once each, got {order!r}"
        )
    return tuple(str(n).lower() for n in names)


def _voigt_to_matrix(v: np.ndarray, order: tuple[str, ...]) -> np.ndarray:
    m = np.zeros((3, 3))
    for value, name in zip(v, order):
        i, j = _COMPONENT[name]
        m[i, j] = m[j, i] = value
    return m


def _frame(numbers, positions, cell, pbc, energy, forces, stress, group, source) -> Atoms:
    """Assemble one labelled configuration (stress already ASE Voigt, eV/Angstrom^3)."""
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
    return _label(atoms, energy, forces, stress, group, source)


def _label(atoms: Atoms, energy, forces, stress, group, source) -> Atoms:
    """Attach the reference values and the group to ``atoms``."""
    if not (np.all(np.isfinite(atoms.positions)) and np.all(np.isfinite(atoms.cell.array))):
        raise DataFileError(f"{source}: positions or cell contain NaN or infinite values")
    if np.any(atoms.pbc) and abs(np.linalg.det(atoms.cell.array)) < 1e-9:
        raise DataFileError(f"{source}: periodic cell has zero volume")
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    atoms.info["group"] = group
    atoms.info["source"] = source
    return atoms


# --------------------------------------------------------------------------------------
# mlearn / maml


@dataclass
class _Record:
    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: tuple
    energy: float
    forces: np.ndarray
    stress: np.ndarray | None  # 6-vector (file order) or 3x3, file units and sign
    group: str
    source: str


def _mlearn_frames(document, path: Path, stress_order) -> list[Atoms]:
    records = document if isinstance(document, list) else [document]
    parsed = [_mlearn_record(r, path, i) for i, r in enumerate(records)]
    six = [r for r in parsed if r.stress is not None and r.stress.shape == (6,)]
    order = _voigt_order(stress_order) if stress_order is not None else VOIGT_ORDERS["vasp"]
    if stress_order is None and six:
        order = _detect_voigt_order(parsed, path)
    frames = []
    for r in parsed:
        stress = None
        if r.stress is not None:
            matrix = r.stress if r.stress.shape == (3, 3) else _voigt_to_matrix(r.stress, order)
            stress = _to_ase_voigt(matrix) * _KBAR_TO_ASE
        frames.append(
            _frame(
                r.numbers, r.positions, r.cell, r.pbc, r.energy, r.forces, stress, r.group, r.source
            )
        )
    return frames


def _mlearn_record(record, path: Path, index: int) -> _Record:
    where = f"{path} (record {index})"
    structure = _field(record, "structure", where)
    lattice = _field(structure, "lattice", where)
    cell = _array(_field(lattice, "matrix", where), (3, 3), "structure.lattice.matrix", where)
    pbc = lattice.get("pbc", (True, True, True))
    sites = _field(structure, "sites", where)
    if not isinstance(sites, list) or not sites:
        raise DataFileError(f"{where}: structure.sites must be a non-empty list")
    # json has already built one dict per site; reading them back is the same order of work.
    numbers = np.array([_site_number(s, where) for s in sites], dtype=np.int64)
    if all(isinstance(s, dict) and "xyz" in s for s in sites):
        positions = _array([s["xyz"] for s in sites], (len(sites), 3), "site xyz", where)
    else:
        frac = _array([_field(s, "abc", where) for s in sites], (len(sites), 3), "site abc", where)
        positions = frac @ cell
    n = len(sites)
    if "num_atoms" in record and record["num_atoms"] != n:
        raise DataFileError(
            f"{where}: num_atoms is {record['num_atoms']} but the structure has {n} sites"
        )
    outputs = _field(record, "outputs", where)
    energy = _energy(_field(outputs, "energy", where), where)
    forces = _array(_field(outputs, "forces", where), (n, 3), "forces", where)
    raw = outputs.get("virial_stress", outputs.get("stress"))
    stress = None
    if raw is not None and not (isinstance(raw, list) and len(raw) == 0):
        a = np.asarray(raw, dtype=object)
        shape = (3, 3) if a.ndim == 2 else (6,)
        stress = _array(raw, shape, "stress", where)
    if "group_id" in record:
        group = path.stem  # maml data-group files: one file, one group
    else:
        group = str(_group_of(record, path.stem))
    return _Record(
        numbers,
        positions,
        cell,
        tuple(bool(p) for p in np.broadcast_to(pbc, 3)),
        energy,
        forces,
        stress,
        group,
        f"{path}#{index}",
    )


def _group_of(info, default: str):
    """The configuration group of a record or an ``atoms.info``: its ``group``, else its
    ``config_type`` (the extxyz/gap_fit key), else ``default``."""
    for key in GROUP_KEYS:
        if info.get(key) is not None:
            return info[key]
    return default


def _site_number(site, where: str) -> int:
    species = _field(site, "species", where)
    if not isinstance(species, list) or len(species) != 1:
        raise DataFileError(
            f"{where}: a site with mixed species {species!r} (partial occupancy) is not a "
            "configuration"
        )
    sp = species[0]
    symbol = _field(sp, "element", where)
    if sp.get("occu", 1) != 1:
        raise DataFileError(f"{where}: site occupancy {sp.get('occu')} is not 1")
    if symbol not in atomic_numbers:
        raise DataFileError(f"{where}: unknown element {symbol!r}")
    return atomic_numbers[symbol]


def _detect_voigt_order(records: list[_Record], path: Path) -> tuple[str, ...]:
    """The Voigt order under which the stresses best explain the energy differences of the
    file's strained copies of one structure; VASP's unless another one is decisively better
    (a 4x smaller residual over at least three pairs)."""
    usable = [r for r in records if r.stress is not None and r.stress.shape == (6,)]
    pairs = _pair_indices(
        [r.cell for r in usable], [r.positions for r in usable], [r.numbers for r in usable]
    )
    if len(pairs) < 3:
        return VOIGT_ORDERS["vasp"]
    residual = {}
    for name, order in VOIGT_ORDERS.items():
        stresses = [_to_ase_voigt(_voigt_to_matrix(r.stress, order)) * _KBAR_TO_ASE for r in usable]
        d_ref, d_work = _strain_work(pairs, usable, stresses)
        residual[name] = np.sqrt(np.mean((d_ref - d_work) ** 2))
    best = min(residual, key=residual.get)
    if best != "vasp" and residual[best] < 0.25 * residual["vasp"]:
        warnings.warn(
            f"{path}: the stresses follow the Voigt order {' '.join(VOIGT_ORDERS[best])} "
            f"({best}), not VASP's: over {len(pairs)} pairs of strained copies the energy "
            f"differences are matched to {1e3 * residual[best]:.3g} meV by this order and "
            f"{1e3 * residual['vasp']:.3g} meV by VASP's. Using {best!r}; pass stress_order= "
            "to choose another.",
            stacklevel=5,  # the caller of read()
        )
        return VOIGT_ORDERS[best]
    return VOIGT_ORDERS["vasp"]


# --------------------------------------------------------------------------------------
# FitSNAP


def _fitsnap_frames(document, path: Path) -> list[Atoms]:
    where = str(path)
    dataset = _field(document, "Dataset", where)
    for key, allowed in _FITSNAP_EXPECTED_STYLES.items():
        style = dataset.get(key)
        if style is not None and str(style).lower() not in allowed:
            raise DataFileError(
                f"{path}: {key} {style!r} is not supported (expected {allowed[0]!r})"
            )
    stress_style = str(dataset.get("StressStyle", "bar"))
    if stress_style.lower() not in _FITSNAP_STRESS_UNITS:
        raise DataFileError(f"{path}: StressStyle {stress_style!r} is not one of bar, kB, GPa")
    stress_unit = _FITSNAP_STRESS_UNITS[stress_style.lower()]
    data = _field(dataset, "Data", where)
    if not isinstance(data, list):
        raise DataFileError(f"{path}: Dataset.Data must be a list of configurations")
    frames = []
    for index, config in enumerate(data):
        here = f"{path} (configuration {index})"
        symbols = _field(config, "AtomTypes", here)
        if not isinstance(symbols, list) or not symbols:
            raise DataFileError(f"{here}: AtomTypes must be a non-empty list of element symbols")
        unknown = sorted({s for s in symbols if s not in atomic_numbers}, key=str)
        if unknown:
            raise DataFileError(f"{here}: unknown element(s) {unknown} in AtomTypes")
        n = len(symbols)
        if "NumAtoms" in config and config["NumAtoms"] != n:
            raise DataFileError(
                f"{here}: NumAtoms is {config['NumAtoms']} but AtomTypes lists {n} atoms"
            )
        positions = _array(_field(config, "Positions", here), (n, 3), "Positions", here)
        cell = _array(_field(config, "Lattice", here), (3, 3), "Lattice", here)
        energy = _energy(_field(config, "Energy", here), here)
        forces = _array(_field(config, "Forces", here), (n, 3), "Forces", here)
        stress = None
        if config.get("Stress") is not None:
            stress = _to_ase_voigt(_array(config["Stress"], (3, 3), "Stress", here)) * stress_unit
        numbers = [atomic_numbers[s] for s in symbols]
        frames.append(
            _frame(
                numbers,
                positions,
                cell,
                True,
                energy,
                forces,
                stress,
                path.parent.name,
                f"{path}#{index}",
            )
        )
    return frames


# --------------------------------------------------------------------------------------
# ase.io


def _ase_frames(path: Path, format) -> list[Atoms]:
    try:
        images = ase.io.read(path, index=":", format=format)
    except Exception as e:  # ase raises many types; name the file whatever happened
        raise DataFileError(f"{path}: ase.io could not read it ({type(e).__name__}: {e})") from None
    if isinstance(images, Atoms):
        images = [images]
    frames = []
    for index, atoms in enumerate(images):
        where = f"{path} (frame {index})"
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        energy = results.get("energy", results.get("free_energy", atoms.info.get("energy")))
        if energy is None:
            raise DataFileError(f"{where}: no reference energy (an 'energy' property or info key)")
        energy = _energy(energy, where)
        n = len(atoms)
        forces = results.get("forces", atoms.arrays.get("forces"))
        if forces is not None:
            forces = _array(forces, (n, 3), "forces", where)
        stress = results.get("stress", atoms.info.get("stress"))
        if stress is not None:
            s = np.asarray(stress, dtype=np.float64)
            stress = (
                _to_ase_voigt(_array(s.reshape(3, 3), (3, 3), "stress", where))
                if s.size == 9
                else _array(s, (6,), "stress", where)
            )
        elif atoms.info.get("virial") is not None:
            virial = _array(
                np.asarray(atoms.info["virial"], dtype=np.float64).reshape(-1),
                (9,),
                "virial",
                where,
            ).reshape(3, 3)
            volume = abs(np.linalg.det(atoms.cell.array))
            if volume < 1e-9:
                raise DataFileError(f"{where}: a virial needs a cell with a volume")
            stress = -_to_ase_voigt(virial) / volume
        for key in ("energy", "stress", "virial"):  # now on the calculator
            atoms.info.pop(key, None)
        atoms.arrays.pop("forces", None)
        group = str(_group_of(atoms.info, path.stem))
        # keep the Atoms ase built (masses, tags, constraints, extra arrays)
        frame = _label(atoms, energy, forces, stress, group, f"{path}#{index}")
        frames.append(frame)
    return frames


# --------------------------------------------------------------------------------------
# Finite-difference strain check


@dataclass(frozen=True)
class StrainPairs:
    """Pairs of nearby strained copies of one structure and the energy test of their stress.

    ``energy_difference[k]`` is E[j] - E[i] (eV) of pair ``(i, j) = pairs[k]`` from the
    reference energies; ``stress_work[k]`` is the same difference predicted from the
    stresses and forces of both ends by the trapezoid rule along the straight path between
    the two cells (error third order in the strain step):
    dE = V sigma : (dcell^T cell^-T) - F . (non-affine displacement), averaged over the ends,
    with sigma = (1/V) dE/d(strain), ASE's convention.
    """

    pairs: np.ndarray
    energy_difference: np.ndarray
    stress_work: np.ndarray

    @property
    def relative_residual(self) -> float:
        """||dE - work|| / ||dE||: small when the stress convention is right."""
        return float(
            np.linalg.norm(self.energy_difference - self.stress_work)
            / np.linalg.norm(self.energy_difference)
        )


def strain_pairs(
    frames: list[Atoms], max_strain: float = 0.05, max_displacement: float = 0.05
) -> StrainPairs:
    """Find pairs of strained copies of one structure among ``frames`` and compare their
    reference energy differences with the work of their reference stresses (see
    ``StrainPairs``). This is the finite-difference check of a data set's stress units,
    sign and Voigt order.

    Two frames pair when they have the same atoms in the same order, their cells differ by
    at most ``max_strain`` (largest cell-matrix change over the largest cell entry) and no
    atom moves by more than ``max_displacement`` Angstrom beyond the homogeneous strain.
    Each frame pairs with its nearest such neighbour. Frames need a stress.
    """
    index = [k for k, a in enumerate(frames) if a.calc is not None and "stress" in a.calc.results]
    usable = [frames[k] for k in index]
    cells = [a.cell.array for a in usable]
    pairs = _pair_indices(
        cells,
        [a.positions for a in usable],
        [a.numbers for a in usable],
        max_strain,
        max_displacement,
    )
    if not pairs:
        raise ValueError("no pairs of strained copies of one structure among the frames")
    records = [
        _Record(
            a.numbers,
            a.positions,
            a.cell.array,
            tuple(a.pbc),
            a.get_potential_energy(),
            a.get_forces(),
            None,
            "",
            "",
        )
        for a in usable
    ]
    d_ref, d_work = _strain_work(pairs, records, [a.get_stress() for a in usable])
    return StrainPairs(np.array(index)[np.array(pairs)], d_ref, d_work)


def _pair_indices(cells, positions, numbers, max_strain=0.05, max_displacement=0.05):
    """Index pairs (i < j) of nearby strained copies, each frame with its nearest one."""
    by_species: dict[bytes, list[int]] = {}
    for k, z in enumerate(numbers):
        by_species.setdefault(np.asarray(z, dtype=np.int64).tobytes(), []).append(k)
    found = set()
    for members in by_species.values():
        if len(members) < 2:
            continue
        c = np.array([cells[k] for k in members])
        scale = np.abs(c).max(axis=(1, 2))
        distance = np.abs(c[:, None] - c[None, :]).max(axis=(2, 3)) / scale[:, None]
        distance[(distance == 0) | (distance > max_strain)] = np.inf
        for a in range(len(members)):
            # strained copies are among the nearest cells; three candidates suffice
            for b in np.argsort(distance[a])[:3]:
                if not np.isfinite(distance[a, b]):
                    break
                i, j = members[a], members[b]
                if _non_affine(cells[i], positions[i], cells[j], positions[j]) <= max_displacement:
                    found.add((min(i, j), max(i, j)))
                    break
    return sorted(found)


def _fractional_step(cell1, pos1, cell2, pos2) -> np.ndarray:
    """Change of fractional coordinates from frame 1 to 2, wrapped to the nearest image."""
    s1 = np.linalg.solve(cell1.T, pos1.T).T
    s2 = np.linalg.solve(cell2.T, pos2.T).T
    ds = s2 - s1
    return ds - np.round(ds)


def _non_affine(cell1, pos1, cell2, pos2) -> float:
    return float(np.abs(_fractional_step(cell1, pos1, cell2, pos2) @ cell1).max())


def _strain_work(pairs, records, stresses):
    """Reference energy differences and their trapezoid-rule prediction (see StrainPairs)."""
    d_ref = np.empty(len(pairs))
    d_work = np.empty(len(pairs))
    for k, (i, j) in enumerate(pairs):
        a, b = records[i], records[j]
        dcell = b.cell - a.cell
        ds = _fractional_step(a.cell, a.positions, b.cell, b.positions)
        work = 0.0
        for r, voigt in ((a, stresses[i]), (b, stresses[j])):
            sigma = np.zeros((3, 3))
            for value, (p, q) in zip(voigt, _ASE_VOIGT):
                sigma[p, q] = sigma[q, p] = value
            volume = abs(np.linalg.det(r.cell))
            # rate of deformation along the path, rows-are-vectors cells: L = (cell^-1 dcell)^T
            rate = np.linalg.solve(r.cell, dcell).T
            work += 0.5 * (volume * np.sum(sigma * rate) - np.sum(r.forces * (ds @ r.cell)))
        d_ref[k] = b.energy - a.energy
        d_work[k] = work
    return d_ref, d_work
