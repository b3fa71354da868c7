"""A small demonstration data set: copper labelled with ASE's EMT calculator, and an NVE
energy-drift check for molecular dynamics.

EMT (effective medium theory, K. W. Jacobsen, P. Stoltze, J. K. Norskov, Surf. Sci. 366, 394
(1996), as implemented in ``ase.calculators.emt.EMT``) is a cheap analytic potential. Here it
STANDS IN FOR DFT: it labels the frames so that ``mlpot demo`` can fit and validate a model in
seconds without any external data. Models fitted to it reproduce EMT, not real copper.

Units: eV, Angstrom, eV/Angstrom; stress in eV/Angstrom^3 with ASE's sign and Voigt order.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

__all__ = ["CU_LATTICE_CONSTANT_EMT", "emt_dataset", "nve_energy_drift"]

#: Equilibrium fcc lattice constant of Cu with ASE's EMT, Angstrom (zero-stress cell).
CU_LATTICE_CONSTANT_EMT = 3.5898256

# Langevin friction of the MD snapshots (1/fs) and steps run before the first snapshot.
_FRICTION_PER_FS = 0.02
_EQUILIBRATION_STEPS = 40


def emt_dataset(
    seed: int = 0,
    *,
    frames_per_group: int = 8,
    repeat: int = 2,
    temperatures_K: tuple[float, ...] = (300.0, 900.0),
    md_interval: int = 10,
    timestep_fs: float = 5.0,
    validation_fraction: float = 0.2,
):
    """An EMT-labelled fcc Cu data set, split by frames into training and validation sets.

    EMT stands in for DFT here (see the module docstring): the labels are ASE's EMT energies,
    forces and stresses. The frames, all built from the ``repeat``^3 supercell of the cubic
    fcc cell (4 repeat^3 atoms, lattice constant :data:`CU_LATTICE_CONSTANT_EMT`), carry a
    group name in ``atoms.info["group"]``:

    - ``"bulk_rattled"``: random displacements of 0.03 to 0.15 Angstrom (standard deviation);
    - ``"strained"``: volumetric (+-4 % in length) and random shear (up to 4 %) strains, with
      0.03 Angstrom rattling;
    - ``"vacancy"``: one atom removed, rattled by 0.05 to 0.1 Angstrom;
    - ``"surface"``: an fcc(111) slab of repeat+1 x repeat+1 x 4 atoms with 6 Angstrom of
      vacuum on each side (periodic in 3D), rattled by 0.03 to 0.1 Angstrom;
    - ``"md_<T>K"`` for each temperature T: Langevin MD snapshots every ``md_interval``
      steps of ``timestep_fs`` after a short equilibration.

    Each group has ``frames_per_group`` frames. Every frame has energy (eV), forces
    (eV/Angstrom) and, for the bulk frames only (not the surface slab), stress
    (eV/Angstrom^3) on a ``SinglePointCalculator``. In each group a ``validation_fraction``
    of the frames (at least one) goes to validation. The result depends only on the
    arguments: the same seed gives the same frames.

    Returns ``(train_frames, validation_frames)``, two lists of ``ase.Atoms``.
    """
    n = _count("frames_per_group", frames_per_group, minimum=2)
    repeat = _count("repeat", repeat, minimum=1)
    md_interval = _count("md_interval", md_interval, minimum=1)
    if not (isinstance(validation_fraction, Real) and 0.0 < validation_fraction < 1.0):
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    timestep_fs = _positive("timestep_fs", timestep_fs)
    temperatures = [_positive("temperature", t) for t in temperatures_K]

    streams = iter(np.random.SeedSequence(_count("seed", seed, minimum=0)).spawn(6 + len(temperatures)))

    def rng():
        return np.random.default_rng(next(streams))

    cell = bulk("Cu", "fcc", a=CU_LATTICE_CONSTANT_EMT, cubic=True).repeat(repeat)
    groups = {
        "bulk_rattled": _rattled(cell, rng(), np.linspace(0.03, 0.15, n)),
        "strained": _strained(cell, rng(), n),
        "vacancy": _rattled(cell[1:], rng(), np.linspace(0.05, 0.1, n)),
        "surface": _rattled(_slab(repeat), rng(), np.linspace(0.03, 0.1, n)),
    }
    for temperature in temperatures:
        groups[f"md_{temperature:g}K"] = _md_snapshots(cell, rng(), temperature, n, md_interval, timestep_fs)

    split = rng()
    train, validation = [], []
    for group, frames in groups.items():
        for atoms in frames:
            _label(atoms, group, stress=group != "surface")
        n_validation = max(1, round(validation_fraction * len(frames)))
        chosen = set(split.permutation(len(frames))[:n_validation].tolist())
        train += [a for k, a in enumerate(frames) if k not in chosen]
        validation += [a for k, a in enumerate(frames) if k in chosen]
    return train, validation


def nve_energy_drift(atoms, calculator, steps: int, timestep_fs: float, *, temperature_K=None, seed: int = 0) -> float:
    """Drift of the total energy in NVE molecular dynamics, meV/atom/ps.

    Runs ``steps`` steps of velocity Verlet (``ase.md.verlet.VelocityVerlet``) of
    ``timestep_fs`` femtoseconds on a copy of ``atoms`` (``atoms`` itself is not changed)
    with ``calculator``, and returns the slope of a least-squares line through the total
    (potential + kinetic) energy per atom against time: signed, in meV/atom/ps. A good
    potential with a small enough timestep gives a value near zero. The MD starts from the
    momenta of ``atoms``; with ``temperature_K`` it starts instead from Maxwell-Boltzmann
    velocities at that temperature (zero total momentum, drawn with ``seed``).
    """
    steps = _count("steps", steps, minimum=1)
    timestep_fs = _positive("timestep_fs", timestep_fs)
    if len(atoms) == 0:
        raise ValueError("atoms has no atoms: the energy per atom is undefined")
    atoms = atoms.copy()
    atoms.calc = calculator
    if temperature_K is not None:
        _thermalize(atoms, _positive("temperature_K", temperature_K), np.random.default_rng(seed))
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    energies = []
    dynamics.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    dynamics.run(steps)
    # the observer runs before the first step and after each one
    times_ps = np.arange(len(energies)) * timestep_fs / 1000.0
    slope = np.polyfit(times_ps, np.asarray(energies) / len(atoms), 1)[0]
    return float(slope * 1000.0)


def _rattled(template, rng, amplitudes):
    frames = []
    for amplitude in amplitudes:
        atoms = template.copy()
        atoms.positions += rng.normal(0.0, amplitude, atoms.positions.shape)
        frames.append(atoms)
    return frames


def _strained(template, rng, n):
    """Half volumetric strains spanning +-4 % in length, half random symmetric shears up to
    4 %; each slightly rattled."""
    n_volumetric = n // 2
    frames = []
    for k in range(n):
        if k < n_volumetric:
            strain = np.eye(3) * np.linspace(-0.04, 0.04, n_volumetric)[k]
        else:
            shear = rng.uniform(-0.04, 0.04, 3)
            strain = np.array([[0, shear[2], shear[1]], [shear[2], 0, shear[0]], [shear[1], shear[0], 0]])
        atoms = template.copy()
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
        atoms.positions += rng.normal(0.0, 0.03, atoms.positions.shape)
        frames.append(atoms)
    return frames


def _slab(repeat):
    return fcc111("Cu", size=(repeat + 1, repeat + 1, 4), a=CU_LATTICE_CONSTANT_EMT, vacuum=6.0, periodic=True)


def _md_snapshots(template, rng, temperature, n, interval, timestep_fs):
    atoms = template.copy()
    atoms.calc = EMT()
    _thermalize(atoms, temperature, rng)
    dynamics = Langevin(
        atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature,
        friction=_FRICTION_PER_FS / units.fs,
        fixcm=False,
        rng=rng,
    )
    dynamics.run(_EQUILIBRATION_STEPS)
    frames = []
    for _ in range(n):
        dynamics.run(interval)
        snapshot = atoms.copy()  # positions and momenta, without the calculator
        frames.append(snapshot)
    return frames


def _thermalize(atoms, temperature_K, rng):
    """Maxwell-Boltzmann momenta at temperature_K with zero total momentum. Written out (one
    line) because ASE renamed its function for this in 3.29 and mlpot supports ASE >= 3.23."""
    masses = atoms.get_masses()[:, None]
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_K))
    Stationary(atoms)


def _label(atoms, group, stress):
    """Puts EMT's energy, forces and (bulk only) stress on a SinglePointCalculator."""
    atoms.calc = EMT()
    energy = atoms.get_potential_energy()
    results = {"energy": energy, "free_energy": energy, "forces": atoms.get_forces()}
    if stress:
        results["stress"] = atoms.get_stress(voigt=True)
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info["group"] = group


def _count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return float(value)
