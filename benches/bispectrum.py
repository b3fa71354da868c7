"""SNAP bispectrum: mlpot against LAMMPS in one run.

4,000-atom rattled fcc Ni, rcutfac 4.1, radelem 0.5, twojmax 6 and 8:
  (a) descriptors: mlpot Bispectrum.compute vs LAMMPS compute sna/atom;
  (b) energy + forces: mlpot Bispectrum.forces (adjoint path) vs pair_style snap with the
      same coefficients (LAMMPS runs on one MPI rank, one thread).
Prints times per atom and the ratios LAMMPS time / mlpot time at 1 and 2 threads, and the
load average before and after: the 2-thread gain means something only when nothing else
runs on the second core. On a shared machine the wall times of both codes stretch with the
load; the second table gives the CPU time of the process (user + system, summed over
threads), which at one thread is close to the wall time on an idle core and at two threads
shows how much work threading adds. Never asserts times.
Run: python benches/bispectrum.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np
from ase.build import bulk

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import mlpot  # noqa: E402
from lammps_oracle import _start, sna_arguments, write_snap_files  # noqa: E402


def cpu_time():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_of(repeat, fn):
    """(least wall time, least CPU time) of `repeat` calls, seconds."""
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = cpu_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_time() - c0)
    return np.array([min(walls), min(cpus)])


def lammps_sna(atoms, bs, style="sna/atom"):
    """(callable, close) evaluating LAMMPS compute `style` (sna/atom or snad/atom) for the
    descriptor `bs` once per call."""
    lammps, lmp = _start(
        atoms,
        bs,
        [
            f"pair_style zero {bs.cutoff + 0.5}",
            "pair_coeff * *",
            f"compute b all {style} {sna_arguments(bs)}",
            "run 0",
        ],
    )

    def sna():
        # a new timestep, so that extracting the per-atom compute evaluates it again
        lmp.command("run 1 pre no post no")
        lmp.numpy.extract_compute("b", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_ARRAY)

    return sna, lmp.close


def lammps_snap(atoms, bs, coefficients, directory, steps=1):
    """(callable, close): `steps` steps of pair_style snap (energy and forces) with the linear
    coefficients {element: [constant, weights...]}, files written to `directory`."""
    coeff, param = write_snap_files(directory, bs, coefficients)
    elements = " ".join(bs.elements)
    _, lmp = _start(atoms, bs, ["pair_style snap", f"pair_coeff * * {coeff} {param} {elements}", "run 0"])
    return (lambda: lmp.command(f"run {steps} pre no post no")), lmp.close


def lammps_times(atoms, bs, coefficients, repeat):
    sna, close = lammps_sna(atoms, bs)
    t_sna = best_of(repeat, sna)
    close()
    with tempfile.TemporaryDirectory() as d:
        steps = 3
        snap, close = lammps_snap(atoms, bs, coefficients, d, steps)
        t_snap = best_of(repeat, snap) / steps
        close()
    return t_sna, t_snap


def rattled_nickel(n, seed=0):
    """Rattled fcc Ni, n cubic cells per side (4 n^3 atoms), wrapped."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Ni", "fcc", a=3.52, cubic=True) * (n, n, n)
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    atoms.wrap()
    return atoms


def nickel_bispectrum(twojmax):
    """The bench's Bispectrum: rcutfac 4.1, rfac0 0.99363, rmin0 0, radelem 0.5, wj 1."""
    return mlpot.Bispectrum(twojmax, 4.1, rfac0=0.99363, rmin0=0.0, radelem={"Ni": 0.5}, wj={"Ni": 1.0})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--atoms-per-side", type=int, default=10, help="fcc cubic cells per side (4 n^3 atoms)")
    args = parser.parse_args()

    atoms = rattled_nickel(args.atoms_per_side)
    rng = np.random.default_rng(0)
    rng.normal(0.0, 0.05, atoms.positions.shape)  # the rattle's draws: beta as before
    n_atoms = len(atoms)
    print(f"load average before (1, 5, 15 min): {os.getloadavg()}, {os.cpu_count()} CPUs")
    print(f"{n_atoms} atoms of rattled fcc Ni, rcutfac 4.1, radelem 0.5; times per atom, best of {args.repeat}")
    rows = []
    for twojmax in (6, 8):
        bs = nickel_bispectrum(twojmax)
        beta = rng.normal(size=bs.n_features + 1)
        t_sna, t_snap = lammps_times(atoms, bs, {"Ni": beta}, args.repeat)
        ours = {}
        for threads in (1, 2):
            mlpot.set_num_threads(threads)
            ours[threads] = (
                best_of(args.repeat, lambda: bs.compute(atoms)),
                best_of(args.repeat, lambda: bs.forces(atoms, beta[1:], return_descriptors=True)),
            )
        mlpot.set_num_threads(0)
        for k, (task, ref) in enumerate([("descriptors", t_sna), ("energy+forces", t_snap)]):
            rows.append((twojmax, task, ref, ours[1][k], ours[2][k]))
    us = 1e6 / n_atoms
    head = f"{'twojmax':>7} {'task':<14} {'LAMMPS us':>10} {'mlpot 1t us':>12} {'mlpot 2t us':>12} {'ratio 1t':>9}"
    print("wall time:")
    print(f"{head} {'ratio 2t':>9} {'2t gain':>8}")
    for twojmax, task, ref, one, two in rows:
        ref, one, two = ref[0] * us, one[0] * us, two[0] * us
        print(f"{twojmax:>7} {task:<14} {ref:>10.1f} {one:>12.1f} {two:>12.1f} {ref / one:>9.2f} {ref / two:>9.2f} {one / two:>8.2f}")
    print("CPU time of the process (all threads); the last column is the work 2 threads add:")
    print(f"{head} {'2t/1t':>9}")
    for twojmax, task, ref, one, two in rows:
        ref, one, two = ref[1] * us, one[1] * us, two[1] * us
        print(f"{twojmax:>7} {task:<14} {ref:>10.1f} {one:>12.1f} {two:>12.1f} {ref / one:>9.2f} {two / one:>9.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
