"""GAP: mlpot against QUIP (gap_fit and quippy's Potential) with the same data and settings.

A Si SOAP GAP (n_max 8, l_max 8, atom_sigma 0.5, cutoff 5.4, cutoff_transition_width 0.5,
zeta 4, delta 1 eV, default_sigma 0.01 0.05 0.01, e0 -0.79 eV, CUR sparse points) fitted by
both codes to the same few mlearn Si frames (a fixed random subset of the training set):

(a) E+F prediction cost per atom on 1,000-atom rattled diamond Si, each code with its own
    fitted model (quippy's Potential with the gap_fit XML; mlpot's GAP.predict);
(b) fit wall time and peak memory (ru_maxrss of the fitting process) at the same n_sparse.

Everything runs at 1 thread (OMP_NUM_THREADS=1 for QUIP, mlpot.set_num_threads(1)), each
measurement in its own subprocess. Prints times and the ratios QUIP / mlpot; asserts nothing.
The machine may be shared: compare with the load average printed alongside.

Measured here (2 cores, 30 frames / 1885 atoms, 1 thread each):
- n_sparse 200 (load average about 3): gap_fit 37 s and 1431 MB, mlpot 1.9 s and 178 MB;
  E+F 2123 us/atom (quippy) vs 266 us/atom (mlpot), 8x.
- n_sparse 1000 (another gap_fit on the second core): gap_fit 168 s and 1495 MB, mlpot 4.5 s
  and 402 MB (37x, 3.7x); E+F 2212 us/atom (quippy) vs 183 us/atom (mlpot), 12.1x.

Run: python benches/gap.py [--frames 30] [--n-sparse 200] [--repeat 3] [--keep DIR]
     python benches/gap.py --models DIR      # predictions only, with models kept by --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(os.environ.get("MLPOT_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
SOAP = dict(cutoff=5.4, n_max=8, l_max=8, atom_sigma=0.5, cutoff_transition_width=0.5)
ZETA, DELTA, SIGMA, E0 = 4, 1.0, (0.01, 0.05, 0.01), -0.79
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def training_frames(n):
    import numpy as np

    import mlpot

    frames = mlpot.io.read(DATA / "mlearn" / "Si" / "training.json")
    pick = np.sort(np.random.default_rng(0).choice(len(frames), size=n, replace=False))
    return [frames[i] for i in pick]


def test_structure():
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (5, 5, 5)
    atoms.rattle(0.05, seed=0)
    return atoms


# ------------------------------------------------------------- the fits, in subprocesses


def write_extxyz(frames, path):
    """The frames with energy, forces and virial (eV) as gap_fit reads them."""
    import ase
    import ase.io

    def labelled(a):
        info = {"energy": a.get_potential_energy(), "virial": -a.get_stress(voigt=False) * a.get_volume()}
        b = ase.Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc, info=info)
        b.new_array("forces", a.get_forces())
        return b

    ase.io.write(path, [labelled(a) for a in frames], format="extxyz")


def fit_quip(workdir: Path, n_sparse: int) -> dict:
    """gap_fit under a wrapper process whose RUSAGE_CHILDREN is gap_fit's alone."""
    spec = (
        f"soap cutoff={SOAP['cutoff']} cutoff_transition_width={SOAP['cutoff_transition_width']} "
        f"n_max={SOAP['n_max']} l_max={SOAP['l_max']} atom_sigma={SOAP['atom_sigma']} zeta={ZETA} "
        f"delta={DELTA} covariance_type=dot_product n_sparse={n_sparse} sparse_method=cur_points"
    )
    command = [
        shutil.which("gap_fit"),
        "at_file=train.xyz",
        f"gap={{{spec}}}",
        f"default_sigma={{{SIGMA[0]} {SIGMA[1]} {SIGMA[2]} 0.0}}",
        f"e0={E0}",
        "sparse_jitter=1e-8",
        "gp_file=gap.xml",
        "energy_parameter_name=energy",
        "force_parameter_name=forces",
        "virial_parameter_name=virial",
    ]
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps(dict(wall=wall, rss_kb=rss)))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *command], cwd=workdir, env=ONE_THREAD,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


MLPOT_FIT = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
import mlpot
from gap import DELTA, E0, SIGMA, SOAP, ZETA, training_frames
mlpot.set_num_threads(1)
frames = training_frames({n_frames})
t = time.perf_counter()
model = mlpot.GAP(mlpot.SOAP(species=["Si"], **SOAP), zeta=ZETA, delta=DELTA, n_sparse={n_sparse},
                  sparse_method="cur", default_sigma=SIGMA, e0={{"Si": E0}}).fit(frames, progress=False)
wall = time.perf_counter() - t
model.save("model.json")
print(json.dumps(dict(wall=wall, rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
"""


def fit_mlpot(workdir: Path, n_frames: int, n_sparse: int) -> dict:
    code = MLPOT_FIT.format(here=str(Path(__file__).resolve().parent), n_frames=n_frames, n_sparse=n_sparse)
    out = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=ONE_THREAD,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


# ------------------------------------------------------ prediction, in subprocesses


PREDICT = """
import json, sys, time
sys.path.insert(0, {here!r})
from gap import test_structure
atoms = test_structure()
kind, path, repeat = {kind!r}, {path!r}, {repeat}
if kind == "mlpot":
    import mlpot
    mlpot.set_num_threads(1)
    model = mlpot.load(path)
    run = lambda: model.predict(atoms)
else:
    from quippy.potential import Potential
    atoms.calc = Potential(param_filename=path)
    def run():
        atoms.calc.results.clear()  # no caching between repeats
        atoms.get_potential_energy(), atoms.get_forces()
best = float("inf")
for _ in range(repeat):
    t = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - t)
print(json.dumps(dict(seconds=best, n_atoms=len(atoms))))
"""


def predict_cost(kind: str, path: Path, repeat: int) -> float:
    """Best-of-repeat E+F time per atom, microseconds."""
    code = PREDICT.format(here=str(Path(__file__).resolve().parent), kind=kind, path=str(path), repeat=repeat)
    out = subprocess.run([sys.executable, "-c", code], env=ONE_THREAD, capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.splitlines()[-1])
    return 1e6 * result["seconds"] / result["n_atoms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="mlearn Si training frames to fit")
    parser.add_argument("--n-sparse", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep both fitted models in this directory")
    parser.add_argument("--models", type=Path, help="time predictions only, with the models kept here")
    args = parser.parse_args()
    if args.models:
        quip_us = predict_cost("quip", args.models / "gap.xml", args.repeat)
        ours_us = predict_cost("mlpot", args.models / "model.json", args.repeat)
        print(f"E+F on 1,000-atom Si, 1 thread (us/atom): QUIP {quip_us:.1f}, mlpot {ours_us:.1f}, "
              f"QUIP/mlpot {quip_us / ours_us:.1f}; load average {os.getloadavg()[0]:.2f}")
        return
    if shutil.which("gap_fit") is None:
        sys.exit("gap_fit not found (pip install quippy-ase)")
    frames = training_frames(args.frames)
    print(f"{len(frames)} mlearn Si frames ({sum(len(a) for a in frames)} atoms), n_sparse {args.n_sparse}, "
          f"1 thread; {os.getloadavg()[0]:.2f} load average at start")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_extxyz(frames, work / "train.xyz")
        quip = fit_quip(work, args.n_sparse)
        ours = fit_mlpot(work, args.frames, args.n_sparse)
        quip_us = predict_cost("quip", work / "gap.xml", args.repeat)
        ours_us = predict_cost("mlpot", work / "model.json", args.repeat)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for f in work.iterdir():
                if f.name.startswith("gap.xml") or f.name == "model.json":
                    shutil.copy(f, args.keep / f.name)
    rows = [
        ("fit wall time (s)", quip["wall"], ours["wall"]),
        ("fit peak RSS (MB)", quip["rss_kb"] / 1e3, ours["rss_kb"] / 1e3),
        ("E+F on 1,000-atom Si (us/atom)", quip_us, ours_us),
    ]
    print(f"{'':34s}{'QUIP':>12s}{'mlpot':>12s}{'QUIP/mlpot':>12s}")
    for name, q, m in rows:
        print(f"{name:34s}{q:12.1f}{m:12.1f}{q / m:12.1f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
