"""The frame cache: one entry per segment and setting, atomic, resumable, read instead of videos."""

from __future__ import annotations

import numpy as np
import pytest
from videotools import frame_numbers

from verbnoun.bench.questions import Option, Question, write_questions
from verbnoun.data.frame_cache import CacheKey, FrameCache, build_cache
from verbnoun.data.sampling import frame_indices


def question(qid: str, video_id: str, start: float, stop: float) -> Question:
    options = (
        Option("take cup", "0:1", "ground_truth", "narration"),
        Option("put cup", "1:1", "random", "narration"),
    )
    return Question(
        qid, video_id, video_id.split("_")[0], start, stop, options, 0, "take cup", 0, 1
    )


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "q.jsonl"
    write_questions(
        path,
        [
            question("a", "P01_01", 0.5, 2.5),
            question("b", "P01_01", 1.5, 2.6),
            question("c", "P01_01", 1.5, 2.6),  # same segment as b: decoded once
            question("d", "P01_09", 0.0, 1.0),  # no such video
            question("e", "P01_01", 7.0, 8.0),  # past the end (5 s)
        ],
    )
    return path


def test_build_read_and_resume(videos, questions, tmp_path):
    out = tmp_path / "cache"
    summary = build_cache(questions, videos.chunk_root, "chunks", 8, out, chunk_seconds=2)
    assert summary["counts"] == {
        "questions": 5, "segments": 4, "written": 2, "existing": 0, "skipped": 2
    }  # fmt: skip
    reasons = {s["questions"][0]: s["reason"] for s in summary["skipped"]}
    assert "P01_09" in reasons["d"] and "not found" in reasons["d"]
    assert "after the last frame" in reasons["e"] and "7-8 s" in reasons["e"]

    cache = FrameCache(out)
    key = cache.key_for("P01_01", 1.5, 2.6)
    assert key == CacheKey("P01_01", 1.5, 2.6, 8, None, "chunks")
    clip = cache.get(key)
    assert clip.frames.shape == (8, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert frame_numbers(clip.frames) == frame_indices(1.5, 2.6, 30, 150, 8).tolist()
    assert clip.indices.tolist() == frame_numbers(clip.frames)
    assert cache.get(cache.key_for("P01_01", 1.5, 2.7)) is None

    # an interrupted build: one entry lost, a stray temporary file left behind
    cache.path(key).unlink()
    (cache.path(key).parent / f".{cache.path(key).name}.tmp-99").write_bytes(b"partial")
    again = build_cache(questions, videos.chunk_root, "chunks", 8, out, chunk_seconds=2)
    assert again["counts"]["written"] == 1 and again["counts"]["existing"] == 1
    assert frame_numbers(cache.get(key).frames) == clip.indices.tolist()


def test_key_depends_on_every_setting():
    base = CacheKey("P01_01", 1.5, 2.6, 8, None, "chunks")
    variants = [
        CacheKey("P01_02", 1.5, 2.6, 8, None, "chunks"),
        CacheKey("P01_01", 1.5, 2.61, 8, None, "chunks"),
        CacheKey("P01_01", 1.5, 2.6, 16, None, "chunks"),
        CacheKey("P01_01", 1.5, 2.6, 8, (32, 32), "chunks"),
        CacheKey("P01_01", 1.5, 2.6, 8, None, "ek100"),
        CacheKey("P01_01", 1.5, 2.6, 8, None, "chunks", "other-rule"),
    ]
    digests = {base.digest(), *(v.digest() for v in variants)}
    assert len(digests) == 7
    assert base.digest() == CacheKey("P01_01", 1.5, 2.6, 8, None, "chunks").digest()


def test_resized_cache(videos, questions, tmp_path):
    summary = build_cache(
        questions, videos.chunk_root, "chunks", 4, tmp_path / "c", size=32, chunk_seconds=2
    )
    assert summary["settings"]["size"] == [32, 32]
    cache = FrameCache(tmp_path / "c")
    assert cache.get(cache.key_for("P01_01", 0.5, 2.5)).frames.shape == (4, 32, 32, 3)
