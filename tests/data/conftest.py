"""Fixtures of the data tests: generated numbered videos and the real sample clips."""

from __future__ import annotations

from pathlib import Path

import pytest
from videotools import SAMPLE_VIDEOS, Videos


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> Videos:
    return Videos(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="session")
def sample_videos() -> Path:
    if not (SAMPLE_VIDEOS / "248.mp4").is_file():
        pytest.skip(f"sample videos not found at {SAMPLE_VIDEOS}")
    return SAMPLE_VIDEOS
