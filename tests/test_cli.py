"""The `mlpot` command line: configuration checking, fit, eval with parity plots, demo."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

import mlpot
from mlpot.cli import ConfigError, build_model, load_config, main, split_frames
from mlpot.demo_data import emt_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "fits"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fit.toml"
    path.write_text(text)
    return path


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown sections"):
        load_config(write_config(tmp_path, "[data]\ntrain=['x']\n[descriptor]\n[modle]\n"))
    with pytest.raises(ConfigError, match="needs `train`"):
        load_config(write_config(tmp_path, "[data]\n[descriptor]\n"))
    with pytest.raises(ConfigError, match=r"\[descriptor\] section is required"):
        load_config(write_config(tmp_path, "[data]\ntrain=['x']\n"))
    with pytest.raises(ConfigError, match="unknown \\[model\\] keys \\['ridg'\\]"):
        load_config(write_config(tmp_path, "[data]\ntrain=['x']\n[descriptor]\n[model]\nridg=1\n"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write_config(tmp_path, "[data\n"))


def test_split_keeps_every_group_in_training_and_is_reproducible():
    frames = [Atoms("H", info={"group": g}) for g in ["a"] * 10 + ["b"] * 3 + ["c"]]
    train, validation = split_frames(frames, 0.34, seed=1)
    assert len(validation) == 3 + 1 + 0
    assert {f.info["group"] for f in train} == {"a", "b", "c"}
    again = split_frames(frames, 0.34, seed=1)[1]
    assert [id(f) for f in again] == [id(f) for f in validation]
    with pytest.raises(ConfigError, match="validation_fraction"):
        split_frames(frames, 1.0, seed=0)


def emt_frames(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6 * (1 + 0.01 * rng.normal()), cubic=True).repeat(2)
        atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        labelled = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress()
        )
        atoms.calc = labelled
        atoms.info["group"] = "rattled" if k % 2 else "strained"
        frames.append(atoms)
    return frames


def test_fit_then_eval_with_parity_plot(tmp_path, capsys):
    write(tmp_path / "train.extxyz", emt_frames(12, seed=0))
    write(tmp_path / "test.extxyz", emt_frames(4, seed=1))
    config = write_config(
        tmp_path,
        """
[data]
train = ["train.extxyz"]
validation_fraction = 0.25
[descriptor]
twojmax = 4
rcutfac = 4.5
radelem = { Cu = 0.5 }
[model]
energy_weight = 100.0
ridge = 1e-8
[groups.rattled]
eweight = 100.0
fweight = 2.0
vweight = 1.0
[output]
model = "cu.json"
lammps = "cu_pot"
""",
    )
    assert main(["fit", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "training errors" in out and "validation errors" in out
    assert (tmp_path / "cu.json").exists() and (tmp_path / "cu_pot.snapcoeff").exists()
    plot = tmp_path / "parity.png"
    assert main(["eval", str(tmp_path / "cu.json"), str(tmp_path / "test.extxyz"), "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 10_000
    assert "rattled" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.json"), "x.extxyz"]) == 1
    assert "mlpot eval: error" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- GAP

GAP_CONFIG = """
[data]
train = ["train.extxyz"]
[descriptor]
type = "soap"
cutoff = 4.0
n_max = 3
l_max = 2
atom_sigma = 0.5
cutoff_transition_width = 0.5
species = ["Cu"]
[[two_body]]
cutoff = 4.0
theta = 0.8
n_sparse = 8
[model]
type = "gap"
zeta = 2
n_sparse = 15
sparse_method = "cur"
default_sigma = [0.002, 0.05, 0.01]
e0 = { Cu = -0.1 }
jitter = 1e-8
seed = 3
[groups.surface]
sigma = [0.004, 0.1, 0.02]
[baseline]
type = "zbl"
inner = 2.0
outer = 3.0
[output]
model = "cu_gap.json"
"""


@pytest.mark.filterwarnings("ignore:Skipping unhashable information adsorbate_info")
def test_gap_fit_matches_a_gap_fitted_in_python_and_evaluates(tmp_path, capsys):
    """`mlpot fit` with [model] type = "gap" saves the model that mlpot.GAP, built by hand
    with the same settings and fitted to the same frames (read by ASE), gives; `mlpot eval`
    loads it and reports the errors of that model. Every setting of the configuration
    matters here: changing any one (the two-body term, a group sigma, the ZBL baseline,
    zeta, n_sparse, the CUR seed, a sigma, e0, the jitter) moves the predicted forces by
    1e-4 to 4 eV/A, far beyond the tolerance."""
    train, test = emt_dataset(seed=4, frames_per_group=3, repeat=1, temperatures_K=(600.0,))
    write(tmp_path / "train.extxyz", train)
    write(tmp_path / "test.extxyz", test)
    config = write_config(tmp_path, GAP_CONFIG)
    assert main(["fit", str(config), "--quiet"]) == 0
    assert "training errors" in capsys.readouterr().out
    saved = mlpot.load(tmp_path / "cu_gap.json")
    assert isinstance(saved, mlpot.GAP)

    direct = mlpot.GAP(
        [
            mlpot.SOAP(cutoff=4.0, n_max=3, l_max=2, atom_sigma=0.5, cutoff_transition_width=0.5, species=["Cu"]),
            mlpot.Distance2b(cutoff=4.0, theta=0.8, n_sparse=8),
        ],
        zeta=2,
        n_sparse=15,
        sparse_method="cur",
        default_sigma=(0.002, 0.05, 0.01),
        group_sigma={"surface": (0.004, 0.1, 0.02)},
        e0={"Cu": -0.1},
        jitter=1e-8,
        seed=3,
        baseline=mlpot.ZBL(inner=2.0, outer=3.0),
    ).fit(read(tmp_path / "train.extxyz", ":"), progress=False)
    for atoms in test:
        ours, theirs = saved.predict(atoms), direct.predict(atoms)
        assert ours["energy"] == pytest.approx(theirs["energy"], rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(ours["forces"], theirs["forces"], rtol=1e-8, atol=1e-10)
        if "stress" in theirs:
            np.testing.assert_allclose(ours["stress"], theirs["stress"], rtol=1e-8, atol=1e-12)
    # the fit is a real one: the test errors are small against the spread of the data
    test = read(tmp_path / "test.extxyz", ":")  # as `mlpot eval` sees them (extxyz rounding)
    expected = mlpot.errors(direct, test)
    assert expected.overall.force_mae < 0.5 * np.mean([np.abs(a.get_forces()).mean() for a in test])

    assert main(["eval", str(tmp_path / "cu_gap.json"), str(tmp_path / "test.extxyz")]) == 0
    assert "md_600K" in capsys.readouterr().out
    table = mlpot.cli.run_eval(tmp_path / "cu_gap.json", [str(tmp_path / "test.extxyz")])
    assert table.overall.energy_mae == pytest.approx(expected.overall.energy_mae, rel=1e-8)
    assert table.overall.force_mae == pytest.approx(expected.overall.force_mae, rel=1e-8)


def gap_config(tmp_path, replace: dict | None = None, add: str = "") -> Path:
    text = GAP_CONFIG
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    return write_config(tmp_path, text + add)


@pytest.mark.parametrize(
    "replace, add, message",
    [
        ({'type = "gap"': 'type = "gpa"'}, "", r"\[model\] type must be one of \['snap', 'gap'\], got 'gpa'"),
        ({}, "", None),  # the configuration itself is valid
        ({"zeta = 2": "quadratic = true"}, "", r"unknown \[model\] keys \['quadratic'\] for \[model\] type 'gap'"),
        ({"zeta = 2": "energy_weight = 1.0"}, "", r"keys \['energy_weight'\]"),
        ({"n_max = 3": "twojmax = 6"}, "", r"unknown \[descriptor\] keys \['twojmax'\] for \[model\] type 'gap'"),
        ({"n_max = 3": "normalize = false"}, "", r"keys \['normalize'\]"),
        ({'type = "soap"': 'type = "bispectrum"'}, "", "does not fit \\[model\\] type 'gap', which uses 'soap'"),
        ({"sigma = [0.004": "eweight = 2.0\nsigma = [0.004"}, "", r"\[groups.surface\] keys \['eweight'\] for \[model\] type 'gap'"),
        ({"theta = 0.8": "thetta = 0.8"}, "", r"unknown \[\[two_body\]\] 0 keys \['thetta'\]"),
        ({"[[two_body]]": "[two_body]"}, "", r"write \[\[two_body\]\]"),
        ({}, 'lammps = "cu_pot"\n', r"\[output\] lammps: LAMMPS files are written for SNAP only"),
        ({'model = "cu_gap.json"': 'modle = "cu_gap.json"'}, "", r"unknown \[output\] keys \['modle'\]"),
        ({'train = ["train.extxyz"]': 'train = ["train.extxyz"]\nvalidation_fracton = 0.1'}, "", "validation_fracton"),
    ],
)
def test_gap_config_errors_name_the_key(tmp_path, replace, add, message):
    path = gap_config(tmp_path, replace, add)
    if message is None:
        assert load_config(path)["model"]["type"] == "gap"
        return
    with pytest.raises(ConfigError, match=message):
        load_config(path)


SNAP_CONFIG = "[data]\ntrain=['x']\n[descriptor]\ntwojmax=4\nrcutfac=4.0\nradelem={Cu=0.5}\n"


@pytest.mark.parametrize(
    "descriptor, add, message",
    [
        ("", "[model]\nzeta = 4\n", r"unknown \[model\] keys \['zeta'\] for \[model\] type 'snap'"),
        ("", "[groups.bulk]\nsigma = [0.01, 0.1, 0.1]\n", r"\[groups.bulk\] keys \['sigma'\] for \[model\] type 'snap'"),
        ("", "[[two_body]]\ncutoff = 4.0\n", r"\[\[two_body\]\] terms belong to GAP"),
        ("cutoff = 4.0\n", "[model]\ntype = 'snap'\n", r"unknown \[descriptor\] keys \['cutoff'\] for \[model\] type 'snap'"),
        ("type = 'soap'\n", "", "\\[descriptor\\] type 'soap' does not fit \\[model\\] type 'snap'"),
    ],
)
def test_snap_config_rejects_gap_keys(tmp_path, descriptor, add, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, SNAP_CONFIG.replace("[descriptor]\n", f"[descriptor]\n{descriptor}") + add))


@pytest.mark.parametrize(
    "replace, message",
    [
        ({"zeta = 2": 'zeta = "two"'}, r"\[model\]: zeta"),
        ({"n_sparse = 15": "n_sparse = 1.5"}, r"\[model\]: n_sparse must be an integer"),
        ({"default_sigma = [0.002, 0.05, 0.01]": "default_sigma = [0.002, 0.05]"}, r"\[model\]: default_sigma"),
        ({"sigma = [0.004, 0.1, 0.02]": "sigma = 0.004"}, r"\[model\]: group_sigma\['surface'\]"),
        ({'sparse_method = "cur"': 'sparse_method = "cur_points"'}, r"\[model\]: sparse_method"),
        ({"e0 = { Cu = -0.1 }": "e0 = -0.1"}, r"\[model\]: e0 must be a dict"),
        ({"l_max = 2": "l_max = -1"}, r"\[descriptor\]: l_max must be >= 0"),
        ({"theta = 0.8": "theta = -0.8"}, r"\[\[two_body\]\] 0: theta must be positive"),
    ],
)
def test_gap_config_bad_values_name_the_section(tmp_path, replace, message):
    config = load_config(gap_config(tmp_path, replace))
    with pytest.raises(ConfigError, match=message):
        build_model(config)


def test_example_configurations_are_valid():
    """Every examples/fits configuration passes the checks and builds its model (no data
    needed); Si_gap is a GAP with the published mlearn Si settings and the sigmas of
    docs/gap-fits.md."""
    paths = sorted(EXAMPLES.glob("*.toml"))
    assert EXAMPLES / "Si_gap.toml" in paths
    for path in paths:
        model, _ = build_model(load_config(path))
        assert isinstance(model, mlpot.GAP if path.stem.endswith("_gap") else mlpot.SNAP), path
    gap, _ = build_model(load_config(EXAMPLES / "Si_gap.toml"))
    (soap,) = gap.descriptors
    assert (soap.cutoff, soap.n_max, soap.l_max, soap.atom_sigma, soap.cutoff_transition_width) == (5.4, 8, 8, 0.5, 0.5)
    assert (gap.zeta, gap.n_sparse, gap.default_sigma, gap.e0) == (4, 1000, (0.003, 0.02, 0.2), {"Si": -0.79})


@pytest.mark.slow
def test_demo_runs_end_to_end():
    result = subprocess.run(
        [sys.executable, "-m", "mlpot.cli", "demo"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "EMT" in result.stdout and "stand" in result.stdout
    assert "validation errors" in result.stdout and "energy drift" in result.stdout
    # the GAP part: its predicted standard deviation, small on the data, large off it
    stds = {}
    for line in result.stdout.splitlines():
        if line.strip().endswith(" meV") and line.startswith("  "):
            name, value = line.strip()[:-4].rsplit(None, 1)
            stds[name.strip()] = float(value)
    assert set(stds) == {
        "a validation frame",
        "the MD cell",
        "the MD cell compressed 15 %",
        "the MD cell, atoms displaced by 0.35 A",
    }
    near = max(stds["a validation frame"], stds["the MD cell"])
    assert min(stds["the MD cell compressed 15 %"], stds["the MD cell, atoms displaced by 0.35 A"]) > 5 * near
