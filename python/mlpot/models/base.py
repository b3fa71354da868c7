"""What every mlpot model shares: the model protocol.

A model (SNAP, GAP and later ones) knows its species and an optional fixed baseline, is
fitted with ``fit(frames, ...)`` and implements one hook, `Model._predict_core`: its own
per-atom energies, forces and virial for a structure (plus extras such as GAP's variance).
`Model.predict` adds the baseline and turns the virial into a stress in one place;
`calculator`, `save`, `to_dict` and `from_dict` are shared too.

Units: eV, Angstrom, eV/Angstrom; stress in eV/Angstrom^3 with ASE's sign and Voigt order
(xx, yy, zz, yz, xz, xy); virial in eV (LAMMPS's sign: stress = -virial / volume).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlpot import _core, modelfile
from mlpot.calculator import MLPotCalculator
from mlpot.descriptors import DESCRIPTORS, _flag

__all__ = ["Model", "check_baseline", "progress"]


def progress(items, enabled: bool, desc: str):
    """``items`` wrapped in a tqdm progress bar (``desc``, per frame) if ``enabled``."""
    if not enabled:
        return items
    from tqdm.auto import tqdm  # imported on demand: tqdm.auto pulls in IPython if present

    total = len(items) if hasattr(items, "__len__") else None
    return tqdm(items, total=total, desc=desc, unit="frame")


def check_baseline(baseline):
    """``baseline`` if it is None or has ``predict(atoms) -> dict``; TypeError otherwise."""
    if baseline is not None and not callable(getattr(baseline, "predict", None)):
        raise TypeError("baseline must have a predict(atoms) method returning a dict")
    return baseline


class Model:
    """Base class of the mlpot models. Subclasses are registered with
    `mlpot.models.registry.register` and implement:

    - ``species``: the element symbols the model knows;
    - ``fit(frames, ...)`` returning the fitted model;
    - ``_predict_core(atoms, terms=(), **options) -> (energies, forces, virial, extras)``:
      the model's own per-atom energies (n_atoms,) eV, forces (n_atoms, 3) eV/Angstrom and
      virial (6,) eV, plus those of ``terms`` (fixed `mlpot._core.Term` s of the baseline,
      no weights) evaluated with the model's own terms from one neighbor list, and a dict
      of extra results (may be empty); ValueError for atoms the model cannot evaluate
      (unknown elements, NaN positions);
    - ``_document()``: the model as a model-file body whose large arrays are float64
      numpy arrays (written in binary by `mlpot.modelfile`), and the classmethod
      ``from_dict(data)`` inverting it (lists or arrays).
    """

    kind: str = ""  # set by registry.register
    #: whether ``predict(atoms, variance=True)`` is available
    has_variance: bool = False
    baseline = None
    #: the ``[descriptor] type`` of an ``mlpot fit`` configuration that names none (None:
    #: a configuration must name one)
    default_descriptor: str | None = None
    #: whether `mlpot.lammps.write_snap` writes the model (``[output] lammps``)
    writes_lammps: bool = False
    #: whether a configuration may add pair terms (``[[two_body]]``)
    takes_pair_terms: bool = False
    #: the keywords of ``fit`` that are paths (from a configuration: relative to it; those
    #: it writes are checked to be writable before the data are read)
    fit_path_keys: tuple[str, ...] = ()
    #: those of `fit_path_keys` that are read, not written
    fit_input_keys: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, descriptor, settings: Mapping, groups: Mapping, baseline, pair_terms=()):
        """The unfitted model of an ``mlpot fit`` configuration and the keywords of its
        ``fit`` besides the frames: ``descriptor`` built from [descriptor], ``settings``
        the [model] keys besides ``type``, ``groups`` the [groups.NAME] tables, the
        baseline and the [[two_body]] pair terms (only where `takes_pair_terms`).
        ValueError/TypeError for invalid values (the CLI names the section)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from an mlpot fit configuration")

    @classmethod
    def check_groups(cls, groups: Mapping) -> None:
        """ValueError/TypeError if a configuration's [groups.NAME] tables hold invalid
        values for this model (checked before `from_config`, so that messages name
        [groups]); nothing by default."""

    @classmethod
    def accepts(cls, descriptor_class: type) -> bool:
        """Whether a configuration's ``[descriptor]`` may be of this descriptor class
        (decided by the class's flags, such as ``per_atom``, never by its name)."""
        return False

    @classmethod
    def descriptor_kinds(cls) -> tuple[str, ...]:
        """The registered descriptor kinds (`mlpot.descriptors.DESCRIPTORS`) the model
        accepts: the ``[descriptor] type`` values of its configurations."""
        return tuple(kind for kind, d in DESCRIPTORS.items() if cls.accepts(d))

    @property
    def species(self) -> tuple[str, ...]:
        raise NotImplementedError

    def fit(self, frames, **kwargs) -> "Model":
        raise NotImplementedError

    def _predict_core(self, atoms, **options):
        raise NotImplementedError

    def predict(self, atoms, **options) -> dict:
        """Energy (eV), free_energy (= energy), forces (n_atoms, 3; eV/Angstrom), energies
        (per atom, eV) and, for cells periodic in all three directions, stress
        (eV/Angstrom^3, ASE's sign and Voigt order xx yy zz yz xz xy) of ``atoms``, baseline
        included, and the model's extras for ``options`` (e.g. GAP's ``variance=True``).
        Raises ValueError naming any element the model does not know."""
        # a baseline of the core (ZBL) runs with the model's terms, on the same neighbor
        # list; any other baseline is evaluated on its own and added
        term = getattr(self.baseline, "term", None)
        core_baseline = isinstance(term, _core.Term)
        energies, forces, virial, extras = self._predict_core(
            atoms, terms=(term,) if core_baseline else (), **options
        )
        base = None
        if self.baseline is not None and not core_baseline:
            base = self.baseline.predict(atoms)
            energies = energies + np.asarray(base["energies"], dtype=np.float64)
            forces = forces + np.asarray(base["forces"], dtype=np.float64)
        energy = float(energies.sum())
        out = {"energy": energy, "free_energy": energy, "forces": forces, "energies": energies}
        if bool(np.all(atoms.pbc)):
            stress = -virial / atoms.get_volume()
            if base is not None:
                stress = stress + np.asarray(base["stress"], dtype=np.float64)
            out["stress"] = stress
        out.update(extras)
        return out

    def calculator(self, variance: bool = False, **kwargs) -> MLPotCalculator:
        """An ASE calculator evaluating this model (energy, free_energy, forces, stress,
        energies); with ``variance=True`` (models with a predictive variance, such as GAP)
        also "energy_std" (eV) and "energies_std" (per atom, eV), see `predict`."""
        variance = _flag("variance", variance)
        if variance and not self.has_variance:
            raise ValueError(f"a {self.kind or type(self).__name__} model has no predictive variance")
        return MLPotCalculator(self, variance=variance, **kwargs)

    def save(self, path, **options) -> None:
        """Write the model to ``path`` (read it with `mlpot.load`): a versioned file, JSON
        settings and binary arrays (see `mlpot.modelfile`), replaced atomically.
        ``options`` are the model's (e.g. GAP's ``variance``)."""
        modelfile.save(self, path, **options)

    def _document(self) -> dict:
        raise NotImplementedError

    def to_dict(self) -> dict:
        """The model as plain JSON-compatible data (lists of floats): the body of a
        version-1 model file; `from_dict` inverts it."""
        return modelfile.plain(self._document())

    @classmethod
    def from_dict(cls, data: Mapping) -> "Model":
        raise NotImplementedError
