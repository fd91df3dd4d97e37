"""Layouts: paths derived from ids, kept under the root; chunk folders read and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from verbnoun.data.layouts import (
    ChunkLayout,
    EK100Layout,
    FileLayout,
    Piece,
    VideoLayout,
    check_video_id,
    make_layout,
    participant_of,
)
from verbnoun.errors import VideoError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_participant_of():
    assert participant_of("P01_11") == "P01"
    assert participant_of("P01_101") == "P01"
    with pytest.raises(VideoError, match="participant"):
        participant_of("P01")


@pytest.mark.parametrize(
    "bad", ["../P01_11", "P01_11/../../etc", "P01/11", "..", "P01_..", "/abs", "", "a b", "P01\\1"]
)
def test_unsafe_ids_are_refused(tmp_path, bad):
    with pytest.raises(VideoError, match="invalid video id"):
        check_video_id(bad)
    with pytest.raises(VideoError):
        EK100Layout(tmp_path).pieces(bad)
    with pytest.raises(VideoError):
        ChunkLayout(tmp_path).pieces(bad)


def test_ek100_layout(tmp_path):
    path = touch(tmp_path / "P01" / "videos" / "P01_11.MP4")
    layout = EK100Layout(tmp_path)
    assert isinstance(layout, VideoLayout)
    assert layout.pieces("P01_11") == [Piece(path, 0.0)]
    lower = touch(tmp_path / "P02" / "videos" / "P02_01.mp4")
    assert layout.pieces("P02_01") == [Piece(lower, 0.0)]
    with pytest.raises(VideoError, match=r"P01_12\.MP4"):
        layout.pieces("P01_12")


def test_chunk_layout(tmp_path):
    folder = tmp_path / "P01" / "P01_11.MP4"
    for start in (0, 15, 30, 45):
        touch(folder / f"{start}.MP4")
    touch(folder / ".30.MP4.tmp-1")  # an interrupted write is ignored
    pieces = ChunkLayout(tmp_path).pieces("P01_11")
    assert [p.start for p in pieces] == [0, 15, 30, 45]
    assert pieces[1].path == folder / "15.MP4"
    assert ChunkLayout(tmp_path, chunk_seconds=None).pieces("P01_11") == pieces
    with pytest.raises(VideoError, match="not a multiple"):
        ChunkLayout(tmp_path, chunk_seconds=10).pieces("P01_11")
    assert [p.start for p in ChunkLayout(tmp_path, chunk_seconds=None).pieces("P01_11")] == [
        0,
        15,
        30,
        45,
    ]


def test_chunk_layout_300_second_chunks_from_names(tmp_path):
    folder = tmp_path / "P03" / "P03_02.MP4"
    for start in (0, 300, 600):
        touch(folder / f"{start}.MP4")
    assert [p.start for p in ChunkLayout(tmp_path, None).pieces("P03_02")] == [0, 300, 600]
    assert len(ChunkLayout(tmp_path, 300).pieces("P03_02")) == 3


def test_chunk_layout_errors(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        ChunkLayout(tmp_path).pieces("P01_11")
    folder = tmp_path / "P01" / "P01_11.MP4"
    folder.mkdir(parents=True)
    with pytest.raises(VideoError, match="no chunks"):
        ChunkLayout(tmp_path).pieces("P01_11")
    touch(folder / "0.MP4")
    touch(folder / "30.MP4")
    with pytest.raises(VideoError, match="missing chunk"):
        ChunkLayout(tmp_path).pieces("P01_11")
    touch(folder / "abc.MP4")
    with pytest.raises(VideoError, match=r"abc\.MP4"):
        ChunkLayout(tmp_path).pieces("P01_11")


def test_file_layout_and_factory(tmp_path):
    path = touch(tmp_path / "clip.mov")
    assert FileLayout(path).pieces("anything") == [Piece(path, 0.0)]
    with pytest.raises(VideoError, match="not found"):
        FileLayout(tmp_path / "none.mp4").pieces()
    assert make_layout("ek100", tmp_path).name == "ek100"
    assert make_layout("chunks", tmp_path, chunk_seconds=300).chunk_seconds == 300
    assert make_layout("file", path).name == "file"
    with pytest.raises(ValueError, match="unknown layout"):
        make_layout("decord", tmp_path)
