"""Choose the fit weights and ridge of the published mlearn and MoNbTaW SNAP/qSNAP models on a
validation split, then refit on all training data (docs/published-fits.md shows the results).

For each case the descriptor hyperparameters are those of the published model (read with
mlpot.lammps.read_snap). The training data are split 80/20 per group with the split of
`mlpot fit` (mlpot.cli.split_frames, validation_fraction 0.2, seed 0). The design rows of
every frame are built once: all frames go into one LinearSystem (SNAP.assemble) in which
the validation frames sit in groups of their own ("val:<group>", weight 0 while
searching, their training group's weights in the final fit), and the validation frames'
rows are also kept to evaluate each candidate with a matrix product.

Selection: minimize max(E_val / E_ref, F_val / F_ref), E and F the energy (meV/atom) and
force (eV/A) mean absolute errors on the validation frames, and "ref" the published
test-set errors (the fits are judged by their ratio to these) or, for MoNbTaW which has
none, the published model's errors on the same validation frames (its energy zero aligned
to the DFT totals of the training frames by per-element constants: it was fitted to
energies with another zero). First a grid of global
energy/stress weights and ridge (force weight 1; normal equations, the best 6 solved again
by SVD, which decides), then one pass over the groups (SVD) trying
energy and force weight factors, each kept only if it lowers the score by 2 % or more (the
validation set is small: smaller gains are noise).

    python examples/fits/search.py [--data ../shared/data] [--cases Mo_snap ...] [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

import mlpot
from mlpot.cli import split_frames

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("MLPOT_DATA") or ROOT.parent / "shared" / "data")

#: published test-set MAEs (meV/atom, eV/A), ../shared/data/README.md
PUBLISHED_TEST = {
    "Ge_snap": (6.59, 0.188), "Ge_qsnap": (6.45, 0.133),
    "Li_snap": (1.03, 0.028), "Li_qsnap": (0.73, 0.033),
    "Mo_snap": (5.48, 0.207), "Mo_qsnap": (2.77, 0.184),
    "Si_snap": (6.44, 0.133), "Si_qsnap": (3.81, 0.116),
}  # fmt: skip

ENERGY_WEIGHTS = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]
STRESS_WEIGHTS = [0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3]
RIDGES = [0.0, 1e-2, 1.0, 100.0, 1e4]
GROUP_FACTORS = [0.3, 3.0]
TOP_BY_SVD = 6
MIN_GAIN = 0.02


def cases(data: Path) -> dict:
    """{name: (training files, prefix of the published .snapcoeff/.snapparam)}"""
    out = {}
    for element in ("Ge", "Li", "Mo", "Si"):
        for kind in ("snap", "qsnap"):
            prefix = data / "mlearn" / element / f"published_{kind}" / "SNAPotential"
            out[f"{element}_{kind}"] = ([data / "mlearn" / element / "training.json"], prefix)
    monbtaw = data / "MoNbTaW"
    out["MoNbTaW_snap"] = (
        sorted((monbtaw / "training").glob("*.json")),
        monbtaw / "published_snap" / "Ta-W-Nb-Mo",
    )
    return out


class Validation:
    """Errors of many coefficient vectors on fixed frames, from their design rows built
    once (a prediction is then a matrix product)."""

    def __init__(self, model, frames):
        self.frames = frames
        self.rows = [model.design_rows(a) for a in frames]
        n = np.array([len(a) for a in frames], dtype=float)
        self.energy_rows = np.stack([r["energy"] for r in self.rows]) / n[:, None]
        self.energy_ref = np.array([a.get_potential_energy() for a in frames]) / n
        self.force_rows = np.vstack([r["forces"] for r in self.rows])
        self.force_ref = np.concatenate([a.get_forces().ravel() for a in frames])

    def mae(self, c):
        """Energy (meV/atom) and force (eV/A) mean absolute errors of coefficients c."""
        e = np.abs(self.energy_rows @ c - self.energy_ref).mean() * 1e3
        f = np.abs(self.force_rows @ c - self.force_ref).mean()
        return e, f

    def errors(self, c):
        """mlpot.errors (per group, with stress) of coefficients c on the frames."""
        return mlpot.errors(_RowPredictor(self, c), self.frames)


class _RowPredictor:
    def __init__(self, validation, c):
        self.rows = {id(a): r for a, r in zip(validation.frames, validation.rows)}
        self.c = c

    def predict(self, atoms):
        r = self.rows[id(atoms)]
        out = {"energy": r["energy"] @ self.c, "forces": (r["forces"] @ self.c).reshape(-1, 3)}
        if atoms.pbc.all():
            out["stress"] = -(r["virial"] @ self.c) / atoms.get_volume()
        return out


def flat(model):
    return np.concatenate([model.coefficients[e] for e in model.elements])


def group_weight_dict(weights, per_group, groups, validation_too):
    """FitSNAP group weights: per-group factors on the global weights; the validation
    groups get weight 0 (searching) or their training group's weights (final fit)."""
    e, f, v = weights
    out = {}
    for g in groups:
        fe, ff = per_group.get(g, (1.0, 1.0))
        out[g] = dict(eweight=e * fe, fweight=f * ff, vweight=v)
        out[f"val:{g}"] = out[g] if validation_too else dict(eweight=0.0, fweight=0.0, vweight=0.0)
    return out


def search(name, files, prefix, reference=None, progress=False):
    t_start = time.perf_counter()
    published = mlpot.lammps.read_snap(f"{prefix}.snapcoeff", f"{prefix}.snapparam")
    frames = mlpot.io.read([str(p) for p in files])
    train, validation = split_frames(frames, 0.2, 0)
    if name.startswith("MoNbTaW"):
        # the published MoNbTaW model's energies have another zero (11 eV/atom off the DFT
        # totals): shift its per-element constants to the training frames' energies
        published = published.align_energy_zero(train)
    groups = sorted({a.info["group"] for a in train})
    model = mlpot.SNAP(published.bispectrum, quadratic=published.quadratic)
    n_columns = len(model.elements) * model.n_coefficients

    t = time.perf_counter()
    for a in validation:
        a.info["group"] = "val:" + a.info["group"]
    system = model.assemble(train + validation, progress=progress)
    for a in validation:
        a.info["group"] = a.info["group"][len("val:") :]
    val = Validation(model, validation)
    t_rows = time.perf_counter() - t
    if reference is None:
        reference = val.mae(flat(published))

    def evaluate(weights, ridge, per_group, solver="normal"):
        model.fit(
            system,
            group_weights=group_weight_dict(weights, per_group, groups, False),
            ridge=ridge,
            solver=solver,
            progress=False,
        )
        maes = val.mae(flat(model))
        return max(maes[0] / reference[0], maes[1] / reference[1]), maes

    t = time.perf_counter()
    trials = []
    for e, v, ridge in itertools.product(ENERGY_WEIGHTS, STRESS_WEIGHTS, RIDGES):
        s, maes = evaluate((e, 1.0, v), ridge, {})
        trials.append(dict(eweight=e, vweight=v, ridge=ridge, score=s, energy_mae=maes[0], force_mae=maes[1]))
    # the grid by normal equations (ms per candidate, where a QR of the stacked factors
    # takes seconds); their conditioning is worse, so the best few are solved again by SVD
    trials.sort(key=lambda r: r["score"])
    for trial in trials[:TOP_BY_SVD]:
        s, maes = evaluate((trial["eweight"], 1.0, trial["vweight"]), trial["ridge"], {}, "svd")
        trial.update(score_svd=s, energy_mae_svd=maes[0], force_mae_svd=maes[1])
    best = min(trials[:TOP_BY_SVD], key=lambda r: r["score_svd"])
    weights, ridge = (best["eweight"], 1.0, best["vweight"]), best["ridge"]
    best_score, per_group = best["score_svd"], {}
    for g in groups:
        for which, factor in itertools.product((0, 1), GROUP_FACTORS):
            candidate = dict(per_group)
            fe, ff = candidate.get(g, (1.0, 1.0))
            candidate[g] = (fe * factor, ff) if which == 0 else (fe, ff * factor)
            s, _ = evaluate(weights, ridge, candidate, "svd")
            if s < best_score * (1 - MIN_GAIN):
                best_score, per_group = s, candidate
    t_search = time.perf_counter() - t

    # the chosen settings by SVD: validation errors, then the fit to all frames
    chosen = group_weight_dict(weights, per_group, groups, False)
    model.fit(system, group_weights=chosen, ridge=ridge, solver="svd", progress=False)
    report_val = {
        "fit": val.errors(flat(model)).to_dict(),
        "published": mlpot.errors(published, validation).to_dict(),
    }
    t = time.perf_counter()
    final = mlpot.SNAP(published.bispectrum, quadratic=published.quadratic)
    everything = group_weight_dict(weights, per_group, groups, True)
    final.fit(system, group_weights=everything, ridge=ridge, solver="svd", progress=False)
    t_final = time.perf_counter() - t
    result = dict(
        case=name,
        n_frames=len(frames),
        n_train=len(train),
        n_validation=len(validation),
        n_columns=n_columns,
        chosen=dict(
            energy_weight=weights[0],
            force_weight=weights[1],
            stress_weight=weights[2],
            ridge=ridge,
            group_factors={g: dict(energy=fe, force=ff) for g, (fe, ff) in per_group.items()},
        ),
        search_score=best_score,
        reference=list(reference),
        validation=report_val,
        training_errors_of_final_fit=mlpot.errors(final, frames).to_dict(),
        seconds=dict(rows=t_rows, search=t_search, final_solve=t_final, total=time.perf_counter() - t_start),
        trials=trials,
    )
    return result, final


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def write_config(result, published, files, data: Path, path: Path) -> None:
    """The chosen settings as an `mlpot fit` configuration fitting all training frames;
    data paths relative to the configuration (as mlpot fit reads them)."""
    from mlpot.modelfile import bispectrum_to_dict

    name, chosen = result["case"], result["chosen"]
    relative = os.path.relpath(data, path.parent)
    train = sorted({os.path.join(relative, os.path.relpath(f, data)) for f in files})
    if len(train) > 1:  # the MoNbTaW groups: one glob
        train = [os.path.join(os.path.dirname(train[0]), "*.json")]
    bs = bispectrum_to_dict(published.bispectrum)
    elements = bs.pop("elements")
    bs["radelem"] = dict(zip(elements, bs["radelem"]))
    bs["wj"] = dict(zip(elements, bs["wj"]))
    lines = [
        f"# {name}: the descriptor of the published model, weights and ridge chosen on a",
        "# validation split by examples/fits/search.py (docs/published-fits.md). Fits all",
        "# training frames; set validation_fraction = 0.2 (seed 0) for the validation errors.",
        "# Data paths are relative to this file: ../shared/data beside the repository.",
        "",
        "[data]",
        f"train = {_toml_value(train)}",
        "validation_fraction = 0.0",
        "seed = 0",
        "",
        "[descriptor]",
        *(f"{k} = {_toml_value(v)}" for k, v in bs.items()),
        "",
        "[model]",
        f"quadratic = {_toml_value(published.quadratic)}",
        f"energy_weight = {chosen['energy_weight']!r}",
        f"force_weight = {chosen['force_weight']!r}",
        f"stress_weight = {chosen['stress_weight']!r}",
        f"ridge = {chosen['ridge']!r}",
        'solver = "svd"',
    ]
    for group, factors in chosen["group_factors"].items():
        lines += [
            "",
            f"[groups.{group}]",
            f"eweight = {chosen['energy_weight'] * factors['energy']!r}",
            f"fweight = {chosen['force_weight'] * factors['force']!r}",
            f"vweight = {chosen['stress_weight']!r}",
        ]
    lines += ["", "[output]", f'model = "{name}.mlpot"', f'lammps = "{name}"', ""]
    path.write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cases", nargs="*", help="e.g. Mo_snap Si_qsnap MoNbTaW_snap (default: all)")
    parser.add_argument("--out", type=Path, help="write the results (JSON) here")
    parser.add_argument("--save-models", type=Path, help="write the final models (mlpot model files, NAME.mlpot) here")
    parser.add_argument("--write-configs", action="store_true", help="write examples/fits/<case>.toml")
    args = parser.parse_args()
    all_cases = cases(args.data)
    results = []
    for name in args.cases or list(all_cases):
        files, prefix = all_cases[name]
        result, final = search(name, files, prefix, PUBLISHED_TEST.get(name))
        results.append(result)
        v, p = result["validation"]["fit"]["overall"], result["validation"]["published"]["overall"]
        print(
            f"{name}: chosen {result['chosen']}\n"
            f"  validation E {v['energy_mae'] * 1e3:.2f} meV/atom F {v['force_mae']:.4f} eV/A;"
            f" published model on the same frames E {p['energy_mae'] * 1e3:.2f} F {p['force_mae']:.4f};"
            f" reference {result['reference']}; {result['seconds']}",
            flush=True,
        )
        if args.write_configs:
            published = mlpot.lammps.read_snap(f"{prefix}.snapcoeff", f"{prefix}.snapparam")
            write_config(result, published, files, args.data, ROOT / "examples" / "fits" / f"{name}.toml")
        if args.save_models:
            args.save_models.mkdir(parents=True, exist_ok=True)
            final.save(args.save_models / f"{name}.mlpot")
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
