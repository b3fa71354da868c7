"""Reproduce the published SNAP and quadratic SNAP fits of the mlearn benchmark (Ge, Li, Mo,
Si; Zuo et al., J. Phys. Chem. A 124, 731 (2020)) and the MoNbTaW SNAP (Li et al., npj
Comput. Mater. 6, 70 (2020)) on the real training data in ../shared/data (or $MLPOT_DATA).

Each case fits the configuration in examples/fits/<case>.toml (the published model's
descriptor; weights and ridge chosen by 5-fold cross-validation, examples/fits/tune_all.py)
to 80 % of the training frames (mlpot fit's split: 20 % per group, seed 0) and checks the
errors on the other 20 % against two independent references:

- the published test-set MAEs (../shared/data/README.md): our fits are to be no worse than
  1.1 x those on the hidden test sets, which are drawn from the same kinds of structures as
  the training sets, so the validation MAEs must be below 1.1 x the published ones;
- the published model (read with mlpot.lammps.read_snap, itself checked against LAMMPS
  pair_style snap in test_lammps_snap.py) on the same validation frames. It was trained
  on them, so it has an advantage; our fit must still be within 10 % of it (energy and
  force MAE), and for MoNbTaW, which has no published test errors, this is the check
  (with the published model's energy zero aligned to the DFT totals: it was fitted to
  energies with another zero), group by group too.

docs/published-fits.md has the measured numbers. Skipped when the data are absent, except
in CI.
"""

import glob
from pathlib import Path

import pytest

import mlpot
from mlpot.cli import load_config, split_frames
from mlpot.models.parts import bispectrum_to_dict

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "fits"

#: published test-set MAEs: energy (meV/atom), force (eV/A)
PUBLISHED_TEST = {
    "Ge_snap": (6.59, 0.188), "Ge_qsnap": (6.45, 0.133),
    "Li_snap": (1.03, 0.028), "Li_qsnap": (0.73, 0.033),
    "Mo_snap": (5.48, 0.207), "Mo_qsnap": (2.77, 0.184),
    "Si_snap": (6.44, 0.133), "Si_qsnap": (3.81, 0.116),
    "MoNbTaW_snap": None,
}  # fmt: skip
TARGET = 1.1  # the fits may be at most 10 % worse than the published ones
CASES = sorted(PUBLISHED_TEST)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*Voigt order.*:UserWarning")]


def case_paths(data: Path, case: str):
    """(training files, published model prefix) of a case."""
    element, kind = case.split("_")
    if element == "MoNbTaW":
        root = data / "MoNbTaW"
        return sorted((root / "training").glob("*.json")), root / "published_snap" / "Ta-W-Nb-Mo"
    root = data / "mlearn" / element
    return [root / "training.json"], root / f"published_{kind}" / "SNAPotential"


def fit_config(config: dict, frames):
    """The model of an `mlpot fit` configuration fitted to frames (as mlpot.cli.run_fit)."""
    model_config = config.get("model", {})
    model = mlpot.SNAP(mlpot.Bispectrum(**config["descriptor"]), quadratic=model_config.get("quadratic", False))
    keywords = {k: v for k, v in model_config.items() if k != "quadratic"}
    return model.fit(frames, group_weights=config.get("groups"), progress=False, **keywords)


def mae(report):
    return report.overall.energy_mae * 1e3, report.overall.force_mae


@pytest.mark.parametrize("case", CASES)
def test_fit_matches_the_published_model_on_held_out_frames(data, case):
    files, prefix = case_paths(data, case)
    config = load_config(CONFIGS / f"{case}.toml")
    published = mlpot.lammps.read_snap(f"{prefix}.snapcoeff", f"{prefix}.snapparam")
    # the configuration uses the published model's descriptor and model kind
    descriptor = bispectrum_to_dict(mlpot.Bispectrum(**config["descriptor"]))
    assert descriptor == bispectrum_to_dict(published.bispectrum)
    assert config["model"].get("quadratic", False) == published.quadratic

    frames = mlpot.io.read([str(f) for f in files])
    train, validation = split_frames(frames, 0.2, 0)
    if PUBLISHED_TEST[case] is None:
        # the published MoNbTaW model's energies have another zero (11 eV/atom away from
        # the DFT totals): align its per-element constants on the training frames
        published = published.align_energy_zero(train)
    model = fit_config(config, train)
    ours = mlpot.errors(model, validation)
    theirs = mlpot.errors(published, validation)
    print(f"\n{case} validation errors\n{ours}\npublished model on the same frames\n{theirs}")

    (e, f), (e_pub, f_pub) = mae(ours), mae(theirs)
    assert e <= TARGET * e_pub and f <= TARGET * f_pub, (e, f, e_pub, f_pub)
    if PUBLISHED_TEST[case] is not None:
        e_test, f_test = PUBLISHED_TEST[case]
        assert e <= TARGET * e_test and f <= TARGET * f_test, (e, f, e_test, f_test)
    if case == "MoNbTaW_snap":  # every group is fitted, none is sacrificed to the others
        for group, g in ours.groups.items():
            p = theirs.groups[group]
            assert g.energy_mae <= 2.0 * p.energy_mae + 1e-3, group
            assert g.force_mae <= 1.5 * p.force_mae, group


def test_configurations_point_at_the_shared_data():
    """The example configurations' data paths (relative to each file) name the files the
    tests use, when the data are beside the repository."""
    default = ROOT.parent / "shared" / "data"
    if not (default / "README.md").is_file():
        pytest.skip(f"the reference data are not at {default}")
    for case in CASES:
        config = load_config(CONFIGS / f"{case}.toml")
        named = sorted(
            Path(p).resolve() for pattern in config["data"]["train"] for p in glob.glob(str(CONFIGS / pattern))
        )
        files, _ = case_paths(default, case)
        assert named == [f.resolve() for f in files], case
        assert config["data"].get("validation_fraction", 0.0) == 0.0  # the final fit uses all
    # the GAP examples: the training file of their element, all of it (the final models)
    for element in ("Ge", "Li", "Mo", "Si"):
        config = load_config(CONFIGS / f"{element}_gap.toml")
        named = [Path(p).resolve() for pattern in config["data"]["train"] for p in glob.glob(str(CONFIGS / pattern))]
        assert named == [(default / "mlearn" / element / "training.json").resolve()]
        assert config["descriptor"]["species"] == [element]
        assert config["data"]["validation_fraction"] == 0.0
