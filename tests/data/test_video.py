"""Frame-exact decoding: the frame number read back from the pixels is the index asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videotools import frame_numbers

from verbnoun.data.layouts import ChunkLayout, EK100Layout, FileLayout
from verbnoun.data.sampling import Jitter, frame_indices
from verbnoun.data.video import PyAVBackend, VideoReader, read_clip
from verbnoun.errors import VerbnounError, VideoError

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
    assert isinstance(error.value, VerbnounError)


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
    from verbnoun.data.synth import write_video

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


@pytest.mark.slow
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


def test_sparse_frames_skip_groups_of_pictures(videos):
    """Far-apart frames: groups of pictures with no wanted frame are demuxed, not decoded."""
    rng = np.random.default_rng(4)
    for path, offset in ((videos.bframes, 0), (videos.cut, videos.cut_frame)):
        reader = VideoReader(FileLayout(path))
        info = reader.info("v")
        for _ in range(25):
            wanted = np.sort(rng.choice(info.num_frames, size=int(rng.integers(1, 6))))
            clip = reader.read_indices(info, wanted)
            assert frame_numbers(clip.frames) == (wanted + offset).tolist()
    backend = PyAVBackend()
    reader = VideoReader(FileLayout(videos.bframes), backend)
    clip = reader.read_indices(reader.info("v"), np.array([2, 86]))
    assert frame_numbers(clip.frames) == [2, 86]
    # decoding forward would take 87 frames; frame 86 needs only its group of 12 (from 84)
    assert 0 < backend.decoded_packets < 20, backend.decoded_packets


# ----------------------------------------------------------------------------- decoding plan


def _write(path: Path, codec: str, fmt: str, options: dict, count: int = 90) -> Path:
    """A numbered 30-fps video with any PyAV encoder and container."""
    import av
    from videotools import numbered_frame

    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=30, options=options)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(numbered_frame(i), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _every_frame_and_random_sets(path: Path, backend: PyAVBackend, offset: int = 0) -> None:
    reader = VideoReader(FileLayout(path), backend)
    info = reader.info("v")
    for index in range(info.num_frames):
        assert frame_numbers(reader.read_indices(info, np.array([index])).frames) == [
            index + offset
        ]
    rng = np.random.default_rng(7)
    for _ in range(15):
        wanted = np.sort(rng.choice(info.num_frames, size=int(rng.integers(2, 9))))
        assert frame_numbers(reader.read_indices(info, wanted).frames) == (wanted + offset).tolist()


def test_non_reference_b_frames_are_not_decoded(videos):
    """The B-frame file: non-reference pictures are recognised from the H.264 NAL headers and
    only decoded when wanted; frames stay exact (every frame, and random sets)."""
    import av

    from verbnoun.data.video import _nonref_test

    with av.open(str(videos.bframes)) as container:
        stream = container.streams.video[0]
        test = _nonref_test(stream)
        assert test is not None
        flags = [test(p) for p in container.demux(stream) if p.size]
    assert 20 < sum(flags) < 70 and not flags[0]  # about half are non-reference; never the IDR
    planned = PyAVBackend()
    _every_frame_and_random_sets(videos.bframes, planned)
    forward = PyAVBackend(skip_unneeded=False)
    reader = VideoReader(FileLayout(videos.bframes), forward)
    wanted = np.array([5, 9, 10, 40, 47, 80, 86, 88])
    assert frame_numbers(reader.read_indices(reader.info("v"), wanted).frames) == wanted.tolist()
    planned.decoded_packets = 0
    reader = VideoReader(FileLayout(videos.bframes), planned)
    assert frame_numbers(reader.read_indices(reader.info("v"), wanted).frames) == wanted.tolist()
    assert planned.decoded_packets < forward.decoded_packets / 2


def test_open_gop_falls_back_to_decoding_everything(tmp_path):
    """Leading pictures after a keyframe (an open GOP) need the group before: the plan notices
    and the file is decoded forward instead, exact from the very first call."""
    params = "open-gop=1:keyint=12:min-keyint=12:scenecut=0:b-adapt=0:bframes=3"
    path = _write(tmp_path / "open-gop.mp4", "libx264", "mp4", {"crf": "12", "x264-params": params})
    backend = PyAVBackend()
    reader = VideoReader(FileLayout(path), backend)
    info = reader.info("v")
    # frames 9-11 are leading pictures of the keyframe at 12, decoded after it
    assert frame_numbers(reader.read_indices(info, np.array([9, 10, 11])).frames) == [9, 10, 11]
    assert path in backend._unplannable
    _every_frame_and_random_sets(path, backend)


def test_other_codecs_and_byte_streams(tmp_path):
    """MPEG-4 part 2 with B-frames (its B-frames around an I-frame are leading pictures: decoded
    forward) and H.264 in MPEG-TS (Annex B: planned, no non-reference skipping)."""
    import av

    from verbnoun.data.video import _nonref_test

    mpeg4 = _write(tmp_path / "mpeg4.mp4", "mpeg4", "mp4", {"qscale": "2", "g": "12", "bf": "2"})
    backend = PyAVBackend()
    _every_frame_and_random_sets(mpeg4, backend)
    assert mpeg4 in backend._unplannable
    ts = _write(tmp_path / "annexb.ts", "libx264", "mpegts", {"crf": "12", "bf": "3", "g": "12"})
    with av.open(str(ts)) as container:
        assert _nonref_test(container.streams.video[0]) is None
    backend = PyAVBackend()
    _every_frame_and_random_sets(ts, backend)
    assert ts not in backend._unplannable


@pytest.mark.slow
def test_plan_gives_the_pixels_of_decoding_everything(sample_videos: Path):
    """A real EK100 clip (B-pyramid, keyframes 59 to 250 frames apart): frames around keyframes
    and non-reference pictures, native and resized, equal the forward decode's pixels."""
    wanted = np.array([50, 57, 58, 59, 60, 61, 150, 155, 156, 157, 214, 215, 216])
    path = sample_videos / "248.mp4"
    for size in (None, (96, 64)):
        planned, forward = PyAVBackend(), PyAVBackend(skip_unneeded=False)
        ours = VideoReader(FileLayout(path), planned, size=size)
        reference = VideoReader(FileLayout(path), forward, size=size)
        a = ours.read_indices(ours.info("v"), wanted)
        b = reference.read_indices(reference.info("v"), wanted)
        assert np.array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        assert planned.decoded_packets < forward.decoded_packets * 0.7
    # the single-context conversion gives to_ndarray's pixels, resized too
    import av

    with av.open(str(path)) as container:
        frames = [f for _, f in zip(range(3), container.decode(video=0), strict=False)]
    native = VideoReader(FileLayout(path)).read_indices(
        VideoReader(FileLayout(path)).info("v"), np.arange(3)
    )
    assert np.array_equal(native.frames, np.stack([f.to_ndarray(format="rgb24") for f in frames]))


def test_files_stay_open_between_segments(videos, tmp_path, monkeypatch):
    """Segments of one file reuse its open container; a rewritten file is opened again."""
    import shutil

    opened: list[Path] = []
    original = PyAVBackend._open

    def counting_open(self, path):
        opened.append(path)
        return original(self, path)

    monkeypatch.setattr(PyAVBackend, "_open", counting_open)
    path = tmp_path / "clip.mp4"
    shutil.copy(videos.cfr["30"], path)
    backend = PyAVBackend()
    reader = VideoReader(FileLayout(path), backend)
    for start in (0.2, 1.1, 0.5):
        clip = reader.read("c", start, start + 1.0, 4)
        assert frame_numbers(clip.frames) == frame_indices(start, start + 1.0, 30, 90, 4).tolist()
    assert opened == [path]  # probe and three decodes: one open
    shutil.copy(videos.bframes, path)  # same length, other bytes
    import os

    os.utime(path, ns=(1, 1))
    reader = VideoReader(FileLayout(path), backend)
    clip = reader.read("c", 0.0, 3.0, 8)
    assert frame_numbers(clip.frames) == frame_indices(0.0, 3.0, 30, 90, 8).tolist()
    assert opened == [path, path]
    backend.close()
    unkept = PyAVBackend(keep_open=0)
    reader = VideoReader(FileLayout(path), unkept)
    reader.read("c", 0.0, 1.0, 2)
    reader.read("c", 1.0, 2.0, 2)
    assert len(opened) == 5  # probe + two decodes


def _child_collects_and_reads(path: str) -> None:
    import gc

    gc.collect()  # would free an inherited threaded decoder: a hang without the fork hook
    clip = read_clip(path, 0.5, 2.0, 4)
    assert frame_numbers(clip.frames) == frame_indices(0.5, 2.0, 30, 90, 4).tolist()


@pytest.mark.slow
def test_fork_after_threaded_decoding_does_not_hang(videos):
    """DataLoader workers are forked: decoders (with threads) that the parent keeps open or left
    in a reference cycle must not be freed in the child."""
    import gc
    import multiprocessing

    backend = PyAVBackend(threads=0)  # FFmpeg's choice: a threaded decoder
    reader = VideoReader(FileLayout(videos.cfr["30"]), backend)
    reader.read("c", 0.5, 2.0, 4)  # keeps the file open
    gc.disable()
    try:
        container, stream = backend._open(videos.bframes)
        next(container.decode(stream))  # opens the decoder and its threads
        cycle: list = [container, stream]
        cycle.append(cycle)
        del container, stream, cycle  # only the garbage collector can free it now
        child = multiprocessing.get_context("fork").Process(
            target=_child_collects_and_reads, args=(str(videos.cfr["30"]),)
        )
        child.start()
    finally:
        gc.enable()
    child.join(timeout=30)
    if child.exitcode is None:
        child.kill()
        child.join()
        pytest.fail("the forked child hung freeing an inherited decoder")
    assert child.exitcode == 0
