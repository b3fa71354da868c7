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
                               [--against DIR] [--only neighbors bispectrum soap gap]
     --quick: small structures and 3 rounds, under two minutes.
     --compare: prints each ratio beside the baseline's and flags changes above 5 %.
     --against: another mlpot package (DIR/mlpot) timed on the same work in the same rounds
                by a worker process: its time / this build's, per benchmark and thread count.
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


@dataclass
class Peer:
    """A peer measurement of the work that mlpot does as `work` (a key of mlpot_work),
    compared with mlpot at each of `threads`."""

    benchmark: str
    case: str
    task: str
    work: str
    side: Side
    threads: tuple[int, ...] = (1, 2)


# The structures and models of every benchmark: built the same way in this process and in a
# worker running another mlpot build (--against), which reads the models from `directory`.


def neighbor_structures() -> dict[str, object]:
    return {f"neighbors/{8 * n**3}": si_diamond(n) for n in (1, 5)}  # 8 and 1,000 atoms


def nickel(quick: bool):
    import bispectrum

    return bispectrum.rattled_nickel(3 if quick else 5)


def twojmaxes(quick: bool) -> tuple[int, ...]:
    return (6,) if quick else (6, 8)


def soap_size(quick: bool) -> int:
    return 3 if quick else 5


def gap_structure(quick: bool):
    return si_diamond(2 if quick else 3, seed=0)


def snap_files(directory: str, twojmax: int) -> tuple[str, str]:
    sub = os.path.join(directory, f"snap{twojmax}")
    return os.path.join(sub, "model.snapcoeff"), os.path.join(sub, "model.snapparam")


def mlpot_work(enabled: list[str], quick: bool, directory: str) -> dict[str, Callable[[], object]]:
    """mlpot's side of every enabled benchmark, by name; SNAP and GAP read the models the
    peers' setup wrote to `directory`."""
    work: dict[str, Callable[[], object]] = {}  # each lambda binds its structure as a default
    if "neighbors" in enabled:
        import neighbor_list

        for name, atoms in neighbor_structures().items():
            work[name] = lambda a=atoms: mlpot.neighbor_list("ijdD", a, neighbor_list.CUTOFF)
    if "bispectrum" in enabled:
        import bispectrum

        atoms = nickel(quick)
        for twojmax in twojmaxes(quick):
            bs = bispectrum.nickel_bispectrum(twojmax)
            work[f"bispectrum/{twojmax}/values"] = lambda b=bs, a=atoms: b.compute(a)
            work[f"bispectrum/{twojmax}/gradients"] = lambda b=bs, a=atoms: b.compute(a, gradients=True)
            model = mlpot.lammps.read_snap(*snap_files(directory, twojmax))
            work[f"snap/{twojmax}"] = lambda m=model, a=atoms: m.predict(a)
    if "soap" in enabled:
        import soap

        atoms = soap.structure(soap_size(quick))
        descriptor = mlpot.SOAP(species=["Si"], **soap.HYPERS)
        work["soap/values"] = lambda d=descriptor, a=atoms: d.compute(a)
        work["soap/gradients"] = lambda d=descriptor, a=atoms: d.compute(a, gradients=True)
    if "gap" in enabled:
        atoms = gap_structure(quick)
        model = mlpot.load(Path(directory) / "gap" / "model.json")
        work["gap"] = lambda m=model, a=atoms: m.predict(a)
    return work


def neighbor_list_peers(quick: bool, directory: str, closers: list) -> list[Peer]:
    import neighbor_list

    out = []
    for name, atoms in neighbor_structures().items():
        case = f"{len(atoms)} atoms Si, rc {neighbor_list.CUTOFF}"
        pairs = len(mlpot.neighbor_list("i", atoms, neighbor_list.CUTOFF))
        for peer, function in neighbor_list.peers(atoms).items():
            if peer == "ase" and len(atoms) > 8:
                continue  # ~0.3 s per call at 1,000 atoms: not cheap enough to repeat
            found = len(function()[0])
            assert found == pairs, f"{peer} found {found} pairs, mlpot {pairs}"
            out.append(Peer("neighbor list", case, "ijdD", name, Side(f"{peer} 1T", Timer(function))))
    return out


def lammps_peers(quick: bool, directory: str, closers: list) -> list[Peer]:
    """compute sna/atom and snad/atom for the bispectrum without and with gradients, and
    pair_style snap for SNAP energy and forces (its coefficient files are mlpot's model)."""
    import bispectrum

    atoms = nickel(quick)
    out = []
    rng = np.random.default_rng(1)
    for twojmax in twojmaxes(quick):
        bs = bispectrum.nickel_bispectrum(twojmax)
        case = f"{len(atoms)} atoms Ni, 2J={twojmax}"
        for task, style in (("values", "sna/atom"), ("gradients", "snad/atom")):
            sna, close = bispectrum.lammps_sna(atoms, bs, style)
            closers.append(close)
            out.append(Peer("bispectrum", case, task, f"bispectrum/{twojmax}/{task}",
                            Side(f"LAMMPS {style} 1T", Timer(sna))))
        beta = np.concatenate([[0.0], rng.normal(size=bs.n_features) * 1e-3])
        sub = os.path.dirname(snap_files(directory, twojmax)[0])
        os.makedirs(sub)
        snap, close = bispectrum.lammps_snap(atoms, bs, {"Ni": beta}, sub)
        closers.append(close)
        out.append(Peer("SNAP", case, "energy+forces", f"snap/{twojmax}", Side("LAMMPS pair snap 1T", Timer(snap))))
    return out


class Remote(Timer):
    """A measurement made by a worker subprocess that times its own calls on request
    ('name threads k' on its stdin, seconds on its stdout): featomic at 2 threads (its Rayon
    pool is sized once per process) and another mlpot build (--against)."""

    def __init__(self, process: subprocess.Popen, name: str, threads: int = 0):
        self.process, self.name, self.threads = process, name, threads

    @staticmethod
    def start(arguments: list[str], **env) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, __file__, "--worker", *arguments],
                                env=dict(os.environ, **env), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)

    def sample(self, k: int) -> float:
        self.process.stdin.write(f"{self.name} {self.threads} {k}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker timing {self.name} stopped")
        return float(line)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.stdin.close()
        process.wait(timeout=60)


def serve(work: dict[str, Callable[[], object]], set_threads=None) -> None:
    """The worker's loop: times `k` calls of work[name] at `threads` (0: unchanged)."""
    print("ready", flush=True)
    for line in sys.stdin:
        name, threads, k = line.split()
        if set_threads is not None and int(threads):
            set_threads(int(threads))
        print(Timer(work[name]).sample(int(k)), flush=True)


def featomic_work(n: int) -> dict[str, Callable[[], object]]:
    import soap

    atoms = soap.structure(n)
    calc = soap.featomic_calculator()
    return {
        "soap/values": lambda: calc.compute(atoms),
        "soap/gradients": lambda: calc.compute(atoms, gradients=["positions"]),
    }


def soap_peers(quick: bool, directory: str, closers: list) -> list[Peer]:
    import soap

    n = soap_size(quick)
    atoms = soap.structure(n)
    case = f"{len(atoms)} atoms Si, n_max {soap.HYPERS['n_max']}, l_max {soap.HYPERS['l_max']}"
    ours = featomic_work(n)
    worker = Remote.start(["featomic", "--size", str(n)], RAYON_NUM_THREADS="2")
    worker.stdout.readline()  # ready
    closers.append(lambda: stop(worker))
    out = []
    for task in ("values", "gradients"):
        name = f"soap/{task}"
        out.append(Peer("SOAP", case, task, name, Side("featomic 1T", Timer(ours[name])), threads=(1,)))
        out.append(Peer("SOAP", case, task, name, Side("featomic 2T", Remote(worker, name)), threads=(2,)))
    return out


def gap_peers(quick: bool, directory: str, closers: list) -> list[Peer]:
    """Both codes fit a GAP to the same frames (gap.py's settings, in subprocesses at one
    thread); quippy's Potential predicts energy and forces with gap_fit's model."""
    import gap

    frames, n_sparse = (4, 40) if quick else (10, 100)
    work = Path(directory) / "gap"
    work.mkdir()
    gap.write_extxyz(gap.training_frames(frames), work / "train.xyz")
    gap.fit_quip(work, n_sparse)
    gap.fit_mlpot(work, frames, n_sparse)
    from quippy.potential import Potential

    atoms = gap_structure(quick)
    atoms.calc = Potential(param_filename=str(work / "gap.xml"))

    def quip():
        atoms.calc.results.clear()  # no caching between calls
        atoms.get_potential_energy(), atoms.get_forces()

    case = f"{len(atoms)} atoms Si, {frames} frames, n_sparse {n_sparse}"
    return [Peer("GAP", case, "energy+forces", "gap", Side("quippy 1T", Timer(quip)))]


# name: (peer setup(quick, temporary directory, closers), modules the peers need). LAMMPS is
# loaded through tests/lammps_oracle.py, which loads mpich's libmpi (RTLD_GLOBAL) first.
BENCHMARKS = {
    "neighbors": (neighbor_list_peers, ["vesin"]),
    "bispectrum": (lammps_peers, ["lammps"]),
    "soap": (soap_peers, ["featomic"]),
    "gap": (gap_peers, ["quippy"]),
}


# ---------------------------------------------------------------------- driver


def collect(args, directory: str, closers: list) -> tuple[list[str], list[Peer]]:
    """The benchmarks that can run and their peers, set up (models written to directory)."""
    enabled, peers = [], []
    for name, (setup, modules) in BENCHMARKS.items():
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
        peers += setup(args.quick, directory, closers)
        enabled.append(name)
        print(f"# {name}: set up in {time.perf_counter() - start:.1f} s", flush=True)
    return enabled, peers


@dataclass
class Build:
    """mlpot's measurements at 1 and 2 threads by work name, and the same work of another
    build (--against) run by a worker, compared in the same rounds."""

    ours: dict[str, dict[int, Side]]
    theirs: list[Comparison]


def builds(work: dict, against: Path | None, enabled: list[str], args, directory: str, closers: list) -> Build:
    ours = {name: {t: Side(f"mlpot {t}T", Timer(f), threads=t) for t in (1, 2)} for name, f in work.items()}
    theirs = []
    if against is not None:
        command = ["mlpot", "--dir", directory, "--only", *enabled] + (["--quick"] if args.quick else [])
        worker = Remote.start(command, PYTHONPATH=os.pathsep.join([str(against), os.environ.get("PYTHONPATH", "")]))
        if worker.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the mlpot worker with {against} did not start")
        closers.append(lambda: stop(worker))
        for name, sides in ours.items():
            for t, side in sides.items():
                other = Side(f"other {t}T", Remote(worker, name, t))
                theirs.append(Comparison("against", name, "", other, side))
    return Build(ours, theirs)


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
    parser.add_argument("--against", type=Path,
                        help="a directory holding another mlpot package (e.g. a worktree's python/): "
                             "its times for the same work, in the same rounds, against this build's")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "featomic":
        serve(featomic_work(args.size))
        return
    if args.worker == "mlpot":
        serve(mlpot_work(args.only, args.quick, args.dir), mlpot.set_num_threads)
        return
    args.repeats = args.repeats or (3 if args.quick else 7)
    min_sample = args.min_sample or (0.01 if args.quick else 0.05)
    baseline = json.loads(args.compare.read_text()) if args.compare else None
    info = meta(args)
    print(f"# mlpot {info['commit']} ({Path(mlpot.__file__).parent}), {info['machine']}, {info['cpus']} cores, "
          f"load {info['load'][0]:.2f}; median of {args.repeats} interleaved rounds; "
          "ratio = peer time / mlpot time (> 1: mlpot faster)")
    closers: list = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        try:
            enabled, peers = collect(args, directory, closers)
            build = builds(mlpot_work(enabled, args.quick, directory), args.against, enabled, args,
                           directory, closers)
            comparisons = interleave(peers, build)
            measure(comparisons, args.repeats, min_sample)
        finally:
            for close in closers:
                close()
    mlpot.set_num_threads(0)
    info["seconds"] = time.perf_counter() - start
    info["load_after"] = os.getloadavg()
    against = [c for c in comparisons if c.benchmark == "against"]
    comparisons = [c for c in comparisons if c.benchmark != "against"]
    report(comparisons, baseline)
    if against:
        print(f"\n# the same work with mlpot from {args.against}; ratio = its time / this build's (> 1: this "
              "build faster), median over the same rounds")
        report(against, None)
    print(f"# {info['seconds']:.0f} s in all; load average after {info['load_after'][0]:.2f}")
    if args.out:
        medians = lambda cs: {c.key: float(np.median(c.ratios)) for c in cs}
        args.out.write_text(json.dumps(dict(
            meta=info,
            ratios=medians(comparisons),
            times={c.key: dict(peer=float(np.median(c.peer.times)), mlpot=float(np.median(c.ours.times)))
                   for c in comparisons},
            **({"against": medians(against)} if against else {}),
        ), indent=1))
        print(f"# written to {args.out}")


def interleave(peers: list[Peer], build: Build) -> list[Comparison]:
    """Every comparison, those of one work name together (peers, then the other build), so
    that a round times mlpot's work and what it is compared with close together."""
    out = []
    for name in dict.fromkeys(p.work for p in peers):
        for p in peers:
            if p.work == name:
                out += [Comparison(p.benchmark, p.case, p.task, p.side, build.ours[name][t]) for t in p.threads]
        out += [c for c in build.theirs if c.case == name]
    return out


if __name__ == "__main__":
    main()
