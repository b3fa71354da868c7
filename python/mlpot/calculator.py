"""The ASE calculator of mlpot models."""

from __future__ import annotations

from ase.calculators.calculator import Calculator, all_changes

__all__ = ["MLPotCalculator"]


class MLPotCalculator(Calculator):
    """Evaluates an mlpot model (anything with ``predict(atoms) -> dict``) for ASE: energy and
    free_energy (eV), forces (eV/Angstrom), energies (per atom, eV) and, for cells periodic
    in all three directions, stress (eV/Angstrom^3, ASE's sign and Voigt order). Every
    property comes from one prediction, so asking for several costs one evaluation.

    With ``variance=True`` (models whose predict takes ``variance``, such as GAP) also
    "energy_std" (eV) and "energies_std" (per atom, eV): the model's predicted standard
    deviation, an extrapolation warning (large away from the training data).

    Use ``model.calculator()``; works with ase.md and ase.optimize.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model, variance: bool = False, **kwargs):
        if not callable(getattr(model, "predict", None)):
            raise TypeError("model must have a predict(atoms) method")
        super().__init__(**kwargs)
        self.model = model
        self.variance = bool(variance)
        if self.variance:
            self.implemented_properties = self.implemented_properties + ["energy_std", "energies_std"]

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.variance:
            out = self.model.predict(self.atoms, variance=True)
            keep = ("energy", "free_energy", "forces", "stress", "energies", "energy_std", "energies_std")
            self.results = {k: v for k, v in out.items() if k in keep}
        else:
            self.results = dict(self.model.predict(self.atoms))
