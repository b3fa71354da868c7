"""GAP on the mlearn training sets with the published gap_fit settings (SOAP n_max 8, l_max 8,
atom_sigma 0.5, zeta 4, cutoff_transition_width 0.5, default_sigma 0.01 0.05 0.01, the
published cutoffs, n_sparse and e0): fit on 90 % of the training set (a random split
stratified by group, seed 0), report energy and force MAE on the other 10 % (the mlearn test
sets are hidden), the fit time and peak memory. The issue's QUIP numbers are on the hidden test sets, so they compare only roughly.

Run: python benches/gap_mlearn.py Si [--n-sparse 1000] [--delta 1.0]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path


import mlpot
from mlpot.cli import split_frames

PUBLISHED = {  # cutoff, n_sparse, e0, QUIP test MAE (meV/atom, eV/A)
    "Si": (5.4, 1000, -0.79, 3.19, 0.073),
    "Ge": (5.4, 2000, -0.79, 1.79, 0.052),
    "Li": (4.8, 4000, -0.21, 0.48, 0.011),
    "Mo": (5.2, 2000, -4.04, 1.95, 0.096),
}
DATA = Path(os.environ.get("MLPOT_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("element", choices=sorted(PUBLISHED))
    parser.add_argument("--n-sparse", type=int, default=None)
    parser.add_argument("--delta", type=float, default=None)
    parser.add_argument("--sparse-method", default="cur")
    parser.add_argument("--seed", type=int, default=0, help="sparse point selection (cur, random)")
    args = parser.parse_args()
    cutoff, n_sparse, e0, quip_e, quip_f = PUBLISHED[args.element]
    n_sparse = args.n_sparse or n_sparse
    frames = mlpot.io.read(DATA / "mlearn" / args.element / "training.json")
    train, val = split_frames(frames, 0.1, seed=0)  # 90/10, stratified by group
    soap = mlpot.SOAP(cutoff=cutoff, n_max=8, l_max=8, atom_sigma=0.5, cutoff_transition_width=0.5,
                      species=[args.element])
    model = mlpot.GAP(soap, zeta=4, n_sparse=n_sparse, delta=args.delta, sparse_method=args.sparse_method, seed=args.seed,
                      default_sigma=(0.01, 0.05, 0.01), e0={args.element: e0})
    start = time.perf_counter()
    model.fit(train, progress=False)
    fit_time = time.perf_counter() - start
    report = mlpot.errors(model, val)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{args.element}: {len(train)} training frames ({sum(len(a) for a in train)} atoms), "
          f"{len(val)} validation; n_sparse {n_sparse} ({args.sparse_method}), delta {model.terms[0]['delta']:.3g} eV")
    print(f"validation MAE: energy {report.overall.energy_mae * 1e3:.2f} meV/atom, force "
          f"{report.overall.force_mae:.3f} eV/A  (QUIP, hidden test set: {quip_e} / {quip_f})")
    print(f"fit {fit_time:.0f} s, peak RSS {peak:.2f} GB, {mlpot.get_num_threads()} threads")


if __name__ == "__main__":
    main()
