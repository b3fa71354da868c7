"""Training frames for the linear fits: their reference energy, forces and stress, the
per-group weights of FitSNAP, and the weighted rows of one frame.

Rows and weights follow FitSNAP (the LAMMPSSNAP calculator): one energy row per frame in
eV/atom times eweight, 3 N force rows in eV/Angstrom times fweight, and 6 stress rows in
bar (LAMMPS's pressure unit: FitSNAP's virial rows are the virial over the volume times
1.6021765e6) times vweight, in the order xx, yy, zz, yz, xz, xy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress
from ase.units import bar as _BAR

from mlpot.calculator import system_changes
from mlpot.descriptors import _finite

__all__ = [
    "ROW_KINDS",
    "Reference",
    "Weights",
    "frame_blocks",
    "frame_reference",
    "frame_rows",
    "reference",
    "resolve_group_weights",
    "weight_of",
]


@dataclass(frozen=True)
class Weights:
    """Row weights with FitSNAP's meaning: per eV/atom of energy, per eV/Angstrom of force,
    per bar of stress."""

    eweight: float
    fweight: float
    vweight: float


@dataclass(frozen=True)
class Reference:
    """A frame's reference data; None where the frame has none."""

    energy: float | None
    forces: np.ndarray | None
    stress: np.ndarray | None


def _number(value, what: str) -> float:
    """A finite number >= 0 (TypeError/ValueError naming `what` otherwise)."""
    x = _finite(what, value)
    if x < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return x


def resolve_group_weights(
    energy_weight, force_weight, stress_weight, group_weights
) -> tuple[Weights, dict[str, Weights]]:
    """The default weights and those of each named group. A group's dict may give any of
    eweight, fweight, vweight; the others fall back to the defaults."""
    default = Weights(
        _number(energy_weight, "energy_weight"),
        _number(force_weight, "force_weight"),
        _number(stress_weight, "stress_weight"),
    )
    if group_weights is None:
        return default, {}
    if not isinstance(group_weights, Mapping):
        raise TypeError(
            "group_weights must be a dict {group: {'eweight': .., 'fweight': .., 'vweight': ..}}"
        )
    groups = {}
    for group, w in group_weights.items():
        if not isinstance(w, Mapping):
            raise TypeError(f"group_weights[{group!r}] must be a dict of eweight/fweight/vweight")
        unknown = set(w) - {"eweight", "fweight", "vweight"}
        if unknown:
            raise ValueError(
                f"group_weights[{group!r}] has unknown key(s) {sorted(unknown)}; "
                "use eweight, fweight, vweight"
            )
        groups[group] = Weights(
            *(
                _number(w.get(key, getattr(default, key)), f"group_weights[{group!r}][{key!r}]")
                for key in ("eweight", "fweight", "vweight")
            )
        )
    return default, groups


def check_labels_current(atoms, where: str) -> None:
    """ValueError if ``atoms`` carries a SinglePointCalculator whose results were computed
    for other positions, numbers, cell or pbc (the atoms were moved after labelling)."""
    calc = atoms.calc
    if not isinstance(calc, SinglePointCalculator) or not calc.results:
        return
    changed = system_changes(calc.atoms, atoms)
    if changed:
        raise ValueError(
            f"{where}: the atoms changed since they were labelled: their {' and '.join(changed)} "
            "differ from those the reference energy/forces/stress were computed for. Label "
            "the frame again, or move a copy (atoms.copy()) and leave the labelled frame as it was"
        )


def _properties(atoms, names: tuple[str, ...], where: str) -> dict:
    """{name: value or None} from the frame's calculator. A SinglePointCalculator (what the
    readers attach) is checked once for changes to the positions, numbers, cell or pbc since
    it was labelled (ValueError naming them: its results belong to other atoms), and its
    stored results read: ASE's get_property compares all the atoms' arrays again for every
    property, which took a fifth of the fit time of FitSNAP's Ta set."""
    calc = atoms.calc
    if isinstance(calc, SinglePointCalculator):
        check_labels_current(atoms, where)
        return {name: calc.results.get(name) for name in names}
    out = {}
    for name in names:
        try:
            out[name] = calc.get_property(name, atoms)
        except PropertyNotImplementedError:
            out[name] = None
    return out


def reference(atoms, where: str) -> Reference:
    """The reference energy (eV), forces (eV/Angstrom) and stress (eV/Angstrom^3, ASE sign
    and Voigt order) of a frame, from its calculator (usually a SinglePointCalculator).
    `where` names the frame in error messages."""
    if atoms.calc is None:
        raise ValueError(f"{where} has no calculator holding reference energy/forces/stress")
    names = ("energy", "forces", "stress") if atoms.pbc.all() else ("energy", "forces")
    found = _properties(atoms, names, where)
    energy, forces, stress = found["energy"], found["forces"], found.get("stress")
    if energy is None and forces is None and stress is None:
        raise ValueError(f"{where} has no reference energy, forces or stress")
    if energy is not None:
        energy = float(energy)
        if not math.isfinite(energy):
            raise ValueError(f"{where} has a non-finite reference energy")
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != (len(atoms), 3):
            raise ValueError(f"{where}: reference forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
        if not np.isfinite(forces).all():
            raise ValueError(f"{where} has non-finite reference forces")
    if stress is not None:
        stress = np.asarray(stress, dtype=np.float64)
        if stress.shape == (3, 3):
            stress = full_3x3_to_voigt_6_stress(stress)
        if stress.shape != (6,):
            raise ValueError(f"{where}: reference stress has shape {stress.shape}, expected (6,)")
        if not np.isfinite(stress).all():
            raise ValueError(f"{where} has a non-finite reference stress")
    return Reference(energy, forces, stress)


def frame_reference(k: int, atoms) -> tuple[str, Reference]:
    """How errors name training frame ``k`` ("frame 3 (group 'Vacancy')"), and its
    reference; TypeError if it is not an ase.Atoms."""
    group = atoms.info.get("group") if hasattr(atoms, "info") else None
    where = f"frame {k}" + (f" (group {group!r})" if group is not None else "")
    if not hasattr(atoms, "get_positions"):
        raise TypeError(f"{where} is a {type(atoms).__name__}, not an ase.Atoms")
    return where, reference(atoms, where)


#: The kinds of rows of a frame, in the order they are stacked.
ROW_KINDS = ("energy", "forces", "stress")


def frame_blocks(rows: Mapping[str, np.ndarray], ref: Reference, atoms, baseline, kinds=ROW_KINDS):
    """Unweighted design rows and targets of one frame, ``{kind: (A, b)}`` for the kinds
    in ``kinds`` the frame has references for, in FitSNAP's units before weighting: one
    energy row in eV/atom, 3 N force rows in eV/Angstrom, 6 stress rows in bar. Built from
    the frame's design rows (energy, forces, virial, as `_core.Term.rows` gives
    them) and its reference, less the baseline's contribution."""
    n_atoms = len(atoms)
    present = {
        "energy": ref.energy is not None and n_atoms > 0,
        "forces": ref.forces is not None and n_atoms > 0,
        "stress": ref.stress is not None,
    }
    wanted = [kind for kind in ROW_KINDS if present[kind] and kind in kinds]
    if not wanted:
        return {}
    base = baseline.predict(atoms) if baseline is not None else None
    blocks = {}
    if "energy" in wanted:
        energy = ref.energy - (base["energy"] if base else 0.0)
        blocks["energy"] = (rows["energy"][None, :] / n_atoms, np.array([energy / n_atoms]))
    if "forces" in wanted:
        forces = ref.forces - (np.asarray(base["forces"]) if base else 0.0)
        blocks["forces"] = (rows["forces"], forces.ravel())
    if "stress" in wanted:
        stress = ref.stress - (np.asarray(base["stress"]) if base else 0.0)
        # ASE's stress is -virial / volume; the rows are in bar
        blocks["stress"] = (rows["virial"] * (-1.0 / (_BAR * atoms.get_volume())), stress / _BAR)
    return blocks


def weight_of(weights: Weights, kind: str) -> float:
    """The weight of rows of ``kind`` (one of ROW_KINDS)."""
    return {"energy": weights.eweight, "forces": weights.fweight, "stress": weights.vweight}[kind]


def frame_rows(rows: Mapping[str, np.ndarray], ref: Reference, weights: Weights, atoms, baseline):
    """Weighted design rows and targets (A, b) of one frame (`frame_blocks` times the
    weights; kinds of weight 0 are dropped), or None when no row is left."""
    kinds = [kind for kind in ROW_KINDS if weight_of(weights, kind) > 0]
    blocks = frame_blocks(rows, ref, atoms, baseline, kinds)
    if not blocks:
        return None
    a = np.vstack([block[0] * weight_of(weights, kind) for kind, block in blocks.items()])
    b = np.concatenate([block[1] * weight_of(weights, kind) for kind, block in blocks.items()])
    return a, b
