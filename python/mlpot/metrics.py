"""Error tables: how well a model reproduces reference energies, forces and stresses,
overall and per configuration group.

Units: energies are compared per atom (eV/atom; the table prints meV/atom), forces per
Cartesian component (eV/Angstrom), stresses per Voigt component (eV/Angstrom^3; the
table prints GPa).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms, units

from mlpot.models.training import check_labels_current

__all__ = ["ErrorReport", "GroupErrors", "errors"]


@dataclass(frozen=True)
class GroupErrors:
    """Mean absolute and root-mean-square errors of one set of frames (NaN when the set has
    nothing to compare)."""

    n_frames: int
    n_atoms: int
    #: eV/atom
    energy_mae: float
    energy_rmse: float
    #: number of force components compared (3 per atom with reference forces)
    n_force_components: int
    #: eV/Angstrom, per component
    force_mae: float
    force_rmse: float
    #: number of frames whose stress was compared (periodic in 3D, with a reference stress)
    n_stress_frames: int
    #: eV/Angstrom^3, per Voigt component
    stress_mae: float
    stress_rmse: float


@dataclass(frozen=True)
class ParityData:
    """The compared values themselves, for parity plots. Rows follow the frames given."""

    #: (n_frames,) reference and predicted energies, eV/atom
    energy_reference: np.ndarray
    energy_predicted: np.ndarray
    #: (n_frames,) group of each frame
    groups: np.ndarray
    #: (n_force_atoms, 3) reference and predicted forces, eV/Angstrom
    forces_reference: np.ndarray
    forces_predicted: np.ndarray
    #: (n_force_atoms,) index of the frame each force row belongs to
    forces_frame: np.ndarray
    #: (n_stress_frames, 6) reference and predicted stress, eV/Angstrom^3, ASE Voigt order
    stress_reference: np.ndarray
    stress_predicted: np.ndarray
    #: (n_stress_frames,) index of the frame of each stress row
    stress_frame: np.ndarray


class ErrorReport:
    """Result of ``errors()``: ``.overall`` and ``.groups`` (name -> GroupErrors, sorted by
    name), ``.parity`` (the compared values), ``.to_dict()``, and ``str()`` for a table."""

    def __init__(self, overall: GroupErrors, groups: dict[str, GroupErrors], parity: ParityData):
        self.overall = overall
        self.groups = groups
        self.parity = parity

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers (JSON-ready; NaN where nothing was compared), in eV/atom,
        eV/Angstrom and eV/Angstrom^3."""
        return {
            "units": {"energy": "eV/atom", "force": "eV/Angstrom", "stress": "eV/Angstrom^3"},
            "overall": asdict(self.overall),
            "groups": {name: asdict(g) for name, g in self.groups.items()},
        }

    def __str__(self) -> str:
        header = (
            "group",
            "frames",
            "atoms",
            "E MAE",
            "E RMSE",
            "F MAE",
            "F RMSE",
            "S MAE",
            "S RMSE",
        )
        unit_row = ("", "", "", "meV/atom", "meV/atom", "eV/A", "eV/A", "GPa", "GPa")
        entries = [*self.groups.items(), ("all", self.overall)]
        # (attribute, scale to printed unit, count attribute deciding whether it exists)
        columns = [
            ("energy_mae", 1e3, "n_frames"),
            ("energy_rmse", 1e3, "n_frames"),
            ("force_mae", 1.0, "n_force_components"),
            ("force_rmse", 1.0, "n_force_components"),
            ("stress_mae", 1 / units.GPa, "n_stress_frames"),
            ("stress_rmse", 1 / units.GPa, "n_stress_frames"),
        ]
        cells = []
        for attribute, scale, count in columns:
            values = [
                getattr(g, attribute) * scale if getattr(g, count) else np.nan for _, g in entries
            ]
            cells.append(_fixed_decimals(values))
        rows = [header, unit_row] + [
            (name, str(g.n_frames), str(g.n_atoms), *(col[k] for col in cells))
            for k, (name, g) in enumerate(entries)
        ]
        widths = [max(len(r[k]) for r in rows) for k in range(len(header))]

        def fmt(r):
            return "  ".join(
                [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
            )

        rule = "-" * len(fmt(header))
        lines = [fmt(r) for r in rows]
        lines.insert(2, rule)
        if len(entries) > 1:
            lines.insert(len(lines) - 1, rule)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ErrorReport: {self.overall.n_frames} frames, {len(self.groups)} groups>\n{self}"


def errors(model, frames: Sequence[Atoms], progress: bool = False) -> ErrorReport:
    """Mean absolute and root-mean-square errors of ``model`` on reference ``frames``.

    Parameters
    ----------
    model
        Anything with ``predict(atoms) -> dict`` holding ``energy`` (eV) and optionally
        ``forces`` (eV/Angstrom) and ``stress`` (eV/Angstrom^3, ASE's sign and Voigt
        order).
    frames
        ``ase.Atoms`` with reference values on their calculator (as ``mlpot.io.read``
        returns) and the group in ``info["group"]`` (frames without one count as
        ``"default"``).
    progress
        Show a progress bar over frames (tqdm).

    Energies are compared per atom; forces per component over frames with reference
    forces; stresses per Voigt component over frames that are periodic in 3D and have a
    reference stress (and a predicted one). Returns an ``ErrorReport``.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("errors() needs at least one frame")
    iterator = frames
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(frames, desc="errors", unit="frame")

    n = len(frames)
    n_atoms = np.empty(n, dtype=np.int64)
    e_ref = np.empty(n)
    e_pred = np.empty(n)
    f_ref, f_pred, f_frame = [], [], []
    s_ref, s_pred, s_frame = [], [], []
    for k, atoms in enumerate(iterator):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"frame {k} is {type(atoms).__name__}, not ase.Atoms")
        if atoms.calc is None:
            raise ValueError(f"frame {k} ({_name(atoms)}) has no reference values (no calculator)")
        reference = _reference(atoms, k)
        predicted = model.predict(atoms)
        if "energy" not in predicted:
            raise ValueError(f"model.predict() returned no 'energy' for frame {k}")
        n_atoms[k] = len(atoms)
        e_ref[k] = reference["energy"]
        e_pred[k] = float(predicted["energy"])
        if reference.get("forces") is not None and predicted.get("forces") is not None:
            f_ref.append(reference["forces"])
            f_pred.append(_shaped(predicted["forces"], (len(atoms), 3), "forces", k))
            f_frame.append(np.full(len(atoms), k))
        if (
            reference.get("stress") is not None
            and predicted.get("stress") is not None
            and atoms.pbc.all()
        ):
            s_ref.append(reference["stress"])
            s_pred.append(_shaped(predicted["stress"], (6,), "stress", k))
            s_frame.append(k)

    if np.any(n_atoms == 0):
        raise ValueError(f"frame {int(np.argmax(n_atoms == 0))} has no atoms")
    groups = np.array([str(a.info.get("group", "default")) for a in frames])
    parity = ParityData(
        energy_reference=e_ref / n_atoms,
        energy_predicted=e_pred / n_atoms,
        groups=groups,
        forces_reference=np.concatenate(f_ref) if f_ref else np.zeros((0, 3)),
        forces_predicted=np.concatenate(f_pred) if f_pred else np.zeros((0, 3)),
        forces_frame=np.concatenate(f_frame) if f_frame else np.zeros(0, dtype=np.int64),
        stress_reference=np.array(s_ref).reshape(-1, 6),
        stress_predicted=np.array(s_pred).reshape(-1, 6),
        stress_frame=np.array(s_frame, dtype=np.int64),
    )
    names, group_of_frame = np.unique(groups, return_inverse=True)
    per_group = _group_errors(parity, n_atoms, group_of_frame, len(names))
    overall = _group_errors(parity, n_atoms, np.zeros(n, dtype=np.int64), 1)[0]
    return ErrorReport(overall, dict(zip(names.tolist(), per_group)), parity)


def _group_errors(p: ParityData, n_atoms, group_of_frame, n_groups) -> list[GroupErrors]:
    """MAE and RMSE per group, by weighted bincounts (no loops over atoms)."""

    def mae_rmse(error: np.ndarray, group: np.ndarray):
        count = np.bincount(group, minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            mae = np.bincount(group, np.abs(error), minlength=n_groups) / count
            rmse = np.sqrt(np.bincount(group, error**2, minlength=n_groups) / count)
        return count, mae, rmse

    n_frames, e_mae, e_rmse = mae_rmse(p.energy_predicted - p.energy_reference, group_of_frame)
    atoms_per_group = np.bincount(group_of_frame, n_atoms, minlength=n_groups).astype(np.int64)
    force_group = np.repeat(group_of_frame[p.forces_frame], 3)
    n_f, f_mae, f_rmse = mae_rmse((p.forces_predicted - p.forces_reference).ravel(), force_group)
    stress_group = np.repeat(group_of_frame[p.stress_frame], 6)
    n_s, s_mae, s_rmse = mae_rmse((p.stress_predicted - p.stress_reference).ravel(), stress_group)
    return [
        GroupErrors(
            int(n_frames[g]),
            int(atoms_per_group[g]),
            float(e_mae[g]),
            float(e_rmse[g]),
            int(n_f[g]),
            float(f_mae[g]),
            float(f_rmse[g]),
            int(n_s[g]) // 6,
            float(s_mae[g]),
            float(s_rmse[g]),
        )
        for g in range(n_groups)
    ]


def _fixed_decimals(values: list[float]) -> list[str]:
    """One column of numbers with a common number of decimals, enough to show three
    significant digits of its smallest non-zero entry (at most 6); '-' for NaN."""
    finite = np.array([abs(v) for v in values if np.isfinite(v) and v != 0])
    decimals = 0 if finite.size == 0 else int(np.clip(2 - np.floor(np.log10(finite.min())), 0, 6))
    return ["-" if not np.isfinite(v) else f"{v:.{decimals}f}" for v in values]


def _reference(atoms: Atoms, k: int) -> dict[str, Any]:
    """Reference values on the frame's calculator, without triggering a calculation for the
    optional ones."""
    calc = atoms.calc
    check_labels_current(atoms, f"frame {k} ({_name(atoms)})")
    energy = calc.get_property("energy", atoms, allow_calculation=False)
    if energy is None:
        energy = atoms.get_potential_energy()  # a live calculator computes it
    energy = float(energy)
    if not np.isfinite(energy):
        raise ValueError(f"frame {k} ({_name(atoms)}) has a non-finite reference energy")
    forces = calc.get_property("forces", atoms, allow_calculation=False)
    stress = calc.get_property("stress", atoms, allow_calculation=False)
    if forces is not None:
        forces = _shaped(forces, (len(atoms), 3), "reference forces", k)
    if stress is not None:
        stress = np.asarray(stress, dtype=np.float64)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        stress = _shaped(stress, (6,), "reference stress", k)
    return {"energy": energy, "forces": forces, "stress": stress}


def _shaped(value, shape, name: str, k: int) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"frame {k}: {name} has shape {a.shape}, expected {shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"frame {k}: {name} contains NaN or infinite values")
    return a


def _name(atoms: Atoms) -> str:
    return str(atoms.info.get("source", atoms.get_chemical_formula()))
