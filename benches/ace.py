"""Linear ACE energies and forces: mlpot against python-ace (pyace) in one run.

1,000-atom rattled diamond Si (periodic), a Si basis of 500 functions up to rank 4 (body
order 5): ChebExpCos, rcut 5 A, nradmax_by_orders (15, 6, 4, 2), lmax_by_orders (0, 4, 3, 2),
random coefficients. mlpot: `LinearModel(ACE).predict` (energy, forces, stress) at 1 and 2
threads. pyace: `PyACECalculator` on the .yace file that `mlpot.ace.write_yace` writes (the
C-tilde evaluator that LAMMPS pair_style pace runs), and on the B-basis itself, one thread
each (pyace is single-threaded). Energies and forces of all three are compared first.
Prints the median of N calls and the ratios pyace time / mlpot time. Never asserts times.

With ``--gap``, also mlpot's GAP of examples/fits/Si_gap.toml (SOAP n_max 8, l_max 8,
n_sparse 1000, its CV-chosen sigmas; fitted on the mlearn Si frames from MLPOT_DATA,
default ../shared/data) on the same atoms: the cost of GAP's accuracy against ACE's.

Run: python benches/ace.py [--repeat N] [--gap]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from ase.build import bulk

NRADMAX = (15, 6, 4, 2)
LMAX = (0, 4, 3, 2)


def structure(n=5):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (n, n, n)
    atoms.rattle(0.05, seed=0)
    return atoms


def median_time(repeat, call):
    call()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--gap", action="store_true", help="also time the shipped Si GAP (fits it first)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import mlpot
    from mlpot.ace import write_yace
    from pyace import PyACECalculator

    atoms = structure()
    ace = mlpot.ACE(cutoff=5.0, species=["Si"], nradmax_by_orders=NRADMAX, lmax_by_orders=LMAX)
    rng = np.random.default_rng(0)
    model = mlpot.LinearModel(ace)
    model.coefficients = {"Si": np.concatenate([[-4.0], rng.normal(size=ace.n_features) * 1e-3])}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "si.yace")
        write_yace(model, path)
        ctilde = PyACECalculator(path)
        reference = atoms.copy()
        reference.calc = ctilde
        e_ref, f_ref = reference.get_potential_energy(), reference.get_forces()
        p = model.predict(atoms)
        print(f"{len(atoms)} atoms, {ace.n_features} functions; |dE|/|E| = {abs(p['energy'] - e_ref) / abs(e_ref):.1e}, "
              f"max |dF| = {np.abs(p['forces'] - f_ref).max():.1e} eV/A (mlpot vs pyace C-tilde)")

        def pyace_call():
            reference.calc.reset()
            reference.get_forces()

        t_pyace = median_time(args.repeat, pyace_call)
        print(f"pyace C-tilde (.yace), 1 thread: {t_pyace * 1e3:.1f} ms ({t_pyace / len(atoms) * 1e6:.1f} us/atom)")
        for threads in (1, 2):
            mlpot.set_num_threads(threads)
            t = median_time(args.repeat, lambda: model.predict(atoms))
            print(f"mlpot, {threads} thread(s): {t * 1e3:.1f} ms ({t / len(atoms) * 1e6:.1f} us/atom); "
                  f"pyace 1 thread / mlpot {threads} thread(s) = {t_pyace / t:.2f}")
        mlpot.set_num_threads(0)
        if args.gap:
            time_gap(atoms, args.repeat, {1: None, 2: None})


def time_gap(atoms, repeat, _):
    """The shipped Si GAP, fitted as `mlpot fit examples/fits/Si_gap.toml` does (its
    [search] aside), timed on ``atoms`` at 1 and 2 threads."""
    from pathlib import Path

    import mlpot
    from mlpot import cli

    here = Path(__file__).resolve().parent.parent / "examples" / "fits"
    config = cli.load_config(here / "Si_gap.toml")
    config.pop("search", None)
    model, keywords = cli.build_model(config)
    data = Path(os.environ.get("MLPOT_DATA", here.parent.parent.parent / "shared" / "data"))
    frames = mlpot.io.read(data / "mlearn" / "Si" / "training.json")
    model.fit(frames, progress=False, **keywords)
    for threads in (1, 2):
        mlpot.set_num_threads(threads)
        t = median_time(repeat, lambda: model.predict(atoms))
        print(f"mlpot GAP (Si_gap.toml), {threads} thread(s): {t * 1e3:.1f} ms ({t / len(atoms) * 1e6:.1f} us/atom)")
    mlpot.set_num_threads(0)


if __name__ == "__main__":
    main()
