"""Potentials: the linear/quadratic model on any descriptor (SNAP and quadratic SNAP on
the bispectrum), GAP and neural-network potentials (NNP), their fits and predictions. Every model is a
`mlpot.models.base.Model` registered by kind in `mlpot.models.registry`."""

from mlpot.models import registry
from mlpot.models.base import Model
from mlpot.models.gap import GAP, Distance2b
from mlpot.models.linear import LinearModel
from mlpot.models.nnp import NNP
from mlpot.models.snap import SNAP
from mlpot.models.system import GAPSystem, LinearSystem

__all__ = ["Distance2b", "GAP", "GAPSystem", "LinearModel", "LinearSystem", "Model", "NNP", "SNAP", "registry"]
