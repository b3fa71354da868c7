"""The ``mlpot`` command: ``mlpot fit CONFIG.toml``, ``mlpot eval MODEL DATA...``, ``mlpot demo``.

A fit configuration (TOML; paths are relative to the configuration file)::

    [data]
    train = ["data/*.json"]          # files, directories or globs, any format mlpot.io reads
    validation = ["val/*.extxyz"]    # optional; or carve a split from train:
    validation_fraction = 0.1        # optional, frames chosen at random per group
    seed = 0

    [descriptor]                     # mlpot.Bispectrum keywords (LAMMPS compute sna/atom)
    twojmax = 6
    rcutfac = 4.67
    radelem = { Ta = 0.5 }
    wj = { Ta = 1.0 }
    bzeroflag = true

    [model]                          # mlpot.SNAP and its fit() keywords
    quadratic = false
    energy_weight = 1.0
    force_weight = 1.0
    stress_weight = 0.0
    ridge = 0.0
    solver = "svd"                   # or "normal" for very large data

    [groups.Displaced_BCC]           # optional per-group weights (FitSNAP's meaning)
    eweight = 100.0
    fweight = 1.0
    vweight = 1e-8

    [baseline]                       # optional fixed reference potential
    type = "zbl"
    inner = 4.0
    outer = 4.8

    [output]
    model = "Ta.json"                # mlpot model file
    lammps = "Ta_pot"                # optional: also write Ta_pot.snapcoeff / .snapparam
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import numpy as np

_SECTIONS = {"data", "descriptor", "model", "groups", "baseline", "output"}
_MODEL_KEYS = {"quadratic"}
_FIT_KEYS = {"energy_weight", "force_weight", "stress_weight", "ridge", "solver"}


class ConfigError(ValueError):
    """The fit configuration is invalid; the message names the key."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mlpot", description="Machine-learning interatomic potentials: fit, evaluate, demo."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="fit a potential from a TOML configuration")
    fit.add_argument("config", type=Path, help="the TOML configuration (see `mlpot fit --help`)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("eval", help="error table of a model on data")
    evaluate.add_argument("model", type=Path, help="an mlpot model file")
    evaluate.add_argument("data", nargs="+", help="files, directories or globs mlpot.io reads")
    evaluate.add_argument("--plot", type=Path, help="write energy and force parity plots here")

    demo = commands.add_parser("demo", help="fit SNAP to EMT-labelled Cu data and run MD with it")
    demo.add_argument("--seed", type=int, default=0)

    args = parser.parse_args(argv)
    try:
        if args.command == "fit":
            run_fit(args.config, progress=not args.quiet)
        elif args.command == "eval":
            run_eval(args.model, args.data, plot=args.plot)
        else:
            from mlpot.demo import run_demo

            run_demo(seed=args.seed)
    except (ValueError, TypeError, OSError) as error:
        print(f"mlpot {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


def load_config(path: Path) -> dict:
    """Read and check a fit configuration; unknown sections or keys are errors, not ignored."""
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    unknown = set(config) - _SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown sections {sorted(unknown)}; expected {sorted(_SECTIONS)}")
    for section in ("data", "descriptor"):
        if section not in config:
            raise ConfigError(f"{path}: the [{section}] section is required")
    if "train" not in config["data"]:
        raise ConfigError(f"{path}: [data] needs `train`, a list of files, directories or globs")
    unknown = set(config.get("model", {})) - _MODEL_KEYS - _FIT_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown [model] keys {sorted(unknown)}")
    return config


def run_fit(config_path: Path, progress: bool = True):
    """Fit the model a configuration describes, save it and print its error tables."""
    import mlpot
    from mlpot import io

    config = load_config(config_path)
    base = config_path.resolve().parent
    data = config["data"]
    train = io.read(_paths(data["train"], base))
    if "validation" in data:
        validation = io.read(_paths(data["validation"], base))
    else:
        train, validation = split_frames(
            train, float(data.get("validation_fraction", 0.0)), int(data.get("seed", 0))
        )
    print(f"training frames: {len(train)}, validation frames: {len(validation)}")

    bispectrum = mlpot.Bispectrum(**config["descriptor"])
    model_config = config.get("model", {})
    model = mlpot.SNAP(
        bispectrum,
        quadratic=bool(model_config.get("quadratic", False)),
        baseline=make_baseline(config.get("baseline")),
    )
    fit_keywords = {k: v for k, v in model_config.items() if k in _FIT_KEYS}
    if "groups" in config:
        fit_keywords["group_weights"] = config["groups"]
    model.fit(train, progress=progress, **fit_keywords)

    output = config.get("output", {})
    model_path = base / output.get("model", "model.json")
    model.save(model_path)
    print(f"model saved to {model_path}")
    if "lammps" in output:
        mlpot.lammps.write_snap(model, base / output["lammps"])
        print(f"LAMMPS files written: {base / output['lammps']}.snapcoeff / .snapparam")
    print("\ntraining errors\n" + str(mlpot.errors(model, train)))
    if validation:
        print("\nvalidation errors\n" + str(mlpot.errors(model, validation)))
    return model


def run_eval(model_path: Path, data: list[str], plot: Path | None = None):
    """Print the error table of a saved model on data; optionally draw parity plots."""
    import mlpot
    from mlpot import io

    model = mlpot.load(model_path)
    frames = io.read(_paths(data, Path.cwd()))
    table = mlpot.errors(model, frames)
    print(table)
    if plot is not None:
        parity_plot(table.parity, plot)
        print(f"parity plots written to {plot}")
    return table


def make_baseline(section: dict | None):
    if section is None:
        return None
    section = dict(section)
    kind = section.pop("type", None)
    if kind != "zbl":
        raise ConfigError(f"[baseline] type must be \"zbl\", got {kind!r}")
    from mlpot.baselines import ZBL

    try:
        return ZBL(**section)
    except TypeError as error:
        raise ConfigError(f"[baseline]: {error}") from None


def split_frames(frames: list, fraction: float, seed: int) -> tuple[list, list]:
    """Random validation split by frames, stratified by group so every group is represented
    in training; ``fraction`` of each group (rounded down) goes to validation."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for k, atoms in enumerate(frames):
        groups.setdefault(atoms.info.get("group", ""), []).append(k)
    held_out = set()
    for members in groups.values():
        n = int(fraction * len(members))
        held_out.update(rng.choice(members, size=n, replace=False).tolist())
    train = [f for k, f in enumerate(frames) if k not in held_out]
    validation = [f for k, f in enumerate(frames) if k in held_out]
    return train, validation


def parity_plot(parity, path: Path) -> None:
    """Energy-per-atom and force-component parity plots (reference x, model y) from the
    compared values of an error report (``mlpot.errors(...).parity``), one colour per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True)
    force_groups = parity.groups[parity.forces_frame]
    panels = (
        (axes[0], parity.energy_reference, parity.energy_predicted, parity.groups, "energy (eV/atom)"),
        (axes[1], parity.forces_reference, parity.forces_predicted, force_groups, "force component (eV/Å)"),
    )
    for ax, reference, predicted, groups, label in panels:
        reference, predicted = np.asarray(reference), np.asarray(predicted)
        if reference.ndim == 2:  # forces: one point per component, its atom's group
            groups = np.repeat(groups, reference.shape[1])
        x, y = reference.ravel(), predicted.ravel()
        if x.size == 0:
            ax.set_visible(False)
            continue
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        for group in np.unique(groups):
            mask = groups == group
            ax.scatter(x[mask], y[mask], s=6, alpha=0.6, label=str(group))
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"model {label}")
        unit = label[label.index("(") + 1 : -1]
        ax.set_title(f"RMSE {np.sqrt(np.mean((x - y) ** 2)):.4g} {unit}")
    axes[0].legend(fontsize=7, markerscale=2)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _paths(entries, base: Path) -> list[str]:
    if isinstance(entries, (str, Path)):
        entries = [entries]
    return [str(p if Path(p).is_absolute() else base / p) for p in entries]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
