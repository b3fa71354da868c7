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
from ase.io import write

from mlpot.cli import ConfigError, load_config, main, split_frames


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


@pytest.mark.slow
def test_demo_runs_end_to_end():
    result = subprocess.run(
        [sys.executable, "-m", "mlpot.cli", "demo"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "EMT" in result.stdout and "stand" in result.stdout
    assert "validation errors" in result.stdout and "energy drift" in result.stdout
