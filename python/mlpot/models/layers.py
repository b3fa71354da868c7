"""The parts of an atomic neural network that models and their training share: layers,
n2p2's activations by letter and its symmetry-function scaling modes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIVATIONS", "ACTIVATION_NAMES", "Layer", "SCALINGS", "Scaling"]

#: n2p2's activation functions by their input.nn letter
ACTIVATIONS = {
    "l": "linear (identity)",
    "t": "tanh",
    "s": "logistic 1 / (1 + exp(-x))",
    "p": "softplus ln(1 + exp(x))",
    "r": "ReLU max(0, x)",
    "g": "Gaussian exp(-x^2 / 2)",
    "c": "cos(x)",
    "S": "reverse logistic 1 - 1 / (1 + exp(-x))",
    "e": "exp(-x)",
    "h": "harmonic x^2",
}

#: n2p2's symmetry-function scaling modes (its keywords: scale_symmetry_functions,
#: center_symmetry_functions, both, scale_symmetry_functions_sigma; none)
SCALINGS = ("none", "scale", "center", "scalecenter", "scalesigma")

#: activation names (for NNP's ``activation``) and their n2p2 letters
ACTIVATION_NAMES = {
    "linear": "l", "tanh": "t", "logistic": "s", "softplus": "p", "relu": "r", "gaussian": "g", "cos": "c",
    "reverse_logistic": "S", "exp": "e", "harmonic": "h",
}

@dataclass(frozen=True)
class Layer:
    """One layer of a network: y = activation(weights @ x + biases); weights (n_out, n_in)
    and biases (n_out,) float64, activation one letter of `ACTIVATIONS`."""

    weights: np.ndarray
    biases: np.ndarray
    activation: str

    def __post_init__(self):
        w = np.array(self.weights, dtype=np.float64)
        b = np.array(self.biases, dtype=np.float64)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"a layer needs weights (n_out, n_in) and biases (n_out,), got {w.shape} and {b.shape}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError("a layer's weights and biases must be finite")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)} ({ACTIVATIONS}), got {self.activation!r}")
        w.flags.writeable = False
        b.flags.writeable = False
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "biases", b)


@dataclass(frozen=True)
class Scaling:
    """n2p2's scaling of one element's network inputs, from the statistics of its
    training set (scaling.data): per input G_min, G_max, G_mean, G_sigma (units of the
    descriptor), the mode of `SCALINGS` and the target range [s_min, s_max]:

    - none: G; center: G - G_mean;
    - scale: s_min + (s_max - s_min) (G - G_min) / (G_max - G_min);
    - scalecenter: s_min + (s_max - s_min) (G - G_mean) / (G_max - G_min);
    - scalesigma: s_min + (s_max - s_min) (G - G_mean) / G_sigma.

    A function constant on the training set (G_max = G_min) is scaled by 1 instead of
    dividing by zero (n2p2 would divide by zero)."""

    mode: str
    g_min: np.ndarray
    g_max: np.ndarray
    g_mean: np.ndarray
    g_sigma: np.ndarray
    s_min: float = 0.0
    s_max: float = 1.0

    def __post_init__(self):
        if self.mode not in SCALINGS:
            raise ValueError(f"scaling mode must be one of {list(SCALINGS)}, got {self.mode!r}")
        arrays = [np.array(getattr(self, k), dtype=np.float64) for k in ("g_min", "g_max", "g_mean", "g_sigma")]
        n = arrays[0].shape
        if len(n) != 1 or any(a.shape != n for a in arrays):
            raise ValueError("scaling g_min, g_max, g_mean and g_sigma must be 1-d arrays of one length")
        if not all(np.isfinite(a).all() for a in arrays) or not (np.isfinite(self.s_min) and np.isfinite(self.s_max)):
            raise ValueError("scaling statistics must be finite")
        for k, a in zip(("g_min", "g_max", "g_mean", "g_sigma"), arrays):
            a.flags.writeable = False
            object.__setattr__(self, k, a)
        object.__setattr__(self, "s_min", float(self.s_min))
        object.__setattr__(self, "s_max", float(self.s_max))

    @property
    def n_inputs(self) -> int:
        return len(self.g_min)

    def affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shift, factor, offset) with s(G) = offset + factor (G - shift), in n2p2's
        order of operations (its scaling factor computed first), so that the scaled
        inputs are n2p2's to the last bit."""
        n = self.n_inputs
        width = self.s_max - self.s_min
        spread = self.g_max - self.g_min
        safe = np.where(spread == 0.0, 1.0, spread)
        if self.mode == "none":
            return np.zeros(n), np.ones(n), np.zeros(n)
        if self.mode == "center":
            return self.g_mean.copy(), np.ones(n), np.zeros(n)
        if self.mode == "scale":
            return self.g_min.copy(), np.where(spread == 0.0, 1.0, width / safe), np.full(n, self.s_min)
        if self.mode == "scalecenter":
            return self.g_mean.copy(), np.where(spread == 0.0, 1.0, width / safe), np.full(n, self.s_min)
        sigma = np.where(self.g_sigma == 0.0, 1.0, self.g_sigma)
        return self.g_mean.copy(), np.where(self.g_sigma == 0.0, 1.0, width / sigma), np.full(n, self.s_min)

    def apply(self, g: np.ndarray) -> np.ndarray:
        """The scaled inputs of raw features ``g`` (..., n_inputs)."""
        shift, factor, offset = self.affine()
        return offset + factor * (np.asarray(g, dtype=np.float64)[..., : self.n_inputs] - shift)

    def extrapolating(self, g: np.ndarray) -> np.ndarray:
        """Boolean mask (..., n_inputs): raw features outside [G_min, G_max] of the training
        set (n2p2's extrapolation warning)."""
        g = np.asarray(g, dtype=np.float64)[..., : self.n_inputs]
        return (g < self.g_min) | (g > self.g_max)
