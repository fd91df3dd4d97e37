"""``annotate --behaviours-per-window several``: every behaviour whose probability reaches the
threshold is on in a window; bouts overlap; ``annotate score`` uses the multi-label figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from annotate_clip import BEHAVIOURS, FPS, FRAMES

from verbnoun.annotate.models import _answer
from verbnoun.annotate.smoothing import SmoothingSettings, window_sets
from verbnoun.cli import main

# groom 0.5-3 s and rear 2-4 s overlap (frames 60-90); walk 4.5-5.5 s
OVERLAPPING = (("groom", 0.5, 3.0), ("rear", 2.0, 4.0), ("walk", 4.5, 5.5))
ONE_FRAME = 1 / FPS + 1e-6


def _truth(tmp_path: Path) -> Path:
    path = tmp_path / "truth.csv"
    rows = "".join(f"clip,{start},{stop},{name}\n" for name, start, stop in OVERLAPPING)
    path.write_text("video_id,start,stop,action\n" + rows, encoding="utf-8")
    return path


class KnownProbabilities:
    """One-frame windows; from the true set at the window's frame: two behaviours 0.49 each,
    one behaviour 0.8 (the others 0.1), none: a third each."""

    name = "known"
    views: dict = {}  # noqa: RUF012 - needs no frames, as the oracle

    def __init__(self, sets: list[frozenset[str]], labels: list[str]) -> None:
        self.sets, self.labels = sets, labels

    def settings(self) -> dict:
        return {"known": True}

    def answer(self, windows, frames):
        answers = []
        for window in windows:
            on = self.sets[window.centre]
            rest = 1 - (0.98 if len(on) == 2 else 0.8 if on else 0.0)
            share = {2: 0.49, 1: 0.8}.get(len(on), 0.0)
            free = len(self.labels) - len(on)
            probs = [share if x in on else rest / free for x in self.labels]
            answers.append(_answer(self.labels, [math.log(p) for p in probs]))
        return answers


def _run(clip, truth, out, threshold=0.3, min_confidence=0.4):
    from verbnoun.annotate.runner import AnnotateSettings, VideoSource, run_annotation
    from verbnoun.annotate.scoring import rasterise_sets, read_truth
    from verbnoun.annotate.vocabulary import from_list
    from verbnoun.data.layouts import FileLayout

    behaviours = from_list(BEHAVIOURS)
    sets = rasterise_sets(read_truth(truth, behaviours, {"clip"})["clip"], FRAMES, FPS)
    model = KnownProbabilities(sets, list(behaviours.labels))
    smoothing = SmoothingSettings(method="none", min_confidence=min_confidence,
                                  several=threshold)  # fmt: skip
    settings = AnnotateSettings(window=ONE_FRAME, stride=ONE_FRAME, thumbnails=False)
    return run_annotation(out, [VideoSource("clip", FileLayout(clip))], model, behaviours,
                          settings, smoothing, truth=truth)  # fmt: skip


def test_overlapping_behaviours_give_overlapping_bouts_and_a_perfect_score(clip, tmp_path):
    truth = _truth(tmp_path)
    out = tmp_path / "run"
    _run(clip, truth, out)
    rows = list(csv.DictReader((out / "segments.csv").open()))
    assert [(r["action"], r["start_frame"], r["stop_frame"]) for r in rows] == [
        ("groom", "15", "90"), ("rear", "60", "120"), ("walk", "135", "165")]  # fmt: skip
    bouts = list(csv.DictReader((out / "bouts.csv").open()))
    assert [(b["behaviour"], b["start_frame"], b["stop_frame"]) for b in bouts] == [
        ("groom", "15", "90"), ("rear", "60", "120"), ("walk", "135", "165")]  # fmt: skip
    # confidence: groom is 0.8 on 45 windows and 0.49 on 30
    assert float(rows[0]["confidence"]) == pytest.approx((45 * 0.8 + 30 * 0.49) / 75, abs=1e-3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["behaviours_per_window"]["threshold"] == 0.3
    assert "several" not in summary["smoothing"]
    budget = summary["overall"]["time_budget"]
    assert budget["groom"]["seconds"] == 2.5 and budget["rear"]["seconds"] == 2.0
    assert budget["(no behaviour)"]["seconds"] == pytest.approx(
        45 / FPS
    )  # frames 0-15, 120-135, 165-180
    scores = json.loads((out / "scores.json").read_text())
    multi = scores["multilabel"]
    assert multi["jaccard"]["value"] == 1.0 and multi["frames_with_several"] == 30
    assert multi["jaccard"]["frames"] == 135 and multi["macro_f1"] == pytest.approx(1.0)
    for label in ("0", "1", "2"):
        assert multi["per_class"][label]["f1"] == pytest.approx(1.0)
    # the timeline draws both overlapping bouts, each on its behaviour's row
    page = (out / "timeline.html").read_text()
    assert page.count("<rect data-label='0'") == 1 and page.count("<rect data-label='1'") == 1
    # annotate score reads the overlapping rows back to the same figures
    assert main(["annotate", "score", "--pred", str(out / "segments.csv"), "--truth", str(truth),
                 "--out", str(tmp_path / "s.json")]) == 0  # fmt: skip
    again = json.loads((tmp_path / "s.json").read_text())["multilabel"]
    assert again["jaccard"]["value"] == 1.0 and again["per_class"] == multi["per_class"]


def test_a_higher_threshold_keeps_one_behaviour_per_window(clip, tmp_path):
    """At 0.5 the 0.49 pairs fall short: the most probable (the vocabulary's first of the tie)
    alone, so the overlap is lost and the Jaccard drops by exactly the overlap's half."""
    truth = _truth(tmp_path)
    out = tmp_path / "run"
    _run(clip, truth, out, threshold=0.5)
    rows = list(csv.DictReader((out / "segments.csv").open()))
    assert [(r["action"], r["start_frame"], r["stop_frame"]) for r in rows] == [
        ("groom", "15", "90"), ("rear", "90", "120"), ("walk", "135", "165")]  # fmt: skip
    multi = json.loads((out / "scores.json").read_text())["multilabel"]
    assert multi["jaccard"]["value"] == pytest.approx((135 - 30 * 0.5) / 135)


def test_the_threshold_edge():
    labels = ["a", "b", "c"]
    answers = [{"a": math.log(0.3), "b": math.log(0.3), "c": math.log(0.4)},
               {"a": math.log(0.2), "b": math.log(0.2), "c": math.log(0.6)}]  # fmt: skip
    at = SmoothingSettings(method="none", several=0.3)
    assert window_sets(answers, labels, at) == [frozenset("abc"), frozenset("c")]
    above = SmoothingSettings(method="none", several=0.3001)
    assert window_sets(answers, labels, above) == [frozenset("c"), frozenset("c")]
    # none reaches the threshold: the most probable alone; below --min-confidence: none
    top = SmoothingSettings(method="none", several=1.0)
    assert window_sets(answers, labels, top) == [frozenset("c"), frozenset("c")]
    sure = SmoothingSettings(method="none", several=0.3, min_confidence=0.5)
    assert window_sets(answers, labels, sure) == [frozenset(), frozenset("c")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "0"], "--threshold must be in (0, 1], got 0.0"),
        (["--threshold", "1.5"], "--threshold must be in (0, 1], got 1.5"),
        (["--model", "oracle"], "--model oracle names one behaviour per window"),
        (["--model", "random", "--mode", "open"], "--mode open names one behaviour per window"),
    ],
)
def test_bad_input_gives_one_line_errors(clip, tmp_path, capsys, extra, message):
    argv = ["annotate", "--video", str(clip), "--out", str(tmp_path / "bad"), "--actions",
            BEHAVIOURS, "--behaviours-per-window", "several", *extra]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("verbnoun: error:") and message in err and "\n" not in err
    assert not (tmp_path / "bad" / "windows.jsonl").exists()


def test_one_behaviour_answers_are_refused_when_outputs_are_derived(clip, tmp_path):
    """A model that scores one behaviour per window (here the oracle through the Python API)."""
    from verbnoun.annotate.models import OracleModel
    from verbnoun.annotate.runner import AnnotateSettings, VideoSource, run_annotation
    from verbnoun.annotate.vocabulary import from_list
    from verbnoun.data.layouts import FileLayout
    from verbnoun.errors import VerbnounError

    model = OracleModel({"clip": ["0"] * FRAMES}, "truth")
    settings = AnnotateSettings(window=1.0, stride=1.0, thumbnails=False)
    with pytest.raises(VerbnounError, match="score one behaviour each"):
        run_annotation(tmp_path / "run", [VideoSource("clip", FileLayout(clip))], model,
                       from_list(BEHAVIOURS), settings, SmoothingSettings(several=0.3))  # fmt: skip
