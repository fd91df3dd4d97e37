"""Windows over a video, and the streaming reader: the same frames as decoding window by window,
each packet decoded at most once, across chunk boundaries and from a resume point."""

from __future__ import annotations

import numpy as np
import pytest
from annotate_clip import FPS, numbered

from verbnoun.annotate.windows import (
    StreamingReader,
    naive_windows,
    prefetch,
    sliding_windows,
)
from verbnoun.data.layouts import make_layout
from verbnoun.data.synth import read_frame_number, write_video
from verbnoun.data.video import PyAVBackend, VideoReader
from verbnoun.errors import VerbnounError


def test_sliding_windows_cover_the_video_to_its_end():
    windows = sliding_windows("v", 100, 10.0, 3.0, 1.0)  # 30-frame windows every 10 frames
    assert [(w.first, w.end) for w in windows] == [(0, 30), (10, 40), (20, 50), (30, 60),
                                                   (40, 70), (50, 80), (60, 90), (70, 100)]  # fmt: skip
    windows = sliding_windows("v", 95, 10.0, 3.0, 1.0)
    assert (windows[-1].first, windows[-1].end) == (65, 95)  # the last one ends at the end
    assert windows[0].centre == 14 and windows[0].id == "v/000000"
    with pytest.raises(VerbnounError, match="longer than the video"):
        sliding_windows("v", 20, 10.0, 3.0, 1.0)


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """A 150-frame video as three 2-second chunks (chunk layout)."""
    root = tmp_path_factory.mktemp("chunks")
    for k in range(3):
        frames = (numbered(i) for i in range(60 * k, min(60 * (k + 1), 150)))
        write_video(root / "P01" / "P01_01.MP4" / f"{2 * k}.MP4", frames, FPS, gop=15)
    return make_layout("chunks", root, chunk_seconds=2)


def test_streaming_equals_window_by_window_and_decodes_each_packet_once(chunked):
    views = {"model": (8, None), "small": (4, 32), "thumb": (1, (16, 16))}
    reader = VideoReader(chunked)
    info = reader.info("P01_01")
    windows = sliding_windows("P01_01", info.num_frames, FPS, 1.0, 0.2)
    stream = StreamingReader(reader, views)
    got = list(prefetch(stream.windows(info, windows), depth=3))
    backend = PyAVBackend()
    ref = list(naive_windows(VideoReader(chunked, backend), info, windows, views))
    assert [w for w, _ in got] == windows
    for (_, a), (_, b) in zip(got, ref, strict=True):
        for name in views:
            assert np.array_equal(a[name], b[name])
    # the frames are the ones SPEC 2 samples (frame numbers drawn in the pixels)
    first = [read_frame_number(f, bits=10) for f in got[5][1]["model"]]
    from verbnoun.annotate.windows import window_indices

    assert first == window_indices(windows[5], info.num_frames, 8).tolist()
    assert stream.decoded <= info.num_frames
    assert backend.decoded_packets > 2 * stream.decoded  # overlapping windows re-decode


def test_streaming_from_a_resume_point_seeks(chunked):
    reader = VideoReader(chunked)
    info = reader.info("P01_01")
    windows = sliding_windows("P01_01", info.num_frames, FPS, 1.0, 0.5)
    late = windows[-3:]
    stream = StreamingReader(reader, {"model": (4, None)})
    got = list(stream.windows(info, late))
    assert [w for w, _ in got] == late
    numbers = [read_frame_number(f, bits=10) for f in got[0][1]["model"]]
    from verbnoun.annotate.windows import window_indices

    assert numbers == window_indices(late[0], info.num_frames, 4).tolist()
    assert stream.decoded < 70  # only the last chunk (and its keyframe lead-in) is decoded


def test_prefetch_reraises_errors_of_the_worker():
    def items():
        yield 1
        raise VerbnounError("broken video")

    with pytest.raises(VerbnounError, match="broken video"):
        list(prefetch(items()))
