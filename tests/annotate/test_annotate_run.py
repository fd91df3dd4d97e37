"""``verbnoun annotate`` end to end on a tiny video with known segments: an oracle scores 100,
a shifted oracle loses exactly what the metrics define; kill and resume; bad input."""

from __future__ import annotations

import csv
import json

import pytest
from annotate_clip import BEHAVIOURS, FRAMES

from verbnoun.cli import main

ORACLE = ["--actions", BEHAVIOURS, "--model", "oracle", "--window", "0.0333334",
          "--stride", "0.0333334", "--smoothing", "none"]  # fmt: skip


def _annotate(clip, truth_csv, out, *extra):
    return main(["annotate", "--video", str(clip), "--out", str(out), "--truth", str(truth_csv),
                 *ORACLE, *extra])  # fmt: skip


def test_oracle_round_trip_scores_100(clip, truth_csv, tmp_path, capsys):
    out = tmp_path / "oracle"
    assert _annotate(clip, truth_csv, out) == 0
    scores = json.loads((out / "scores.json").read_text())
    for key in ("frame_accuracy", "edit", "f1@10", "f1@25", "f1@50"):
        assert scores["model"][key] == 100.0
        assert scores["unsmoothed"][key] == 100.0
    assert scores["majority"]["label"] == "1"  # rear: the longest
    rows = list(csv.DictReader((out / "segments.csv").open()))
    assert [(r["action"], r["start_frame"], r["stop_frame"]) for r in rows] == [
        ("groom", "15", "45"), ("rear", "60", "120"), ("walk", "135", "165")]  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())["overall"]
    assert summary["time_budget"]["rear"] == {
        "seconds": 2.0,
        "fraction": pytest.approx(1 / 3, abs=1e-4),
    }
    assert summary["bouts"]["groom"]["count"] == 1
    assert summary["transitions"]["counts"] == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    for name in ("ethogram.png", "timeline.html", "dataset.yaml", "videos.csv"):
        assert (out / name).stat().st_size > 0
    # the score command reads the same files and agrees
    assert main(["annotate", "score", "--pred", str(out / "segments.csv"),
                 "--truth", str(truth_csv), "--out", str(tmp_path / "s.json")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "s.json").read_text())["model"] == scores["model"]
    assert "majority" in capsys.readouterr().out


def test_shifted_oracle_loses_what_the_metrics_define(clip, truth_csv, tmp_path):
    out = tmp_path / "shifted"
    assert _annotate(clip, truth_csv, out, "--oracle-shift", "11") == 0
    model = json.loads((out / "scores.json").read_text())["model"]
    # every segment 11 frames early: 6 boundaries x 11 wrong frames
    assert model["frame_accuracy"] == pytest.approx(100 * (FRAMES - 66) / FRAMES)
    assert model["edit"] == 100.0  # same order of segments
    # IoU: groom and walk 19/41 < 0.5, rear 49/71 >= 0.5: tp 1, fp 2, fn 2
    assert model["f1@25"] == 100.0 and model["f1@50"] == pytest.approx(100 / 3)


def test_outputs_feed_back_as_a_data_set(clip, truth_csv, tmp_path):
    from verbnoun.data.dataset import open_dataset

    out = tmp_path / "oracle"
    assert _annotate(clip, truth_csv, out) == 0
    dataset = open_dataset(annotations=out / "dataset.yaml")
    segments = dataset.segments("train", require_labels=True)
    assert [(s.action_id, s.start_frame, s.stop_frame) for s in segments] == [
        ("0", 15, 45), ("1", 60, 120), ("2", 135, 165)]  # fmt: skip
    assert dataset.action_classes().keys == ("groom", "rear", "walk")


def test_kill_and_resume_never_asks_twice(clip, truth_csv, tmp_path):
    from pathlib import Path

    from verbnoun.annotate.models import OracleModel
    from verbnoun.annotate.runner import AnnotateSettings, VideoSource, run_annotation
    from verbnoun.annotate.scoring import rasterise, read_truth
    from verbnoun.annotate.smoothing import SmoothingSettings
    from verbnoun.annotate.vocabulary import from_list
    from verbnoun.data.layouts import FileLayout

    behaviours = from_list(BEHAVIOURS)
    spans = read_truth(Path(truth_csv), behaviours, {"clip"})
    asked: list[str] = []

    class Counting(OracleModel):
        def answer(self, windows, frames):
            asked.extend(w.id for w in windows)
            return super().answer(windows, frames)

    model = Counting({"clip": rasterise(spans["clip"], FRAMES, 30.0)}, "truth")
    settings = AnnotateSettings(window=0.5, stride=0.1, batch_size=4)
    videos = [VideoSource("clip", FileLayout(clip))]
    out = tmp_path / "run"

    def kill(_n, calls=[0]):  # noqa: B006 - a counter
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_annotation(out, videos, model, behaviours, settings, SmoothingSettings(),
                       on_batch=kill)  # fmt: skip
    assert len(asked) == 12 and not (out / "segments.csv").exists()
    with (out / "windows.jsonl").open("a") as handle:
        handle.write('{"id": "clip/000012", "vid')  # a kill in the middle of a line
    first = list(asked)
    result = run_annotation(out, videos, model, behaviours, settings, SmoothingSettings())
    assert result["missing"] == 0 and (out / "segments.csv").is_file()
    assert set(asked[len(first) :]).isdisjoint(first)
    ids = [json.loads(line)["id"] for line in (out / "windows.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == result["windows"] == len(asked)
    # a rerun asks nothing; other smoothing re-derives the outputs from the answers
    again = run_annotation(out, videos, model, behaviours, settings,
                           SmoothingSettings(min_duration=0.5))  # fmt: skip
    assert again["asked"] == 0


def test_shards_split_the_windows_and_finish_together(clip, truth_csv, tmp_path, capsys):
    out = tmp_path / "sharded"
    assert _annotate(clip, truth_csv, out, "--shard", "1/2") == 0
    assert "still to answer" in capsys.readouterr().out
    assert _annotate(clip, truth_csv, out, "--shard", "2/2") == 0
    assert (out / "segments.csv").is_file()
    assert len(list(out.glob("windows.shard-*-of-2.jsonl"))) == 2


def test_random_model_answers_with_scores_per_window(clip, tmp_path):
    out = tmp_path / "random"
    assert main(["annotate", "--video", str(clip), "--out", str(out), "--actions", BEHAVIOURS,
                 "--model", "random", "--window", "2", "--stride", "1"]) == 0  # fmt: skip
    records = [json.loads(x) for x in (out / "windows.jsonl").read_text().splitlines()]
    assert len(records) == 5
    assert all(r["label"] in {"0", "1", "2"} and r["scores"] == {r["label"]: 0.0} for r in records)
    assert all((out / "thumbs" / "clip" / f"{r['index']:06d}.jpg").is_file() for r in records)


def test_names_are_escaped_in_the_timeline(clip, tmp_path):
    out, truth = tmp_path / "escaped", tmp_path / "truth.csv"
    name = "<script>alert('$x')</script>"
    truth.write_text(f'video_id,start,stop,action\nclip,1,3,"{name}"\n', encoding="utf-8")
    assert main(["annotate", "--video", str(clip), "--out", str(out), "--actions", f"{name},rear",
                 "--model", "oracle", "--truth", str(truth), "--window", "0.5",
                 "--stride", "0.5"]) == 0  # fmt: skip
    page = (out / "timeline.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;$x&#x27;)" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--video", "{tmp}/missing.mp4", "--actions", "a,b"], "no such video"),
        (["--video", "{clip}", "--actions", "a,b", "--window", "60"], "longer than the video"),
        (["--video", "{clip}", "--actions", " , "], "action list is empty"),
        (
            [
                "--video",
                "{clip}",
                "--actions",
                "groom,rear",
                "--model",
                "oracle",
                "--truth",
                "{truth}",
            ],
            "unknown class 'walk'",
        ),
    ],
)
def test_bad_input_gives_one_line_errors(clip, truth_csv, tmp_path, capsys, args, message):
    values = {"tmp": tmp_path, "clip": clip, "truth": truth_csv}
    argv = ["annotate", "--out", str(tmp_path / "bad")] + [a.format(**values) for a in args]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("verbnoun: error:") and message in err and "\n" not in err


def test_given_segments_are_labelled_as_they_are(clip, truth_csv, tmp_path):
    spans = tmp_path / "spans.csv"
    spans.write_text("video_id,start,stop\nclip,0.5,1.5\nclip,2.0,4.0\nclip,00:00:04.50,5.5\n")
    out = tmp_path / "given"
    argv = ["annotate", "--video", str(clip), "--out", str(out), "--truth", str(truth_csv),
            "--actions", BEHAVIOURS, "--model", "oracle", "--segments", str(spans)]  # fmt: skip
    assert main(argv) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["model"]["f1@50"] == 100.0 and scores["unsmoothed"]["frame_accuracy"] == 100.0
    rows = list(csv.DictReader((out / "segments.csv").open()))
    assert [r["action"] for r in rows] == ["groom", "rear", "walk"]
