"""Training Behler-Parrinello NNPs: the cost of mlpot's training, per epoch and to a target.

The published mlearn Si NNP's symmetry functions (MLPOT_DATA/mlearn/Si/published_nnp: 27
functions, cutoff 5.5 A) and a 24-24 tanh network on the 214 mlearn Si training frames
(13,233 atoms), the default Kalman filter (one update per energy, four random force
components per frame and epoch: 1,070 updates per epoch).

Reported, at 1 and 2 threads (mlpot.set_num_threads):
  setup       the descriptors and their gradients computed and cached (once per fit)
  epoch       seconds per Kalman epoch of one network
  committee   seconds per epoch of a committee of 5, and its ratio to one network (the
              members share the cached descriptors and run in parallel)
  memory      peak resident memory of a process that caches each mlearn set (MB)

n2p2's nnp-train (the peer) needs MPI, GSL and Eigen and is not built here; the issue's
measurement of it on this machine (published Si input.nn, one free core: about 30 s per
epoch of 1,133 updates, 12-15 min for its 24 epochs) is printed beside mlpot's for the
ratio. Nothing is asserted.

Run: python benches/nnp_train.py [--epochs N]   (MLPOT_DATA: the shared data folder)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import mlpot
from mlpot.models import nnp_fit

DATA = Path(os.environ.get("MLPOT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
#: n2p2 nnp-train on the published Si input.nn, one free core (the issue's measurement)
N2P2_SECONDS_PER_EPOCH = 30.0
N2P2_UPDATES_PER_EPOCH = 1133
#: the published mlearn NNP files are in Bohr and Hartree
UNITS = {"cflength": 1.8897261328, "cfenergy": 0.0367493254}


def si():
    frames = mlpot.io.read(DATA / "mlearn" / "Si" / "training.json")
    acsf = mlpot.n2p2.read(DATA / "mlearn" / "Si" / "published_nnp", **UNITS).descriptor
    return frames, acsf


def time_training(frames, acsf, committee: int, epochs: int) -> tuple[float, float]:
    """(setup seconds, seconds per epoch) of fit with `epochs` epochs."""
    t0 = time.perf_counter()
    model = mlpot.NNP(acsf, hidden=(24, 24), committee=committee)
    model.fit(frames, epochs=epochs, patience=0, progress=False, validation=0.1)
    total = time.perf_counter() - t0
    per_epoch = model.history.column("seconds")
    epoch_seconds = float(np.diff(per_epoch).mean()) if len(per_epoch) > 1 else float(per_epoch[0])
    return total - float(per_epoch[-1]), epoch_seconds


def memory_child(element: str) -> None:
    """Caches one mlearn set's descriptors (the published NNP's functions) and prints the
    peak resident memory in MB."""
    frames = mlpot.io.read(DATA / "mlearn" / element / "training.json")
    acsf = mlpot.n2p2.read(DATA / "mlearn" / element / "published_nnp", **UNITS).descriptor
    model = mlpot.NNP(acsf)
    nnp_fit._data(model, frames, 1.0, 1.0, 0.0, None)
    print(json.dumps({"element": element, "frames": len(frames), "atoms": sum(map(len, frames)),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    frames, acsf = si()
    print(f"Si: {len(frames)} frames, {sum(map(len, frames))} atoms, {acsf.n_features} functions, 24-24 tanh")
    for threads in (1, 2):
        mlpot.set_num_threads(threads)
        setup, one = time_training(frames, acsf, 1, args.epochs)
        _, five = time_training(frames, acsf, 5, args.epochs)
        print(f"{threads} thread(s): setup {setup:.1f} s, epoch {one:.2f} s (1 network), {five:.2f} s (committee of 5: "
              f"{five / one:.2f}x one network); n2p2 nnp-train epoch / mlpot epoch = "
              f"{N2P2_SECONDS_PER_EPOCH:.0f} s / {one:.2f} s = {N2P2_SECONDS_PER_EPOCH / one:.1f}x "
              f"(n2p2: {N2P2_UPDATES_PER_EPOCH} updates per epoch, one core)")
    mlpot.set_num_threads(0)
    print("peak memory of caching each mlearn set (published NNP functions):")
    for element in ("Ge", "Li", "Mo", "Si"):  # the mlearn sets with training data
        out = subprocess.run([sys.executable, __file__, "--memory-child", element], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {element}: {r['frames']} frames, {r['atoms']} atoms: {r['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
