"""annotate as a library call: the command's options become one AnnotateJob of settings objects,
and what does not fit is refused in one line before any video is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from verbnoun.annotate.job import annotate_job, model_names
from verbnoun.errors import VerbnounError


def test_options_become_settings_objects(tmp_path):
    job = annotate_job(
        tmp_path / "run", video=tmp_path / "clip.mp4", model="random", mode="chunks", seed=3,
        frames=4, stride=0.5, switch=0.2, smoothing="none", truth=tmp_path / "t.csv",
        bin_="5min", shard="1/2", thumbnails=False,
    )  # fmt: skip
    assert job.out == tmp_path / "run" and job.videos.video == tmp_path / "clip.mp4"
    assert (job.who.model, job.who.mode, job.who.frames) == ("random", "chunks", 4)
    assert job.who.adapter == {"seed": 3}  # what the registry's adapter takes
    assert (job.settings.window, job.settings.stride, job.settings.thumbnails) == (2.0, 0.5, False)
    assert (job.smooth.method, job.smooth.switch) == ("none", 0.2)
    assert job.truth.truth == Path(tmp_path / "t.csv") and job.truth.bin_seconds == 300
    assert job.shard == "1/2" and job.adapted_config is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"out": None, "video": "v.mp4"}, "give --out DIR"),
        ({"out": "r"}, "give --video FILE|DIR, or --dataset"),
        ({"out": "r", "video": "v.mp4", "scored": "s.csv"}, "--scored says which stretches"),
        ({"out": "r", "video": "v.mp4", "model": "openai", "adapted": "a"}, "--adapted goes with"),
        ({"out": "r", "video": "v.mp4", "model": "adapted"}, "needs --adapted DIR"),
        ({"out": "r", "video": "v.mp4", "window": 0}, "--window and --stride must be positive"),
        ({"out": "r", "video": "v.mp4", "sede": 1}, "unknown annotate option 'sede'"),
    ],
)
def test_what_does_not_fit_is_refused(options, message):
    with pytest.raises(VerbnounError, match=message):
        annotate_job(**options)


def test_models_are_annotates_own_and_the_registrys_window_adapters():
    names = model_names()
    assert names[0] == "specialist" and names[-2:] == ("oracle", "adapted")
    assert {"random", "openai", "llavaction", "hf"} <= set(names)
    assert "prior" not in names and "specialist" not in names[1:-2]  # they need annotations
