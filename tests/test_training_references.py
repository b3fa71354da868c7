"""Reference data of training frames: a frame whose atoms changed after it was labelled is
refused with a message that says so (and names what changed), by every model that fits."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

import mlpot


def labelled_frames(n=3):
    """Rattled fcc Cu cells labelled by EMT on a SinglePointCalculator, as readers give."""
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress()
        )
        frames.append(atoms)
    return frames


def snap():
    return mlpot.SNAP(mlpot.Bispectrum(2, 4.5, radelem={"Cu": 0.5}))


def gap():
    soap = mlpot.SOAP(cutoff=4.0, n_max=2, l_max=2, species=["Cu"])
    return mlpot.GAP(soap, n_sparse=4, e0={"Cu": 0.0})


FITS = {
    "SNAP.fit": lambda frames: snap().fit(frames, progress=False),
    "SNAP.assemble": lambda frames: snap().assemble(frames, progress=False),
    "GAP.fit": lambda frames: gap().fit(frames, progress=False),
    "GAP.assemble": lambda frames: gap().assemble(frames, progress=False),
}


def move_positions(atoms):
    atoms.positions[1] += 0.1


def strain_cell(atoms):
    atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)


def swap_element(atoms):
    atoms.numbers[0] = 28


@pytest.mark.parametrize("fit", list(FITS), ids=list(FITS))
@pytest.mark.parametrize(
    "change, changed",
    [(move_positions, "positions"), (strain_cell, "cell and positions"), (swap_element, "numbers")],
)
def test_atoms_changed_after_labelling_are_named(fit, change, changed):
    frames = labelled_frames()
    change(frames[2])
    frames[2].info["group"] = "moved"
    with pytest.raises(ValueError) as error:
        FITS[fit](frames)
    message = str(error.value)
    assert message.startswith("frame 2 (group 'moved'): the atoms changed since they were labelled")
    assert f"their {changed} differ" in message
    assert "Label the frame again" in message and "atoms.copy()" in message


@pytest.mark.parametrize("fit", list(FITS), ids=list(FITS))
def test_a_moved_copy_leaves_the_labelled_frame_usable(fit):
    frames = labelled_frames()
    moved = frames[0].copy()
    move_positions(moved)
    FITS[fit](frames)  # no error: the labelled frames are unchanged
    assert not np.array_equal(moved.positions, frames[0].positions)


def test_a_calculator_without_results_still_says_so():
    (atoms,) = labelled_frames(1)
    atoms.calc = SinglePointCalculator(atoms)
    move_positions(atoms)
    with pytest.raises(ValueError, match="frame 0 has no reference energy, forces or stress"):
        snap().fit([atoms], progress=False)



def test_errors_on_a_moved_frame_says_the_atoms_changed():
    frames = labelled_frames()
    model = snap().fit(frames, progress=False)
    frames[1].positions[0] += 0.1
    with pytest.raises(ValueError, match="frame 1 .*changed since they were labelled"):
        mlpot.errors(model, frames, progress=False)
