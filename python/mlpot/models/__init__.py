"""Potentials: SNAP and quadratic SNAP (later GAP), their fits and predictions."""

from mlpot.models.snap import SNAP

__all__ = ["SNAP"]
