"""Segmentation metrics against hand-computed cases, and the smoothing steps."""

from __future__ import annotations

import math

import pytest

from verbnoun.annotate.metrics import (
    edit_score,
    f1_counts,
    levenshtein,
    majority_labels,
    segmentation_metrics,
)
from verbnoun.annotate.smoothing import (
    SmoothingSettings,
    absorb_short,
    frames_from_windows,
    window_labels,
)


def test_levenshtein_and_edit_score():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein([], ["a"]) == 1
    # segments [a, b, c] against [a, c]: one deletion over max length 3
    assert edit_score(list("aabbc"), list("aaccc")) == pytest.approx(100 * (1 - 1 / 3))
    # background runs are not segments: same order of segments -> 100
    assert edit_score(["", "a", "a", "", "b"], list("aaabb")) == 100.0
    assert edit_score(["", ""], ["", ""]) == 100.0


def test_f1_matches_each_true_segment_once():
    truth = ["a"] * 10 + ["b"] * 10
    pred = ["a"] * 20  # IoU with the true a: 10/20 = 0.5; b is missed
    assert f1_counts(pred, truth, 0.5) == (1, 0, 1)
    assert f1_counts(pred, truth, 0.51) == (0, 1, 2)
    # two predicted pieces of one true segment: the second is a false positive
    pred = ["a"] * 5 + [""] + ["a"] * 4
    assert f1_counts(pred, ["a"] * 10, 0.25) == (1, 1, 0)
    metrics = segmentation_metrics([(pred, ["a"] * 10)])
    assert metrics["f1@25"] == pytest.approx(100 * 2 * 0.5 * 1 / 1.5)
    assert metrics["f1@50"] == pytest.approx(100 * 2 * 0.5 * 1 / 1.5)  # IoU 5/10 = 0.5
    assert metrics["frame_accuracy"] == pytest.approx(90.0)


def test_short_prediction_passes_low_thresholds_only():
    truth, pred = ["a"] * 10, ["a"] * 4 + [""] * 6  # IoU 0.4
    m = segmentation_metrics([(pred, truth)])
    assert (m["f1@10"], m["f1@25"], m["f1@50"]) == (100.0, 100.0, 0.0)
    assert m["edit"] == 100.0 and m["frame_accuracy"] == pytest.approx(40.0)
    per = m["per_class"]["a"]
    assert per["frame_recall"] == pytest.approx(40.0) and per["frame_precision"] == 100.0


def test_counts_are_summed_over_videos_before_f1():
    one = (["a"] * 10, ["a"] * 10)  # tp
    two = (["b"] * 10, ["a"] * 10)  # fp and fn
    m = segmentation_metrics([one, two])
    assert m["f1@50"] == pytest.approx(50.0)  # P = R = 1/2
    assert m["edit"] == pytest.approx(50.0)  # mean of 100 and 0
    assert majority_labels([["a", "a", ""], ["b", "", ""]]) == "a"


def test_viterbi_removes_a_blip_that_argmax_keeps():
    answers = [{"a": 0.0}, {"a": 0.0}, {"b": 0.0}, {"a": 0.0}, {"a": 0.0}]
    labels = ["a", "b"]
    assert window_labels(answers, labels, SmoothingSettings(method="none")) == list("aabaa")
    sticky = SmoothingSettings(method="viterbi", switch=0.01)
    assert window_labels(answers, labels, sticky) == list("aaaaa")
    loose = SmoothingSettings(method="viterbi", switch=0.5)
    assert window_labels(answers, labels, loose) == list("aabaa")


def test_min_confidence_makes_background():
    unsure = {"a": math.log(0.4), "b": math.log(0.6)}
    sure = {"a": math.log(0.9), "b": math.log(0.1)}
    settings = SmoothingSettings(method="none", min_confidence=0.7)
    assert window_labels([unsure, sure], ["a", "b"], settings) == ["", "a"]


def test_frames_take_the_nearest_window_and_short_runs_merge():
    assert frames_from_windows(["x", "y", "z"], [1, 4, 7], 9) == list("xxxyyyzzz")
    frames = ["a"] * 10 + ["b"] * 2 + ["c"] * 10
    assert absorb_short(frames, 3) == ["a"] * 12 + ["c"] * 10
    assert absorb_short(frames, 1) == frames


def test_bad_smoothing_settings():
    from verbnoun.errors import VerbnounError

    with pytest.raises(VerbnounError, match="--switch"):
        SmoothingSettings(switch=1.5).check()
    with pytest.raises(VerbnounError, match="unknown smoothing"):
        SmoothingSettings(method="hmm").check()
