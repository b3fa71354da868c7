"""ZBL baseline: mlpot.ZBL.predict against LAMMPS pair_style zbl 4.0 4.8 (FitSNAP's Ta
reference potential) on rattled bcc Ta of 2,000 and 16,000 atoms.

LAMMPS time is one `run 0 post no` (neighbor list + energy, forces, virial) on one MPI rank;
mlpot time is predict() (neighbor list + energies, forces, stress) from an ase.Atoms. Prints
times per atom and the ratio LAMMPS / mlpot at 1 and 2 threads. Never asserts times.
Run: python benches/zbl.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
from types import SimpleNamespace

from ase.build import bulk

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import mlpot  # noqa: E402
from bispectrum import best_of  # noqa: E402  (benches/ is the script's directory)
from lammps_oracle import _start  # noqa: E402

INNER, OUTER = 4.0, 4.8


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    zbl = mlpot.ZBL(INNER, OUTER)
    for reps in (10, 20):
        atoms = bulk("Ta", "bcc", a=3.3, cubic=True).repeat(reps)
        atoms.rattle(0.1, seed=0)
        atoms.wrap()
        _, lmp = _start(
            atoms,
            SimpleNamespace(elements=["Ta"]),
            [f"pair_style zbl {INNER} {OUTER}", "pair_coeff 1 1 73 73", "run 0"],
        )
        t_lammps = best_of(repeat, lambda: lmp.command("run 0 post no"))
        lmp.close()
        n = len(atoms)
        print(f"{n} atoms: LAMMPS {t_lammps / n * 1e6:.2f} us/atom")
        for threads in (1, 2):
            mlpot.set_num_threads(threads)
            zbl.predict(atoms)
            t = best_of(repeat, lambda: zbl.predict(atoms))
            print(f"  mlpot, {threads} thread(s): {t / n * 1e6:.2f} us/atom, LAMMPS/mlpot {t_lammps / t:.2f}")
        mlpot.set_num_threads(0)  # back to the default pool


if __name__ == "__main__":
    main()
