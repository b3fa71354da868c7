"""Potentials: SNAP, quadratic SNAP and GAP, their fits and predictions."""

from mlpot.models.gap import GAP, Distance2b
from mlpot.models.snap import SNAP
from mlpot.models.system import GAPSystem, LinearSystem

__all__ = ["Distance2b", "GAP", "GAPSystem", "LinearSystem", "SNAP"]
