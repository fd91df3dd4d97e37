"""Bad data: a sample whose video is missing or corrupt is reported (id and reason, in the log and
``skipped.jsonl``) and counted, never replaced; past ``data.max_skip_fraction`` the run stops."""

from __future__ import annotations

import json
import shutil

import pytest
from trainer_setup import kitchen, tiny_settings

from verbnoun.train.config import config_from_dict
from verbnoun.train.data import GlobalBatchSampler
from verbnoun.train.trainer import TooManySkipped, train


@pytest.fixture
def broken(tmp_path_factory, tmp_path):
    """A copy of the kitchen's videos with one video deleted and another corrupted."""
    data = kitchen(tmp_path_factory)
    videos = tmp_path / "videos"
    shutil.copytree(data.videos, videos)
    by_video: dict[str, list[int]] = {}
    for index, record in enumerate(data.records):
        by_video.setdefault(record["video"], []).append(index)
    missing, corrupt = sorted(by_video)[:2]
    shutil.rmtree(next(videos.rglob(f"{missing}.MP4")))
    for chunk in next(videos.rglob(f"{corrupt}.MP4")).iterdir():
        chunk.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all")
    bad = {data.records[i]["id"]: v for v in (missing, corrupt) for i in by_video[v]}
    return data, videos, bad


def _expected_skips(data, bad: dict, steps: int, batch: int) -> list[str]:
    sampler = GlobalBatchSampler(len(data.records), micro=batch, accum=1, world=1, rank=0,
                                 seed=0, stop=steps)  # fmt: skip
    used = [i for micro in sampler for _, i in micro]
    return sorted(data.records[i]["id"] for i in used if data.records[i]["id"] in bad)


@pytest.mark.slow
def test_bad_samples_are_reported_counted_and_never_replaced(broken, tmp_path, capsys):
    data, videos, bad = broken
    run = tmp_path / "run"
    settings = tiny_settings(data, run, steps=8, **{"data.videos": str(videos)})
    settings["data"]["max_skip_fraction"] = 0.5
    summary = train(config_from_dict(settings))
    expected = _expected_skips(data, bad, 8, 4)
    assert expected, "the test data should hit a bad video in 8 steps"
    rows = [json.loads(line) for line in (run / "skipped.jsonl").read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == expected  # exactly the bad ones, once each
    for row in rows:
        assert row["video"] == bad[row["id"]] and row["reason"] and 1 <= row["step"] <= 8
    assert summary["skipped"] == len(expected)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["skipped"] == len(expected)
    err = capsys.readouterr().err
    assert all(f"skipped sample {sample_id}" in err for sample_id in expected)


def test_too_many_skips_stop_the_run(broken, tmp_path):
    data, videos, bad = broken
    run = tmp_path / "run"
    settings = tiny_settings(data, run, steps=8, **{"data.videos": str(videos)})
    settings["data"]["max_skip_fraction"] = 0.0
    with pytest.raises(TooManySkipped, match=r"max_skip_fraction=0.0") as error:
        train(config_from_dict(settings))
    assert "skipped.jsonl" in str(error.value) and "\n" not in str(error.value)
    first = json.loads((run / "skipped.jsonl").read_text().splitlines()[0])
    assert first["id"] in bad
