"""mlpot.lammps against LAMMPS pair_style snap: models written by mlpot, and the published
SNAP/qSNAP models read by mlpot, give LAMMPS's energies, forces and stress."""

import os
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

import mlpot
from lammps_oracle import compute_snap, pair_snap, symmetrize_chem_coefficients
from snap_helpers import descriptor, known_model, structure

RTOL = 1e-10
DATA = Path(os.environ.get("MLPOT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def assert_matches_lammps(model, atoms, coeff, param):
    energy, forces, virial = pair_snap(atoms, model.bispectrum, coeff, param)
    p = model.predict(atoms)
    assert abs(p["energy"] - energy) <= RTOL * abs(energy), (p["energy"], energy)
    scale = np.abs(forces).max()
    assert np.abs(p["forces"] - forces).max() <= RTOL * scale
    stress = -virial / atoms.get_volume()
    assert np.abs(p["stress"] - stress).max() <= RTOL * np.abs(stress).max()


@pytest.mark.parametrize(
    "quadratic, flags",
    [
        (False, {}),
        (True, {}),
        (True, dict(bzeroflag=True, rmin0=0.2)),
        (True, dict(switchflag=False)),
        (False, dict(chemflag=True, bnormflag=True, bzeroflag=True)),
    ],
)
def test_written_model_runs_in_lammps_with_the_same_results(tmp_path, quadratic, flags):
    bs = descriptor(4, **flags)
    model = known_model(bs, quadratic, seed=50)
    # pair_style snap's chemflag forces assume symmetry-equivalent weights are equal
    model.coefficients = symmetrize_chem_coefficients(bs, model.coefficients)
    coeff, param = mlpot.lammps.write_snap(model, tmp_path / "model")
    assert_matches_lammps(model, structure(np.random.default_rng(51), reps=(2, 2, 2)), coeff, param)
    again = mlpot.lammps.read_snap(coeff, param)
    assert again.quadratic == quadratic and repr(again.bispectrum) == repr(bs)
    for e in bs.elements:
        assert again.coefficients[e].tobytes() == model.coefficients[e].tobytes()


def _published():
    found = sorted(DATA.glob("mlearn/*/published_*/*.snapcoeff"))
    found += sorted(DATA.glob("MoNbTaW/published_snap/*.snapcoeff"))
    found += sorted(DATA.glob("fitsnap_Ta/*.snapcoeff"))
    return [pytest.param(p, id=str(p.relative_to(DATA).parent)) for p in found]


LATTICES = {
    "Cu": ("fcc", 3.61, (2, 2, 2)),
    "Ni": ("fcc", 3.52, (2, 2, 2)),
    "Mo": ("bcc", 3.16, (2, 2, 2)),
    "Li": ("bcc", 3.44, (2, 2, 2)),
    "Ta": ("bcc", 3.31, (2, 2, 2)),
    "Si": ("diamond", 5.43, (1, 1, 1)),
    "Ge": ("diamond", 5.66, (1, 1, 1)),
}


def _rattled(elements, seed):
    """A rattled, tilted cell of the first element's lattice with random element labels."""
    rng = np.random.default_rng(seed)
    kind, a, reps = LATTICES.get(elements[0], ("bcc", 3.2, (2, 2, 2)))
    atoms = bulk(elements[0], kind, a=a, cubic=True) * reps
    cell = atoms.cell.array.copy()
    cell[1, 0], cell[2, 1] = 0.25, -0.15
    atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
    atoms.set_chemical_symbols(rng.choice(list(elements), len(atoms)))
    atoms.wrap()
    return atoms


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA} (set MLPOT_DATA)")
@pytest.mark.parametrize("coeff", _published())
def test_published_models_give_lammps_results(tmp_path, coeff):
    param = coeff.with_suffix(".snapparam")
    model = mlpot.lammps.read_snap(coeff, param)
    # current LAMMPS rejects the legacy diagonalstyle keyword that mlpot ignores
    clean = tmp_path / "clean.snapparam"
    clean.write_text("".join(l for l in param.read_text().splitlines(True) if not l.strip().startswith("diagonalstyle")))
    atoms = _rattled(model.elements, seed=len(str(coeff)))
    assert_matches_lammps(model, atoms, str(coeff), str(clean))


def _files(tmp_path, coeff_text, param_text):
    coeff, param = tmp_path / "m.snapcoeff", tmp_path / "m.snapparam"
    coeff.write_text(coeff_text)
    param.write_text(param_text)
    return coeff, param


def test_reader_accepts_comments_quotes_legacy_keywords_and_defaults(tmp_path):
    values = "\n".join(f"{0.1 * k!r}  # B[{k}]" for k in range(6))
    coeff, param = _files(
        tmp_path,
        f"# comment\n\n1 6\n'Ni' 0.5 1.0\n{values}\n",
        "rcutfac 4.0 # cutoff\ntwojmax 2\ndiagonalstyle 3\nchunksize 100\n",
    )
    model = mlpot.lammps.read_snap(coeff, param)
    bs = model.bispectrum
    # pair_style snap's defaults
    assert (bs.rfac0, bs.rmin0, bs.switchflag, bs.bzeroflag, model.quadratic) == (0.99363, 0.0, True, True, False)
    np.testing.assert_array_equal(model.coefficients["Ni"], [0.1 * k for k in range(6)])


@pytest.mark.parametrize(
    "coeff_text, param_text, message",
    [
        ("1 6\nNi 0.5 1.0\n0.1\n0.2\n", "rcutfac 4.0\ntwojmax 2\n", "ends early"),
        ("1 7\nNi 0.5 1.0\n" + "0.1\n" * 7, "rcutfac 4.0\ntwojmax 2\n", "needs 6"),
        ("1 6\nNi 0.5 1.0\n" + "0.1\n" * 6, "rcutfac 4.0\ntwojmax 2\nfoo 1\n", "unknown SNAP parameter 'foo'"),
        ("1 6\nNi 0.5 1.0\n" + "0.1\n" * 6, "twojmax 2\n", "rcutfac is missing"),
        ("1 6\nNi 0.5 1.0\n" + "0.1\n" * 6, "rcutfac 4.0\ntwojmax 2\nswitchinnerflag 1\n", "not supported"),
        ("1 6\nNi 0.5 1.0\n" + "0.1\n" * 5 + "x\n", "rcutfac 4.0\ntwojmax 2\n", "bad coefficient 'x'"),
        ("1 6\nNi 0.5\n" + "0.1\n" * 6, "rcutfac 4.0\ntwojmax 2\n", "symbol radius weight"),
        ("1 6\nNi 0.5 1.0\n" + "0.1\n" * 6, "rcutfac 4.0\ntwojmax 3\n", "twojmax"),
        ("1 6\nXx 0.5 1.0\n" + "0.1\n" * 6, "rcutfac 4.0\ntwojmax 2\n", "Xx"),
        ("1 6\nNi 0.5 1.0\n" + "nan\n" * 6, "rcutfac 4.0\ntwojmax 2\n", "NaN"),
    ],
)
def test_bad_lammps_files_raise_model_file_errors(tmp_path, coeff_text, param_text, message):
    with pytest.raises(mlpot.ModelFileError, match=message):
        mlpot.lammps.read_snap(*_files(tmp_path, coeff_text, param_text))


GOOD_COEFF = "1 6\nNi 0.5 1.0\n" + "0.1\n" * 6
GOOD_PARAM = "rcutfac 4.0\ntwojmax 2\n"
TWO_ELEMENTS = "2 6\nNi 0.5 1.0\n" + "0.1\n" * 6 + "Al 0.6 0.9\n" + "0.2\n" * 6


@pytest.mark.parametrize(
    "coeff_text, param_text, message",
    [
        # snapparam: a repeated keyword (LAMMPS takes the last), a flag other than 0/1
        (GOOD_COEFF, GOOD_PARAM + "rfac0 0.9\nrfac0 0.99\n", r"m\.snapparam:4: rfac0 is given twice \(first on line 3\)"),
        (GOOD_COEFF, "twojmax 2\nrcutfac 4.0\ntwojmax 4\n", r"m\.snapparam:3: twojmax is given twice \(first on line 1\)"),
        (GOOD_COEFF, GOOD_PARAM + "switchflag 2\n", r"m\.snapparam:3: switchflag must be 0 or 1, got 2"),
        (GOOD_COEFF, GOOD_PARAM + "bzeroflag -1\n", r"m\.snapparam:3: bzeroflag must be 0 or 1, got -1"),
        (GOOD_COEFF, GOOD_PARAM + "quadraticflag 3\n", r"m\.snapparam:3: quadraticflag must be 0 or 1"),
        # snapcoeff: an element block beyond the declared count, trailing content
        (TWO_ELEMENTS.replace("2 6", "1 6", 1), GOOD_PARAM, r"m\.snapcoeff:9: an element block \(Al\) after the 1 declared on line 1"),
        (GOOD_COEFF + "end\n", GOOD_PARAM, r"m\.snapcoeff:9: unexpected 'end' after the 1 element block\(s\) declared on line 1"),
        # snapcoeff: an element with more or fewer coefficients than ncoeffall
        (GOOD_COEFF + "0.3\n", GOOD_PARAM, r"m\.snapcoeff:9: element Ni has more coefficients than the 6 per element declared on line 1"),
        (TWO_ELEMENTS.replace("0.1\nAl", "0.1\n0.1\nAl", 1), GOOD_PARAM, r"m\.snapcoeff:9: element Ni has more coefficients than the 6"),
        (TWO_ELEMENTS.replace("0.1\nAl", "Al", 1), GOOD_PARAM, r"m\.snapcoeff:8: element Ni has 5 coefficients, not the 6 per element declared on line 1"),
    ],
)
def test_lammps_files_with_extra_or_repeated_content_are_refused(tmp_path, coeff_text, param_text, message):
    """What LAMMPS would silently take last-wins, read as 1, or ignore is an error naming
    the file, the line and the problem."""
    with pytest.raises(mlpot.ModelFileError, match=message):
        mlpot.lammps.read_snap(*_files(tmp_path, coeff_text, param_text))


def test_two_element_file_and_legacy_diagonalstyle_still_read(tmp_path):
    model = mlpot.lammps.read_snap(*_files(tmp_path, TWO_ELEMENTS, GOOD_PARAM + "diagonalstyle 3\n"))
    assert model.elements == ("Ni", "Al")
    np.testing.assert_array_equal(model.coefficients["Al"], [0.2] * 6)


def test_writing_a_model_with_a_baseline_warns(tmp_path):
    from snap_helpers import PairBaseline

    model = known_model(descriptor(2), False, seed=52, baseline=PairBaseline())
    with pytest.warns(UserWarning, match="baseline"):
        mlpot.lammps.write_snap(model, tmp_path / "m")
    with pytest.raises(ValueError, match="no coefficients"):
        mlpot.lammps.write_snap(mlpot.SNAP(descriptor(2)), tmp_path / "n")


@pytest.mark.parametrize("quadratic", [False, True])
@pytest.mark.parametrize("flags", [{}, dict(bzeroflag=True, chemflag=True, bnormflag=True)])
def test_design_rows_equal_lammps_compute_snap(quadratic, flags):
    """The Rust design rows against LAMMPS ``compute snap`` (with quadraticflag), column for
    column: LAMMPS has no constant column, mlpot puts one first in each element block."""
    from mlpot import _core

    bs = descriptor(2 if flags else 4, **flags)
    atoms = structure(np.random.default_rng(53), reps=(2, 1, 1))
    rows = _core.Term.linear(bs._core, quadratic).rows(bs._structure(atoms))
    ref = compute_snap(atoms, bs, quadratic)[:, :-1]
    n_el = len(bs.elements)
    ours = np.vstack([rows["energy"], rows["forces"], rows["virial"]]).reshape(-1, n_el, mlpot.SNAP(bs, quadratic).n_coefficients)
    counts = [atoms.get_chemical_symbols().count(e) for e in bs.elements]
    np.testing.assert_array_equal(ours[0, :, 0], counts)
    np.testing.assert_array_equal(ours[1:, :, 0], 0.0)
    ours = ours[:, :, 1:].reshape(len(ref), -1)
    assert np.abs(ours - ref).max() <= RTOL * np.abs(ref).max()
