"""Damaged videos, and video problems met by the exporters (see conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from damagetools import cli, refused, replace_with_folder

# ----------------------------------------------------------------------------- videos


def _truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


VIDEO_DAMAGE = [
    ("zero-byte video", lambda p: p.write_bytes(b"")),
    ("truncated video", _truncate_half),
    ("not a video", lambda p: p.write_text("this is a text file\n" * 50)),
    ("missing video", lambda p: p.unlink()),
    ("folder instead of video", replace_with_folder),
]


@pytest.mark.parametrize("damage", [d for _, d in VIDEO_DAMAGE], ids=[n for n, _ in VIDEO_DAMAGE])
def test_video_file(world, tmp_path, capsys, damage):
    clip = tmp_path / "clip.mp4"
    shutil.copy(world.video, clip)
    out = tmp_path / "frames"
    assert cli("frames", "extract", "--layout", "file", "--videos", clip, "--start", 0, "--stop",
               1.5, "--frames", 2, "--out", out) == 0  # fmt: skip
    capsys.readouterr()
    damage(clip)
    refused(capsys, ["frames", "extract", "--layout", "file", "--videos", clip, "--start", 0,
                     "--stop", 1.5, "--frames", 2, "--out", out],
            file=clip, place=None, keep=(out,))  # fmt: skip


def test_unknown_video_id(world, tmp_path, capsys):
    refused(capsys, ["frames", "extract", "--layout", "chunks", "--videos", world.videos,
                     "--video-id", "P99_01", "--start", 0, "--stop", 1, "--out", tmp_path / "f"],
            file="P99_01", place=None)  # fmt: skip


def test_segment_beyond_the_video(world, tmp_path, capsys):
    refused(capsys, ["frames", "extract", "--layout", "file", "--videos", world.video, "--start",
                     50, "--stop", 60, "--out", tmp_path / "f"], file=world.video,
            place=r"50-60")  # fmt: skip


def test_unknown_video_in_lmms_export(world, tmp_path, capsys):
    refused(capsys, ["export", "lmms-eval", "--questions", world.questions, "--videos",
                     world.videos, "--out", tmp_path / "task"], file="P03_01", place=None)  # fmt: skip
