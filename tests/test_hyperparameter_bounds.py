"""Size-controlling hyperparameters are bounded up front, and work too large for the memory
available is a MemoryError naming it, never an abort of the interpreter.

Cases that could exhaust memory on a regression run in a subprocess under RLIMIT_AS, so that
a broken build aborts (or is refused) there instead of taking the test machine's memory."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import mlpot
from mlpot import _core
from mlpot.descriptors import MAX_L_MAX, MAX_N_MAX, MAX_TWOJMAX
from mlpot.models.gap import MAX_SPARSE

#: Address space granted beyond what the interpreter has mapped after its imports.
HEADROOM = int(1.5 * 2**30)


def run_limited(setup: str, work: str) -> subprocess.CompletedProcess:
    """Runs ``setup`` (statements), then ``work`` (one line) under RLIMIT_AS = current size +
    HEADROOM, in a fresh interpreter; prints the exception type and message ``work`` raises."""
    script = textwrap.dedent(
        """
        import os, resource
        import numpy as np
        from ase.build import bulk
        import mlpot
        {setup}
        pages = int(open("/proc/self/statm").read().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + {headroom}
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        try:
            {work}
        except Exception as e:
            print(f"{{type(e).__name__}}: {{e}}")
        else:
            print("no error")
        """
    ).format(setup=setup.strip(), work=work, headroom=HEADROOM)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )


def assert_raised(result: subprocess.CompletedProcess, kind: str, *names: str) -> str:
    """The subprocess ended normally (no abort) and printed a ``kind`` naming ``names``."""
    assert result.returncode == 0, f"the interpreter died ({result.returncode}): {result.stderr[-2000:]}"
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{kind}:"), last
    for name in names:
        assert name in last, last
    return last


@pytest.mark.parametrize(
    "call, name",
    [
        ("mlpot.SOAP(species=['Si'], n_max=100000)", "n_max"),
        ("mlpot.SOAP(species=['Si'], n_max=10**9)", "n_max"),
        ("mlpot.SOAP(species=['Si'], n_max=10**30)", "n_max"),
        (f"mlpot.SOAP(species=['Si'], l_max={MAX_L_MAX + 1})", "l_max"),
        ("mlpot.SOAP(species=['Si'], l_max=10**30)", "l_max"),
        ("mlpot.SOAP(species=['Si'], atom_sigma=1e-7)", "atom_sigma"),
        (f"mlpot.Bispectrum({MAX_TWOJMAX + 2}, 4.1, radelem={{'Si': 0.5}})", "twojmax"),
        ("mlpot.Bispectrum(10**30, 4.1, radelem={'Si': 0.5})", "twojmax"),
        ("mlpot.GAP(mlpot.SOAP(species=['Si']), n_sparse=10**9)", "n_sparse"),
        ("mlpot.Distance2b(n_sparse=10**30)", "n_sparse"),
    ],
)
def test_oversized_hyperparameters_are_value_errors_naming_them(call, name):
    last = assert_raised(run_limited("", call), "ValueError", name)
    assert "<=" in last or "at most" in last or "at least" in last, f"the message should state the allowed range: {last}"


def test_the_bounds_are_generous_and_python_agrees_with_the_core():
    # the largest accepted values build (where the basis is still well conditioned)
    assert mlpot.Bispectrum(MAX_TWOJMAX, 4.1, radelem={"Si": 0.5}).twojmax == MAX_TWOJMAX
    assert mlpot.SOAP(species=["Si"], n_max=2, l_max=MAX_L_MAX).l_max == MAX_L_MAX
    assert mlpot.Distance2b(n_sparse=MAX_SPARSE).n_sparse == MAX_SPARSE
    # the Rust layer does not trust Python: it refuses the same values with the same bounds
    soap = dict(cutoff=5.0, n_max=8, l_max=8, atom_sigma=0.5, cutoff_transition_width=0.5,
                species=[14], center_atom_weight=1.0, normalize=True)

    def core_soap(**change):
        return _core.Descriptor("soap", json.dumps({**soap, **change}))

    with pytest.raises(ValueError, match=f"n_max must be >= 1 and <= {MAX_N_MAX}"):
        core_soap(n_max=MAX_N_MAX + 1)
    with pytest.raises(ValueError, match=f"l_max must be >= 0 and <= {MAX_L_MAX}"):
        core_soap(l_max=MAX_L_MAX + 1)
    with pytest.raises(ValueError, match="atom_sigma must be at least"):
        core_soap(atom_sigma=1e-7)
    with pytest.raises(ValueError, match="species: atomic number 200"):
        core_soap(species=[200])
    with pytest.raises(ValueError, match="soap parameters: invalid value: integer `-1`"):
        core_soap(n_max=-1)  # not a usize: the serde struct refuses it
    with pytest.raises(ValueError, match="unknown field `zeta`"):
        core_soap(zeta=2)
    flags = dict(switchflag=True, bzeroflag=False, chemflag=False, bnormflag=False, wselfallflag=False)
    bispectrum = dict(rcutfac=4.1, rfac0=0.99363, rmin0=0.0, species=[14], radelem=[0.5], wj=[1.0], **flags)

    def core_bispectrum(**change):
        return _core.Descriptor("bispectrum", json.dumps({"twojmax": 2, **bispectrum, **change}))

    with pytest.raises(ValueError, match=f"twojmax must be even and at most {MAX_TWOJMAX}"):
        core_bispectrum(twojmax=MAX_TWOJMAX + 2)
    with pytest.raises(ValueError, match="atomic number 0 is not an element"):
        core_bispectrum(species=[0])
    with pytest.raises(ValueError, match="unknown descriptor kind"):
        _core.Descriptor("mtp", "{}")


BIG = 'atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (8, 8, 8)  # 4096 atoms'


@pytest.mark.parametrize(
    "setup, work, what",
    [
        # ~5 GB of gradients: 47 neighbors per atom, 1728 features
        (BIG + "\nd = mlpot.SOAP(cutoff=5.0, n_max=8, l_max=8, species=['C', 'Si'])",
         "d.compute(atoms, gradients=True)", "SOAP gradients of 4096 atoms"),
        # ~2 GB of force rows: 2 x 10011 quadratic SNAP columns per force component
        (BIG + "\nm = mlpot.SNAP(mlpot.Bispectrum(12, 4.1, radelem={'Si': 0.5, 'C': 0.5}), quadratic=True)",
         "m.design_rows(atoms)", "(SNAP) design rows of 4096 atoms"),
        # chemflag with 20 elements: 6.5 million components per atom
        ("atoms = bulk('Si', 'diamond', a=5.43, cubic=True) * (2, 2, 2)\n"
         "els = ['Si', 'H', 'He', 'Li', 'Be', 'B', 'C', 'N', 'O', 'F', 'Ne', 'Na', 'Mg', 'Al', 'P', 'S', "
         "'Cl', 'Ar', 'K', 'Ca']\n"
         "bs = mlpot.Bispectrum(24, 4.1, radelem={e: 0.5 for e in els}, chemflag=True)",
         "bs.compute(atoms)", "bispectrum of 64 atoms"),
        # a GAP of 20000 sparse distances: its QR buffer and K_MM are ~10 GB
        ("from ase.calculators.emt import EMT\n"
         "atoms = bulk('Cu', 'fcc', a=3.61, cubic=True)\n"
         "atoms.rattle(0.05, seed=1)\n"
         "atoms.calc = EMT()\n"
         "gap = mlpot.GAP(mlpot.Distance2b(cutoff=3.0, sparse_points=np.linspace(1.0, 3.0, 20000)))",
         "gap.fit([atoms], progress=False)", "GAP solve (20000 sparse points)"),
    ],
)
def test_too_large_work_is_a_memory_error_not_an_abort(setup, work, what):
    assert_raised(run_limited(setup, work), "MemoryError", what, "GB")


def test_legal_settings_still_compute_under_the_limit():
    result = run_limited(
        "atoms = bulk('Si', 'diamond', a=5.43, cubic=True) * (2, 2, 2)\n"
        "d = mlpot.SOAP(cutoff=4.0, n_max=4, l_max=4, species=['Si'])",
        "p, g = d.compute(atoms, gradients=True); print('shape', p.shape)",
    )
    assert result.returncode == 0, result.stderr
    assert "shape (64, 80)" in result.stdout and "no error" in result.stdout


def test_memory_estimates_read_the_address_space_limit():
    from mlpot import _memory

    room = _memory.available_bytes()
    assert room is None or room > 0
    with pytest.raises(MemoryError, match="a test matrix needs about"):
        _memory.ensure_fits(1 << 62, "a test matrix")
    _memory.ensure_fits(1 << 20, "a small matrix")
