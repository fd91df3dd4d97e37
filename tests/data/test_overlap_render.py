"""The overlapping kitchen's pixels: each half of a frame shows one of the segment's labels.

The left half is the kitchen's own video squeezed to half width; the right half shows the second
action of a two-label segment and nothing but the resting hand in a one-label segment, so the
truth written in the annotations is what the frames show.
"""

from __future__ import annotations

import numpy as np
import pytest

from verbnoun.data.dataset import open_dataset
from verbnoun.data.kitchen import NOUNS
from verbnoun.data.layouts import ChunkLayout
from verbnoun.data.overlap import overlap_script, render_overlap_kitchen
from verbnoun.data.synth import _COLOURS
from verbnoun.data.video import VideoReader


def colour_pixels(half: np.ndarray, noun: int) -> int:
    colour = np.array(_COLOURS[NOUNS[noun].colour], np.int16)
    return int((np.abs(half.astype(np.int16) - colour).sum(axis=2) < 45).sum())


@pytest.mark.slow
def test_each_half_shows_one_label(tmp_path):
    summary = render_overlap_kitchen(tmp_path, videos=2, seed=0, workers=2)
    script = overlap_script(2, seed=0)
    assert summary["num_two_label_segments"] == sum(len(v.right.segments) for v in script) > 0
    dataset = open_dataset(summary["dataset"])
    reader = VideoReader(ChunkLayout(tmp_path / "videos"))
    segments = [s for split in ("train", "validation") for s in dataset.segments(split)]
    assert len(segments) == summary["num_segments"]
    for segment in segments:
        frame = reader.read(segment.video_id, segment.start, segment.stop, 1).frames[0]
        assert frame.shape == (128, 128, 3)
        left, right = frame[8:, :64], frame[8:, 64:]
        first_noun = int(segment.action_ids[0].split(":")[1])
        assert colour_pixels(left, first_noun) >= 10, segment
        if len(segment.action_ids) == 2:
            second_noun = int(segment.action_ids[1].split(":")[1])
            assert colour_pixels(right, second_noun) >= 10, segment
        else:
            assert all(colour_pixels(right, n) < 5 for n in range(len(NOUNS))), segment
