"""The core's thread pools: children of fork compute, thread counts are validated (argument
and environment variables), and concurrent calls share the cores and agree bit for bit."""

import json
import multiprocessing
import os
import pickle
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from ase.build import bulk

import mlpot
from snap_helpers import descriptor, known_model, structure

TIMEOUT = 60  # seconds; a hang (the old failure) fails the test instead of stalling CI

# Python >= 3.12 warns that forking a multi-threaded process may deadlock: it is what is tested
fork_of_threads = pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")

BISPECTRUM = descriptor(4)
SOAP = mlpot.SOAP(cutoff=3.4, n_max=4, l_max=3, atom_sigma=0.45, cutoff_transition_width=0.8,
                  species=["Ni", "Al"])
SNAP = known_model(BISPECTRUM, True, seed=4)
ATOMS = structure(np.random.default_rng(5), reps=(2, 2, 2))


def results(_=None):
    """Bispectrum (values, gradients), SOAP (values, gradients), a SNAP prediction and the
    thread count: every kind of core call, for comparison across processes and threads."""
    b, db = BISPECTRUM.compute(ATOMS, gradients=True)
    p, dp = SOAP.compute(ATOMS, gradients=True)
    prediction = SNAP.predict(ATOMS)
    return {
        "bispectrum": (BISPECTRUM.compute(ATOMS),),
        "bispectrum_gradients": (b, db.values, db.virial),
        "soap": (SOAP.compute(ATOMS),),
        "soap_gradients": (p, dp.values, dp.virial),
        "snap": (prediction["energies"], prediction["forces"], prediction["stress"]),
        "threads": (mlpot.get_num_threads(),),
    }


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        for x, y in zip(a[key], b[key], strict=True):
            np.testing.assert_array_equal(x, y, err_msg=key)


@pytest.fixture
def threads_restored():
    yield
    mlpot.set_num_threads(0)


@fork_of_threads
@pytest.mark.parametrize("threads", [None, 3])
def test_children_of_a_fork_pool_compute_what_the_parent_does(threads, threads_restored):
    if threads is not None:
        mlpot.set_num_threads(threads)
    parent = results()  # the parent's pools exist (and are busy-capable) before the fork
    with multiprocessing.get_context("fork").Pool(2) as pool:
        children = pool.map_async(results, range(2)).get(timeout=TIMEOUT)
    for child in children:
        assert_identical(child, parent)  # includes the thread count the child inherited


@fork_of_threads
def test_a_bare_fork_child_computes():
    parent = results()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running pytest's teardown
        try:
            os.write(write_end, pickle.dumps(results()))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], TIMEOUT)
        assert ready, f"the forked child did not compute within {TIMEOUT} s"
        with os.fdopen(read_end, "rb") as pipe:
            child = pickle.load(pipe)
    finally:
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert_identical(child, parent)


def test_bad_thread_counts_raise_a_value_error_and_change_nothing(threads_restored):
    mlpot.set_num_threads(3)
    for n in (-1, 100_000, 10**30):
        with pytest.raises(ValueError, match=f"number of threads.*got {n}"):
            mlpot.set_num_threads(n)
        assert mlpot.get_num_threads() == 3
    with pytest.raises(TypeError):
        mlpot.set_num_threads(2.5)


def in_subprocess(code, **environment):
    """Runs ``code`` in a fresh interpreter with ``environment`` added; its stdout as JSON,
    the warnings it recorded under "warnings"."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLPOT_NUM_THREADS", "RAYON_NUM_THREADS")}
    env.update(environment)
    script = "import json, warnings\nwarnings.simplefilter('always')\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


PROBE = """
import mlpot
from ase.build import bulk
with warnings.catch_warnings(record=True) as caught:
    threads = mlpot.get_num_threads()
    pairs = [len(mlpot.neighbor_list("i", bulk("Si"), 3.0)) for _ in range(2)]
print(json.dumps(dict(threads=threads, pairs=pairs,
                      warnings=[(w.category.__name__, str(w.message)) for w in caught])))
"""


def test_thread_count_variables_set_the_default():
    cores = in_subprocess(PROBE)
    assert cores["warnings"] == []
    assert in_subprocess(PROBE, RAYON_NUM_THREADS="3")["threads"] == 3
    assert in_subprocess(PROBE, MLPOT_NUM_THREADS="5", RAYON_NUM_THREADS="3")["threads"] == 5
    assert in_subprocess(PROBE, RAYON_NUM_THREADS="0")["threads"] == cores["threads"]


@pytest.mark.parametrize("name, value", [("RAYON_NUM_THREADS", "100000"),
                                         ("RAYON_NUM_THREADS", "-1"),
                                         ("MLPOT_NUM_THREADS", "four")])
def test_an_unusable_variable_is_ignored_with_one_warning_naming_it(name, value):
    cores = in_subprocess(PROBE)
    out = in_subprocess(PROBE, **{name: value})
    assert out["threads"] == cores["threads"]
    assert out["pairs"] == cores["pairs"]  # the core works, the same as without the variable
    assert len(out["warnings"]) == 1
    category, message = out["warnings"][0]
    assert category == "RuntimeWarning" and name in message and value in message


def test_a_small_call_does_not_wait_for_a_long_call_in_another_thread():
    # values only: the long call ends right after its parallel work (no large output to copy)
    long_descriptor = mlpot.Bispectrum(14, 4.1, radelem={"Ni": 0.5}, wj={"Ni": 1.0})
    big = bulk("Ni", "fcc", a=3.52, cubic=True) * (8, 8, 8)
    big.rattle(0.05, seed=1)
    long_call = threading.Thread(target=long_descriptor.compute, args=(big,))
    start = time.process_time()
    long_call.start()
    # running: the process has spent CPU time on it (of the ~2 CPU-seconds it needs)
    while long_call.is_alive() and time.process_time() - start < 0.1:
        time.sleep(0.002)
    assert long_call.is_alive(), "the long call ended before the test could start"
    # many small calls in a row: a few could slip into the long call's short sequential
    # tail even when they waited for all of its parallel work
    for _ in range(20):
        SNAP.predict(ATOMS)
    still_running = long_call.is_alive()
    long_call.join(TIMEOUT)
    assert still_running, "the small calls waited for the long call to finish"


def test_four_threads_at_once_agree_bit_for_bit_with_a_serial_run():
    serial = results()
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(results, range(8)))
    for r in concurrent:
        assert_identical(r, serial)
