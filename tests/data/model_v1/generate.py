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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # tests/: snap_helpers
import mlpot
from snap_helpers import descriptor, known_model
from test_modelfile import _gap_model as gap_model  # the GAP of the validation tests

HERE = pathlib.Path(__file__).resolve().parent


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
