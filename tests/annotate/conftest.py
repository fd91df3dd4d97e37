"""Fixtures of the annotate tests: a tiny numbered video with known behaviour segments."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotate_clip import FPS, FRAMES, TRUTH, numbered


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """``clip.mp4``: 180 frames at 30 fps, 64 px, the frame index drawn in each frame."""
    from verbnoun.data.synth import write_video

    folder = tmp_path_factory.mktemp("annotate-video")
    return write_video(folder / "clip.mp4", (numbered(i) for i in range(FRAMES)), FPS, gop=12)


@pytest.fixture(scope="session")
def truth_csv(clip) -> Path:
    path = clip.with_name("truth.csv")
    rows = "".join(f"clip,{start},{stop},{name}\n" for name, start, stop in TRUTH)
    path.write_text("video_id,start,stop,action\n" + rows, encoding="utf-8")
    return path
