"""mlpot.io.read on the real DFT data in ../shared/data (or $MLPOT_DATA), and the proof of
its unit, sign and Voigt-order conventions by finite-difference strain tests.

Between two nearby strained copies of one structure, the DFT energy difference must equal
the work of the stress read from the files (ASE convention sigma = (1/V) dE/d(strain);
trapezoid rule along the straight path between the cells, forces for non-affine moves:
``mlpot.io.strain_pairs``). Each test also shows that the wrong sign, the wrong Voigt
order or the wrong unit does not. Skipped when the data are absent, except in CI.
"""

import collections
import re
import warnings

import pytest
from test_io import relabelled as with_stress  # copies with a deliberately wrong stress

from mlpot.io import read, strain_pairs


pytestmark = pytest.mark.filterwarnings("ignore:.*Voigt order.*:UserWarning")


def in_group(frames, name):
    return [a for a in frames if a.info["group"] == name]


# ---------------------------------------------------------------------------------------
# Record counts and groups


MLEARN = {
    "Ge": (228, {"AIMD-NVT": 90, "Vacancy": 72, "Elastic": 55, "Surface": 11}),
    "Li": (241, {"AIMD-NVT": 172, "Vacancy": 36, "Elastic": 22, "Surface": 11}),
    "Mo": (194, {"AIMD-NVT": 108, "Elastic": 56, "Vacancy": 21, "Surface": 9}),
    "Si": (214, {"AIMD-NVT": 90, "Vacancy": 57, "Elastic": 55, "Surface": 12}),
}


@pytest.mark.parametrize("element", sorted(MLEARN))
def test_mlearn_counts_and_groups(data, element):
    frames = read(data / "mlearn" / element / "training.json")
    total, groups = MLEARN[element]
    assert len(frames) == total
    assert collections.Counter(a.info["group"] for a in frames) == groups
    assert {s for a in frames for s in a.get_chemical_symbols()} == {element}
    for a in frames:
        assert a.get_forces().shape == (len(a), 3)
        assert a.get_stress().shape == (6,)
        assert a.pbc.all()


def test_monbtaw_counts_and_groups(data):
    frames = read(data / "MoNbTaW" / "training")
    counts = collections.Counter(a.info["group"] for a in frames)
    assert len(frames) == 5282
    assert sum(len(a) for a in frames) == 108464
    # one group per file, named after it (maml's data groups)
    files = sorted(p.stem for p in (data / "MoNbTaW" / "training").glob("*.json"))
    assert sorted(counts) == files
    assert counts["Mo_Elastic"] == 121 and counts["TaW_SS"] == 658 and counts["W_Surface"] == 13
    assert {s for a in frames for s in a.get_chemical_symbols()} == {"Mo", "Nb", "Ta", "W"}


def test_fitsnap_counts_match_fitsnap_metrics(data):
    """Per-group frame, force-component and stress-component counts equal the ncount
    column of FitSNAP's own Ta_metrics.md (an independent reading of the same files)."""
    frames = read(data / "fitsnap_Ta" / "JSON")
    expected = collections.defaultdict(dict)
    for line in (data / "fitsnap_Ta" / "Ta_metrics.md").read_text().splitlines():
        m = re.match(r"\|\s*\('([^']+)', 'Unweighted', '(\w+)'\)\s*\|\s*(\d+)", line)
        if m:
            expected[m.group(1)][m.group(2)] = int(m.group(3))
    assert len(expected) == 13  # 12 groups and *ALL
    for name, counts in expected.items():
        group = frames if name == "*ALL" else in_group(frames, name)
        assert len(group) == counts["Energy"], name
        assert sum(3 * len(a) for a in group) == counts["Force"], name
        assert 6 * sum("stress" in a.calc.results for a in group) == counts["Stress"], name
    assert {s for a in frames for s in a.get_chemical_symbols()} == {"Ta"}


# ---------------------------------------------------------------------------------------
# Finite-difference strain tests: right conventions fit, wrong ones do not

# Swapping the shear components of a correctly read ASE stress (yz xz xy = indices 3 4 5)
# reproduces what reading the file in another order would give.
SWAP_YZ_XZ = [0, 1, 2, 4, 3, 5]
SWAP_YZ_XY = [0, 1, 2, 5, 4, 3]


def assert_discriminates(frames, bound, wrong_orders=True):
    right = strain_pairs(frames)
    assert len(right.pairs) >= 10
    assert right.relative_residual < bound
    flipped = strain_pairs(with_stress(frames, lambda s: -s)).relative_residual
    assert flipped > 1.5
    if wrong_orders:
        for order in (SWAP_YZ_XZ, SWAP_YZ_XY):
            wrong = strain_pairs(with_stress(frames, lambda s, o=order: s[o])).relative_residual
            assert wrong > 2 * right.relative_residual
    return right


@pytest.mark.parametrize("element, bound", [("Ge", 0.02), ("Si", 0.02), ("Mo", 0.02)])
def test_mlearn_stress_convention(data, element, bound):
    # kbar, positive under compression; Ge and Si in VASP's order, Mo in LAMMPS's order
    # (found by the reader, which warns)
    frames = in_group(read(data / "mlearn" / element / "training.json"), "Elastic")
    assert_discriminates(frames, bound)


def test_mlearn_mo_voigt_order_is_lammps(data):
    path = data / "mlearn" / "Mo" / "training.json"
    with pytest.warns(UserWarning, match=r"xx yy zz xy xz yz \(lammps\)"):
        detected = in_group(read(path), "Elastic")
    vasp = in_group(read(path, stress_order="vasp"), "Elastic")
    lammps = in_group(read(path, stress_order="lammps"), "Elastic")
    assert strain_pairs(detected).relative_residual == strain_pairs(lammps).relative_residual
    assert strain_pairs(vasp).relative_residual > 10 * strain_pairs(lammps).relative_residual
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read(data / "mlearn" / "Ge" / "training.json")  # VASP's order: no warning


@pytest.mark.parametrize("element, bound", [("Mo", 0.03), ("Nb", 0.04), ("Ta", 0.03), ("W", 0.03)])
def test_monbtaw_stress_convention(data, element, bound):
    frames = read(data / "MoNbTaW" / "training" / f"{element}_Elastic.json")
    assert_discriminates(frames, bound)


@pytest.mark.parametrize("group", ["Volume_A15", "Volume_BCC", "Volume_FCC", "Elastic_FCC"])
def test_fitsnap_stress_convention(data, group):
    # bar, positive under compression; the Volume groups also pin the unit (kbar or GPa
    # would be 10^3 or 10^4 times off). Elastic_FCC's energy steps (~3 meV) are near the
    # DFT noise, so its bound is loose, but it still fixes the sign.
    frames = in_group(read(data / "fitsnap_Ta" / "JSON" / group), group)
    bound = 0.3 if group.startswith("Elastic") else 0.02
    assert_discriminates(frames, bound, wrong_orders=False)  # 3x3 matrices: no order to get wrong
    for factor in (1e3, 1e-3):
        assert strain_pairs(with_stress(frames, lambda s, f=factor: f * s)).relative_residual > 0.5
