"""Potentials: SNAP, quadratic SNAP and GAP, their fits and predictions."""

from mlpot.models.gap import GAP, Distance2b
from mlpot.models.snap import SNAP

__all__ = ["GAP", "SNAP", "Distance2b"]
