"""Fixtures of the annotate tests: a tiny numbered video with known behaviour segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FPS = 30
FRAMES = 180  # 6 s
BEHAVIOURS = "groom,rear,walk"
# (action, start s, stop s): frames 15-45, 60-120, 135-165; background elsewhere
TRUTH = (("groom", 0.5, 1.5), ("rear", 2.0, 4.0), ("walk", 4.5, 5.5))


def numbered(index: int, size: int = 64) -> np.ndarray:
    from verbnoun.data.synth import draw_frame_number

    image = np.full((size, size, 3), 90, np.uint8)
    x = (index * 3) % (size - 12)
    image[30:42, x : x + 12] = (200, 60, 40)
    return draw_frame_number(image, index, bits=10)


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
