"""The tiny numbered clip of the annotate tests: its constants and frames (tests import these from
here, not from conftest, whose module name other test folders share)."""

from __future__ import annotations

import numpy as np

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
