"""Every kind of bad input raises a ValueError (or TypeError) that names the problem."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from hypothesis import given
from hypothesis import strategies as st

import mlpot


@pytest.fixture
def atoms():
    return bulk("Si", "diamond", a=5.43) * (2, 2, 2)


def test_nan_and_inf_positions(atoms):
    atoms.positions[3, 1] = np.nan
    with pytest.raises(ValueError, match="atom 3 is not finite|position of atom 3"):
        mlpot.neighbor_list("ij", atoms, 3.0)
    atoms.positions[3, 1] = np.inf
    with pytest.raises(ValueError, match="atom 3"):
        mlpot.neighbor_list("ij", atoms, 3.0)


def test_non_finite_cell():
    with pytest.raises(ValueError, match="cell is not finite"):
        mlpot.primitive_neighbor_list("ij", True, np.diag([3.0, np.nan, 3.0]), np.zeros((1, 3)), 2.0)


@pytest.mark.parametrize(
    "cell, pbc",
    [
        (np.zeros((3, 3)), True),
        (np.diag([3.0, 0.0, 3.0]), [False, True, False]),
        ([[3, 0, 0], [6, 0, 0], [0, 0, 3]], [True, True, False]),
        ([[3, 0, 0], [0, 3, 0], [3, 3, 0]], True),
    ],
)
def test_zero_volume_periodic_cell(cell, pbc):
    with pytest.raises(ValueError, match="non-zero volume"):
        mlpot.primitive_neighbor_list("ij", pbc, cell, np.zeros((2, 3)), 2.0)


def test_degenerate_cell_is_fine_along_open_directions():
    i = mlpot.primitive_neighbor_list("i", [True, False, False], np.diag([3.0, 0.0, 0.0]), np.zeros((1, 3)), 4.0)
    assert len(i) == 2  # the two images along the periodic direction


@pytest.mark.parametrize("cutoff", [0.0, -1.0, np.nan, np.inf])
def test_bad_cutoff(atoms, cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        mlpot.neighbor_list("ij", atoms, cutoff)


def test_bad_cutoff_type(atoms):
    with pytest.raises(TypeError, match="cutoff"):
        mlpot.neighbor_list("ij", atoms, {("Si", "Si"): "far"})


def test_unknown_element_symbol_in_cutoff_dict(atoms):
    with pytest.raises(ValueError, match="unknown element symbol 'Xx'"):
        mlpot.neighbor_list("ij", atoms, {("Si", "Xx"): 3.0})


def test_bad_radii(atoms):
    with pytest.raises(ValueError, match="radii must have shape"):
        mlpot.neighbor_list("ij", atoms, [1.0, 2.0])
    with pytest.raises(ValueError, match="radius of atom 1"):
        mlpot.neighbor_list("ij", atoms, [1.0, -1.0] + [1.0] * (len(atoms) - 2))


def test_mismatched_shapes():
    with pytest.raises(ValueError, match=r"positions must have shape \(n_atoms, 3\)"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(3) * 3, np.zeros((4, 2)), 2.0)
    with pytest.raises(ValueError, match=r"cell must have shape \(3, 3\)"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(2) * 3, np.zeros((4, 3)), 2.0)
    with pytest.raises(ValueError, match="numbers must have shape"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(3) * 3, np.zeros((4, 3)), 2.0, numbers=[14, 14])
    with pytest.raises(ValueError, match="positions must be an array of numbers"):
        mlpot.primitive_neighbor_list("ij", True, np.eye(3) * 3, [["a", "b", "c"]], 2.0)


def test_bad_quantities(atoms):
    with pytest.raises(ValueError, match="unsupported quantities"):
        mlpot.neighbor_list("ijx", atoms, 3.0)
    with pytest.raises(ValueError, match="non-empty"):
        mlpot.neighbor_list("", atoms, 3.0)


def test_not_atoms():
    with pytest.raises(TypeError, match="ase.Atoms"):
        mlpot.neighbor_list("ij", [[0, 0, 0]], 3.0)


def test_absurd_number_of_images_is_refused_quickly():
    atoms = Atoms("Si", cell=np.eye(3) * 0.5, pbc=True)
    with pytest.raises(ValueError, match="periodic images"):
        mlpot.neighbor_list("ij", atoms, 1000.0)


def test_atoms_absurdly_far_outside_the_cell():
    atoms = Atoms("Si2", positions=[[0, 0, 0], [1e15, 0, 0]], cell=np.eye(3) * 3, pbc=True)
    with pytest.raises(ValueError, match="outside the cell"):
        mlpot.neighbor_list("ij", atoms, 2.0)


def test_bad_thread_count():
    with pytest.raises(ValueError, match="number of threads"):
        mlpot.set_num_threads(-1)


# ------------------------------------------------------------------ boolean parameters

NOT_BOOLEAN = st.one_of(
    st.text(max_size=6),
    st.floats(allow_nan=True),
    st.integers().filter(lambda n: n not in (0, 1)),
    st.none(),
    st.lists(st.booleans(), max_size=2),
    st.sampled_from(["no", "false", "False", "0", "yes", "", np.float64(1.0), np.int64(2)]),
)


def _snap(**kw):
    return mlpot.SNAP(mlpot.Bispectrum(2, 4.1, radelem={"Si": 0.5}), **kw)


#: every boolean parameter of the public classes and methods, as a call taking the value
FLAGS = {
    **{
        flag: (lambda flag: lambda v: mlpot.Bispectrum(2, 4.1, radelem={"Si": 0.5}, **{flag: v}))(flag)
        for flag in ("switchflag", "bzeroflag", "chemflag", "bnormflag", "wselfallflag")
    },
    "quadratic": lambda v: _snap(quadratic=v),
    "normalize": lambda v: mlpot.SOAP(species=["Si"], n_max=2, l_max=2, normalize=v),
    "gradients": lambda v: mlpot.Bispectrum(2, 4.1, radelem={"Si": 0.5}).compute(bulk("Si"), gradients=v),
    "return_descriptors": lambda v: mlpot.Bispectrum(2, 4.1, radelem={"Si": 0.5}).forces(
        bulk("Si"), np.zeros(5), return_descriptors=v
    ),
    "progress": lambda v: _snap().fit([], progress=v),
    "variance": lambda v: mlpot.GAP(mlpot.SOAP(species=["Si"], n_max=2, l_max=2)).calculator(variance=v),
}


@pytest.mark.parametrize("name", sorted(FLAGS))
@given(value=NOT_BOOLEAN)
def test_boolean_parameters_refuse_anything_but_booleans(name, value):
    # bool("no") is True: a string, float or None must never switch a flag on
    with pytest.raises((TypeError, ValueError), match=name):
        FLAGS[name](value)


def test_boolean_parameters_accept_bools_numpy_bools_and_0_1():
    for value, expected in [(True, True), (np.bool_(False), False), (1, True), (0, False), (np.int64(1), True)]:
        bs = mlpot.Bispectrum(2, 4.1, radelem={"Si": 0.5}, switchflag=value, chemflag=value)
        assert bs.switchflag is expected and bs.chemflag is expected
        assert _snap(quadratic=value).quadratic is expected
        assert mlpot.SOAP(species=["Si"], n_max=2, l_max=2, normalize=value).normalize is expected
    with pytest.raises(TypeError, match="switchflag must be True or False, got 'no'"):
        mlpot.Bispectrum(2, 4.1, radelem={"Si": 0.5}, switchflag="no")
    with pytest.raises(TypeError, match="quadratic"):
        _snap(quadratic="false")
    with pytest.raises(TypeError, match="progress"):
        mlpot.GAP(mlpot.SOAP(species=["Si"], n_max=2, l_max=2)).fit([], progress="no")
    with pytest.raises(TypeError, match="variance"):
        mlpot.GAP(mlpot.SOAP(species=["Si"], n_max=2, l_max=2)).predict(bulk("Si"), variance="no")


# ------------------------------------------------------------------ coincident atoms


def _descriptor_calls():
    """Every path from atoms to a descriptor: values, gradients, the adjoint, the models."""
    bs = mlpot.Bispectrum(2, 4.1, radelem={"Si": 0.5})
    soap = mlpot.SOAP(cutoff=4.0, n_max=2, l_max=2, species=["Si"])
    snap = mlpot.SNAP(bs)
    snap.coefficients = {"Si": np.ones(snap.n_coefficients)}
    pair = mlpot.models.gap._Term(mlpot.Distance2b(cutoff=4.0), 1.0, [1.0, 2.0, 3.0])
    structure = lambda a: mlpot.models.gap._structure(a, [14])  # noqa: E731
    return {
        "bispectrum": bs.compute,
        "bispectrum gradients": lambda a: bs.compute(a, gradients=True),
        "bispectrum adjoint": lambda a: bs.forces(a, np.ones(bs.n_features)),
        "SNAP": snap.predict,
        "SNAP design rows": snap.design_rows,
        "SOAP": soap.compute,
        "SOAP gradients": lambda a: soap.compute(a, gradients=True),
        "distance_2b rows": lambda a: pair.core.rows(structure(a)),
    }


CALLS = _descriptor_calls()


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_dimer_at_zero_distance_is_an_error(call):
    # before: the bispectrum dropped the pair, so a dimer at r = 0 had a finite energy
    dimer = Atoms("Si2", positions=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0 + 1e-11]])
    with pytest.raises(ValueError, match="atoms 0 and 1 are at the same position"):
        CALLS[call](dimer)
    apart = Atoms("Si2", positions=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0 + 1e-9]])
    CALLS[call](apart)  # close, but not coincident: no error


@given(
    atom=st.integers(0, 7),
    shift=st.tuples(*[st.integers(-2, 2)] * 3),
    call=st.sampled_from(sorted(CALLS)),
)
def test_coincident_atoms_are_named_with_their_periodic_shift(atom, shift, call):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=atom)
    # a new atom n on atom's image at r_atom + shift . cell: the pair (atom, n) has S = -shift
    n = len(atoms)
    atoms += Atoms("Si", positions=[atoms.positions[atom] + np.array(shift) @ atoms.cell.array])
    with pytest.raises(ValueError) as error:
        CALLS[call](atoms)
    message = str(error.value)
    assert f"atoms {atom} and {n}" in message, message
    if any(shift):
        assert "S = [{}, {}, {}]".format(*(-s for s in shift)) in message, message
    else:
        assert "lattice translation" not in message, message
