"""Shared fixtures: the real EK100 annotations (read in place, never copied) and small tables."""

from __future__ import annotations

from pathlib import Path

import pytest

EK100 = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "epic-kitchens-100-annotations"
)


@pytest.fixture(scope="session")
def ek100_dir() -> Path:
    if not (EK100 / "EPIC_100_validation.csv").is_file():
        pytest.skip(f"EK100 annotations not found at {EK100}")
    return EK100


@pytest.fixture(scope="session")
def ek100(ek100_dir):
    from verbnoun.data.annotations import EK100Annotations

    return EK100Annotations(ek100_dir)
