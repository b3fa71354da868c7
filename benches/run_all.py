"""All the peer benchmarks in one run: interleaved repeats, ratios peer time / mlpot time.

Each benchmark below times mlpot and its peer on the same structure with the same settings,
reusing the setup code of the single benchmarks (neighbor_list.py, bispectrum.py, soap.py,
gap.py):

  neighbor list   mlpot.neighbor_list("ijdD") vs vesin, matscipy (and ASE on the small cell);
                  8-atom and 1,000-atom rattled diamond Si, cutoff 5 A
  bispectrum      Bispectrum.compute, without and with gradients, vs LAMMPS compute sna/atom
                  and snad/atom; rattled fcc Ni, twojmax 6 and 8
  SNAP            SNAP.predict (energy, forces, stress) of a linear model read with
                  mlpot.lammps.read_snap vs pair_style snap with the same coefficient files
  SOAP            SOAP.compute, without and with gradients, vs featomic SoapPowerSpectrum
  GAP             GAP.predict vs quippy's Potential, each with its own model fitted at the
                  start to the same mlearn Si frames (GAP.fit and gap_fit, settings of gap.py)

Thread counts: mlpot runs at 1 and 2 threads (mlpot.set_num_threads). vesin, matscipy, ASE,
LAMMPS (one MPI rank, no OpenMP styles) and quippy (OMP_NUM_THREADS=1) are single-threaded,
so both mlpot counts are compared with their one thread. featomic runs at 1 thread in this
process (RAYON_NUM_THREADS=1 before it is imported) and at 2 threads in a worker subprocess
started with RAYON_NUM_THREADS=2, which times its own calls when asked through a pipe; each
featomic count is compared with mlpot at the same count.

Timing: every measurement is a batch of calls long enough to time (calibrated once, at least
--min-sample seconds); a round runs every measurement of every benchmark once, mlpot and peer
side by side; --repeats rounds. The reported ratio is the median over rounds of that round's
peer time / mlpot time, so a load change on the shared machine affects both sides of a ratio
alike; the times printed are medians too. Above 1 means mlpot is faster. Nothing is asserted.

Run: python benches/run_all.py [--quick] [--repeats N] [--out FILE.json] [--compare BASE.json]
     --quick: small structures and 3 rounds, under two minutes.
     --compare: prints each ratio beside the baseline's and flags changes above 5 %.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# peers' threads are fixed at import: one thread here, the 2-thread featomic in a worker
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
if "--worker" not in sys.argv:
    os.environ["RAYON_NUM_THREADS"] = "1"

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import numpy as np  # noqa: E402
from ase.build import bulk  # noqa: E402

import mlpot  # noqa: E402

CHANGE = 0.05  # --compare flags ratios that moved by more than this fraction


# ------------------------------------------------------------------------ timing


class Timer:
    """Runs `function` `k` times and returns the seconds taken (an untimed call first when
    k > 1, so a short call's sample does not include waking threads up)."""

    def __init__(self, function: Callable[[], object]):
        self.function = function

    def sample(self, k: int) -> float:
        if k > 1:
            self.function()
        start = time.perf_counter()
        for _ in range(k):
            self.function()
        return time.perf_counter() - start

    def close(self) -> None:
        pass


@dataclass
class Side:
    """One side of a comparison: a label with its thread count, a timer, and the mlpot
    thread count to set before timing (None: leave as is)."""

    label: str
    timer: Timer
    threads: int | None = None
    k: int = 1
    times: list[float] = field(default_factory=list)

    def run(self) -> float:
        if self.threads is not None:
            mlpot.set_num_threads(self.threads)
        seconds = self.timer.sample(self.k) / self.k
        self.times.append(seconds)
        return seconds


@dataclass
class Comparison:
    """A peer measurement against an mlpot measurement of the same work."""

    benchmark: str
    case: str
    task: str
    peer: Side
    ours: Side
    ratios: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.benchmark} | {self.case} | {self.task} | {self.peer.label} / {self.ours.label}"


def calibrate(side: Side, min_sample: float) -> None:
    """Sets side.k so that one sample takes at least min_sample seconds."""
    if side.threads is not None:
        mlpot.set_num_threads(side.threads)
    side.timer.sample(1)  # warm-up: first touch of buffers, lazy setup
    once = side.timer.sample(1)
    side.k = max(1, min(100_000, int(np.ceil(min_sample / max(once, 1e-7)))))


# ------------------------------------------------------------------ benchmarks


def si_diamond(n: int, seed: int = 42):
    """Rattled diamond Si, n cubic cells per side (8 n^3 atoms)."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(n)
    atoms.rattle(0.05, seed=seed)
    return atoms


def mlpot_sides(name: str, function: Callable[[], object]) -> dict[int, Side]:
    """The same mlpot work at 1 and 2 threads; one Timer, the thread count set per sample."""
    timer = Timer(function)
    return {t: Side(f"mlpot {t}T", timer, threads=t) for t in (1, 2)}


def neighbor_list_benchmarks(quick: bool) -> list[Comparison]:
    import neighbor_list

    out = []
    for n in (1, 5):  # 8 and 1,000 atoms
        atoms = si_diamond(n)
        case = f"{len(atoms)} atoms Si, rc {neighbor_list.CUTOFF}"
        pairs = len(mlpot.neighbor_list("i", atoms, neighbor_list.CUTOFF))
        ours = mlpot_sides(case, lambda a=atoms: mlpot.neighbor_list("ijdD", a, neighbor_list.CUTOFF))
        for name, function in neighbor_list.peers(atoms).items():
            if name == "ase" and len(atoms) > 8:
                continue  # ~0.3 s per call at 1,000 atoms: not cheap enough to repeat
            found = len(function()[0])
            assert found == pairs, f"{name} found {found} pairs, mlpot {pairs}"
            peer = Side(f"{name} 1T", Timer(function))
            out += [Comparison("neighbor list", case, "ijdD", peer, ours[t]) for t in (1, 2)]
    return out


def lammps_benchmarks(quick: bool, directory: str, closers: list) -> list[Comparison]:
    """Bispectrum values and gradients vs compute sna/atom and snad/atom, and SNAP energy and
    forces vs pair_style snap, on rattled fcc Ni."""
    import bispectrum

    atoms = bispectrum.rattled_nickel(3 if quick else 5)
    case_atoms = f"{len(atoms)} atoms Ni"
    out = []
    rng = np.random.default_rng(1)
    for twojmax in (6,) if quick else (6, 8):
        bs = bispectrum.nickel_bispectrum(twojmax)
        case = f"{case_atoms}, 2J={twojmax}"
        for task, style, gradients in (("values", "sna/atom", False), ("gradients", "snad/atom", True)):
            sna, close = bispectrum.lammps_sna(atoms, bs, style)
            closers.append(close)
            peer = Side(f"LAMMPS {style} 1T", Timer(sna))
            ours = mlpot_sides(case, lambda b=bs, g=gradients: b.compute(atoms, gradients=g))
            out += [Comparison("bispectrum", case, task, peer, ours[t]) for t in (1, 2)]
        beta = np.concatenate([[0.0], rng.normal(size=bs.n_features) * 1e-3])
        sub = os.path.join(directory, f"snap{twojmax}")
        os.makedirs(sub)
        snap, close = bispectrum.lammps_snap(atoms, bs, {"Ni": beta}, sub)
        closers.append(close)
        model = mlpot.lammps.read_snap(os.path.join(sub, "model.snapcoeff"), os.path.join(sub, "model.snapparam"))
        peer = Side("LAMMPS pair snap 1T", Timer(snap))
        ours = mlpot_sides(case, lambda m=model: m.predict(atoms))
        out += [Comparison("SNAP", case, "energy+forces", peer, ours[t]) for t in (1, 2)]
    return out


class FeatomicWorker(Timer):
    """featomic at a given thread count in a subprocess (its Rayon pool is sized once per
    process), timing its own calls on request: 'task k' on stdin, seconds on stdout."""

    def __init__(self, threads: int, n: int, task: str, process=None):
        self.task = task
        if process is None:
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
            process = subprocess.Popen(
                [sys.executable, __file__, "--worker", "featomic", "--size", str(n)],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
        self.process = process

    def sample(self, k: int) -> float:
        self.process.stdin.write(f"{self.task} {k}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the featomic worker stopped")
        return float(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def featomic_worker(n: int) -> None:
    import soap

    atoms = soap.structure(n)
    calc = soap.featomic_calculator()
    tasks = {
        "values": Timer(lambda: calc.compute(atoms)),
        "gradients": Timer(lambda: calc.compute(atoms, gradients=["positions"])),
    }
    for line in sys.stdin:
        task, k = line.split()
        print(tasks[task].sample(int(k)), flush=True)


def soap_benchmarks(quick: bool, closers: list) -> list[Comparison]:
    import soap

    n = 3 if quick else 5
    atoms = soap.structure(n)
    descriptor = mlpot.SOAP(species=["Si"], **soap.HYPERS)
    case = f"{len(atoms)} atoms Si, n_max {soap.HYPERS['n_max']}, l_max {soap.HYPERS['l_max']}"
    calc = soap.featomic_calculator()
    worker = FeatomicWorker(2, n, "values")  # one process serves both tasks
    closers.append(worker.close)
    out = []
    for task, gradients in (("values", False), ("gradients", True)):
        ours = mlpot_sides(case, lambda g=gradients: descriptor.compute(atoms, gradients=g))
        grad = ["positions"] if gradients else []
        peer1 = Side("featomic 1T", Timer(lambda g=grad: calc.compute(atoms, gradients=g)))
        peer2 = Side("featomic 2T", FeatomicWorker(2, n, task, process=worker.process))
        out += [Comparison("SOAP", case, task, peer1, ours[1]), Comparison("SOAP", case, task, peer2, ours[2])]
    return out


def gap_benchmarks(quick: bool, directory: str) -> list[Comparison]:
    """Both codes fit a GAP to the same frames (gap.py's settings, in subprocesses at one
    thread), then predict energy and forces on rattled diamond Si."""
    import gap

    frames, n_sparse = (4, 40) if quick else (10, 100)
    work = Path(directory) / "gap"
    work.mkdir()
    gap.write_extxyz(gap.training_frames(frames), work / "train.xyz")
    gap.fit_quip(work, n_sparse)
    gap.fit_mlpot(work, frames, n_sparse)
    from quippy.potential import Potential

    atoms = si_diamond(2 if quick else 3, seed=0)
    quip_atoms = atoms.copy()
    quip_atoms.calc = Potential(param_filename=str(work / "gap.xml"))

    def quip():
        quip_atoms.calc.results.clear()  # no caching between calls
        quip_atoms.get_potential_energy(), quip_atoms.get_forces()

    model = mlpot.load(work / "model.json")
    case = f"{len(atoms)} atoms Si, {frames} frames, n_sparse {n_sparse}"
    peer = Side("quippy 1T", Timer(quip))
    ours = mlpot_sides(case, lambda: model.predict(atoms))
    return [Comparison("GAP", case, "energy+forces", peer, ours[t]) for t in (1, 2)]


# ---------------------------------------------------------------------- driver


def collect(args, directory: str, closers: list) -> list[Comparison]:
    comparisons = []
    for name, (build, modules) in BENCHMARKS.items():
        if name not in args.only and "all" not in args.only:
            continue
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            print(f"# {name}: skipped, {', '.join(missing)} not installed")
            continue
        if name == "gap":
            import gap

            if not (gap.DATA / "mlearn" / "Si" / "training.json").exists():
                print(f"# gap: skipped, no mlearn Si data under {gap.DATA} (set MLPOT_DATA)")
                continue
        start = time.perf_counter()
        comparisons += build(args.quick, directory, closers)
        print(f"# {name}: set up in {time.perf_counter() - start:.1f} s", flush=True)
    return comparisons


# name: (builder(quick, temporary directory, closers), modules the peers need). LAMMPS is
# loaded through tests/lammps_oracle.py, which loads mpich's libmpi (RTLD_GLOBAL) first.
BENCHMARKS = {
    "neighbors": (lambda quick, d, c: neighbor_list_benchmarks(quick), ["vesin"]),
    "bispectrum": (lammps_benchmarks, ["lammps"]),
    "soap": (lambda quick, d, c: soap_benchmarks(quick, c), ["featomic"]),
    "gap": (lambda quick, d, c: gap_benchmarks(quick, d), ["quippy"]),
}


def measure(comparisons: list[Comparison], repeats: int, min_sample: float) -> None:
    sides = list({id(s): s for c in comparisons for s in (c.ours, c.peer)}.values())
    for side in sides:
        calibrate(side, min_sample)
    for r in range(repeats):
        start = time.perf_counter()
        for side in sides:  # grouped by benchmark case: mlpot and its peers close in time
            side.run()
        for c in comparisons:
            c.ratios.append(c.peer.times[-1] / c.ours.times[-1])
        print(f"# round {r + 1}/{repeats}: {time.perf_counter() - start:.1f} s, load {os.getloadavg()[0]:.2f}",
              flush=True)


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def report(comparisons: list[Comparison], baseline: dict | None) -> int:
    """Prints the table; returns the number of ratios that moved more than CHANGE."""
    base = (baseline or {}).get("ratios", {})
    width = max(len(f"{c.benchmark} | {c.case} | {c.task}") for c in comparisons)
    head = f"{'benchmark | case | task':<{width}}  {'peer / mlpot':<34} {'peer':>10} {'mlpot':>10} {'ratio':>7}"
    if baseline is not None:
        head += f" {'base':>7} {'change':>7}"
    print(head)
    flagged = 0
    for c in comparisons:
        ratio = float(np.median(c.ratios))
        line = (f"{f'{c.benchmark} | {c.case} | {c.task}':<{width}}  {f'{c.peer.label} / {c.ours.label}':<34} "
                f"{fmt_time(np.median(c.peer.times)):>10} {fmt_time(np.median(c.ours.times)):>10} {ratio:>7.2f}")
        if baseline is not None:
            if c.key in base:
                change = ratio / base[c.key] - 1
                mark = "  <-- changed" if abs(change) > CHANGE else ""
                flagged += bool(mark)
                line += f" {base[c.key]:>7.2f} {change:>+7.1%}{mark}"
            else:
                line += f" {'-':>7} {'new':>7}"
        print(line)
    if baseline is not None:
        missing = sorted(set(base) - {c.key for c in comparisons})
        for key in missing:
            print(f"in the baseline only: {key}")
        print(f"{flagged} of {len(comparisons)} ratios moved by more than {CHANGE:.0%} from the baseline "
              f"({baseline.get('meta', {}).get('date', '?')})")
    return flagged


def meta(args) -> dict:
    try:
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return dict(date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), commit=commit,
                quick=args.quick, repeats=args.repeats, cpus=os.cpu_count(),
                machine=platform.processor() or platform.machine(), load=os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small structures, 3 rounds: under 2 minutes")
    parser.add_argument("--repeats", type=int, help="rounds (default 7, 3 with --quick)")
    parser.add_argument("--min-sample", type=float, help="seconds per timed batch (default 0.05, 0.01 quick)")
    parser.add_argument("--only", nargs="+", default=["all"], choices=["all", *BENCHMARKS],
                        help="run only these benchmarks (bispectrum includes SNAP)")
    parser.add_argument("--out", type=Path, help="write the ratios and times to this JSON file")
    parser.add_argument("--compare", type=Path, help="a JSON file written by --out to compare with")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "featomic":
        featomic_worker(args.size)
        return
    args.repeats = args.repeats or (3 if args.quick else 7)
    min_sample = args.min_sample or (0.01 if args.quick else 0.05)
    baseline = json.loads(args.compare.read_text()) if args.compare else None
    info = meta(args)
    print(f"# mlpot {info['commit']}, {info['machine']}, {info['cpus']} cores, load {info['load'][0]:.2f}; "
          f"median of {args.repeats} interleaved rounds; ratio = peer time / mlpot time (> 1: mlpot faster)")
    closers: list = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        try:
            comparisons = collect(args, directory, closers)
            measure(comparisons, args.repeats, min_sample)
        finally:
            for close in closers:
                close()
    mlpot.set_num_threads(0)
    info["seconds"] = time.perf_counter() - start
    info["load_after"] = os.getloadavg()
    report(comparisons, baseline)
    print(f"# {info['seconds']:.0f} s in all; load average after {info['load_after'][0]:.2f}")
    if args.out:
        args.out.write_text(json.dumps(dict(
            meta=info,
            ratios={c.key: float(np.median(c.ratios)) for c in comparisons},
            times={c.key: dict(peer=float(np.median(c.peer.times)), mlpot=float(np.median(c.ours.times)))
                   for c in comparisons},
        ), indent=1))
        print(f"# written to {args.out}")


if __name__ == "__main__":
    main()
