"""Neighbor-list benchmark: mlpot against vesin, matscipy and ASE, in one run.

Rattled diamond Si supercells of 1,728, 13,824 and 64,000 atoms, cutoff 5 A, quantities
"ijdD". mlpot runs at 1 and 2 threads (mlpot.set_num_threads); vesin, matscipy and ASE are
single-threaded. Each time is the best of several repeats after a warm-up. Printed as time
ratios peer / mlpot: above 1 means mlpot is faster. Nothing is asserted.

Run: python benches/neighbor_list.py [--repeats N]
"""

import argparse
import os
import platform
import time

import numpy as np
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

import mlpot

CUTOFF = 5.0
SIZES = (6, 12, 20)  # cubic 8-atom cells per side: 1,728 / 13,824 / 64,000 atoms
ASE_MAX_ATOMS = 20_000


def best_time(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def peers(atoms):
    """Callables computing the same list with each available peer library."""
    out = {}
    try:
        import vesin

        calculator = vesin.NeighborList(cutoff=CUTOFF, full_list=True)
        out["vesin"] = lambda: calculator.compute(
            points=atoms.positions, box=atoms.cell.array, periodic=True, quantities="ijdD"
        )
    except ImportError:
        print("vesin not installed: skipped")
    try:
        from matscipy.neighbours import neighbour_list

        out["matscipy"] = lambda: neighbour_list("ijdD", atoms, CUTOFF)
    except ImportError:
        print("matscipy not installed: skipped")
    if len(atoms) <= ASE_MAX_ATOMS:
        out["ase"] = lambda: ase_neighbor_list("ijdD", atoms, CUTOFF)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"# neighbor list, cutoff {CUTOFF} A, quantities ijdD; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; best of {args.repeats}")
    header = f"{'atoms':>7} {'pairs':>9} | {'mlpot 1T':>9} {'mlpot 2T':>9} {'2T/1T':>6} |"
    print(header + " peer: time (ms), ratio peer/mlpot at 1T and 2T")
    for n in SIZES:
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(n)
        atoms.rattle(0.05, seed=42)
        pairs = len(mlpot.neighbor_list("i", atoms, CUTOFF))
        ours = {}
        for threads in (1, 2):
            mlpot.set_num_threads(threads)
            ours[threads] = best_time(lambda: mlpot.neighbor_list("ijdD", atoms, CUTOFF), args.repeats)
        mlpot.set_num_threads(0)
        line = (f"{len(atoms):>7} {pairs:>9} | {ours[1] * 1e3:>7.1f}ms {ours[2] * 1e3:>7.1f}ms "
                f"{ours[1] / ours[2]:>5.2f}x |")
        for name, function in peers(atoms).items():
            check = function()
            assert len(check[0]) == pairs, f"{name} found {len(check[0])} pairs, mlpot {pairs}"
            t = best_time(function, max(1, args.repeats if name != "ase" else 2))
            line += f" {name} {t * 1e3:.1f}ms {t / ours[1]:.2f}x {t / ours[2]:.2f}x;"
        print(line)


if __name__ == "__main__":
    np.random.seed(0)
    main()
