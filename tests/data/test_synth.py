"""The synthetic kitchen: chunk layout, EK100 schema, frame numbers, motions, determinism."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from verbnoun.data.kitchen import FPS, NOUNS, VERBS, kitchen_script
from verbnoun.data.layouts import ChunkLayout
from verbnoun.data.sampling import frame_indices
from verbnoun.data.synth import (
    _COLOURS,
    _pose,
    _render_frames,
    draw_frame_number,
    read_frame_number,
    render_kitchen,
)
from verbnoun.data.video import VideoReader
from verbnoun.fileio import sha256_file


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    out = tmp_path_factory.mktemp("kitchen")
    summary = render_kitchen(out, videos=2, seed=0, frame_numbers=True, workers=2)
    return out, summary


@pytest.mark.slow
def test_layout_and_annotations(kitchen):
    out, summary = kitchen
    script = kitchen_script(2, 0)
    assert summary["num_videos"] == 2 and summary["layout"] == "chunks"
    for name in ("EPIC_100_train.csv", "EPIC_100_validation.csv", "EPIC_100_verb_classes.csv",
                 "EPIC_100_noun_classes.csv", "EPIC_100_video_info.csv"):  # fmt: skip
        assert (out / "annotations" / name).is_file()
    with (out / "annotations" / "EPIC_100_video_info.csv").open() as handle:
        info = {row["video_id"]: row for row in csv.DictReader(handle)}
    reader = VideoReader(ChunkLayout(out / "videos"))
    for video in script:
        folder = out / "videos" / video.participant_id / f"{video.video_id}.MP4"
        total = round(video.duration * FPS)
        assert sorted(int(p.stem) for p in folder.glob("*.MP4")) == list(
            range(0, math.ceil(total / (15 * FPS)) * 15, 15)
        )
        got = reader.info(video.video_id)
        assert got.fps == 30 and got.num_frames == total
        assert float(info[video.video_id]["fps"]) == 30
        assert info[video.video_id]["resolution"] == "128x128"


def test_frame_numbers_across_chunk_boundaries(kitchen):
    out, _ = kitchen
    reader = VideoReader(ChunkLayout(out / "videos"))
    for video in kitchen_script(2, 0):
        total = round(video.duration * FPS)
        segments = [(s.start, s.stop) for s in video.segments] + [(14.2, 15.9), (29.5, 30.4)]
        for start, stop in segments:
            clip = reader.read(video.video_id, start, stop, 8)
            assert clip.frames.shape == (8, 128, 128, 3)
            numbers = [read_frame_number(f) for f in clip.frames]
            assert numbers == frame_indices(start, stop, 30, total, 8).tolist()


def test_objects_appear_in_segments_only(kitchen):
    out, _ = kitchen
    reader = VideoReader(ChunkLayout(out / "videos"))
    video = kitchen_script(2, 0)[0]
    for segment in video.segments:
        colour = np.array(_COLOURS[NOUNS[segment.noun_class].colour], np.int16)
        middle = reader.read(video.video_id, segment.start, segment.stop, 1).frames[0]
        distance = np.abs(middle[8:].astype(np.int16) - colour).sum(axis=2)
        assert (distance < 45).sum() >= 20, segment  # the object is visible
    first = video.segments[0]
    idle = reader.read(video.video_id, 0.0, max(first.start - 0.05, 0.01), 1).frames[0]
    for rgb in _COLOURS.values():
        distance = np.abs(idle[8:].astype(np.int16) - np.array(rgb, np.int16)).sum(axis=2)
        assert (distance < 45).sum() < 5


def flat(pose) -> list[float]:
    (x, y, angle), lid, hand, drops = pose
    return [x, y, angle, -1.0 if lid is None else lid, *hand, *(v for d in drops for v in d)]


def test_mirrored_verbs():
    rest = (100.0, 110.0)
    for a, b in (("take", "put"), ("open", "close")):
        for p in np.linspace(0, 1, 11):
            pose_a = _pose(a, p, 0.0, 64.0, 86.0, (12.0, 12.0), rest, 1.0)
            pose_b = _pose(b, 1 - p, 0.0, 64.0, 86.0, (12.0, 12.0), rest, 1.0)
            assert flat(pose_a) == pytest.approx(flat(pose_b))
    push_end = _pose("push", 1.0, 3.0, 64.0, 86.0, (12.0, 12.0), rest, 1.0)[0][0]
    pull_end = _pose("pull", 1.0, 3.0, 64.0, 86.0, (12.0, 12.0), rest, 1.0)[0][0]
    assert push_end > 64 > pull_end
    for verb in VERBS:  # every verb has a motion
        _pose(verb.key, 0.5, 1.0, 64.0, 86.0, (12.0, 12.0), rest, 1.0)


@pytest.mark.slow
def test_deterministic_given_the_seed():
    video = kitchen_script(2, 0)[1]
    a = np.stack(list(_render_frames(video, 1, 0, False)))
    b = np.stack(list(_render_frames(video, 1, 0, False)))
    c = np.stack(list(_render_frames(video, 1, 1, False)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_validation_videos_add_questions_and_leave_the_kitchen_as_it_was():
    base, more = kitchen_script(12, 3), kitchen_script(12, 3, validation_videos=5)
    assert more[:12] == base  # the same training videos, segments and actions
    added = more[12:]
    assert len(added) == 5 and {v.split for v in added} == {"validation"}
    assert len({v.video_id for v in more}) == 17  # ids continue, never repeat
    assert all(len(v.segments) >= 8 for v in added)
    with pytest.raises(ValueError, match="validation_videos must be 0 or more"):
        kitchen_script(12, 3, validation_videos=-1)


@pytest.mark.slow
def test_same_seed_same_files(kitchen, tmp_path):
    out, _ = kitchen
    again = render_kitchen(tmp_path, videos=2, seed=0, frame_numbers=True, workers=1)
    assert again["num_files"] > 0
    for path in sorted((out / "videos").rglob("*.MP4")):
        if path.is_file():
            twin = tmp_path / "videos" / path.relative_to(out / "videos")
            assert sha256_file(path) == sha256_file(twin)


def test_frame_number_bar_code_round_trip():
    image = np.zeros((16, 128, 3), np.uint8)
    for value in (0, 1, 450, 1234, 65535):
        assert read_frame_number(draw_frame_number(image, value)) == value
    with pytest.raises(ValueError):
        draw_frame_number(image, 1 << 16)
