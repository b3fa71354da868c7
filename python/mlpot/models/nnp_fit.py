"""Training Behler-Parrinello networks (`mlpot.NNP.fit`): the data, the optimisers, early
stopping, learning curves and checkpoints. The numerics run in the Rust core
(`mlpot._core.NetworkTraining`): it caches the descriptors of the frames with their
gradients once, and gives predictions and exact gradients of any loss of energies, forces
and stresses with respect to the weights; the Kalman filter runs there too.

The loss, with errors measured in units of the training set's spread (sigma_E, the
standard deviation of the energy per atom after the per-element reference energies;
sigma_F, the RMS of the force components; sigma_S, the RMS of the stress components), so
that the weights are pure numbers of the same meaning for every data set:

    L = sum_f w_E,f (dE_f / n_f / sigma_E)^2 / N_E
      + sum_f w_F,f sum_i |dF_fi / sigma_F|^2 / (3 N_F)
      + sum_f w_S,f |dS_f / sigma_S|^2 / (6 N_S)

(N_E, N_F, N_S: frames with energies, atoms with forces, frames with stresses of weight
> 0). The Kalman filter observes the same scaled errors, one energy or force component at
a time, in the units sigma / sqrt(w).
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields as dataclass_fields, replace

import numpy as np
from ase.data import atomic_numbers

from mlpot import _core
from mlpot.models.layers import SCALINGS, Layer, Scaling
from mlpot.models.training import frame_reference, resolve_group_weights

__all__ = ["DEFAULT_WEIGHTS", "History", "Kalman", "OPTIMIZERS", "Settings", "train"]

#: energy, force, stress weights of `NNP.fit` (see the module docstring for their units):
#: energies weighted 30 to 1 against force components, chosen by 5-fold cross-validation
#: on mlearn Si (docs/nnp.md); stresses are off unless asked for
DEFAULT_WEIGHTS = (30.0, 1.0, 0.0)

#: the optimisers of `NNP.fit`
OPTIMIZERS = ("kalman", "lbfgs", "adam")

#: the columns of a learning curve
COLUMNS = (
    "member", "epoch", "seconds", "loss", "train_energy_rmse", "train_force_rmse",
    "validation_energy_rmse", "validation_force_rmse", "validation_loss",
)


@dataclass(frozen=True)
class Kalman:
    """n2p2's extended Kalman filter settings (its keywords: kalman_epsilon, kalman_q0,
    kalman_qmin, kalman_eta, kalman_etamax, kalman_qtau = kalman_etatau), with n2p2's
    defaults and meaning (the process noise q = max(q0 e^(-tau t), q_min) and the learning
    rate eta = min(eta0 e^(tau t), eta_max) after t epochs: tenfold per epoch for tau =
    2.302), and the updates per training frame and epoch: ``energy_updates`` of its energy
    and ``force_updates`` of random force components.

    ``force_threshold`` is n2p2's selection_mode 2 (short_force_error_threshold, with
    ``threshold_trials`` = rmse_threshold_trials): each force update draws up to
    ``threshold_trials`` random components of its frame and takes the first whose error
    exceeds ``force_threshold`` times the force RMSE of the training frames (the last one
    drawn when none does), so the updates go where the errors are. The errors are those
    of the previous epoch's end (n2p2 predicts each candidate afresh; the stale errors
    cost nothing, as the learning curve predicts them anyway). 0 draws uniformly."""

    epsilon: float = 0.01
    q0: float = 0.01
    q_min: float = 1e-6
    eta0: float = 0.01
    eta_max: float = 1.0
    tau: float = 2.302
    energy_updates: int = 1
    force_updates: int = 8
    max_error: float = math.inf
    force_threshold: float = 0.0
    threshold_trials: int = 3

    def __post_init__(self):
        for name in ("epsilon", "eta0", "eta_max", "tau"):
            _positive(getattr(self, name), f"kalman.{name}")
        if isinstance(self.max_error, bool) or not isinstance(self.max_error, (int, float)) or not self.max_error > 0:
            raise ValueError(f"kalman.max_error must be a positive number (or inf), got {self.max_error!r}")
        for name in ("q0", "q_min"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise ValueError(f"kalman.{name} must be a number >= 0, got {v!r}")
        for name in ("energy_updates", "force_updates"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 10_000:
                raise ValueError(f"kalman.{name} must be an integer from 0 to 10000, got {v!r}")
        if self.energy_updates == 0 and self.force_updates == 0:
            raise ValueError("kalman.energy_updates and kalman.force_updates cannot both be 0")
        v = self.force_threshold
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
            raise ValueError(f"kalman.force_threshold must be a number >= 0 (a multiple of the force RMSE), got {v!r}")
        v = self.threshold_trials
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= 100:
            raise ValueError(f"kalman.threshold_trials must be an integer from 1 to 100, got {v!r}")


def _positive(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{what} must be a positive number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class Settings:
    """How `NNP.fit` trains (the keyword arguments of fit besides the weights).

    optimizer
        "kalman" (the default: n2p2's extended Kalman filter, one update per energy or
        force component), "lbfgs" (full-batch L-BFGS of the loss, aenet's choice) or "adam"
        (minibatches of ``batch_size`` frames). docs/nnp.md compares them.
    epochs
        At most this many epochs (None: 40 for kalman, 300 for lbfgs and adam). An epoch
        is one pass over the training frames (lbfgs: ``lbfgs_iterations`` iterations).
    patience
        Stop when the validation loss has not improved for this many epochs (None: 10 for
        kalman, 50 for lbfgs and adam; 0: never); the weights of the best epoch are kept.
    validation
        Fraction of the frames held out for early stopping and the learning curve,
        stratified by configuration group (0: none, every epoch kept to the last).
    scaling, scaling_range
        The input scaling computed from the training frames (`mlpot.models.nnp.Scaling`):
        by default n2p2's "scalesigma" with range (0, 1), each input centred on its mean
        and divided by its standard deviation; "scale" maps [min, max] of the training
        frames to ``scaling_range`` (n2p2's default). 5-fold cross-validation on mlearn Si
        chose scalesigma: 4.46 / 0.087 against 5.24 / 0.093 meV/atom / eV/A (docs/nnp.md).
    bootstrap
        Each member after the first trains on a bootstrap resample of the training frames.
    seed
        Every random choice (split, initial weights, update order) derives from it:
        the same seed gives the same model whatever the number of threads.
    log, checkpoint, restart
        Paths: the learning curve as CSV (written every epoch), a checkpoint (.npz, written
        every epoch) and a checkpoint to continue from (the same frames and settings).
    progress
        A tqdm bar over the epochs with the current errors.
    """

    optimizer: str = "kalman"
    epochs: int | None = None
    patience: int | None = None
    validation: float = 0.1
    kalman: Kalman = field(default_factory=Kalman)
    batch_size: int = 8
    learning_rate: float = 3e-3
    final_learning_rate: float = 3e-5
    lbfgs_iterations: int = 20
    scaling: str = "scalesigma"
    scaling_range: tuple = (0.0, 1.0)
    bootstrap: bool = False
    seed: int = 0
    log: str | None = None
    checkpoint: str | None = None
    restart: str | None = None
    progress: bool = True

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if isinstance(self.kalman, Mapping):
            unknown = set(self.kalman) - {f.name for f in dataclass_fields(Kalman)}
            if unknown:
                raise ValueError(f"unknown kalman setting(s) {sorted(unknown)}; known: {[f.name for f in dataclass_fields(Kalman)]}")
            object.__setattr__(self, "kalman", Kalman(**self.kalman))
        if not isinstance(self.kalman, Kalman):
            raise TypeError("kalman must be a mlpot.models.nnp_fit.Kalman or a dict of its settings")
        for name, low in (("epochs", 1), ("patience", 0), ("batch_size", 1), ("lbfgs_iterations", 1)):
            v = getattr(self, name)
            if v is None and name in ("epochs", "patience"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= 1_000_000:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {list(SCALINGS)}, got {self.scaling!r}")
        try:
            low, high = (float(x) for x in self.scaling_range)
        except (TypeError, ValueError):
            raise ValueError(f"scaling_range must be two numbers (low, high), got {self.scaling_range!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"scaling_range must be two finite numbers low < high, got {self.scaling_range!r}")
        object.__setattr__(self, "scaling_range", (low, high))
        if isinstance(self.validation, bool) or not isinstance(self.validation, (int, float)) or not 0 <= self.validation < 1:
            raise ValueError(f"validation must be a fraction in [0, 1), got {self.validation!r}")
        _positive(self.learning_rate, "learning_rate")
        _positive(self.final_learning_rate, "final_learning_rate")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        for name in ("log", "checkpoint", "restart"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, (str, os.PathLike)):
                raise TypeError(f"{name} must be a path or None, got {v!r}")

    @property
    def n_epochs(self) -> int:
        return self.epochs if self.epochs is not None else (40 if self.optimizer == "kalman" else 300)

    @property
    def n_patience(self) -> int:
        return self.patience if self.patience is not None else (10 if self.optimizer == "kalman" else 50)


@dataclass
class History:
    """A learning curve: one row per member and epoch with the columns of `COLUMNS`
    (RMSE of the energy per atom in eV/atom and of the force components in eV/Angstrom on
    the training and validation frames, the loss, the seconds since training started)."""

    rows: list = field(default_factory=list)

    def add(self, **row) -> None:
        self.rows.append({c: row.get(c, math.nan) for c in COLUMNS})

    def column(self, name: str, member: int = 0) -> np.ndarray:
        if name not in COLUMNS:
            raise ValueError(f"no column {name!r}; columns: {list(COLUMNS)}")
        return np.array([r[name] for r in self.rows if r["member"] == member], dtype=np.float64)

    def write_csv(self, path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(self.rows)

    @classmethod
    def read_csv(cls, path) -> "History":
        with open(path, newline="") as f:
            rows = [{k: (int(v) if k in ("member", "epoch") else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]
        return cls(rows)

    def to_array(self) -> np.ndarray:
        return np.array([[r[c] for c in COLUMNS] for r in self.rows], dtype=np.float64).reshape(-1, len(COLUMNS))

    @classmethod
    def from_array(cls, a: np.ndarray) -> "History":
        return cls([{c: (int(v) if c in ("member", "epoch") else float(v)) for c, v in zip(COLUMNS, row)} for row in a])

    def plot(self, path=None, member: int = 0):
        """The learning curve of ``member``: energy and force RMSE per epoch, training and
        validation, on log axes; saved to ``path`` if given. Returns the figure."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
        epoch = self.column("epoch", member)
        for ax, what, unit, scale in ((axes[0], "energy", "meV/atom", 1e3), (axes[1], "force", "eV/Å", 1.0)):
            for split, style in (("train", "-"), ("validation", "--")):
                y = self.column(f"{split}_{what}_rmse", member) * scale
                if np.isfinite(y).any():
                    ax.plot(epoch, y, style, label=split)
            ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"{what} RMSE ({unit})")
            ax.legend()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


# ------------------------------------------------------------------ data


@dataclass
class _Data:
    """The frames' references as arrays (baseline subtracted), their weights and the
    cached descriptors."""

    training: _core.NetworkTraining
    n_atoms: np.ndarray          # (n_frames,)
    starts: np.ndarray           # (n_frames + 1,) first atom of each frame in the flat arrays
    types: np.ndarray            # (total atoms,) species index
    composition: np.ndarray      # (n_frames, n_species)
    energy: np.ndarray           # (n_frames,) eV per frame, NaN where none
    forces: np.ndarray           # (total atoms, 3), NaN where none
    stress: np.ndarray           # (n_frames, 6), NaN where none
    volume: np.ndarray           # (n_frames,)
    w_energy: np.ndarray         # (n_frames,)
    w_force: np.ndarray
    w_stress: np.ndarray
    groups: list

    def atoms_of(self, frames) -> np.ndarray:
        return np.concatenate([np.arange(self.starts[f], self.starts[f + 1]) for f in frames]) if len(frames) else np.zeros(0, int)


def _data(model, frames, energy_weight, force_weight, stress_weight, group_weights) -> _Data:
    default, per_group = resolve_group_weights(energy_weight, force_weight, stress_weight, group_weights)
    species = model.species
    index = {atomic_numbers[e]: k for k, e in enumerate(species)}
    structures, n_atoms, energy, forces, stress, volume, groups, weights, types = [], [], [], [], [], [], [], [], []
    for k, atoms in enumerate(frames):
        where, ref = frame_reference(k, atoms)
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(species))
        if unknown:
            raise ValueError(f"{where} has element(s) {unknown} that are not in the model's species {list(species)}")
        group = atoms.info.get("group")
        w = per_group.get(group, default)
        e, f, s = ref.energy, ref.forces, ref.stress
        if model.baseline is not None:
            base = model.baseline.predict(atoms)
            e = None if e is None else e - float(base["energy"])
            f = None if f is None else f - np.asarray(base["forces"])
            s = None if s is None or "stress" not in base else s - np.asarray(base["stress"])
        structures.append(model.descriptor._structure(atoms))
        n = len(atoms)
        if n == 0:
            raise ValueError(f"{where} has no atoms")
        n_atoms.append(n)
        energy.append(math.nan if e is None else e)
        forces.append(np.full((n, 3), np.nan) if f is None else np.asarray(f, dtype=np.float64))
        stress.append(np.full(6, np.nan) if s is None else np.asarray(s, dtype=np.float64))
        volume.append(atoms.get_volume() if atoms.pbc.all() else math.nan)
        groups.append(group)
        weights.append(w)
        types.append([index[z] for z in atoms.numbers])
    if not structures:
        raise ValueError("fit needs at least one frame")
    w_e = np.array([w.eweight for w in weights])
    w_f = np.array([w.fweight for w in weights])
    w_s = np.array([w.vweight for w in weights])
    stress = np.array(stress)
    with_stress = np.isfinite(stress).all(axis=1) & (w_s > 0)
    n_inputs = [model.n_inputs(e) for e in species]
    training = _core.NetworkTraining(model.descriptor._core, n_inputs, structures, [bool(x) for x in with_stress])
    n_atoms = np.array(n_atoms)
    flat_types = np.concatenate([np.array(t, dtype=np.int64) for t in types])
    composition = np.zeros((len(n_atoms), len(species)))
    for f, t in enumerate(types):
        composition[f] = np.bincount(t, minlength=len(species))
    return _Data(
        training=training, n_atoms=n_atoms, starts=np.concatenate([[0], np.cumsum(n_atoms)]), types=flat_types,
        composition=composition, energy=np.array(energy), forces=np.concatenate(forces), stress=stress,
        volume=np.array(volume), w_energy=w_e, w_force=w_f, w_stress=w_s, groups=groups,
    )


def split(groups, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) frame indices: ``fraction`` of each configuration group
    (rounded, at least one frame of groups of three or more) held out at random."""
    rng = np.random.default_rng([seed, 1])
    train, validation = [], []
    labels = np.array([str(g) for g in groups])
    for g in sorted(set(labels)):
        members = np.flatnonzero(labels == g)
        rng.shuffle(members)
        k = int(round(fraction * len(members)))
        if fraction > 0 and k == 0 and len(members) >= 3:
            k = 1
        validation.extend(members[:k])
        train.extend(members[k:])
    if not train:
        raise ValueError("no training frames are left after the validation split; lower validation")
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(validation, dtype=np.int64))


def atom_energies(data: _Data, frames, species) -> tuple[dict, float]:
    """Per-element reference energies (eV) by least squares of the frames' energies on
    their composition, and the standard deviation of the remaining energy per atom."""
    frames = np.asarray(frames)
    has = frames[np.isfinite(data.energy[frames])]
    if len(has) == 0:
        return {e: 0.0 for e in species}, 0.01
    a = data.composition[has]
    # minimum-norm least squares: elements that always appear in the same ratio share it
    mu = np.linalg.lstsq(a, data.energy[has], rcond=None)[0]
    residual = (data.energy[has] - a @ mu) / data.n_atoms[has]
    return {e: float(m) for e, m in zip(species, mu)}, max(float(np.std(residual)), 1e-3)


# ------------------------------------------------------------------ errors and loss


@dataclass
class _Units:
    energy: float  # eV/atom
    force: float   # eV/Angstrom
    stress: float  # eV/Angstrom^3


class _Objective:
    """The loss of the module docstring over a set of frames, with its gradient from the
    core, and the RMSE of a prediction."""

    def __init__(self, data: _Data, term, units: _Units):
        self.data, self.term, self.units = data, term, units

    def predict(self, theta, frames):
        return self.data.training.predict(self.term, theta, np.asarray(frames, dtype=np.int64))

    def residuals(self, theta, frames):
        d = self.data
        e, f, w = self.predict(theta, frames)
        atoms = d.atoms_of(frames)
        de = (e - d.energy[frames]) / d.n_atoms[frames]
        df = f - d.forces[atoms]
        stress = -w / d.volume[frames][:, None]
        ds = stress - d.stress[frames]
        return de, df, ds, atoms

    def force_errors(self, theta, frames) -> np.ndarray:
        """The force errors of ``frames`` in an array over every atom of the data (NaN
        elsewhere and where unknown), eV/Angstrom."""
        _, df, _, atoms = self.residuals(theta, frames)
        out = np.full((len(self.data.types), 3), np.nan)
        out[atoms] = df
        return out

    def evaluate(self, theta, frames, keep=None, slot=None) -> tuple[float, float, float]:
        """(energy RMSE eV/atom, force RMSE eV/Angstrom, loss) of ``frames`` from one
        prediction; NaN for what the frames do not have. With ``keep`` (a list), the
        force errors (as `force_errors` returns them) are stored in keep[slot]."""
        if len(frames) == 0:
            return math.nan, math.nan, math.nan
        de, df, ds, atoms = self.residuals(theta, frames)
        if keep is not None:
            keep[slot] = np.full((len(self.data.types), 3), np.nan)
            keep[slot][atoms] = df
        e = de[np.isfinite(de)]
        f = df[np.isfinite(df).all(axis=1)]
        loss = self._parts(frames, de, df, ds, atoms)[0]
        rmse = lambda x: float(np.sqrt(np.mean(x**2))) if len(x) else math.nan
        return rmse(e), rmse(f), loss

    def _parts(self, frames, de, df, ds, atoms):
        """Per-frame coefficients c of the squared scaled residuals and the loss's pieces."""
        d, u = self.data, self.units
        frames = np.asarray(frames)
        we = np.where(np.isfinite(de), d.w_energy[frames], 0.0)
        de = np.nan_to_num(de)
        n_e = max(int((np.isfinite(d.energy[frames]) & (d.w_energy[frames] > 0)).sum()), 1)
        ce = we / (n_e * u.energy**2)
        frame_of_atom = np.repeat(np.arange(len(frames)), d.n_atoms[frames])
        wf = np.where(np.isfinite(df).all(axis=1), d.w_force[frames][frame_of_atom], 0.0)
        df = np.nan_to_num(df)
        n_f = max(int((wf > 0).sum()), 1)
        cf = wf / (3 * n_f * u.force**2)
        ws = np.where(np.isfinite(ds).all(axis=1), d.w_stress[frames], 0.0)
        ds = np.nan_to_num(ds)
        n_s = max(int((ws > 0).sum()), 1)
        cs = ws / (6 * n_s * u.stress**2)
        loss = float(ce @ de**2 + cf @ (df**2).sum(axis=1) + cs @ (ds**2).sum(axis=1))
        return loss, ce, de, cf, df, cs, ds

    def loss(self, theta, frames) -> float:
        return self.evaluate(theta, frames)[2]

    def loss_and_gradient(self, theta, frames) -> tuple[float, np.ndarray]:
        d = self.data
        frames = np.asarray(frames, dtype=np.int64)
        de, df, ds, atoms = self.residuals(theta, frames)
        loss, ce, de, cf, df, cs, ds = self._parts(frames, de, df, ds, atoms)
        # dL/dE_f = 2 c_f dE_f/n_f / n_f; dL/dF = 2 c dF, and h's d . dE/dr = -d . F;
        # dL/dW = -2 c_S dS / V (stress = -W / V)
        alpha = 2 * ce * de / d.n_atoms[frames]
        displacement = -2 * cf[:, None] * df
        with_stress = cs > 0
        virial = None
        if with_stress.any():
            virial = np.where(with_stress[:, None], -2 * cs[:, None] * ds / np.nan_to_num(d.volume[frames], nan=1.0)[:, None], 0.0)
        _, g = d.training.gradient(self.term, theta, frames, alpha, displacement, virial)
        return loss, g


# ------------------------------------------------------------------ optimisers


class _Adam:
    """Adam (Kingma and Ba, 2015) on minibatches, the learning rate falling exponentially
    from learning_rate to final_learning_rate over the epochs."""

    def __init__(self, n: int, settings: Settings):
        self.m, self.v, self.t, self.settings = np.zeros(n), np.zeros(n), 0, settings

    def state(self) -> dict:
        return {"m": self.m, "v": self.v, "t": np.array(self.t)}

    def restore(self, s) -> None:
        self.m, self.v, self.t = np.array(s["m"]), np.array(s["v"]), int(s["t"])

    def epoch(self, objective, theta, frames, rng, epoch: int):
        s = self.settings
        lr = s.learning_rate * (s.final_learning_rate / s.learning_rate) ** (epoch / max(s.n_epochs - 1, 1))
        order = rng.permutation(frames)
        for start in range(0, len(order), s.batch_size):
            batch = np.sort(order[start : start + s.batch_size])
            _, g = objective.loss_and_gradient(theta, batch)
            self.t += 1
            self.m = 0.9 * self.m + 0.1 * g
            self.v = 0.999 * self.v + 0.001 * g * g
            mhat = self.m / (1 - 0.9**self.t)
            vhat = self.v / (1 - 0.999**self.t)
            theta = theta - lr * mhat / (np.sqrt(vhat) + 1e-8)
        return theta


class _LBFGS:
    """Full-batch L-BFGS-B (scipy) of the loss, ``lbfgs_iterations`` per epoch."""

    def __init__(self, n: int, settings: Settings):
        self.settings = settings

    def state(self) -> dict:
        return {}

    def restore(self, s) -> None:
        pass

    def epoch(self, objective, theta, frames, rng, epoch: int):
        from scipy.optimize import minimize

        r = minimize(objective.loss_and_gradient, theta, args=(np.asarray(frames),), jac=True, method="L-BFGS-B",
                     options={"maxiter": self.settings.lbfgs_iterations, "maxcor": 30})
        return r.x if np.isfinite(r.x).all() else theta


class _KalmanMember:
    """One member's filter and its schedule of updates per epoch."""

    def __init__(self, blocks, settings: Settings, updates_per_epoch: int):
        k = settings.kalman
        self.filter = _core.KalmanFilter(list(blocks), k.epsilon, k.q0, k.q_min, k.eta0, k.eta_max, k.tau,
                                         float(max(updates_per_epoch, 1)), float(k.max_error))

    def state(self) -> dict:
        blocks = self.filter.blocks
        out = {f"P{b}": self.filter.covariance(b) for b in range(len(blocks))}
        out["steps"] = np.array(self.filter.steps)
        return out

    def restore(self, s) -> None:
        blocks = self.filter.blocks
        self.filter.restore([np.ascontiguousarray(s[f"P{b}"]) for b in range(len(blocks))], int(s["steps"]))


def kalman_schedule(data: _Data, frames, settings: Settings, units: _Units, rng, force_error=None) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's updates, shuffled: each training frame's energy ``energy_updates``
    times and ``force_updates`` random force components of it; (m, 3) (frame, atom or -1,
    axis) and (m, 2) (target, unit). A weight w observes in units sigma / sqrt(w); weight 0
    leaves the quantity out. With ``force_error`` (the current force errors of every atom,
    (total atoms, 3), NaN where unknown) and a ``force_threshold``, components are drawn
    as `Kalman` describes."""
    k = settings.kalman
    threshold = None
    if k.force_threshold > 0 and force_error is not None:
        known_error = force_error[np.isfinite(force_error).all(axis=1)]
        if len(known_error):
            threshold = k.force_threshold * float(np.sqrt(np.mean(known_error**2)))
    rows, targets = [], []
    for f in frames:
        n = int(data.n_atoms[f])
        if k.energy_updates and math.isfinite(data.energy[f]) and data.w_energy[f] > 0:
            unit = units.energy / math.sqrt(data.w_energy[f])
            for _ in range(k.energy_updates):
                rows.append((f, -1, 0))
                targets.append((data.energy[f] / n, unit))
        if k.force_updates and data.w_force[f] > 0:
            forces = data.forces[data.starts[f] : data.starts[f + 1]]
            known = np.flatnonzero(np.isfinite(forces).all(axis=1))
            if len(known):
                unit = units.force / math.sqrt(data.w_force[f])
                if threshold is None:
                    atoms = rng.choice(known, size=k.force_updates)
                    axes = rng.integers(0, 3, size=k.force_updates)
                else:
                    trials = (k.force_updates, k.threshold_trials)
                    atoms, axes = rng.choice(known, size=trials), rng.integers(0, 3, size=trials)
                    above = np.abs(force_error[data.starts[f] + atoms, axes]) > threshold
                    pick = np.where(above.any(axis=1), above.argmax(axis=1), k.threshold_trials - 1)
                    rows_ = np.arange(k.force_updates)
                    atoms, axes = atoms[rows_, pick], axes[rows_, pick]
                for i, a in zip(atoms, axes):
                    rows.append((f, int(i), int(a)))
                    targets.append((forces[i, a], unit))
    if not rows:
        raise ValueError("the Kalman filter has nothing to observe: no training frame has a weighted energy or forces")
    order = rng.permutation(len(rows))
    return np.array(rows, dtype=np.int64)[order], np.array(targets, dtype=np.float64)[order]


# ------------------------------------------------------------------ training


def _glorot(rng, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """Glorot-uniform weights and zero biases for layers of ``sizes`` (inputs, ..., 1)."""
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = math.sqrt(6.0 / (n_in + n_out))
        out.append((rng.uniform(-limit, limit, size=(n_out, n_in)), np.zeros(n_out)))
    return out


def _flatten(layers) -> np.ndarray:
    return np.concatenate([np.concatenate([w.ravel(), b]) for w, b in layers])


def _unflatten(theta, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    out, k = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = theta[k : k + n_in * n_out].reshape(n_out, n_in)
        k += n_in * n_out
        out.append((w.copy(), theta[k : k + n_out].copy()))
        k += n_out
    return out


def train(model, frames, energy_weight, force_weight, stress_weight, group_weights, settings: Settings):  # noqa: C901
    """Trains ``model`` (an `mlpot.NNP`) in place: sets its scaling, atom energies, energy
    scale and networks (each committee member's), and returns its `History`."""
    frames = list(frames)
    species = model.species
    data = _data(model, frames, energy_weight, force_weight, stress_weight, group_weights)
    n_frames = len(frames)
    train_idx, val_idx = split(data.groups, settings.validation, settings.seed)

    # the per-element reference energies and the input scaling: from the training frames
    mu, sigma_e = atom_energies(data, train_idx, species)
    scaling = {}
    for s, e in enumerate(species):
        g = data.training.features(s, train_idx)
        if len(g) == 0:
            raise ValueError(f"no training frame has an atom of {e}: its network cannot be trained")
        scaling[e] = Scaling(settings.scaling, g.min(axis=0), g.max(axis=0), g.mean(axis=0), g.std(axis=0),
                             *settings.scaling_range)
    train_atoms = data.atoms_of(train_idx)
    f = data.forces[train_atoms]
    f = f[np.isfinite(f).all(axis=1)]
    sigma_f = max(float(np.sqrt(np.mean(f**2))), 1e-3) if len(f) else 1.0
    s = data.stress[train_idx]
    s = s[np.isfinite(s).all(axis=1)]
    sigma_s = max(float(np.sqrt(np.mean(s**2))), 1e-5) if len(s) else 1.0
    units = _Units(sigma_e, sigma_f, sigma_s)

    activation = model.activation
    sizes = {e: (model.n_inputs(e), *model.hidden, 1) for e in species}
    acts = {e: [activation] * len(model.hidden) + ["l"] for e in species}

    def networks_of(theta):
        out, k = {}, 0
        for e in species:
            n = sum(a * b + b for a, b in zip(sizes[e][:-1], sizes[e][1:]))
            out[e] = [Layer(w, b, a) for (w, b), a in zip(_unflatten(theta[k : k + n], sizes[e]), acts[e])]
            k += n
        return out

    n_members = model.committee
    thetas = []
    for k in range(n_members):
        rng = np.random.default_rng([settings.seed, 2, k])
        thetas.append(np.concatenate([_flatten(_glorot(rng, sizes[e])) for e in species]))
    blocks = [sum(a * b + b for a, b in zip(sizes[e][:-1], sizes[e][1:])) for e in species]

    # the template term: the networks' shapes, scaling and energy maps (its weights are
    # replaced by each member's theta in every call)
    model._set_trained(networks_of(thetas[0]), scaling, sigma_e, mu, members=None)
    term = model._term
    objective = _Objective(data, term, units)

    member_frames = [train_idx]
    for k in range(1, n_members):
        if settings.bootstrap:
            rng = np.random.default_rng([settings.seed, 3, k])
            member_frames.append(np.sort(rng.choice(train_idx, size=len(train_idx), replace=True)))
        else:
            member_frames.append(train_idx)

    if settings.optimizer == "kalman":
        if (data.w_stress > 0).any() and np.isfinite(data.stress).all(axis=1).any():
            raise ValueError("the Kalman filter observes energies and forces only: use optimizer='lbfgs' or 'adam' with a stress_weight")
        per_epoch = len(kalman_schedule(data, train_idx, settings, units, np.random.default_rng(0))[0])
        optimizers = [_KalmanMember(blocks, settings, per_epoch) for _ in range(n_members)]
    elif settings.optimizer == "lbfgs":
        optimizers = [_LBFGS(len(thetas[0]), settings) for _ in range(n_members)]
    else:
        optimizers = [_Adam(len(thetas[0]), settings) for _ in range(n_members)]

    history = History()
    best = [(math.inf, t.copy(), -1) for t in thetas]
    start_epoch = 0
    if settings.restart is not None:
        start_epoch, thetas, best, history = _load_checkpoint(settings.restart, thetas, optimizers)
    clock = time.perf_counter()
    offset = history.rows[-1]["seconds"] if history.rows else 0.0
    epochs = range(start_epoch, settings.n_epochs)
    bar = None
    if settings.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.n_epochs, initial=start_epoch, desc="NNP training", unit="epoch")
    stopped = [False] * n_members
    force_errors = [None] * n_members  # each member's force errors at its last evaluation
    for epoch in epochs:
        if all(stopped):
            break
        active = [k for k in range(n_members) if not stopped[k]]
        if settings.optimizer == "kalman":
            if settings.kalman.force_threshold > 0:
                for k in active:
                    if force_errors[k] is None:
                        force_errors[k] = objective.force_errors(thetas[k], member_frames[k])
            schedules = [kalman_schedule(data, member_frames[k], settings, units, np.random.default_rng([settings.seed, 4, k, epoch]),
                                         force_errors[k]) for k in active]
            new = _core.kalman_epochs(data.training, term, [optimizers[k].filter for k in active], [thetas[k] for k in active],
                                      [s[0] for s in schedules], [s[1] for s in schedules])
            for k, t in zip(active, new):
                thetas[k] = np.asarray(t)
        else:
            for k in active:
                rng = np.random.default_rng([settings.seed, 4, k, epoch])
                thetas[k] = optimizers[k].epoch(objective, thetas[k], member_frames[k], rng, epoch)
        seconds = offset + time.perf_counter() - clock
        for k in active:
            tr = objective.evaluate(thetas[k], member_frames[k], force_errors if settings.kalman.force_threshold > 0 else None, k)
            va = objective.evaluate(thetas[k], val_idx)
            loss = tr[2]
            val_loss = va[2] if len(val_idx) else loss
            history.add(member=k, epoch=epoch + 1, seconds=seconds, loss=loss, train_energy_rmse=tr[0], train_force_rmse=tr[1],
                        validation_energy_rmse=va[0], validation_force_rmse=va[1], validation_loss=val_loss)
            if val_loss < best[k][0] or len(val_idx) == 0:
                best[k] = (val_loss, thetas[k].copy(), epoch)
            elif settings.n_patience and epoch - best[k][2] >= settings.n_patience:
                stopped[k] = True
        if bar is not None:
            r = history.rows[-len(active)]
            bar.set_postfix_str(f"E {r['train_energy_rmse'] * 1e3:.2f}/{r['validation_energy_rmse'] * 1e3:.2f} meV/atom, "
                                f"F {r['train_force_rmse']:.3f}/{r['validation_force_rmse']:.3f} eV/Å (train/val)")
            bar.update(1)
        if settings.log is not None:
            history.write_csv(settings.log)
        if settings.checkpoint is not None:
            _save_checkpoint(settings.checkpoint, epoch + 1, thetas, best, history, optimizers)
    if bar is not None:
        bar.close()
    members = [networks_of(b[1]) for b in best]
    model._set_trained(members[0], scaling, sigma_e, mu, members=members)
    return history


def _save_checkpoint(path, epoch, thetas, best, history, optimizers) -> None:
    arrays = {"epoch": np.array(epoch), "thetas": np.array(thetas), "history": history.to_array(),
              "best_loss": np.array([b[0] for b in best]), "best_theta": np.array([b[1] for b in best]),
              "best_epoch": np.array([b[2] for b in best])}
    for k, o in enumerate(optimizers):
        for name, v in o.state().items():
            arrays[f"opt{k}_{name}"] = v
    tmp = f"{os.fspath(path)}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact


def _load_checkpoint(path, thetas, optimizers):
    try:
        z = np.load(path)
        epoch = int(z["epoch"])
        saved = z["thetas"]
        if saved.shape != (len(thetas), len(thetas[0])):
            raise ValueError(f"it holds {saved.shape[0]} members of {saved.shape[1]} weights, this training has "
                             f"{len(thetas)} of {len(thetas[0])}")
        best = [(float(l), np.array(t), int(e)) for l, t, e in zip(z["best_loss"], z["best_theta"], z["best_epoch"])]
        history = History.from_array(z["history"])
        for k, o in enumerate(optimizers):
            prefix = f"opt{k}_"
            o.restore({name[len(prefix):]: z[name] for name in z.files if name.startswith(prefix)})
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"cannot restart from {os.fspath(path)!r}: {e}") from None
    return epoch, [np.array(t) for t in saved], best, history
