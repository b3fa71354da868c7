"""Behler-Parrinello NNP: mlpot against n2p2 (v2.3.0, the reference code) on one model.

The published mlearn Si NNP (MLPOT_DATA/mlearn/Si/published_nnp: 27 radial and angular
symmetry functions, cutoff 5.5 A, 24-24 tanh networks; files in Bohr and Hartree, read by
mlpot with cflength 1.8897261328 and cfenergy 0.0367493254), on 1,000-atom rattled diamond
Si (a = 5.43 A, 5x5x5 cubic cells, rattle 0.05 A, seed 0).

  n2p2     benches/n2p2_timer.cpp, linked against libnnp (path: N2P2_TIMER, default
           /work/peers/n2p2_timer; build instructions in its header and benches/README.md).
           It reads the model and the structure (written here in n2p2's input.data format,
           in Bohr) and times each step of Prediction::predict() over --reps repetitions:
           neighbor list (n2p2's own, all pairs over the periodic images), symmetry functions
           with derivatives (calculateSymmetryFunctionGroups), atomic networks with
           derivatives, forces; median per step. One thread (n2p2 built without OpenMP).
           nnp-predict (directory N2P2_BIN, optional) is run once for its end-to-end time:
           process start, model setup, reading the structure, prediction, output files.
  mlpot    mlpot.n2p2.read(model, cflength=, cfenergy=).predict(atoms): energy, forces and
           stress, its neighbor list included, at 1 and 2 threads (mlpot.set_num_threads);
           mlpot.neighbor_list("ijdD") at the model cutoff alone, for its share.

Ratios are peer time / mlpot time (above 1: mlpot is faster), each the median over --rounds
rounds of that round's ratio; a round runs the n2p2 timer once (its median over --reps) and
a batch of mlpot calls at each thread count. The ratios: n2p2 without its neighbor list (SF
+ NN + forces) / mlpot predict, and n2p2 with its neighbor list / mlpot predict; mlpot's
predict includes its neighbor list and the stress, which n2p2 does not compute. The energies
and forces of both are compared (eV, eV/A); they should agree to ~1e-8 relative. Nothing is
asserted.

Measured here (shared 2-core VM, 2026-12-03, mlpot from the py12 worktree; the VM's speed
itself changed about 2x within the hour, so compare the ratios, taken within rounds): n2p2
1T per atom, neighbor list 106-184 us, SFs 87-171, networks 15-29, forces 7-12 (SF + NN +
forces 109-215, total 215-398); nnp-predict end to end 0.3 s. mlpot predict 169-180 us/atom
at 1T, 104-138 at 2T. Ratios: n2p2 SF+NN+forces / mlpot 1.18-1.19 (1T), 1.46-2.02 (2T); with
n2p2's neighbor list 2.21-2.22 (1T), 2.69-3.76 (2T); mlpot 2T speed-up 1.38-1.73. Energies
agree to 4e-15 relative, forces to 1.4e-13 eV/A.

Run: python benches/nnp.py [--rounds N] [--reps N] [--min-sample S]
     (PYTHONPATH=$PWD/python in a worktree; a build without mlpot.n2p2 gives n2p2 alone)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk

DATA = Path(os.environ.get("MLPOT_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
MODEL = DATA / "mlearn" / "Si" / "published_nnp"
CFLENGTH, CFENERGY = 1.8897261328, 0.0367493254  # Bohr per A, Hartree per eV
N2P2_TIMER = os.environ.get("N2P2_TIMER", "/work/peers/n2p2_timer")
N2P2_BIN = os.environ.get("N2P2_BIN")  # directory with nnp-predict, optional


def structure(n=5):
    """Rattled diamond Si, n cubic cells per side (8 n^3 atoms)."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((n, n, n))
    atoms.rattle(0.05, seed=0)
    return atoms


def write_input_data(atoms, path, cflength=CFLENGTH):
    """One structure in n2p2's input.data format, lengths times `cflength` (Bohr here);
    charges, reference energy and forces zero."""
    lines = ["begin", "comment mlpot benches/nnp.py"]
    for vector in np.asarray(atoms.cell) * cflength:
        lines.append("lattice {:.16e} {:.16e} {:.16e}".format(*vector))
    for symbol, r in zip(atoms.get_chemical_symbols(), atoms.positions * cflength):
        lines.append("atom {:.16e} {:.16e} {:.16e} {} 0.0 0.0 0.0 0.0 0.0".format(*r, symbol))
    lines += ["energy 0.0", "charge 0.0", "end"]
    Path(path).write_text("\n".join(lines) + "\n")


PHASES = ("neighbor_list", "symmetry_functions", "networks", "forces")


def run_timer(input_data, reps, forces=False):
    """n2p2_timer's JSON: median seconds per step, energy (Hartree), forces (Hartree/Bohr)."""
    command = [N2P2_TIMER, str(MODEL), str(input_data), str(reps), "1"] + (["--forces"] if forces else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_nnp_predict(input_data):
    """(wall seconds, energy in Hartree) of one nnp-predict run in a scratch directory."""
    exe = Path(N2P2_BIN) / "nnp-predict"
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("input.nn", "scaling.data", "weights.014.data"):
            os.symlink(MODEL / name, Path(scratch) / name)
        shutil.copy(input_data, Path(scratch) / "input.data")
        start = time.perf_counter()
        subprocess.run([str(exe), "0"], cwd=scratch, check=True, capture_output=True)
        wall = time.perf_counter() - start
        rows = [l for l in (Path(scratch) / "energy.out").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
        return wall, float(rows[0].split()[0])


def batch_time(function, min_sample):
    """Seconds per call of `function`, from a batch of calls lasting at least min_sample
    (one untimed call first)."""
    function()
    k, elapsed = 0, 0.0
    start = time.perf_counter()
    while elapsed < min_sample:
        function()
        k += 1
        elapsed = time.perf_counter() - start
    return elapsed / k


def load_mlpot_model():
    """(mlpot module, model) or (None, reason)."""
    try:
        import mlpot
        import mlpot.n2p2
    except ImportError as error:
        return None, f"mlpot.n2p2 not in this build ({error})"
    try:
        return mlpot, mlpot.n2p2.read(MODEL, cflength=CFLENGTH, cfenergy=CFENERGY)
    except Exception as error:  # a build with a different or unfinished n2p2 reader
        return None, f"mlpot.n2p2.read failed: {type(error).__name__}: {error}"


def us_per_atom(seconds, n):
    return seconds / n * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=10, help="n2p2_timer repetitions per round")
    parser.add_argument("--min-sample", type=float, default=1.0,
                        help="seconds of mlpot calls per measurement")
    args = parser.parse_args()

    atoms = structure()
    n = len(atoms)
    print(f"NNP benchmark: {n}-atom rattled diamond Si, mlearn published Si NNP ({MODEL})")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    if not MODEL.is_dir():
        raise SystemExit(f"no model at {MODEL} (set MLPOT_DATA)")

    mlpot, model = load_mlpot_model()
    if mlpot is None:
        print(f"mlpot: skipped, {model}; n2p2 alone")
        model = None

    have_timer = os.access(N2P2_TIMER, os.X_OK)
    if not have_timer:
        print(f"n2p2: skipped, no n2p2_timer at {N2P2_TIMER} (set N2P2_TIMER; build: benches/n2p2_timer.cpp)")
    if not have_timer and model is None:
        return

    scratch = tempfile.mkdtemp(prefix="mlpot_nnp_")
    input_data = Path(scratch) / "input.data"
    write_input_data(atoms, input_data)

    # the values, once: n2p2 in Hartree and Bohr, converted to eV and A
    reference = None
    if have_timer:
        check = run_timer(input_data, 1, forces=True)
        reference = dict(
            energy=check["energy"] / CFENERGY,
            forces=np.array(check["forces"]) * CFLENGTH / CFENERGY,
        )
        print(f"n2p2 {check['n2p2_version']}: cutoff {check['cutoff'] / CFLENGTH:.4f} A, "
              f"{check['mean_neighbors']:.1f} neighbors per atom, "
              f"{check['extrapolation_warnings']} extrapolation warnings, "
              f"E = {reference['energy']:.10f} eV (atom_energy offsets "
              f"{check['energy_offset'] / CFENERGY:.6f} eV included)")
    if model is not None:
        result = model.predict(atoms)
        print(f"mlpot: E = {float(result['energy']):.10f} eV")
        if reference is not None:
            de = float(result["energy"]) - reference["energy"]
            df = np.abs(np.asarray(result["forces"]) - reference["forces"]).max()
            fmax = np.abs(reference["forces"]).max()
            print(f"mlpot - n2p2: energy {de:+.3e} eV ({de / abs(reference['energy']):+.2e} relative), "
                  f"forces max |dF| {df:.3e} eV/A ({df / fmax:.2e} of the largest component, {fmax:.3f})")

    if N2P2_BIN:
        if (Path(N2P2_BIN) / "nnp-predict").exists():
            wall, energy = run_nnp_predict(input_data)
            print(f"nnp-predict end to end (one run: start, setup, read, predict, write): "
                  f"{wall:.3f} s = {us_per_atom(wall, n):.1f} us/atom, E = {energy / CFENERGY:.10f} eV")
        else:
            print(f"nnp-predict: not in N2P2_BIN={N2P2_BIN}")

    cutoff = (check["cutoff"] / CFLENGTH) if have_timer else 10.3934937 / CFLENGTH
    rows = {}  # name -> list over rounds of seconds per call

    def record(name, seconds):
        rows.setdefault(name, []).append(seconds)

    print(f"\n{args.rounds} rounds; n2p2_timer: median of {args.reps} repetitions after one "
          f"warm-up; mlpot: batches of >= {args.min_sample} s")
    for r in range(args.rounds):
        if have_timer:
            t = run_timer(input_data, args.reps)["median_s"]
            for phase in PHASES:
                record(f"n2p2 1T {phase}", t[phase])
            record("n2p2 1T SF+NN+forces", t["symmetry_functions"] + t["networks"] + t["forces"])
            record("n2p2 1T total", sum(t[p] for p in PHASES))
        if model is not None:
            for threads in (1, 2):
                mlpot.set_num_threads(threads)
                record(f"mlpot predict {threads}T", batch_time(lambda: model.predict(atoms), args.min_sample))
                record(f"mlpot neighbor list {threads}T", batch_time(
                    lambda: mlpot.neighbor_list("ijdD", atoms, cutoff), args.min_sample / 4))
            mlpot.set_num_threads(0)
        print(f"  round {r + 1}: load {os.getloadavg()[0]:.2f}")
    shutil.rmtree(scratch)

    print(f"\n{'':34} {'ms/call':>9} {'us/atom':>9}   (medians over rounds)")
    for name, values in rows.items():
        seconds = float(np.median(values))
        print(f"{name:34} {seconds * 1e3:9.2f} {us_per_atom(seconds, n):9.2f}")

    if have_timer and model is not None:
        def ratio(peer, ours):
            return float(np.median(np.array(rows[peer]) / np.array(rows[ours])))

        print("\nratios peer time / mlpot time (median over rounds; above 1: mlpot faster)")
        for threads in (1, 2):
            ours = f"mlpot predict {threads}T"
            print(f"  n2p2 SF+NN+forces (1T, no neighbor list) / mlpot predict {threads}T: "
                  f"{ratio('n2p2 1T SF+NN+forces', ours):.2f}")
            print(f"  n2p2 total (1T, with its neighbor list)    / mlpot predict {threads}T: "
                  f"{ratio('n2p2 1T total', ours):.2f}")
        print(f"  mlpot predict 1T / 2T (speed-up of the second thread): "
              f"{ratio('mlpot predict 1T', 'mlpot predict 2T'):.2f}")
        share = np.median(np.array(rows["mlpot neighbor list 1T"]) / np.array(rows["mlpot predict 1T"]))
        print(f"  mlpot neighbor list share of predict at 1T: {share * 100:.1f} %")


if __name__ == "__main__":
    main()
