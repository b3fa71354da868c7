"""The `mlpot` command line: configuration checking, fit, eval with parity plots, demo."""

import datetime
import re
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
from mlpot.models.specs import SNAPFitParams

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
model = "cu.mlpot"
lammps = "cu_pot"
""",
    )
    assert main(["fit", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "training errors" in out and "validation errors" in out
    assert (tmp_path / "cu.mlpot").exists() and (tmp_path / "cu_pot.snapcoeff").exists()
    plot = tmp_path / "parity.png"
    assert main(["eval", str(tmp_path / "cu.mlpot"), str(tmp_path / "test.extxyz"), "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 10_000
    assert "rattled" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "cu.mlpot"), str(tmp_path / "test.extxyz")]) == 0
    table = capsys.readouterr().out

    # the names earlier versions wrote: a version-1 JSON file and an archive named .model.json
    # evaluate alike (load tells them by content)
    model = mlpot.load(tmp_path / "cu.mlpot")
    mlpot.modelfile.save(model, tmp_path / "cu_v1.model.json", version=1)
    (tmp_path / "cu.model.json").write_bytes((tmp_path / "cu.mlpot").read_bytes())
    for old in ("cu_v1.model.json", "cu.model.json"):
        assert main(["eval", str(tmp_path / old), str(tmp_path / "test.extxyz")]) == 0
        assert capsys.readouterr().out == table


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.mlpot"), "x.extxyz"]) == 1
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
model = "cu_gap.mlpot"
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
    saved = mlpot.load(tmp_path / "cu_gap.mlpot")
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

    assert main(["eval", str(tmp_path / "cu_gap.mlpot"), str(tmp_path / "test.extxyz")]) == 0
    assert "md_600K" in capsys.readouterr().out
    table = mlpot.cli.run_eval(tmp_path / "cu_gap.mlpot", [str(tmp_path / "test.extxyz")])
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
        ({'type = "gap"': 'type = "gpa"'}, "", r"\[model\] type must be one of \['snap', 'gap', 'linear', 'nnp'\], got 'gpa'"),
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
        ({'model = "cu_gap.mlpot"': 'modle = "cu_gap.mlpot"'}, "", r"unknown \[output\] keys \['modle'\]"),
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
        ({"default_sigma = [0.002, 0.05, 0.01]": "default_sigma = [0.002, 0.05]"}, r"\[model\]: default_sigma"),
        ({"sigma = [0.004, 0.1, 0.02]": "sigma = [0.004]"}, r"\[model\]: group_sigma\['surface'\]"),
        ({'sparse_method = "cur"': 'sparse_method = "cur_points"'}, r"\[model\]: sparse_method"),
        ({"e0 = { Cu = -0.1 }": "e0 = { Xx = -0.1 }"}, r"\[model\]: unknown element 'Xx'"),
        ({"l_max = 2": "l_max = -1"}, r"\[descriptor\]: l_max must be >= 0"),
        ({"theta = 0.8": "theta = -0.8"}, r"\[\[two_body\]\] 0: theta must be positive"),
        ({"inner = 2.0": "inner = 4.0"}, r"\[baseline\]: "),
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
        expected = {"gap": mlpot.GAP, "ace": mlpot.LinearModel}.get(path.stem.rsplit("_", 1)[-1], mlpot.SNAP)
        assert isinstance(model, expected), path
        if expected is mlpot.LinearModel:
            assert model.descriptor.kind == "ace" and not model.quadratic, path
    gap, _ = build_model(load_config(EXAMPLES / "Si_gap.toml"))
    (soap,) = gap.descriptors
    assert (soap.cutoff, soap.n_max, soap.l_max, soap.atom_sigma, soap.cutoff_transition_width) == (5.4, 8, 8, 0.5, 0.5)
    assert (gap.zeta, gap.n_sparse, gap.e0) == (4, 1000, {"Si": -0.79})
    # a configuration with a [search] table: valid tune settings, and its [model] holds
    # what that search chose (recorded beside it in cv/<case>.json)
    import json

    from mlpot.cli import search_settings

    for path in paths:
        config = load_config(path)
        if "search" not in config:
            continue
        model, keywords = build_model(config)
        settings, space = search_settings(config["search"], model, keywords)
        assert settings["folds"] == 5 and space
        record = EXAMPLES / config["search"]["out"]
        if record.exists():
            chosen = json.loads(record.read_text())["params"]
            current = model.hyperparameters() | keywords
            for name, value in chosen.items():
                if name in ("group_weights", "group_sigma", "jitter"):
                    continue
                assert np.allclose(current[name], value, rtol=1e-12), (path, name)


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


# ------------------------------------------------------- configuration types and shapes

FULL_SNAP = """
[data]
train = ["train.extxyz"]
validation_fraction = 0.25
seed = 0
[descriptor]
twojmax = 4
rcutfac = 4.5
radelem = { Cu = 0.5 }
wj = { Cu = 1.0 }
bzeroflag = true
[model]
quadratic = false
energy_weight = 100.0
ridge = 1e-8
solver = "svd"
[groups.rattled]
eweight = 100.0
[baseline]
type = "zbl"
inner = 2.0
outer = 3.0
[output]
model = "cu.mlpot"
lammps = "cu_pot"
"""


def edited(text: str, replace: dict) -> str:
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def fit_error(tmp_path, capsys, text: str) -> str:
    """The error `mlpot fit` prints for a configuration: exit status 1, one
    "mlpot fit: error: ..." line naming the file, no traceback."""
    config = write_config(tmp_path, text)
    assert main(["fit", str(config), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"mlpot fit: error: {config}: ") and captured.err.count("\n") == 1
    assert "training frames" not in captured.out  # found before the data are read
    return captured.err


TYPE_ERRORS = [
    # the shapes of sections
    (FULL_SNAP + "[[groups]]\neweight = 1.0\n", {"[groups.rattled]\neweight = 100.0\n": ""}, r"groups must be one table per group, written \[groups.NAME\]; got \[\[groups\]\], an array of tables"),
    ("groups = 5\n" + FULL_SNAP, {"[groups.rattled]\neweight = 100.0\n": ""}, r"groups must be one table per group, written \[groups.NAME\]; got 5 \(an integer\)"),
    (FULL_SNAP, {"[groups.rattled]\neweight = 100.0\n": "[groups]\nrattled = 3\n"}, r"groups.rattled must be a table: write \[groups.rattled\]; got 3 \(an integer\)"),
    (FULL_SNAP, {"[model]": "[[model]]"}, r"\[model\] must be one table, written \[model\]; got \[\[model\]\], an array of tables"),
    (FULL_SNAP, {"[output]": "[[output]]"}, r"\[output\] must be one table, written \[output\]; got \[\[output\]\]"),
    (FULL_SNAP, {"[baseline]": "[[baseline]]"}, r"\[baseline\] must be one table, written \[baseline\]"),
    ("data = 'train.extxyz'\n" + FULL_SNAP.replace("[data]\n", "[x]\n"), {"[x]\n": "[descriptor]\n", "[descriptor]\ntwojmax": "twojmax"}, r"\[data\] must be one table, written \[data\]; got 'train.extxyz' \(a string\)"),
    # [data]
    (FULL_SNAP, {'train = ["train.extxyz"]': "train = 5"}, r"\[data\]: train must be a path or a non-empty array of paths \(strings\), got 5 \(an integer\)"),
    (FULL_SNAP, {'train = ["train.extxyz"]': "train = []"}, r"\[data\]: train must be .*, got \[\] \(an array\)"),
    (FULL_SNAP, {'train = ["train.extxyz"]': 'train = ["a.json", 3]'}, r"\[data\]: train must be .*, got \['a.json', 3\] \(an array\)"),
    (FULL_SNAP, {"validation_fraction = 0.25": "validation = 1"}, r"\[data\]: validation must be a path"),
    (FULL_SNAP, {"seed = 0": 'seed = "abc"'}, r"\[data\]: seed must be an integer, got 'abc' \(a string\)"),
    (FULL_SNAP, {"seed = 0": "seed = 1.5"}, r"\[data\]: seed must be an integer, got 1.5 \(a float\)"),
    (FULL_SNAP, {"validation_fraction = 0.25": 'validation_fraction = "0.25"'}, r"\[data\]: validation_fraction must be a number, got '0.25' \(a string\)"),
    (FULL_SNAP, {"validation_fraction = 0.25": "validation_fraction = true"}, r"\[data\]: validation_fraction must be a number, got True \(a boolean\)"),
    # [descriptor] (bispectrum)
    (FULL_SNAP, {"twojmax = 4": "twojmax = 4.0"}, r"\[descriptor\]: twojmax must be an integer, got 4.0 \(a float\)"),
    (FULL_SNAP, {"rcutfac = 4.5": 'rcutfac = "4.5"'}, r"\[descriptor\]: rcutfac must be a number, got '4.5' \(a string\)"),
    (FULL_SNAP, {"radelem = { Cu = 0.5 }": "radelem = 0.5"}, r"\[descriptor\]: radelem must be a table of numbers by element"),
    (FULL_SNAP, {"wj = { Cu = 1.0 }": 'wj = { Cu = "1.0" }'}, r"\[descriptor\]: wj must be a table of numbers by element, e.g. \{ Si = 0.5 \}, got \{'Cu': '1.0'\} \(a table\)"),
    (FULL_SNAP, {"bzeroflag = true": "bzeroflag = 1"}, r"\[descriptor\]: bzeroflag must be a boolean \(true or false\), got 1 \(an integer\)"),
    (FULL_SNAP, {"bzeroflag = true": 'switchflag = "false"'}, r"\[descriptor\]: switchflag must be a boolean \(true or false\), got 'false' \(a string\)"),
    # [model] (SNAP)
    (FULL_SNAP, {"quadratic = false": 'quadratic = "false"'}, r"\[model\]: quadratic must be a boolean \(true or false\), got 'false' \(a string\)"),
    (FULL_SNAP, {"quadratic = false": "quadratic = 0"}, r"\[model\]: quadratic must be a boolean \(true or false\), got 0 \(an integer\)"),
    (FULL_SNAP, {"energy_weight = 100.0": "energy_weight = [100.0]"}, r"\[model\]: energy_weight must be a number, got \[100.0\] \(an array\)"),
    (FULL_SNAP, {"ridge = 1e-8": 'ridge = "1e-8"'}, r"\[model\]: ridge must be a number, got '1e-8' \(a string\)"),
    (FULL_SNAP, {'solver = "svd"': 'solver = "qr"'}, r"\[model\]: solver must be one of 'svd', 'normal', got 'qr' \(a string\)"),
    (FULL_SNAP, {"[model]": "[model]\ntype = 5"}, r"\[model\] type must be one of \['snap', 'gap', 'linear', 'nnp'\], got 5"),
    # [groups.NAME], [baseline], [output]
    (FULL_SNAP, {"eweight = 100.0": 'eweight = "100"'}, r"\[groups.rattled\]: eweight must be a number, got '100' \(a string\)"),
    (FULL_SNAP, {"inner = 2.0": 'inner = "2.0"'}, r"\[baseline\]: inner must be a number, got '2.0' \(a string\)"),
    (FULL_SNAP, {'type = "zbl"': "type = 1"}, r"\[baseline\]: type must be a string, got 1 \(an integer\)"),
    (FULL_SNAP, {'model = "cu.mlpot"': "model = 5"}, r"\[output\]: model must be a string, got 5 \(an integer\)"),
    (FULL_SNAP, {'lammps = "cu_pot"': "lammps = true"}, r"\[output\]: lammps must be a string, got True \(a boolean\)"),
    # GAP: [descriptor] (SOAP), [[two_body]], [model], [groups.NAME]
    (GAP_CONFIG, {'species = ["Cu"]': 'species = "Cu"'}, r"\[descriptor\]: species must be an array of element symbols \(strings\), got 'Cu' \(a string\)"),
    (GAP_CONFIG, {"n_max = 3": "n_max = 3.0"}, r"\[descriptor\]: n_max must be an integer, got 3.0 \(a float\)"),
    (GAP_CONFIG, {"theta = 0.8": 'theta = "0.8"'}, r"\[\[two_body\]\] 0: theta must be a number, got '0.8' \(a string\)"),
    (GAP_CONFIG, {"n_sparse = 8": "n_sparse = true"}, r"\[\[two_body\]\] 0: n_sparse must be an integer, got True \(a boolean\)"),
    (GAP_CONFIG, {"zeta = 2": 'zeta = "two"'}, r"\[model\]: zeta must be a number, got 'two' \(a string\)"),
    (GAP_CONFIG, {"n_sparse = 15": "n_sparse = 1.5"}, r"\[model\]: n_sparse must be an integer, got 1.5 \(a float\)"),
    (GAP_CONFIG, {"default_sigma = [0.002, 0.05, 0.01]": "default_sigma = 0.01"}, r"\[model\]: default_sigma must be an array of numbers, got 0.01 \(a float\)"),
    (GAP_CONFIG, {"e0 = { Cu = -0.1 }": "e0 = -0.1"}, r"\[model\]: e0 must be a table of numbers by element, e.g. \{ Si = 0.5 \}, got -0.1 \(a float\)"),
    (GAP_CONFIG, {"seed = 3": 'seed = "3"'}, r"\[model\]: seed must be an integer, got '3' \(a string\)"),
    (GAP_CONFIG, {"jitter = 1e-8": "jitter = false"}, r"\[model\]: jitter must be a number, got False \(a boolean\)"),
    (GAP_CONFIG, {"sigma = [0.004, 0.1, 0.02]": "sigma = 0.004"}, r"\[groups.surface\]: sigma must be an array of numbers, got 0.004 \(a float\)"),
    (GAP_CONFIG, {"[[two_body]]": "[two_body]"}, r"two_body must be an array of tables: write \[\[two_body\]\]"),
]


@pytest.mark.parametrize("text, replace, message", TYPE_ERRORS)
def test_config_type_errors_name_the_key_type_and_value(tmp_path, capsys, text, replace, message):
    err = fit_error(tmp_path, capsys, edited(text, replace))
    assert re.search(message, err), err


@pytest.mark.parametrize("kind", ["snap", "gap"])
def test_every_key_of_the_schema_checks_its_type(kind):
    """Each key every section accepts, given a TOML date (a type no key takes), is refused
    with a message naming its section and key."""
    from mlpot import cli

    date = datetime.date(2024, 1, 1)
    sections = {
        "data": cli._DATA_KEYS,
        "descriptor": cli._DESCRIPTOR_KEYS[cli._MODELS[kind].default_descriptor],
        "model": cli._MODEL_KEYS[kind],
        "baseline": cli._BASELINE_KEYS,
        "output": {k: v for k, v in cli._OUTPUT_KEYS.items() if kind == "snap" or k != "lammps"},
        "groups": cli._GROUP_KEYS[kind],
    }
    if kind == "gap":
        sections["two_body"] = cli._DESCRIPTOR_KEYS["distance_2b"]
    checked = 0
    for section, keys in sections.items():
        for key in keys:
            if key == "type":
                continue
            config = {"data": {"train": ["x"]}, "descriptor": {}, "model": {"type": kind}}
            where = {"groups": "[groups.g]", "two_body": "[[two_body]] 0"}.get(section, f"[{section}]")
            if section == "groups":
                config["groups"] = {"g": {key: date}}
            elif section == "two_body":
                config["two_body"] = [{key: date}]
            else:
                config.setdefault(section, {})[key] = date
            with pytest.raises(ConfigError, match=re.escape(f"{where}: {key} must be ") + r".*\(a date or time\)"):
                cli.check_config(config, "fit.toml")
            checked += 1
    assert checked >= 25


def test_the_schema_lists_every_constructor_keyword():
    """[descriptor] and [[two_body]] take the constructor keywords of the descriptors (SOAP
    without normalize, which GAP sets), [model] those of SNAP/SNAP.fit and GAP: a keyword
    added to a constructor needs its type in the schema."""
    import inspect

    from mlpot import cli

    def keywords(f, drop=()):
        return set(inspect.signature(f).parameters) - {"self", *drop}

    assert set(cli._DESCRIPTOR_KEYS["bispectrum"]) == keywords(mlpot.Bispectrum)
    assert set(cli._DESCRIPTOR_KEYS["soap"]) == keywords(mlpot.SOAP, {"normalize"})
    assert set(cli._DESCRIPTOR_KEYS["distance_2b"]) == keywords(mlpot.Distance2b)
    snap_fit = keywords(mlpot.SNAP.fit, {"frames", "group_weights", "progress"})
    assert set(SNAPFitParams.config_kinds()) == snap_fit
    assert set(cli._SNAP_MODEL_KEYS) == keywords(mlpot.SNAP, {"bispectrum", "baseline"})
    gap = keywords(mlpot.GAP, {"descriptors", "group_sigma", "baseline", "sparse_points"})
    assert set(cli._GAP_MODEL_KEYS) == gap


def test_a_binary_configuration_names_the_file(tmp_path, capsys):
    config = tmp_path / "fit.toml"
    config.write_bytes(b"[data]\ntrain = ['x']\n\xff\xfe\x00binary")
    assert main(["fit", str(config)]) == 1
    assert capsys.readouterr().err.startswith(f"mlpot fit: error: {config}: not a TOML file: not UTF-8 text")


@pytest.mark.parametrize(
    "replace, message",
    [
        ({"validation_fraction = 0.25": "validation_fraction = 1.0"}, r"\[data\]: validation_fraction must be in \[0, 1\), got 1.0"),
        ({"validation_fraction = 0.25": 'validation_fraction = 0.1\nvalidation = ["val.extxyz"]'}, r"\[data\] gives both validation and validation_fraction"),
        ({"energy_weight = 100.0": "energy_weight = -1.0"}, r"\[model\]: energy_weight must be >= 0, got -1.0"),
        ({"ridge = 1e-8": "ridge = -1e-8"}, r"\[model\]: ridge must be >= 0"),
        ({"eweight = 100.0": "eweight = -100.0"}, r"\[groups\]: group_weights\['rattled'\]\['eweight'\] must be >= 0"),
        ({"inner = 2.0": "inner = 3.5"}, r"\[baseline\]: "),
    ],
)
def test_config_values_fail_before_the_data_are_read(tmp_path, capsys, replace, message):
    """Bad values that SNAP.fit or the split would find only after reading the data: the
    training file does not even exist here."""
    err = fit_error(tmp_path, capsys, edited(FULL_SNAP, replace))
    assert re.search(message, err), err


# ------------------------------------------------------------------ output location


def _unwritable_directory(tmp_path) -> Path:
    """A directory no file can be created in (skip if this user can write anywhere)."""
    directory = tmp_path / "read_only"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        (directory / "probe").touch()
    except OSError:
        return directory
    (directory / "probe").unlink()
    if Path("/sys").is_dir():  # sysfs takes no new files, not even from root
        try:
            (Path("/sys") / "mlpot-probe").touch()
        except OSError:
            return Path("/sys")
    pytest.skip("this user can write in a read-only directory")


@pytest.mark.parametrize(
    "output, message",
    [
        ('model = "missing/cu.mlpot"', r"\[output\] model: cannot write {tmp}/missing/cu.mlpot: the directory {tmp}/missing does not exist"),
        ('model = "a_file/cu.mlpot"', r"\[output\] model: cannot write {tmp}/a_file/cu.mlpot: {tmp}/a_file is a file, not a directory"),
        ('model = "a_file/deeper/cu.mlpot"', r"\[output\] model: cannot write .*: {tmp}/a_file is a file, not a directory"),
        ('model = "a_dir"', r"\[output\] model: {tmp}/a_dir is a directory; give a file name"),
        ('model = "cu.mlpot"\nlammps = "missing/cu_pot"', r"\[output\] lammps: cannot write {tmp}/missing/cu_pot.snapcoeff: the directory {tmp}/missing does not exist"),
        ('model = "cu.mlpot"\nlammps = "clash"', r"\[output\] lammps: {tmp}/clash.snapparam is a directory; give a file name"),
        ("unwritable", r"\[output\] model: cannot write files in {unwritable}: (Permission denied|Read-only file system|No such file or directory)"),
    ],
)
def test_a_bad_output_location_fails_before_the_fit(tmp_path, capsys, output, message):
    """The output location is checked before the data are read and the model fitted (the
    training file here does not exist), with a message naming the [output] key and path."""
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "clash.snapparam").mkdir()
    unwritable = _unwritable_directory(tmp_path) if output == "unwritable" else None
    if unwritable is not None:
        output = f'model = "{unwritable}/cu.mlpot"'
    text = FULL_SNAP.replace('model = "cu.mlpot"\nlammps = "cu_pot"', output)
    err = fit_error(tmp_path, capsys, text)
    expected = message.format(tmp=re.escape(str(tmp_path)), unwritable=re.escape(str(unwritable)))
    assert re.search(expected, err), err
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("cu.mlpot"))


def test_fit_warnings_are_printed_as_messages(tmp_path, capsys):
    """A rank-deficient fit from the command line (two perfect crystals: forces vanish)
    prints the warning as "mlpot fit: warning: ..." and still writes the model."""
    frames = []
    for a in (3.55, 3.65):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress())
        frames.append(atoms)
    write(tmp_path / "train.extxyz", frames)
    text = "[data]\ntrain = ['train.extxyz']\n[descriptor]\ntwojmax = 4\nrcutfac = 4.5\nradelem = { Cu = 0.5 }\n"
    assert main(["fit", str(write_config(tmp_path, text)), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "mlpot fit: warning: rank-deficient linear fit: the weighted least-squares system has numerical rank" in err
    assert (tmp_path / "model.mlpot").exists()
