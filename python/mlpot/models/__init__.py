"""Potentials: SNAP and quadratic SNAP (later GAP), their fits and predictions."""

from mlpot.models.snap import SNAP
from mlpot.models.system import LinearSystem

__all__ = ["LinearSystem", "SNAP"]
