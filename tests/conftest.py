"""Shared test configuration: hypothesis profiles and access to the oracle libraries."""

import importlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# HYPOTHESIS_PROFILE=thorough for a long local run
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "default"))


def oracle(module: str):
    """Import an oracle library. Outside CI a missing oracle skips the test with the reason;
    in CI (CI=true) oracles must be installed, so a missing one fails the test."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"oracle {module!r} is not installed ({error}); `pip install .[test]` installs it"
        if IN_CI:
            pytest.fail(message + " -- oracle tests must run in CI")
        pytest.skip(message)


@pytest.fixture(scope="session")
def vesin():
    return oracle("vesin")


#: the real DFT data: ../shared/data beside the repository, or $MLPOT_DATA
DATA = Path(os.environ.get("MLPOT_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def _shared_folder(root: Path, what: str, variable: str, kind: str) -> Path:
    """``root`` if it holds a README.md; otherwise skip, or fail in CI (``kind`` tests must
    run there)."""
    if not (root / "README.md").is_file():
        message = f"the {what} are not at {root} (set {variable})"
        if IN_CI:
            pytest.fail(message + f" -- {kind} tests must run in CI")
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def data() -> Path:
    """The shared data folder; a missing folder skips, except in CI where it fails."""
    return _shared_folder(DATA, "reference data", "MLPOT_DATA", "data")


@pytest.fixture(scope="session")
def n2p2_fixtures() -> Path:
    """n2p2's reference values for the published mlearn NNPs (../shared/oracles/n2p2, or
    $MLPOT_ORACLES/n2p2); missing, they skip, except in CI where they fail."""
    root = Path(os.environ.get("MLPOT_ORACLES") or DATA.parent / "oracles") / "n2p2"
    return _shared_folder(root, "n2p2 oracle fixtures", "MLPOT_ORACLES", "oracle")
