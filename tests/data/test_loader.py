"""The DataLoader-ready dataset: workers, bounded prefetch, bad items recorded as skips."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from videotools import frame_numbers  # noqa: E402

from verbnoun.data.frame_cache import CacheKey, FrameCache, build_cache  # noqa: E402
from verbnoun.data.layouts import ChunkLayout  # noqa: E402
from verbnoun.data.loader import (  # noqa: E402
    ClipDataset,
    ClipItem,
    clip_loader,
    iterate_clips,
)
from verbnoun.data.sampling import frame_indices  # noqa: E402

ITEMS = [
    ClipItem("P01_01", 0.5, 2.5, "good-1"),
    ClipItem("P01_01", 9.0, 10.0, "past-end"),
    ClipItem("P01_01", 1.5, 2.6, "good-2"),
    ClipItem("P01_77", 0.0, 1.0, "missing"),
    ClipItem("P01_01", 2.0, 2.0, "zero-length"),
    ClipItem("P01_01", 3.0, 4.9, "good-3"),
]


def test_importing_video_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, verbnoun.data.video, verbnoun.data.cli_video; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_loader_yields_exact_frames_and_records_skips(videos, workers):
    dataset = ClipDataset(ITEMS, ChunkLayout(videos.chunk_root, 2), 8)
    loader = clip_loader(dataset, batch_size=3, workers=workers, prefetch=2)
    skips: list = []
    seen = {}
    for batch in iterate_clips(loader, skips):
        assert isinstance(batch["frames"], torch.Tensor) and batch["frames"].dtype == torch.uint8
        for item_id, frames in zip(batch["id"], batch["frames"], strict=True):
            seen[item_id] = frame_numbers(frames.numpy())
    assert set(seen) == {"good-1", "good-2", "good-3"}
    for item in ITEMS:
        if item.id in seen:
            assert seen[item.id] == frame_indices(item.start, item.stop, 30, 150, 8).tolist()
    reasons = {s.id: s.reason for s in skips}
    assert set(reasons) == {"past-end", "missing", "zero-length"}
    assert "after the last frame" in reasons["past-end"]
    assert "not found" in reasons["missing"]
    assert "zero-length" in reasons["zero-length"]


def test_jitter_and_cache(videos, tmp_path):
    from verbnoun.bench.questions import Option, Question, write_questions

    options = (Option("a", "0:0", "ground_truth", "narration"), Option("b", "1:1", "random", "n"))
    questions = tmp_path / "q.jsonl"
    write_questions(questions, [Question("q", "P01_01", "P01", 0.5, 2.5, options, 0, "a", 0, 0)])
    build_cache(
        questions, videos.chunk_root, "chunks", 8, tmp_path / "cache", size=32, chunk_seconds=2
    )
    layout = ChunkLayout(videos.chunk_root, 2)
    cache = FrameCache(tmp_path / "cache")
    key = CacheKey("P01_01", 0.5, 2.5, 8, (32, 32), "chunks")
    assert cache.get(key) is not None
    marker = np.full((8, 32, 32, 3), 7, np.uint8)  # proves the loader reads the cache
    cache.put(key, marker, np.arange(8), np.zeros(8))
    cached = ClipDataset([ITEMS[0]], layout, 8, size=32, cache=tmp_path / "cache")[0]
    assert np.array_equal(cached["frames"].numpy(), marker)
    jittered = ClipDataset([ITEMS[0]], layout, 8, jitter_seed=3)
    a, b = jittered[0], jittered[0]
    assert a["indices"].tolist() == b["indices"].tolist()
    assert frame_numbers(a["frames"].numpy()) == a["indices"].tolist()
