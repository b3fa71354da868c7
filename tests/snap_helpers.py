"""Shared builders for the SNAP model tests: descriptors, known models and labelled frames."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

import mlpot

ELEMENTS = {"Ni": (0.5, 1.0), "Al": (0.57, 0.8)}


def descriptor(twojmax=4, elements=("Ni", "Al"), **flags):
    return mlpot.Bispectrum(
        twojmax,
        4.1,
        radelem={e: ELEMENTS[e][0] for e in elements},
        wj={e: ELEMENTS[e][1] for e in elements},
        **flags,
    )


def known_model(bs, quadratic, seed, scale=0.05, baseline=None):
    """A SNAP model with random coefficients: the 'truth' that fits should recover."""
    rng = np.random.default_rng(seed)
    model = mlpot.SNAP(bs, quadratic=quadratic, baseline=baseline)
    model.coefficients = {e: rng.normal(scale=scale, size=model.n_coefficients) for e in bs.elements}
    return model


def structure(rng, elements=("Ni", "Al"), reps=(2, 2, 1), rattle=0.1, strain=0.02):
    """A rattled, strained fcc cell with random elements and a tilted lower-triangular cell."""
    atoms = bulk("Ni", "fcc", a=3.52, cubic=True) * reps
    cell = atoms.cell.array.copy()
    cell[1, 0] = 0.2
    cell = cell @ (np.eye(3) + rng.normal(0.0, strain, (3, 3)) * np.tri(3))
    atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
    atoms.set_chemical_symbols(rng.choice(list(elements), len(atoms)))
    atoms.wrap()
    return atoms


def labelled(atoms, energy=None, forces=None, stress=None, group=None):
    """``atoms`` with the given references on a SinglePointCalculator."""
    atoms = atoms.copy()
    results = {k: v for k, v in dict(energy=energy, forces=forces, stress=stress).items() if v is not None}
    atoms.calc = SinglePointCalculator(atoms, **results)
    if group is not None:
        atoms.info["group"] = group
    return atoms


def frames_from(model, n, seed, group=None, elements=("Ni", "Al"), **kw):
    """``n`` structures labelled with the predictions of ``model``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = structure(rng, elements, **kw)
        p = model.predict(atoms)
        out.append(labelled(atoms, p["energy"], p["forces"], p["stress"], group))
    return out


def noisy_frames(bs, n, seed):
    """``n`` frames labelled by a random linear SNAP model plus noise (energy 0.05 eV,
    forces 0.05 eV/A, stress 0.005 eV/A^3), in groups "bulk", "strained" and None in
    turn: no model fits them exactly, so fit weights decide the answer."""
    truth = known_model(bs, False, seed=seed)
    rng = np.random.default_rng(seed + 1)
    frames = []
    for k, atoms in enumerate(frames_from(truth, n, seed=seed + 2)):
        frames.append(
            labelled(
                atoms,
                atoms.get_potential_energy() + rng.normal(0, 0.05),
                atoms.get_forces() + rng.normal(0, 0.05, (len(atoms), 3)),
                atoms.get_stress() + rng.normal(0, 0.005, 6),
                ["bulk", "strained", None][k % 3],
            )
        )
    return frames


class PairBaseline:
    """A duck-typed fixed baseline: a smooth repulsive pair potential
    E = sum_{i<j} A exp(-r/rho) f_c(r), with numpy and the ASE neighbor list."""

    def __init__(self, a=50.0, rho=0.6, cutoff=4.0):
        self.a, self.rho, self.cutoff = a, rho, cutoff
        self.calls = 0

    def predict(self, atoms):
        from ase.neighborlist import neighbor_list

        self.calls += 1
        i, j, d, D = neighbor_list("ijdD", atoms, self.cutoff)
        x = np.pi * d / self.cutoff
        fc, dfc = 0.5 * (1 + np.cos(x)), -0.5 * np.pi / self.cutoff * np.sin(x)
        e = self.a * np.exp(-d / self.rho)
        pair = e * fc
        dpair = e * (dfc - fc / self.rho)  # d(pair)/dr
        energies = 0.5 * np.bincount(i, pair, minlength=len(atoms))
        g = (dpair / d)[:, None] * D  # d(pair)/d r_j for the pair (i, j), halved below
        forces = np.zeros((len(atoms), 3))
        for c in range(3):
            forces[:, c] = 0.5 * (np.bincount(i, g[:, c], minlength=len(atoms)) - np.bincount(j, g[:, c], minlength=len(atoms)))
        out = {"energy": energies.sum(), "forces": forces, "energies": energies}
        if atoms.pbc.all():
            # virial -sum over half pairs of (dE/dr_ij) x r_ij; stress = -virial / V
            w = -0.5 * np.einsum("pa,pb->ab", g, D)
            s = -w / atoms.get_volume()
            out["stress"] = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return out

    def to_dict(self):
        return {"a": self.a, "rho": self.rho, "cutoff": self.cutoff}

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def numeric_forces_and_stress(model, atoms, h=1e-5):
    """-dE/dr by central differences, and the stress dE/d(strain) / V."""
    forces = np.zeros((len(atoms), 3))
    for k in range(len(atoms)):
        for c in range(3):
            e = []
            for s in (h, -h):
                moved = atoms.copy()
                moved.positions[k, c] += s
                e.append(model.predict(moved)["energy"])
            forces[k, c] = -(e[0] - e[1]) / (2 * h)
    stress = np.zeros(6)
    for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        e = []
        for s in (h, -h):
            strain = np.eye(3)
            strain[a, b] += s / 2
            strain[b, a] += s / 2
            moved = atoms.copy()
            moved.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            e.append(model.predict(moved)["energy"])
        stress[v] = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
    return forces, stress


def gap_from_parts(m, n_max=4, l_max=3, seed=0):
    """A fitted GAP with m SOAP sparse points (one species, Si) built from random parts:
    sparse points, weights and a posterior factor, for file sizes and load times (the
    values do not matter there)."""
    from mlpot.models.gap import GAP, _Term

    rng = np.random.default_rng(seed)
    soap = mlpot.SOAP(cutoff=5.0, n_max=n_max, l_max=l_max, species=["Si"], normalize=True)
    x = np.abs(rng.normal(size=(m, soap.n_features)))
    x /= np.linalg.norm(x, axis=1)[:, None]
    term = _Term(soap, 0.2, x, [14] * m, 4.0)
    posterior = np.triu(rng.normal(size=(m, m))) + m * np.eye(m)
    settings = dict(zeta=4.0, n_sparse=m, delta=None, sparse_method="cur", default_sigma=(0.01, 0.05, 0.01),
                    group_sigma={}, seed=0, e0=None)
    return GAP._from_parts([soap], settings, [term], rng.normal(size=m), {"Si": -0.5}, 1e-10, posterior, None)
