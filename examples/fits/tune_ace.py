"""Chooses a linear ACE's weights and ridge by 5-fold cross-validation on an mlearn element,
as for examples/fits/<element>_ace.toml (docs/ace.md): 60 trials of mlpot.tune over the
energy weight, the stress weight and the ridge, folds stratified by group, the metric
max(E MAE / qSNAP's, F MAE / qSNAP's) with mlpot's shipped qSNAP CV errors.

Usage: python examples/fits/tune_ace.py ELEMENT CUTOFF NRADMAX LMAX
       (e.g. Si 5.0 15,8,5,3 0,6,4,2; data from MLPOT_DATA, default ../shared/data)
"""

import os
import sys
import time
from pathlib import Path

import mlpot
from mlpot.tuning import LogUniform

#: mlpot's shipped qSNAP fits' 5-fold CV MAE (meV/atom, eV/A), docs/published-fits.md
QSNAP_CV = {"Si": (2.77, 0.084), "Ge": (3.50, 0.072), "Li": (0.61, 0.020), "Mo": (3.54, 0.138)}


def main():
    element, cutoff = sys.argv[1], float(sys.argv[2])
    nradmax = tuple(int(x) for x in sys.argv[3].split(","))
    lmax = tuple(int(x) for x in sys.argv[4].split(","))
    data = Path(os.environ.get("MLPOT_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    frames = mlpot.io.read(data / "mlearn" / element / "training.json")
    ace = mlpot.ACE(cutoff=cutoff, species=[element], nradmax_by_orders=nradmax, lmax_by_orders=lmax)
    target = QSNAP_CV[element]
    space = {"energy_weight": LogUniform(1.0, 1e4), "stress_weight": LogUniform(1e-7, 1e-2),
             "ridge": LogUniform(1e-8, 1e2)}
    metric = {"energy_mae": target[0] / 1e3, "forces_mae": target[1], "combine": "max"}
    t = time.perf_counter()
    result = mlpot.tune(mlpot.LinearModel(ace), frames, space, folds=5, metric=metric, trials=60,
                        keep_force_rows=True, progress=False)
    print(f"{element}: {ace} in {time.perf_counter() - t:.0f} s\n{result}")


if __name__ == "__main__":
    main()
