"""The ranges a hyperparameter search (`mlpot.tune`) samples: a leaf module, so that the
models can name them in their default search spaces."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LogUniform", "Uniform"]


@dataclass(frozen=True)
class LogUniform:
    """A range searched uniformly in log(value): for weights, sigmas, ridges, jitters."""

    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and 0 < self.low < self.high):
            raise ValueError(f"LogUniform needs 0 < low < high, got ({self.low}, {self.high})")

    def value(self, u: float) -> float:
        x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return float(min(max(x, self.low), self.high))  # exp(log(high)) may round past high

    def unit(self, x: float) -> float:
        return (math.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))


@dataclass(frozen=True)
class Uniform:
    """A range searched uniformly in the value itself."""

    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Uniform needs low < high, got ({self.low}, {self.high})")

    def value(self, u: float) -> float:
        return float(min(max(self.low + u * (self.high - self.low), self.low), self.high))

    def unit(self, x: float) -> float:
        return (x - self.low) / (self.high - self.low)
