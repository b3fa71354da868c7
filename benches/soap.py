"""SOAP power spectrum: mlpot against featomic, DScribe and quippy in one run.

1,000-atom rattled diamond Si (periodic), cutoff 5 A, n_max 8, l_max 6, atom_sigma 0.5 A,
cutoff_transition_width 0.5 A; values alone and values with position gradients, at 1 and 2
threads (mlpot.set_num_threads; the peers' thread pools are sized the same way through
RAYON_NUM_THREADS / OMP_NUM_THREADS, set per measurement in a subprocess). Each peer runs its
own default settings: featomic splines its radial integral (accuracy 1e-8), DScribe has no
gradients for periodic systems, quippy's soap descriptor uses its own radial basis. Prints
the best-of-N times and the ratios peer time / mlpot time. Never asserts times.

Measured here (idle 2-core machine, best of 3): 1 thread, mlpot 12.5 ms values / 141.8 ms
with gradients; featomic 52.8 / 913.6 (4.2x / 6.4x), DScribe 45.9 values (3.7x), quippy
460.8 / 1583.0 (37x / 11x). 2 threads: mlpot 6.5 / 70.7 ms (1.9x / 2.0x from the second
thread); featomic 54.2 / 667.3 (8.3x / 9.4x).

Run: python benches/soap.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from ase.build import bulk

HYPERS = dict(cutoff=5.0, n_max=8, l_max=6, atom_sigma=0.5, cutoff_transition_width=0.5)


def structure(n=5):
    """Rattled diamond Si, n cubic cells per side (8 n^3 atoms)."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (n, n, n)
    atoms.rattle(0.05, seed=0)
    return atoms


def time_mlpot(atoms, threads, repeat):
    import mlpot

    from bispectrum import best_of

    soap = mlpot.SOAP(species=["Si"], **HYPERS)
    mlpot.set_num_threads(threads)
    soap.compute(atoms, gradients=True)  # first touch of the output memory
    return best_of(repeat, lambda: soap.compute(atoms)), best_of(
        repeat, lambda: soap.compute(atoms, gradients=True)
    )


def time_featomic(atoms, repeat):
    from bispectrum import best_of

    calc = featomic_calculator()
    calc.compute(atoms, gradients=["positions"])
    return best_of(repeat, lambda: calc.compute(atoms)), best_of(
        repeat, lambda: calc.compute(atoms, gradients=["positions"])
    )


def featomic_calculator():
    """featomic's SoapPowerSpectrum with the settings of HYPERS."""
    import featomic

    return featomic.SoapPowerSpectrum(
        cutoff={"radius": HYPERS["cutoff"],
                "smoothing": {"type": "ShiftedCosine", "width": HYPERS["cutoff_transition_width"]}},
        density={"type": "Gaussian", "width": HYPERS["atom_sigma"]},
        basis={"type": "TensorProduct", "max_angular": HYPERS["l_max"],
               "radial": {"type": "Gto", "max_radial": HYPERS["n_max"] - 1}},
    )


def time_dscribe(atoms, repeat):
    from dscribe.descriptors import SOAP

    from bispectrum import best_of

    soap = SOAP(species=["Si"], r_cut=HYPERS["cutoff"], n_max=HYPERS["n_max"],
                l_max=HYPERS["l_max"], sigma=HYPERS["atom_sigma"], periodic=True)
    soap.create(atoms)
    return best_of(repeat, lambda: soap.create(atoms)), None


def time_quippy(atoms, repeat):
    from quippy.descriptors import Descriptor

    from bispectrum import best_of

    d = Descriptor(
        "soap cutoff={cutoff} cutoff_transition_width={cutoff_transition_width} n_max={n_max} "
        "l_max={l_max} atom_sigma={atom_sigma} n_species=1 species_Z={{14}}".format(**HYPERS)
    )
    d.calc(atoms)
    return best_of(repeat, lambda: d.calc(atoms)), best_of(
        repeat, lambda: d.calc(atoms, grad=True)
    )


PEERS = {"mlpot": None, "featomic": time_featomic, "dscribe": time_dscribe, "quippy": time_quippy}


def measure(name, threads, repeat):
    """Runs one measurement in a fresh process with the thread environment set."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--threads", str(threads),
         "--repeat", str(repeat)],
        env=env, capture_output=True, text=True,
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["failed"])[-1]
        return None, None, last
    values, gradients = json.loads(out.stdout.strip().splitlines()[-1])
    return values, gradients, None


def worker(name, threads, repeat):
    sys.path.insert(0, os.path.dirname(__file__))
    atoms = structure()
    if name == "mlpot":
        result = time_mlpot(atoms, threads, repeat)
    else:
        result = PEERS[name](atoms, repeat)
    # bispectrum.best_of gives (wall, cpu) seconds: the wall time is compared here
    print(json.dumps([None if r is None else float(r[0]) for r in result]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worker")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.threads, args.repeat)
        return
    print(f"1,000-atom rattled diamond Si, {HYPERS}; best of {args.repeat}")
    print(f"{'threads':>7} {'code':>9} {'values ms':>10} {'+grad ms':>10} "
          f"{'values ratio':>13} {'+grad ratio':>12}   (ratio = peer time / mlpot time)")
    for threads in (1, 2):
        ours = None
        for name in PEERS:
            values, gradients, error = measure(name, threads, args.repeat)
            if error:
                print(f"{threads:>7} {name:>9}   unavailable: {error}")
                continue
            if name == "mlpot":
                ours = (values, gradients)
            fmt = lambda t: f"{1e3 * t:10.1f}" if t is not None else f"{'-':>10}"
            ratio = lambda t, o: f"{t / o:.2f}" if t is not None and o else "-"
            print(f"{threads:>7} {name:>9} {fmt(values)} {fmt(gradients)} "
                  f"{ratio(values, ours[0]):>13} {ratio(gradients, ours[1]):>12}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
