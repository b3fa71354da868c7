"""``mlpot demo``: the whole workflow in seconds, without any DFT data.

ASE's EMT calculator labels a small copper data set. EMT stands in for DFT here: it is a
cheap analytic potential, used only so the demo runs anywhere. With real DFT data the
steps are the same (see the README).
"""

from __future__ import annotations

import time

import mlpot
from mlpot.demo_data import emt_dataset, nve_energy_drift


def run_demo(seed: int = 0, twojmax: int = 6, md_steps: int = 1000, timestep_fs: float = 1.0):
    """Build EMT data, fit SNAP, print training/validation errors, run NVE MD with the fit;
    then fit a small GAP and show its predicted uncertainty growing away from the data.

    Returns a dict with the fitted SNAP model, the two error tables, the energy drift
    (meV/atom/ps) of the NVE run, the GAP and its mean per-atom energies_std (eV) per
    structure.
    """
    print("mlpot demo: EMT-labelled Cu stands in for DFT (ASE's EMT calculator is the reference).")
    start = time.perf_counter()
    train, validation = emt_dataset(seed=seed)
    groups = sorted({a.info["group"] for a in train})
    n_atoms = sum(len(a) for a in train)
    print(
        f"data: {len(train)} training frames ({n_atoms} atoms), {len(validation)} validation "
        f"frames; groups {', '.join(groups)}  [{time.perf_counter() - start:.1f} s]"
    )

    start = time.perf_counter()
    bispectrum = mlpot.Bispectrum(twojmax=twojmax, rcutfac=4.5, radelem={"Cu": 0.5}, wj={"Cu": 1.0})
    model = mlpot.SNAP(bispectrum)
    model.fit(train, progress=False)
    print(f"fitted SNAP (2J = {twojmax}, {bispectrum.n_features} features)  [{time.perf_counter() - start:.1f} s]")

    train_errors = mlpot.errors(model, train)
    validation_errors = mlpot.errors(model, validation)
    print("\ntraining errors\n" + str(train_errors))
    print("\nvalidation errors\n" + str(validation_errors))

    start = time.perf_counter()
    atoms = _md_cell()
    drift = nve_energy_drift(
        atoms, model.calculator(), steps=md_steps, timestep_fs=timestep_fs, temperature_K=600.0, seed=seed
    )
    elapsed = time.perf_counter() - start
    ps = md_steps * timestep_fs / 1000
    print(
        f"\nNVE MD with the fitted model: {len(atoms)} atoms, {ps:g} ps at {timestep_fs:g} fs, "
        f"energy drift {drift:+.3f} meV/atom/ps  [{elapsed:.1f} s, "
        f"{elapsed / (md_steps * len(atoms)) * 1e6:.1f} us/atom-step through the ASE calculator]"
    )
    gap, warning = _gap_with_uncertainty(train, validation, atoms)
    return {
        "model": model,
        "train_errors": train_errors,
        "validation_errors": validation_errors,
        "drift": drift,
        "gap": gap,
        "energies_std": warning,
    }


def _gap_with_uncertainty(train, validation, md_cell):
    """Fits a small SOAP GAP to the same data and prints its predicted per-atom standard
    deviation on structures like the training data and on ones unlike it: the GAP's
    extrapolation warning. Returns the model and {structure: mean energies_std (eV)}."""
    start = time.perf_counter()
    soap = mlpot.SOAP(cutoff=4.5, n_max=6, l_max=4, atom_sigma=0.5, cutoff_transition_width=0.5, species=["Cu"])
    gap = mlpot.GAP(soap, zeta=4, n_sparse=200, default_sigma=(0.002, 0.02, 0.2))
    gap.fit(train, progress=False)
    overall = mlpot.errors(gap, validation).overall
    print(
        f"\nfitted GAP (SOAP n_max 6, l_max 4, {gap.n_sparse} sparse points): validation energy MAE "
        f"{overall.energy_mae * 1e3:.2f} meV/atom, force MAE {overall.force_mae:.4f} eV/A  "
        f"[{time.perf_counter() - start:.1f} s]"
    )
    squeezed = md_cell.copy()
    squeezed.set_cell(md_cell.cell * 0.85, scale_atoms=True)
    hot = md_cell.copy()
    hot.rattle(0.35, seed=2)
    cases = {
        "a validation frame": validation[0],
        "the MD cell": md_cell,
        "the MD cell compressed 15 %": squeezed,
        "the MD cell, atoms displaced by 0.35 A": hot,
    }
    print("GAP predicted standard deviation per atom (an extrapolation warning, not an error bar):")
    warning = {}
    for name, atoms in cases.items():
        warning[name] = float(gap.predict(atoms, variance=True)["energies_std"].mean())
        print(f"  {name:40s} {warning[name] * 1e3:8.1f} meV")
    return gap, warning


def _md_cell():
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    atoms.rattle(0.05, seed=1)
    return atoms


if __name__ == "__main__":  # pragma: no cover
    run_demo()
