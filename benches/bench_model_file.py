"""Size and save/load time of a GAP model file at n_sparse 4000 (one SOAP species), the
model built from parts (random sparse points, weights and posterior factor: the file's
size and speed do not depend on the values). Prints numbers, asserts nothing.

    PYTHONPATH=python python benches/bench_model_file.py [n_sparse]
"""

import inspect
import os
import sys
import tempfile
import time

import mlpot

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from snap_helpers import gap_from_parts  # noqa: E402


def main(m: int) -> None:
    model = gap_from_parts(m, n_max=8, l_max=6)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "gap.model")
        t0 = time.perf_counter()
        model.save(path)
        t1 = time.perf_counter()
        mlpot.load(path)
        t2 = time.perf_counter()
        size = os.path.getsize(path)
        print(f"GAP n_sparse {m} ({model.descriptors[0].n_features} SOAP features): file {size / 1e6:.1f} MB, "
              f"save {t1 - t0:.2f} s, load {t2 - t1:.2f} s")
        if "variance" in inspect.signature(model.save).parameters:
            t0 = time.perf_counter()
            model.save(path, variance=False)
            t1 = time.perf_counter()
            mlpot.load(path)
            t2 = time.perf_counter()
            print(f"  saved with variance=False: file {os.path.getsize(path) / 1e6:.1f} MB, "
                  f"save {t1 - t0:.2f} s, load {t2 - t1:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
