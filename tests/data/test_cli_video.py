"""`verbnoun frames`, `verbnoun frames extract`, `verbnoun frames cache`, `verbnoun synth`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from videotools import frame_numbers

from verbnoun.bench.questions import Option, Question, write_questions
from verbnoun.cli import main
from verbnoun.data.frame_cache import FrameCache
from verbnoun.data.images import read_png
from verbnoun.data.sampling import frame_indices


def pngs(folder):
    return sorted(p for p in folder.glob("*.png") if "contact_sheet" not in p.name)


@pytest.mark.parametrize("form", [["frames"], ["frames", "extract"]])
def test_frames_writes_pngs_and_a_contact_sheet(videos, tmp_path, form):
    out = tmp_path / "out"
    code = main(
        [*form, "--videos", str(videos.chunk_root), "--layout", "chunks", "--chunk-seconds", "2",
         "--video-id", "P01_01", "--start", "1.5", "--stop", "2.6", "--frames", "8",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    files = pngs(out)
    assert len(files) == 8
    frames = np.stack([read_png(p) for p in files])
    assert frames.shape == (8, 64, 64, 3)
    assert frame_numbers(frames) == frame_indices(1.5, 2.6, 30, 150, 8).tolist()
    sheet = read_png(out / "P01_01_contact_sheet.png")
    assert sheet.shape == (3 * 68 + 4, 3 * 68 + 4, 3)
    assert np.array_equal(sheet[4:68, 4:68], frames[0])


def test_frames_ek100_layout_with_resize(videos, tmp_path):
    code = main(
        ["frames", "--videos", str(videos.ek100_root), "--video-id", "P02_03", "--start", "0.5",
         "--stop", "2", "--frames", "4", "--size", "32", "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    assert [read_png(p).shape for p in pngs(tmp_path)] == [(32, 32, 3)] * 4


def test_frames_errors_are_one_line(videos, tmp_path, capsys):
    code = main(
        ["frames", "--videos", str(videos.ek100_root), "--video-id", "P02_03", "--start", "5",
         "--stop", "6", "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "P02_03.MP4" in err and "5-6 s" in err and "after the last frame" in err
    assert main(["frames", "--videos", str(tmp_path), "--video-id", "../x", "--start", "0",
                 "--stop", "1", "--out", str(tmp_path)]) == 1  # fmt: skip
    assert "invalid video id" in capsys.readouterr().err
    assert main(["frames", "--videos", str(tmp_path), "--video-id", "P01_01"]) == 2
    assert "--start" in capsys.readouterr().err


def test_frames_cache_command(videos, tmp_path, capsys):
    options = (Option("a", "0:0", "ground_truth", "n"), Option("b", "1:1", "random", "n"))
    questions = tmp_path / "q.jsonl"
    write_questions(
        questions,
        [
            Question("q1", "P01_01", "P01", 0.5, 2.5, options, 0, "a", 0, 0),
            Question("q2", "P01_01", "P01", 4.0, 9.0, options, 0, "a", 0, 0),
            Question("q3", "P01_05", "P01", 0.5, 2.5, options, 0, "a", 0, 0),
        ],
    )
    args = ["frames", "cache", "--questions", str(questions), "--videos", str(videos.chunk_root),
            "--layout", "chunks", "--chunk-seconds", "2", "--frames", "4", "--size", "32",
            "--out", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    assert "2 decoded, 0 already cached, 1 skipped" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "cache" / "cache.json").read_text())
    assert manifest["skipped"][0]["questions"] == ["q3"]
    cache = FrameCache(tmp_path / "cache")
    clip = cache.get(cache.key_for("P01_01", 4.0, 9.0))
    assert clip.frames.shape == (4, 32, 32, 3)
    assert clip.indices.tolist() == frame_indices(4.0, 9.0, 30, 150, 4).tolist()
    assert main(args) == 0
    assert "0 decoded, 2 already cached, 1 skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_synth_command(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--videos", "2", "--frame-numbers"]) == 0
    assert "wrote 2 videos" in capsys.readouterr().out
    assert (tmp_path / "annotations" / "EPIC_100_validation.csv").is_file()
    assert (tmp_path / "videos" / "P01" / "P01_01.MP4" / "0.MP4").is_file()


def test_frames_of_a_single_file(videos, tmp_path):
    code = main(
        ["frames", "extract", "--videos", str(videos.cfr["59.94"]), "--layout", "file",
         "--start", "0.5", "--stop", "2.5", "--frames", "4", "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    frames = np.stack([read_png(p) for p in pngs(tmp_path)])
    fps = 60000 / 1001
    assert frame_numbers(frames) == frame_indices(0.5, 2.5, fps, 180, 4).tolist()
