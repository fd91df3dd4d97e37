"""Frame-exact decoding: the frame number read back from the pixels is the index asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videotools import frame_numbers

from llavaction.data.layouts import ChunkLayout, EK100Layout, FileLayout
from llavaction.data.sampling import Jitter, frame_indices
from llavaction.data.video import PyAVBackend, VideoReader, read_clip
from llavaction.errors import LlavactionError, VideoError

SEGMENTS = [(0.0, 1.0), (0.37, 1.93), (1.0, 2.0), (0.9, 2.95), (2.1, 9.0)]


@pytest.mark.parametrize("rate", ["25", "30", "50", "59.94"])
def test_constant_rate_files_are_frame_exact(videos, rate):
    path = videos.cfr[rate]
    reader = VideoReader(FileLayout(path))
    info = reader.info("clip")
    expected_fps = {"25": 25.0, "30": 30.0, "50": 50.0, "59.94": 60000 / 1001}[rate]
    assert info.fps == pytest.approx(expected_fps, rel=1e-9)
    assert info.num_frames == {"25": 75, "30": 90, "50": 150, "59.94": 180}[rate]
    for start, stop in SEGMENTS:
        if round(start * info.fps) >= info.num_frames:
            continue
        clip = reader.read("clip", start, stop, 8)
        expected = frame_indices(start, stop, info.fps, info.num_frames, 8)
        assert clip.frames.shape == (8, 64, 64, 3) and clip.frames.dtype == np.uint8
        assert frame_numbers(clip.frames) == expected.tolist()
        np.testing.assert_allclose(clip.timestamps, expected / info.fps, atol=1e-3)


def test_every_single_frame_of_a_b_frame_file(videos):
    reader = VideoReader(FileLayout(videos.bframes))
    info = reader.info("b")
    assert info.num_frames == 90
    for index in range(info.num_frames):
        clip = reader.read_indices(info, np.array([index]))
        assert frame_numbers(clip.frames) == [index]
    unordered = np.array([50, 3, 89, 3, 12, 11])
    clip = reader.read_indices(info, unordered)
    assert frame_numbers(clip.frames) == unordered.tolist()


def test_variable_frame_rate_matches_presentation_time(videos):
    reader = VideoReader(FileLayout(videos.vfr))
    info = reader.info("vfr")
    times = np.array(videos.vfr_pts) / 1000.0
    assert info.fps == pytest.approx(90 / (times[-1] + 0.050), rel=0.02)  # average rate
    clip = reader.read("vfr", 0.4, 2.9, 16)
    for index, number, decoded_time in zip(
        clip.indices, frame_numbers(clip.frames), clip.timestamps, strict=True
    ):
        # the frame on screen at the nominal time of the index (rounded to half a frame)
        expected = int(np.flatnonzero(times < (index + 0.5) / info.fps)[-1])
        assert number == expected
        assert decoded_time == pytest.approx(times[expected], abs=1e-6)


def test_non_zero_start_time_counts_from_the_first_frame(videos):
    reader = VideoReader(FileLayout(videos.offset))
    info = reader.info("offset")
    stream = reader.probe(videos.offset)
    assert float(stream.start_pts * stream.time_base) == pytest.approx(0.5)
    assert info.num_frames == 90
    clip = reader.read("offset", 0.0, 3.0, 8)
    assert frame_numbers(clip.frames) == frame_indices(0.0, 3.0, 30, 90, 8).tolist()
    assert clip.timestamps[0] == pytest.approx(clip.indices[0] / 30)


def test_stream_copied_cut_with_edit_list(videos):
    """decord counts the hidden leading packets and returns frames shifted by up to a GOP."""
    reader = VideoReader(FileLayout(videos.cut))
    info = reader.info("cut")
    assert info.num_frames == 90 - videos.cut_frame
    for start, stop in [(0.0, 0.5), (0.2, 1.7), (1.5, 2.5)]:
        clip = reader.read("cut", start, stop, 8)
        shifted = (clip.indices + videos.cut_frame).tolist()
        assert frame_numbers(clip.frames) == shifted


def test_chunks_segment_across_a_boundary(videos):
    reader = VideoReader(ChunkLayout(videos.chunk_root, chunk_seconds=2))
    info = reader.info("P01_01")
    assert info.num_frames == 150 and info.offsets == (0, 60, 120)
    clip = reader.read("P01_01", 1.5, 2.6, 8)
    expected = frame_indices(1.5, 2.6, 30, 150, 8)
    assert expected.min() < 60 <= expected.max()  # really crosses the boundary
    assert frame_numbers(clip.frames) == expected.tolist()
    np.testing.assert_allclose(clip.timestamps, expected / 30, atol=1e-3)
    clip = reader.read("P01_01", 0.2, 4.9, 16)  # three chunks, stop clamped to the last frame
    assert frame_numbers(clip.frames) == frame_indices(0.2, 4.9, 30, 150, 16).tolist()


def test_chunk_length_read_from_names(videos):
    reader = VideoReader(ChunkLayout(videos.chunk_root, chunk_seconds=None))
    clip = reader.read("P01_01", 3.9, 4.2, 4)
    assert frame_numbers(clip.frames) == frame_indices(3.9, 4.2, 30, 150, 4).tolist()


def test_ek100_layout(videos):
    reader = VideoReader(EK100Layout(videos.ek100_root))
    clip = reader.read("P02_03", 0.5, 2.0, 8)
    assert clip.fps == 50
    assert frame_numbers(clip.frames) == frame_indices(0.5, 2.0, 50, 120, 8).tolist()


def test_jitter_is_seeded_and_exact(videos):
    reader = VideoReader(FileLayout(videos.cfr["30"]))
    a = reader.read("c", 0.5, 2.5, 8, jitter=Jitter(seed=5))
    b = reader.read("c", 0.5, 2.5, 8, jitter=Jitter(seed=5))
    assert a.indices.tolist() == b.indices.tolist()
    assert a.indices.tolist() != frame_indices(0.5, 2.5, 30, 90, 8).tolist()
    assert frame_numbers(a.frames) == a.indices.tolist()


def test_resize_during_decode(videos):
    clip = read_clip(videos.cfr["30"], 0.5, 1.5, 4, size=(48, 32))
    assert clip.frames.shape == (4, 32, 48, 3)
    native = read_clip(videos.cfr["30"], 0.5, 1.5, 4)
    # the bar code's first block (bit 0) survives the resize: same parity as the native frame
    assert [f[2, 2, 0] > 127 for f in clip.frames] == [f[2, 2, 0] > 127 for f in native.frames]


class _CountingContainer:
    def __init__(self, container, counter):
        self._container, self._counter = container, counter

    def seek(self, *args, **kwargs):
        self._counter.append(args)
        return self._container.seek(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._container, name)


def test_one_seek_per_clip(videos, monkeypatch):
    seeks: list = []
    original = PyAVBackend._open

    def counting_open(self, path):
        container, stream = original(self, path)
        return _CountingContainer(container, seeks), stream

    monkeypatch.setattr(PyAVBackend, "_open", counting_open)
    clip = read_clip(videos.bframes, 0.4, 2.9, 16)
    assert frame_numbers(clip.frames) == clip.indices.tolist()
    assert len(seeks) == 1


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="not found") as error:
        read_clip(tmp_path / "nope.mp4", 0, 1, 4)
    assert "nope.mp4" in str(error.value)
    assert isinstance(error.value, LlavactionError)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(VideoError, match=r"garbage\.mp4"):
        read_clip(path, 0, 1, 4)


def test_truncated_file(videos, tmp_path):
    data = videos.cfr["30"].read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    with pytest.raises(VideoError, match=r"truncated\.mp4"):
        read_clip(path, 0, 1, 4)


def test_truncated_media_data(videos, tmp_path):
    """Index intact, frames missing: an error for the missing frames, never a stand-in."""
    from llavaction.data.synth import write_video

    source = tmp_path / "faststart.mp4"
    write_video(source, (np.full((64, 64, 3), i, np.uint8) for i in range(90)), 30, faststart=True)
    data = source.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # the index comes first
    path = tmp_path / "cut-mdat.mp4"
    path.write_bytes(data[: data.find(b"mdat") + 3000])
    with pytest.raises(VideoError, match=r"cut-mdat\.mp4"):
        read_clip(path, 2.0, 2.9, 4)


def test_segment_past_the_end(videos):
    with pytest.raises(VideoError, match=r"after the last frame") as error:
        read_clip(videos.cfr["30"], 3.5, 4.0, 4)
    assert "cfr30.mp4" in str(error.value) and "3.5-4 s" in str(error.value)


def test_stop_past_the_end_is_clamped(videos):
    clip = read_clip(videos.cfr["30"], 2.5, 10.0, 4)
    assert frame_numbers(clip.frames) == frame_indices(2.5, 10.0, 30, 90, 4).tolist()
    assert clip.indices.max() <= 89


@pytest.mark.parametrize("segment", [(1.0, 1.0), (2.0, 1.0)])
def test_zero_length_segment(videos, segment):
    with pytest.raises(VideoError, match="zero-length"):
        read_clip(videos.cfr["30"], *segment, 4)


# ----------------------------------------------------------------------------- real clips


@pytest.mark.parametrize("name", ["248.mp4", "4855.mp4"])
def test_real_sample_clips(sample_videos: Path, name):
    """The two EK100 clips: 32 fps, 1560 frames; seeking gives the same pixels as decoding
    every frame from the start in presentation order."""
    import av

    reader = VideoReader(FileLayout(sample_videos / name))
    info = reader.info(name)
    assert info.fps == 32 and info.num_frames == 1560
    clip = reader.read(name, 10.3, 13.1, 8)
    assert clip.frames.shape == (8, 768, 768, 3)
    np.testing.assert_allclose(clip.timestamps, clip.indices / 32, atol=1e-6)
    wanted = set(clip.indices.tolist())
    reference = {}
    with av.open(str(sample_videos / name)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k in wanted:
                reference[k] = frame.to_ndarray(format="rgb24")
            if k >= max(wanted):
                break
    for index, frame in zip(clip.indices.tolist(), clip.frames, strict=True):
        assert np.array_equal(frame, reference[index]), index


def test_sparse_frames_skip_groups_of_pictures(videos, monkeypatch):
    """Far-apart frames: groups of pictures with no wanted frame are demuxed, not decoded."""
    import llavaction.data.video as video_module

    decoded: list[int] = []
    original = video_module._needed_frames

    def counting(*args):
        for frame in original(*args):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(video_module, "_needed_frames", counting)
    rng = np.random.default_rng(4)
    for path, offset in ((videos.bframes, 0), (videos.cut, videos.cut_frame)):
        reader = VideoReader(FileLayout(path))
        info = reader.info("v")
        for _ in range(25):
            wanted = np.sort(rng.choice(info.num_frames, size=int(rng.integers(1, 6))))
            clip = reader.read_indices(info, wanted)
            assert frame_numbers(clip.frames) == (wanted + offset).tolist()
    decoded.clear()
    info = VideoReader(FileLayout(videos.bframes)).info("v")
    clip = VideoReader(FileLayout(videos.bframes)).read_indices(info, np.array([2, 86]))
    assert frame_numbers(clip.frames) == [2, 86]
    assert 0 < len(decoded) < 40, len(decoded)  # decoding forward would take 87 frames (GOP of 12)
