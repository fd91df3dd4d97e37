"""SPEC 2's frame indices: midpoints of N+1 evenly spaced points, clamped, optional jitter."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from verbnoun.data.sampling import Jitter, SegmentError, frame_indices, segment_bounds


def test_spec_example():
    assert frame_indices(1.0, 2.0, 30, 1000, 4).tolist() == [33, 41, 48, 56]


def test_matches_the_written_rule_at_many_rates():
    rng = np.random.default_rng(0)
    for _ in range(300):
        fps = float(rng.choice([25, 30, 50, 60000 / 1001, 32]))
        start = float(rng.uniform(0, 50))
        stop = start + float(rng.uniform(0.05, 8))
        n = int(rng.integers(1, 33))
        s, e = round(start * fps), round(stop * fps)
        points = np.linspace(s, e, n + 1)
        expected = [int((a + b) / 2) for a, b in itertools.pairwise(points)]
        assert frame_indices(start, stop, fps, 100_000, n).tolist() == expected


def test_stop_is_clamped_to_the_last_frame():
    # 90 frames at 30 fps: last frame at 89/30 s; e = 89
    assert segment_bounds(2.0, 10.0, 30, 90) == (60, 89)
    indices = frame_indices(2.0, 10.0, 30, 90, 8)
    assert indices.max() <= 89
    assert indices.tolist() == frame_indices(2.0, 89 / 30, 30, 90, 8).tolist()


def test_rounding_is_half_to_even_like_python():
    # 0.05 s at 30 fps is 1.5 frames: round() gives 2; 0.0833.. at 30 fps is 2.5 -> 2
    assert segment_bounds(0.05, 1.0, 30, 100)[0] == round(0.05 * 30)
    assert segment_bounds(2.5 / 30, 1.0, 30, 100)[0] == 2


def test_very_short_segment_repeats_a_frame():
    assert frame_indices(1.0, 1.01, 30, 100, 4).tolist() == [30, 30, 30, 30]


def test_jitter_rule_and_seed():
    a = frame_indices(1.0, 3.0, 30, 1000, 8, jitter=Jitter(seed=1))
    b = frame_indices(1.0, 3.0, 30, 1000, 8, jitter=Jitter(seed=1))
    assert a.tolist() == b.tolist()
    u = np.random.default_rng(1).random(8)
    s, e = 30, 90
    points = np.linspace(s, e, 9)
    mids = (points[:-1] + points[1:]) / 2 + (u - 0.5) * (e - s - 1) / 8
    assert a.tolist() == mids.astype(int).tolist()
    plain = frame_indices(1.0, 3.0, 30, 1000, 8)
    assert np.all(np.abs(a - plain) <= (e - s - 1) / 16 + 1)
    assert a.tolist() != plain.tolist()


def test_jitter_stays_inside_the_video():
    for seed in range(50):
        indices = frame_indices(0.0, 100.0, 30, 90, 4, jitter=Jitter(seed=seed))
        assert indices.min() >= 0 and indices.max() <= 89


def test_jitter_with_a_generator_advances():
    rng = np.random.default_rng(7)
    first = frame_indices(0.0, 5.0, 30, 1000, 8, jitter=Jitter(rng=rng))
    second = frame_indices(0.0, 5.0, 30, 1000, 8, jitter=Jitter(rng=rng))
    assert first.tolist() != second.tolist()


@pytest.mark.parametrize(
    ("start", "stop", "message"),
    [
        (1.0, 1.0, "zero-length"),
        (2.0, 1.0, "zero-length"),
        (-1.0, 1.0, "negative"),
        (3.1, 4.0, "after the last frame"),
        (float("nan"), 1.0, "finite"),
    ],
)
def test_bad_segments(start, stop, message):
    with pytest.raises(SegmentError, match=message):
        frame_indices(start, stop, 30, 90, 4)


def test_bad_n_and_fps():
    with pytest.raises(SegmentError):
        frame_indices(0, 1, 30, 90, 0)
    with pytest.raises(SegmentError):
        frame_indices(0, 1, 0, 90, 4)
