"""Writes the version-1 model files of this directory and the predictions of the code that
wrote them. Run once, at commit bdde0f1 (the last version-1 writer), from the tests
directory: ``python data/model_v1/generate.py``. The outputs are fixtures: never regenerate
them with a later mlpot (the test checks that today's reader reproduces yesterday's
predictions bit for bit)."""

import json
import pathlib
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # tests/: snap_helpers
import mlpot
from snap_helpers import descriptor, known_model, labelled

HERE = pathlib.Path(__file__).resolve().parent


def gap_model():
    rng = np.random.default_rng(3)
    frames = []
    for k in range(3):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.set_chemical_symbols(["Cu", "Al", "Cu", "Al"][k:] + ["Cu", "Al", "Cu", "Al"][:k])
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        atoms.calc = EMT()
        frames.append(labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(), "bulk"))
    model = mlpot.GAP(
        [mlpot.SOAP(cutoff=3.5, n_max=2, l_max=2, species=["Cu", "Al"]),
         mlpot.Distance2b(cutoff=3.5, n_sparse=4, species=("Cu", "Al"), delta=0.5)],
        n_sparse=4, delta=0.3, e0={"Cu": -0.1, "Al": -0.2}, group_sigma={"bulk": (0.01, 0.1, 0.1)},
        baseline=mlpot.ZBL(1.0, 1.5),
    )
    return model.fit(frames, progress=False)


def probe(symbols, seed):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)
    atoms.positions += np.random.default_rng(seed).normal(0, 0.08, atoms.positions.shape)
    atoms.set_chemical_symbols([symbols[k % len(symbols)] for k in range(len(atoms))])
    return atoms


def record(model, atoms, **kw):
    out = model.predict(atoms, **kw)
    return {
        "atoms": {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
                  "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist()},
        "kwargs": kw,
        "predict": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()},
    }


snap = known_model(descriptor(2), True, seed=45, baseline=mlpot.ZBL(1.0, 1.5))
snap.save(HERE / "snap.json")
gap = gap_model()
gap.save(HERE / "gap.json")
expected = {
    "snap.json": record(snap, probe(["Ni", "Al"], 1)),
    "gap.json": record(gap, probe(["Cu", "Al"], 2), variance=True),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
