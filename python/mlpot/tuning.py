"""Hyperparameters chosen by k-fold cross-validation: `mlpot.tune`.

The frames are split into k folds, stratified by configuration group (each group's frames
shuffled and dealt round-robin, so every fold holds about 1/k of every group). The model
assembles each fold once (`model.assemble(frames, parts=...)`: descriptors and their
gradients, or GAP kernel rows, are computed once per frame, as in one fit), so a trial,
one setting of the regression's hyperparameters, costs k re-solves and no re-assembly:

- the weighted normal matrix of every fold (`LinearSystem.weighted_gram`), O(n^2) per
  (group, kind) block; the training matrix of fold v is their sum less fold v's;
- k normal-equation solves (the model's `solve_gram`), O(n^3 / 3) each;
- the errors of each solution on its held-out fold, exactly, from that fold's factors and
  kept rows (`LinearSystem.scores`): no prediction.

The few best trials are solved again exactly (the model's QR/SVD fit, `solve_system`),
which decides; the CV table of the chosen setting is computed from the k fold models'
predictions on their held-out frames (`mlpot.errors`); the model is then refitted on all
frames from the merged folds (`LinearSystem.merged`: the fit of all frames, exactly).

Search: continuous ranges (`LogUniform`, `Uniform`) are sampled by a scrambled Sobol
sequence (scipy.stats.qmc), lists are choices (all lists and few enough combinations: the
full grid), and the best point is polished by Nelder-Mead (scipy.optimize) in the unit cube
of the continuous ranges. scipy rather than optuna: a trial costs milliseconds to seconds,
so a space-filling design plus a local polish is as good as a Bayesian surrogate at these
budgets, deterministic for a seed, and adds no dependency.

The default metric is sum_q RMSE_q / noise_q over energy (eV/atom) and forces (eV/Angstrom):
each error measured against the noise DFT reference data typically carry, 1 meV/atom in
energy (k-point and smearing convergence of total energies) and 0.05 eV/Angstrom in forces
(basis and smearing), so that neither is sacrificed for the other. Stress enters when the
metric names a noise for it (``metric={"energy": 1e-3, "forces": 0.05, "stress": 0.006}``,
eV/Angstrom^3, 1 GPa = 0.00624 eV/Angstrom^3).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.optimize
from ase import units
from scipy.stats import qmc

from mlpot.descriptors import _flag
from mlpot.metrics import errors
from mlpot.models.ranges import LogUniform, Uniform
from mlpot.models.system import LinearSystem

__all__ = ["DEFAULT_NOISE", "CVTable", "LogUniform", "TuneResult", "Uniform", "fold_labels", "space_from_toml", "tune"]

#: The default metric's noise per quantity: eV/atom, eV/Angstrom.
DEFAULT_NOISE = {"energy": 1e-3, "forces": 0.05}
_QUANTITIES = ("energy", "forces", "stress")


# ------------------------------------------------------------------ search space


_RANGES = (LogUniform, Uniform)


class _Space:
    """The searched dimensions of a space over a model's hyperparameters: each a path into
    the nested parameters (("energy_weight",), ("group_weights", "Surface", "eweight"),
    ("default_sigma", 0)) with a range or a list of choices; every other entry of the
    space is a fixed value."""

    def __init__(self, defaults: Mapping, space: Mapping):
        if not isinstance(space, Mapping):
            raise TypeError("space must be a dict {hyperparameter: value, list of values, LogUniform or Uniform}")
        self.base = copy.deepcopy(defaults)
        self.dims: list[tuple[tuple, object]] = []
        for name, spec in space.items():
            if name not in defaults:
                raise ValueError(f"{name!r} is not a tunable hyperparameter of this model; use {sorted(defaults)}")
            self._walk((name,), spec, self.base)

    def _walk(self, path: tuple, spec, parent) -> None:
        key = path[-1]
        if isinstance(spec, Mapping):
            child = parent.setdefault(key, {}) if isinstance(parent, dict) else None
            if not isinstance(child, dict):
                raise TypeError(f"{_name(path)} is not a table of hyperparameters; give a value, list or range")
            for k, v in spec.items():
                self._walk((*path, k), v, child)
        elif isinstance(spec, tuple):  # a triple such as GAP's sigmas: each entry searched or fixed
            entries = list(spec)
            for k, v in enumerate(spec):
                self._walk((*path, k), v, entries)
            parent[key] = tuple(entries)
        elif isinstance(spec, _RANGES):
            parent[key] = spec.low  # a placeholder: every trial sets it
            self.dims.append((path, spec))
        elif isinstance(spec, list):
            if not spec:
                raise ValueError(f"{_name(path)}: an empty list of choices")
            parent[key] = spec[0]
            self.dims.append((path, list(spec)))
        else:
            parent[key] = spec

    @property
    def continuous(self) -> list[int]:
        return [k for k, (_, spec) in enumerate(self.dims) if isinstance(spec, _RANGES)]

    def grid_size(self) -> int | None:
        """Combinations of an all-list space (None if a range is searched)."""
        if self.continuous:
            return None
        return math.prod(len(spec) for _, spec in self.dims)

    def grid(self) -> list[np.ndarray]:
        """Unit-cube points of every combination of an all-list space."""
        axes = [[(k + 0.5) / len(spec) for k in range(len(spec))] for _, spec in self.dims]
        return [np.array(p) for p in itertools.product(*axes)] if axes else [np.zeros(0)]

    def params(self, u: np.ndarray) -> dict:
        """The hyperparameters at unit-cube point ``u``."""
        params = copy.deepcopy(self.base)
        for (path, spec), x in zip(self.dims, u):
            x = min(max(float(x), 0.0), 1.0)
            if isinstance(spec, list):
                value = spec[min(int(x * len(spec)), len(spec) - 1)]
            else:
                value = spec.value(x)
            _set(params, path, value)
        return params


def space_from_toml(table: Mapping, defaults: Mapping, where: str = "[search.space]") -> dict:
    """A search space from its TOML form (``mlpot fit``'s [search.space]): a number or
    string is a fixed value, ``{log = [low, high]}`` a `LogUniform`, ``{uniform = [low,
    high]}`` a `Uniform`, an array a list of choices, except where the hyperparameter is
    a tuple (GAP's sigmas): there an array of its length holds one spec per entry (an
    array of such arrays is a list of choices). Other tables nest (group weights).
    ValueError naming the key otherwise."""

    def convert(value, default, path: str):
        if isinstance(value, Mapping):
            if set(value) in ({"log"}, {"uniform"}):
                (kind, bounds), = value.items()
                if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_real(b) for b in bounds)):
                    raise ValueError(f"{where} {path}: {kind} needs [low, high], got {bounds!r}")
                try:
                    return (LogUniform if kind == "log" else Uniform)(float(bounds[0]), float(bounds[1]))
                except ValueError as error:
                    raise ValueError(f"{where} {path}: {error}") from None
            if not isinstance(default, Mapping):
                raise ValueError(
                    f"{where} {path}: a table is a range only as {{log = [low, high]}} or {{uniform = [low, high]}}; "
                    f"got keys {sorted(value)}"
                )
            return {k: convert(v, default.get(k, {}) if isinstance(default, Mapping) else None, f"{path}.{k}")
                    for k, v in value.items()}
        if isinstance(value, list):
            if isinstance(default, tuple) and len(value) == len(default) and not any(isinstance(v, list) for v in value):
                return tuple(convert(v, d, f"{path}[{k}]") for k, (v, d) in enumerate(zip(value, default)))
            if isinstance(default, tuple):
                return [tuple(v) if isinstance(v, list) else v for v in value]
            return list(value)
        return value

    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table of hyperparameters")
    out = {}
    for name, value in table.items():
        if name not in defaults:
            raise ValueError(f"{where}: {name!r} is not a tunable hyperparameter of this model; use {sorted(defaults)}")
        out[name] = convert(value, defaults[name], name)
    return out


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _set(node, path: tuple, value) -> None:
    """node[path] = value through nested dicts, lists and tuples (a tuple on the way is
    rebuilt: it is immutable)."""
    key = path[0]
    if len(path) == 1:
        node[key] = value
        return
    child = node[key]
    if isinstance(child, tuple):
        child = list(child)
        _set(child, path[1:], value)
        node[key] = tuple(child)
    else:
        _set(child, path[1:], value)


def _name(path: tuple) -> str:
    return path[0] + "".join(f"[{p!r}]" for p in path[1:])


# ------------------------------------------------------------------------- folds


def fold_labels(frames: Sequence, folds: int = 5, stratify: str | None = "group", seed: int = 0) -> np.ndarray:
    """The fold (0..folds-1) of each frame. ``stratify="group"``: each configuration group's
    frames (``atoms.info["group"]``) are shuffled and dealt to the folds in turn, the next
    group starting where the last one stopped, so every fold holds about 1/folds of every
    group (a group with fewer frames than folds is in fewer folds). None: all frames
    shuffled and dealt in turn."""
    n = len(frames)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if folds > n:
        raise ValueError(f"{folds} folds need at least {folds} frames, got {n}")
    if stratify not in ("group", None):
        raise ValueError(f"stratify must be 'group' or None, got {stratify!r}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        members = {None: list(range(n))}
    else:
        members = {}
        for k, atoms in enumerate(frames):
            members.setdefault(atoms.info.get("group"), []).append(k)
    labels = np.empty(n, dtype=np.int64)
    start = 0
    for indices in members.values():
        order = rng.permutation(indices)
        labels[order] = (start + np.arange(len(order))) % folds
        start = (start + len(order)) % folds
    return labels


# ----------------------------------------------------------------------- scoring


def _pool(per_fold: list[dict]) -> dict:
    """Scores of the held-out frames of all folds, from `LinearSystem.scores` of each:
    overall and per group, RMSE (and MAE where known) per quantity, with counts."""
    groups: dict = {}
    for scores in per_fold:
        for group, quantities in scores.items():
            for quantity, (sse, sae, count) in quantities.items():
                g = groups.setdefault(group, {}).setdefault(quantity, [0.0, 0.0, 0])
                g[0] += sse
                g[1] += sae
                g[2] += count
    overall = {}
    for quantities in groups.values():
        for quantity, (sse, sae, count) in quantities.items():
            o = overall.setdefault(quantity, [0.0, 0.0, 0])
            o[0] += sse
            o[1] += sae
            o[2] += count

    def summary(table: Mapping) -> dict:
        out = {}
        for quantity, (sse, sae, count) in table.items():
            if count:
                out[f"{quantity}_rmse"] = math.sqrt(sse / count)
                out[f"{quantity}_mae"] = sae / count
                out[f"n_{quantity}"] = count
        return out

    result = summary(overall)
    result["groups"] = {group: summary(q) for group, q in groups.items()}
    return result


_SCORES = tuple(f"{q}_{stat}" for q in _QUANTITIES for stat in ("rmse", "mae"))


def _metric(metric) -> Callable[[dict], float]:
    """The function of the pooled scores a search minimizes: the callable itself, or for a
    dict of levels ``{name: level}`` the sum (``combine="sum"``, default) or the largest
    (``combine="max"``) of score / level, a name being a quantity (its RMSE: "energy",
    "forces", "stress") or a score ("energy_mae", "forces_rmse", ...)."""
    if callable(metric):
        return metric
    levels = dict(DEFAULT_NOISE if metric is None else metric) if isinstance(metric, (Mapping, type(None))) else None
    combine = levels.pop("combine", "sum") if levels is not None else None
    names = set(_QUANTITIES) | set(_SCORES)
    if not levels or set(levels) - names or combine not in ("sum", "max"):
        raise ValueError(
            "metric must be None, a callable of the scores, or a dict of levels {name: value} with names "
            f"among {sorted(names)} and optionally combine = 'sum' or 'max', got {metric!r}"
        )
    for name, value in levels.items():
        if not _is_real(value) or value <= 0:
            raise ValueError(f"metric[{name!r}] must be a noise level > 0, got {value!r}")
    keys = {name: name if name in _SCORES else f"{name}_rmse" for name in levels}
    reduce = sum if combine == "sum" else max

    def weighted(scores: Mapping) -> float:
        terms = []
        for name, level in levels.items():
            value = scores.get(keys[name])
            if value is None:
                if keys[name] == "forces_mae" and "forces_rmse" in scores:
                    raise ValueError("a metric of forces_mae needs keep_force_rows=True")
                continue
            if math.isnan(value):
                raise ValueError(f"the scores have no {keys[name]}")
            terms.append(value / level)
        if not terms:
            raise ValueError(f"the held-out folds have none of {sorted(keys.values())} to score")
        return float(reduce(terms))

    return weighted


# ------------------------------------------------------------------------ result


@dataclass
class CVTable:
    """Cross-validated errors of one setting: for each group and "all", the per-fold
    errors of the fold models on their held-out frames (`mlpot.GroupErrors` as dicts) and
    their mean and standard deviation over the folds holding that group."""

    folds: list[dict]  # per fold: {"overall": {...}, "groups": {...}} of mlpot.errors
    rows: dict = field(default_factory=dict)

    _FIELDS = ("energy_mae", "energy_rmse", "force_mae", "force_rmse", "stress_mae", "stress_rmse")
    _COUNT = {"energy": "n_frames", "force": "n_force_components", "stress": "n_stress_frames"}

    def __post_init__(self):
        names = sorted({g for f in self.folds for g in f["groups"]}, key=str)
        for name in [*names, "all"]:
            entries = [f["overall"] if name == "all" else f["groups"].get(name) for f in self.folds]
            entries = [e for e in entries if e is not None]
            row = {"frames": int(sum(e["n_frames"] for e in entries)), "folds": len(entries)}
            for key in self._FIELDS:
                count = self._COUNT[key.split("_")[0]]
                values = np.array([e[key] for e in entries if e[count]], dtype=float)
                if len(values):
                    row[key] = float(values.mean())
                    row[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            self.rows[name] = row

    def to_dict(self) -> dict:
        return {"units": {"energy": "eV/atom", "force": "eV/Angstrom", "stress": "eV/Angstrom^3"},
                "rows": self.rows, "folds": self.folds}

    def __str__(self) -> str:
        columns = [("E MAE", "energy_mae", 1e3), ("E RMSE", "energy_rmse", 1e3), ("F MAE", "force_mae", 1.0),
                   ("F RMSE", "force_rmse", 1.0)]
        if any("stress_mae" in r for r in self.rows.values()):
            columns += [("S MAE", "stress_mae", 1 / units.GPa), ("S RMSE", "stress_rmse", 1 / units.GPa)]
        header = ["group", "frames", "folds", *(c[0] for c in columns)]
        unit = ["", "", "", *("meV/atom" if c[1].startswith("energy") else "eV/A" if c[1].startswith("force") else "GPa"
                              for c in columns)]
        lines = [header, unit]
        for name, row in self.rows.items():
            cells = [str(name), str(row["frames"]), str(row["folds"])]
            for _, key, scale in columns:
                if key in row:
                    cells.append(f"{row[key] * scale:.4g} ± {row[key + '_std'] * scale:.2g}")
                else:
                    cells.append("-")
            lines.append(cells)
        widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
        text = ["  ".join([line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:])]) for line in lines]
        text.insert(2, "-" * len(text[0]))
        if len(lines) > 3:
            text.insert(len(text) - 1, "-" * len(text[0]))
        return "\n".join(text)


@dataclass
class TuneResult:
    """What `tune` found: the model refitted on all frames with the chosen ``params``, its
    cross-validated ``score`` (the metric, exact solves), the ``cv`` table (mean and spread
    over folds, per group), every ``trials`` entry (params, score of the normal-equation
    ranking, pooled scores), the fold of each frame and the candidates' outer results."""

    model: object
    params: dict
    score: float
    cv: CVTable
    trials: list
    folds: np.ndarray
    scores: dict
    candidates: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _plain({
            "params": self.params, "score": self.score, "scores": self.scores, "cv": self.cv.to_dict(),
            # the trials' overall scores only: their per-group ones would make the file 10x larger
            "trials": [dict(t, scores={k: v for k, v in t["scores"].items() if k != "groups"}) for t in self.trials],
            "folds": self.folds.tolist(), "candidates": self.candidates,
            "seconds": self.seconds,
        })

    def save(self, path) -> None:
        """The result as JSON (params, score, CV table, trials)."""
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")))

    def __str__(self) -> str:
        lines = [f"chosen by {len(set(self.folds.tolist()))}-fold cross-validation "
                 f"({len(self.trials)} trials): {_plain(self.params)}", f"CV score {self.score:.4g}", str(self.cv)]
        return "\n".join(lines)


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, str) and k is not None else ("null" if k is None else k): _plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------ search


class _Folds:
    """The assembled folds of one model and the two ways of solving a trial on them."""

    def __init__(self, model, parts: list):
        self.model = model
        self.parts = parts
        k = len(parts)
        # the training systems of the folds: merged views, no factor copied
        self.training = [LinearSystem.merged([parts[p] for p in range(k) if p != v]) for v in range(k)]

    def normal_scores(self, params: Mapping) -> list[dict]:
        """Held-out scores of each fold's normal-equation solution."""
        weight = self.model.block_weights(params)
        grams = [part.weighted_gram(weight) for part in self.parts]
        total = sum(g for g, _ in grams)
        rows = sum(n for _, n in grams)
        out = []
        for v, part in enumerate(self.parts):
            x = self.model.solve_gram(total - grams[v][0], rows - grams[v][1], params, self.training[v])
            out.append(part.scores(x))
        return out

    def exact_scores(self, params: Mapping) -> list[dict]:
        """Held-out scores of each fold's exact (QR/SVD) solution."""
        return [part.scores(self.model.solve_system(self.training[v], params)) for v, part in enumerate(self.parts)]


def _evaluate(folds: _Folds, params: dict, metric, exact: bool) -> tuple[float, dict, int]:
    """(metric, pooled scores, warnings raised) of one trial; a failed solve scores inf."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            per_fold = folds.exact_scores(params) if exact else folds.normal_scores(params)
            pooled = _pool(per_fold)
            score = float(metric(pooled))
        except (np.linalg.LinAlgError, RuntimeError, FloatingPointError):
            return math.inf, {}, len(caught)
    if not math.isfinite(score):
        score = math.inf
    return score, pooled, len(caught)


def _search(folds: _Folds, space: _Space, metric, trials: int, search: str, seed: int, progress: bool):
    """Every trial (unit point, params, score, pooled scores), in the order evaluated."""
    done: dict[tuple, tuple] = {}
    order: list[tuple] = []

    def evaluate(u: np.ndarray) -> float:
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        params = space.params(u)
        key = json.dumps(_plain(params), sort_keys=True)
        if key not in done:
            score, pooled, n_warnings = _evaluate(folds, params, metric, exact=False)
            done[key] = (u, params, score, pooled, n_warnings)
            order.append(key)
            bar.update(1)
        return done[key][2]

    from tqdm.auto import tqdm  # on demand, as the fit progress bars

    d = len(space.dims)
    grid = space.grid_size()
    with tqdm(total=trials, desc="tune", unit="trial", disable=not progress) as bar:
        if search == "grid" or (grid is not None and grid <= trials):
            if grid is None:
                raise ValueError("search='grid' needs every searched hyperparameter given as a list of values")
            for u in space.grid():
                evaluate(u)
        else:
            polish = trials // 3 if space.continuous and trials >= 6 else 0
            n_sample = trials - polish
            if search == "sobol":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # scipy prefers powers of 2; any count is still a low-discrepancy set
                    points = qmc.Sobol(d, scramble=True, seed=seed).random(n_sample)
            elif search == "random":
                points = np.random.default_rng(seed).random((n_sample, d))
            else:
                raise ValueError(f"search must be 'sobol', 'random' or 'grid', got {search!r}")
            for u in points:
                evaluate(u)
            if polish:
                best = min(order, key=lambda k: done[k][2])
                start = done[best][0]
                free = space.continuous
                x0 = start[free]

                def on_free(x):
                    u = start.copy()
                    u[free] = x
                    return evaluate(u)

                step = np.where(x0 + 0.1 <= 1.0, 0.1, -0.1)
                simplex = np.vstack([x0] + [x0 + step[k] * np.eye(len(free))[k] for k in range(len(free))])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scipy.optimize.minimize(
                        on_free, x0, method="Nelder-Mead", bounds=[(0.0, 1.0)] * len(free),
                        options={"initial_simplex": simplex, "maxfev": polish, "xatol": 1e-3, "fatol": 1e-4},
                    )
    return [done[k] for k in order]


def tune(
    model,
    frames,
    space: Mapping | None = None,
    folds: int = 5,
    stratify: str | None = "group",
    metric=None,
    trials: int = 50,
    search: str = "sobol",
    seed: int = 0,
    refine: int = 1,
    keep_force_rows: bool = False,
    progress: bool = True,
    out=None,
) -> TuneResult:
    """Choose a model's fit hyperparameters by k-fold cross-validation, then refit it on all
    frames with them.

    Parameters
    ----------
    model
        An unfitted or fitted mlpot model that can be tuned (`mlpot.SNAP`,
        `mlpot.LinearModel`, `mlpot.GAP`: those with ``hyperparameters()``), or a list of
        them (differing in descriptor hyperparameters such as twojmax, cutoff, n_max/l_max):
        an outer loop tunes each on the same folds and keeps the best; each candidate costs
        one assembly of the frames (about one fit), its trials a fraction of that. The
        chosen model is fitted in place and returned in the result.
    frames
        Reference frames as for ``model.fit`` (a list, or any iterable: it is read into
        one).
    space
        ``{hyperparameter: spec}`` over the names of ``model.hyperparameters()``. A spec is
        a fixed value, a list of choices, `LogUniform(low, high)` or `Uniform(low, high)`;
        tables nest (``{"group_weights": {"Surface": {"eweight": LogUniform(10, 1e4)}}}``)
        and tuples hold a spec per entry (GAP's ``{"default_sigma": (LogUniform(1e-4,
        1e-2), LogUniform(0.01, 0.2), 0.01)}``). Hyperparameters not named keep the
        values of ``model.hyperparameters()`` (`fit`'s defaults for linear models, the
        model's settings for GAP). None: the model's `default_space`.
    folds
        Number of folds k >= 2 (5: each fit sees 80 % of the frames).
    stratify
        "group": every fold holds about 1/k of each configuration group; None: frames
        dealt at random (`fold_labels`).
    metric
        What the search minimizes over the pooled held-out errors of all folds: None (the
        default) for RMSE_E / 1 meV/atom + RMSE_F / 0.05 eV/Angstrom (`DEFAULT_NOISE`,
        see the module docstring for why); a dict of levels per quantity ("energy"
        eV/atom, "forces" eV/Angstrom, "stress" eV/Angstrom^3: their RMSE) or per score
        ("energy_mae", "forces_mae", ...) for the same sum with other levels, or, with
        ``"combine": "max"``, the largest ratio (e.g. the levels a published model
        reaches: no error may exceed its target); or a callable of the pooled scores dict
        (energy_rmse, energy_mae, forces_rmse, forces_mae with ``keep_force_rows``,
        stress_rmse, stress_mae, their counts
        n_energy, n_forces, n_stress, and the same per group under "groups") returning
        a float to minimize. Energies are compared per atom and frame, forces per
        component.
    trials
        Settings evaluated by the search (an all-list space with at most this many
        combinations is searched in full); about a third of them polish the best
        (Nelder-Mead) when ranges are searched.
    search
        "sobol" (scrambled Sobol points), "random" or "grid".
    seed
        Seeds the folds and the search: the same seed gives the same result whatever
        the thread count.
    refine
        Trials are ranked by normal-equation solves; with ``refine`` > 1 the best
        ``refine`` of them are solved again exactly (the fit's own QR/SVD solve, a few
        times the cost of a trial) on every fold and the best of these is chosen. The
        chosen setting's score and CV table are always those of exact fold fits.
    keep_force_rows
        Keep the force rows of every frame (8 bytes x force components x unknowns) so that
        the scores hold the force MAE ("forces_mae") besides its RMSE, for a metric that
        asks for it; by default force errors come from the triangular factors (RMSE only).
    progress
        Progress bars for the assembly and the trials.
    out
        If given, a path: the result is saved there as JSON (`TuneResult.save`).

    Returns a `TuneResult`; ``print(result)`` shows the chosen settings and the CV table.
    """
    progress = _flag("progress", progress)
    candidates = list(model) if isinstance(model, (list, tuple)) else [model]
    if not candidates:
        raise ValueError("tune needs a model (or a list of candidate models)")
    for m in candidates:
        if not callable(getattr(m, "hyperparameters", None)) or not callable(getattr(m, "solve_gram", None)):
            raise TypeError(f"{type(m).__name__} models cannot be tuned by mlpot.tune (no hyperparameters())")
    if isinstance(frames, (str, bytes)):
        raise TypeError("frames must be an iterable of ase.Atoms")
    frames = list(frames)
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 1:
        raise ValueError(f"refine must be an integer >= 1, got {refine!r}")
    if search not in ("sobol", "random", "grid"):
        raise ValueError(f"search must be 'sobol', 'random' or 'grid', got {search!r}")
    score_of = _metric(metric)
    labels = fold_labels(frames, folds, stratify, seed)
    spaces = [_Space(m.hyperparameters(), m.default_space() if space is None else space) for m in candidates]

    best = None
    outer = []
    for m, sp in zip(candidates, spaces):
        t0 = time.perf_counter()
        keep = "all" if keep_force_rows else True
        parts = m.assemble(frames, progress=progress, parts=labels, keep_rows=keep)
        resolve = getattr(m, "resolve_hyperparameters", None)
        if resolve is not None:  # defaults that depend on the data, from all the frames
            sp.base = resolve(sp.base, LinearSystem.merged(parts))
        t1 = time.perf_counter()
        k_folds = _Folds(m, parts)
        done = _search(k_folds, sp, score_of, trials, search, seed, progress)
        ranked = sorted(done, key=lambda t: t[2])
        if refine > 1:  # the decision among the best by the fit's own solver
            exact = [(p, _evaluate(k_folds, p, score_of, exact=True)[0]) for _, p, _, _, _ in ranked[:refine]]
            params = min(exact, key=lambda e: e[1])[0]
        else:
            params = ranked[0][1]
        t2 = time.perf_counter()
        # the fold models of the chosen setting (exact solves): their held-out scores are
        # the candidate's CV score
        fold_models = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fold fits repeat the final fit's warnings
            for training in k_folds.training:
                fold_models.append(copy.copy(m).fit(training, **params))
        pooled = _pool([part.scores(f.solution) for part, f in zip(parts, fold_models)])
        score = float(score_of(pooled))
        t3 = time.perf_counter()
        trial_log = [{"params": p, "score": sc, "scores": pool, "warnings": w} for _, p, sc, pool, w in done]
        result = dict(model=m, parts=parts, fold_models=fold_models, params=params, score=score, pooled=pooled,
                      trials=trial_log, seconds={"assemble": t1 - t0, "search": t2 - t1, "fold_fits": t3 - t2})
        outer.append({"model": repr(m), "params": params, "score": score})
        if best is None or score < best["score"]:
            best = result
        del parts, k_folds, fold_models, result
    if not math.isfinite(best["score"]):
        raise RuntimeError("every trial failed to solve or score; check the space and the frames")

    m, params = best["model"], best["params"]
    t0 = time.perf_counter()
    fold_errors = []
    for v, fold_model in enumerate(best["fold_models"]):
        held_out = [a for a, label in zip(frames, labels) if label == v]
        fold_errors.append(errors(fold_model, held_out).to_dict())
    t1 = time.perf_counter()
    m.fit(LinearSystem.merged(best["parts"]), **params)
    seconds = dict(best["seconds"], cv_table=t1 - t0, refit=time.perf_counter() - t1)
    result = TuneResult(
        model=m, params=params, score=best["score"], cv=CVTable(fold_errors), trials=best["trials"],
        folds=labels, scores=best["pooled"], candidates=outer if len(candidates) > 1 else [], seconds=seconds,
    )
    if out is not None:
        result.save(out)
    return result
