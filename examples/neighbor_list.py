"""Neighbor list of a 64,000-atom silicon crystal, checked against ASE on a small cell.

Run: python examples/neighbor_list.py
"""

import time

import numpy as np
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

import mlpot


def main() -> None:
    small = bulk("Si", "diamond", a=5.43, cubic=True).repeat(3)
    small.rattle(0.05, seed=0)
    ours = mlpot.neighbor_list("ijS", small, 5.0)
    theirs = ase_neighbor_list("ijS", small, 5.0)
    same = {(i, j, *s) for i, j, s in zip(*ours)} == {(i, j, *s) for i, j, s in zip(*theirs)}
    print(f"{len(small)} atoms: {len(ours[0])} pairs, identical to ASE: {same}")

    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(20)
    atoms.rattle(0.05, seed=0)
    start = time.perf_counter()
    i, d = mlpot.neighbor_list("id", atoms, 5.0)
    elapsed = time.perf_counter() - start
    coordination = np.bincount(i, minlength=len(atoms))
    print(
        f"{len(atoms)} atoms, cutoff 5 A: {len(i)} pairs in {elapsed * 1e3:.0f} ms "
        f"on {mlpot.get_num_threads()} threads; mean coordination {coordination.mean():.2f}, "
        f"nearest-neighbor distance {d.min():.3f} A"
    )


if __name__ == "__main__":
    main()
