"""GAP on the mlearn training sets with the published gap_fit settings (SOAP n_max 8, l_max 8,
atom_sigma 0.5, zeta 4, cutoff_transition_width 0.5, default_sigma 0.01 0.05 0.01, the
published cutoffs, n_sparse and e0), against QUIP's gap_fit on the same split.

Both codes fit 90 % of the training set (a random split stratified by group, seed 0; the
mlearn test sets are hidden) and are scored on the other 10 %: energy MAE (meV/atom) and force
MAE (eV/A), plus fit wall time and peak memory. With ``--quip`` gap_fit runs with exactly the
published command (delta 1, cur_points, sparse_jitter 1e-8) at ``--quip-threads`` OpenMP threads
and quippy's Potential scores its model on the same validation frames. mlpot's options
(``--delta``, ``--sigma``, ``--two-body``) change only mlpot's fit.

Run: python benches/gap_mlearn.py Si [--quip] [--n-sparse 1000] [--two-body] [--sigma E F V]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlpot
from mlpot.cli import split_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gap import write_extxyz  # noqa: E402

PUBLISHED = {  # cutoff, n_sparse, e0, QUIP test MAE (meV/atom, eV/A)
    "Si": (5.4, 1000, -0.79, 3.19, 0.073),
    "Ge": (5.4, 2000, -0.79, 1.79, 0.052),
    "Li": (4.8, 4000, -0.21, 0.48, 0.011),
    "Mo": (5.2, 2000, -4.04, 1.95, 0.096),
}
SOAP = dict(n_max=8, l_max=8, atom_sigma=0.5, cutoff_transition_width=0.5)
ZETA, SIGMA = 4, (0.01, 0.05, 0.01)
DATA = Path(os.environ.get("MLPOT_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def split(element):
    frames = mlpot.io.read(DATA / "mlearn" / element / "training.json")
    return split_frames(frames, 0.1, seed=0)  # 90/10, stratified by group


class QuipModel:
    """quippy's Potential behind mlpot.errors' predict(atoms) interface."""

    def __init__(self, path):
        from quippy.potential import Potential

        self.potential = Potential(param_filename=str(path))

    def predict(self, atoms):
        a = atoms.copy()
        a.calc = self.potential
        out = {"energy": a.get_potential_energy(), "forces": a.get_forces()}
        if all(a.pbc):
            out["stress"] = a.get_stress()
        return out


def fit_quip(element, train, workdir: Path, threads: int) -> dict:
    cutoff, n_sparse, e0, *_ = PUBLISHED[element]
    write_extxyz(train, workdir / "train.xyz")
    spec = (
        f"soap cutoff={cutoff} cutoff_transition_width={SOAP['cutoff_transition_width']} "
        f"n_max={SOAP['n_max']} l_max={SOAP['l_max']} atom_sigma={SOAP['atom_sigma']} zeta={ZETA} "
        f"delta=1.0 covariance_type=dot_product n_sparse={n_sparse} sparse_method=cur_points"
    )
    command = [
        shutil.which("gap_fit"), "at_file=train.xyz", f"gap={{{spec}}}",
        f"default_sigma={{{SIGMA[0]} {SIGMA[1]} {SIGMA[2]} 0.0}}", f"e0={e0}", "sparse_jitter=1e-8",
        "gp_file=gap.xml", "energy_parameter_name=energy", "force_parameter_name=forces",
        "virial_parameter_name=virial",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stdout[-3000:] + done.stderr[-3000:])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    return dict(wall=wall, rss_gb=rss, path=workdir / "gap.xml")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("element", choices=sorted(PUBLISHED))
    parser.add_argument("--n-sparse", type=int, default=None)
    parser.add_argument("--delta", type=float, default=None)
    parser.add_argument("--sigma", type=float, nargs=3, default=SIGMA, metavar=("E", "F", "V"))
    parser.add_argument("--two-body", action="store_true", help="add a Distance2b term")
    parser.add_argument("--sparse-method", default="cur")
    parser.add_argument("--seed", type=int, default=0, help="sparse point selection (cur, random)")
    for kind, values in GRID.items():
        parser.add_argument(f"--grid-{kind}", type=float, nargs="+", default=values,
                            help=f"--search values of the {kind} sigma")
    parser.add_argument("--quip", action="store_true", help="also fit and score gap_fit on the same split")
    parser.add_argument("--quip-threads", type=int, default=1)
    parser.add_argument("--save", help="write the mlpot model here")
    parser.add_argument("--no-mlpot", action="store_true", help="only the gap_fit side (with --quip)")
    parser.add_argument("--search", action="store_true",
                        help="assemble once, then fit every sigma of a grid and score each on the validation frames")
    args = parser.parse_args()
    cutoff, n_sparse, e0, quip_e, quip_f = PUBLISHED[args.element]
    n_sparse = args.n_sparse or n_sparse
    train, val = split(args.element)
    print(f"{args.element}: {len(train)} training frames ({sum(len(a) for a in train)} atoms), "
          f"{len(val)} validation frames ({sum(len(a) for a in val)} atoms)")
    if args.search:
        search(args, train, val, cutoff, n_sparse, e0)
    elif not args.no_mlpot:
        fit_mlpot(args, train, val, cutoff, n_sparse, e0)
    if args.quip:
        with tempfile.TemporaryDirectory() as tmp:
            quip = fit_quip(args.element, train, Path(tmp), args.quip_threads)
            quip_report = mlpot.errors(QuipModel(quip["path"]), val)
        print(f"QUIP : validation MAE energy {quip_report.overall.energy_mae * 1e3:.2f} meV/atom, force "
              f"{quip_report.overall.force_mae:.3f} eV/A; fit {quip['wall']:.1f} s at {args.quip_threads} "
              f"threads, peak RSS {quip['rss_gb']:.2f} GB")
    print(f"(QUIP with these settings on the hidden mlearn test set: {quip_e} / {quip_f})")


#: the default search grid: energy per atom (eV), force (eV/A), virial per atom (eV)
GRID = {"e": (0.001, 0.003, 0.01), "f": (0.01, 0.02, 0.05), "v": (0.01, 0.2)}


def make_model(args, cutoff, n_sparse, e0, sigma):
    descriptors = [mlpot.SOAP(cutoff=cutoff, species=[args.element], **SOAP)]
    if args.two_body:
        descriptors.append(mlpot.Distance2b(cutoff=cutoff, cutoff_transition_width=0.5, theta=1.0, n_sparse=30))
    return mlpot.GAP(descriptors, zeta=ZETA, n_sparse=n_sparse, delta=args.delta,
                     sparse_method=args.sparse_method, seed=args.seed, default_sigma=tuple(sigma),
                     e0={args.element: e0})


def search(args, train, val, cutoff, n_sparse, e0):
    """The validation errors over a grid of sigmas, ranked by the sum of the energy and force MAE relative to
    QUIP's published-settings numbers (so both count)."""
    model = make_model(args, cutoff, n_sparse, e0, SIGMA)
    start = time.perf_counter()
    system = model.assemble(train, progress=False)
    grid = [(e, f, v) for e in args.grid_e for f in args.grid_f for v in args.grid_v]
    print(f"assembled in {time.perf_counter() - start:.1f} s; {len(grid)} sigma settings:")
    _, _, _, quip_e, quip_f = PUBLISHED[args.element]
    results = []
    for sigma in grid:
        model.default_sigma = sigma
        start = time.perf_counter()
        model.fit(system)
        solve = time.perf_counter() - start
        report = mlpot.errors(model, val).overall
        e, f = report.energy_mae * 1e3, report.force_mae
        results.append((e / quip_e + f / quip_f, sigma, e, f))
        print(f"  sigma {sigma}: energy {e:.2f} meV/atom, force {f:.3f} eV/A (solve {solve:.1f} s)", flush=True)
    score, sigma, e, f = min(results)
    print(f"best: sigma {sigma}: energy {e:.2f} meV/atom, force {f:.3f} eV/A")


def fit_mlpot(args, train, val, cutoff, n_sparse, e0):
    model = make_model(args, cutoff, n_sparse, e0, args.sigma)
    start = time.perf_counter()
    model.fit(train, progress=False)
    fit_time = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    if args.save:
        model.save(args.save)
    report = mlpot.errors(model, val)
    deltas = ", ".join(f"{t['type']} {t['delta']:.3g}" for t in model.terms)
    print(f"mlpot: n_sparse {n_sparse} ({args.sparse_method}), delta {deltas} eV, sigma {tuple(args.sigma)}: "
          f"validation MAE energy {report.overall.energy_mae * 1e3:.2f} meV/atom, force "
          f"{report.overall.force_mae:.3f} eV/A; fit {fit_time:.1f} s at {mlpot.get_num_threads()} threads, "
          f"peak RSS {peak:.2f} GB")


if __name__ == "__main__":
    main()
