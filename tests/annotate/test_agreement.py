"""Agreement with a human: kappa and MCC against values worked out by hand, partial truth (only
the scored stretches count), bootstrap intervals (contain the point estimate, deterministic),
and the vectorised resampling giving back scikit-learn's and the segment metrics' figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from verbnoun.annotate.agreement import (
    AgreementSettings,
    Piece,
    agreement,
    alignment,
    evaluate,
    unit_stats,
)
from verbnoun.annotate.metrics import levenshtein, segmentation_metrics
from verbnoun.cli import main

# 10 frames; "" is no behaviour. Rows truth, columns prediction, order ("", a, b):
#   ""  [2, 1, 0]      row sums 3, 4, 3; column sums 2, 3, 5; 7 on the diagonal
#   a   [0, 2, 2]
#   b   [0, 0, 3]
TRUTH = ["a", "a", "a", "a", "b", "b", "b", "", "", ""]
PRED = ["a", "a", "b", "b", "b", "b", "b", "", "", "a"]


def _point(pieces, **settings):
    return agreement(pieces, AgreementSettings(replicates=0, **settings))


def test_kappa_mcc_precision_recall_f1_by_hand():
    result = _point([Piece("v", 0, 10, PRED, TRUTH)])
    overall, a, b = result["overall"], result["per_class"]["a"], result["per_class"]["b"]
    # kappa = (po - pe) / (1 - pe): po = 7/10, pe = (3*2 + 4*3 + 3*5) / 100 = 33/100
    assert overall["kappa"]["value"] == pytest.approx(37 / 67, abs=1e-4)
    # MCC = (7*10 - 33) / sqrt((100 - (9+16+9)) * (100 - (4+9+25))) = 37 / sqrt(66 * 62)
    assert overall["mcc"]["value"] == pytest.approx(37 / math.sqrt(66 * 62), abs=1e-4)
    # a against the rest: tp 2, fp 1 (frame 9), fn 2, tn 5
    #   kappa: po 7/10, pe = 0.4*0.3 + 0.6*0.7 = 0.54 -> 0.16 / 0.46
    assert a["kappa"]["value"] == pytest.approx(0.16 / 0.46, abs=1e-4)
    assert a["mcc"]["value"] == pytest.approx((2 * 5 - 1 * 2) / math.sqrt(3 * 4 * 6 * 7), abs=1e-4)
    assert (a["precision"]["value"], a["recall"]["value"]) == (pytest.approx(200 / 3, abs=1e-3),
                                                               50.0)  # fmt: skip
    assert a["f1"]["value"] == pytest.approx(100 * 4 / 7, abs=1e-3)
    # b: tp 3, fp 2, fn 0
    assert (b["precision"]["value"], b["recall"]["value"], b["f1"]["value"]) == (60.0, 100.0, 75.0)
    assert overall["f1"]["value"] == pytest.approx((100 * 4 / 7 + 75) / 2, abs=1e-3)
    # segments: truth a[0,4) b[4,7); prediction a[0,2) b[2,7) a[9,10)
    assert overall["edit"]["value"] == pytest.approx(100 * (1 - 1 / 3), abs=1e-3)  # a b a / a b
    # IoU a 2/4, b 3/5; the last a matches nothing: tp 2, fp 1, fn 0 at 50 %
    assert overall["f1@50"]["value"] == pytest.approx(80.0)
    assert a["f1@50"]["value"] == pytest.approx(100 * 2 / 3)  # tp 1, fp 1
    assert a["edit"]["value"] == pytest.approx(50.0)  # two bouts of a against one
    assert overall["kappa"]["low"] is None  # no resamples asked


def test_partial_truth_scores_only_the_scored_stretches(tmp_path, capsys):
    """A human scored 1-4 s of a 10 s video: the prediction's bouts outside it count neither
    as false positives nor as background, and changing them changes nothing."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "videos.csv").write_text("video_id,fps,num_frames,duration\nv,10,100,10\n")
    (run / "behaviours.json").write_text(json.dumps({
        "labels": ["0", "1"], "names": ["groom", "rear"], "option_texts": ["groom", "rear"],
        "kind": "action", "source": "--actions", "by_name": True}))  # fmt: skip
    truth = tmp_path / "truth.csv"
    truth.write_text("video_id,start,stop,action\nv,1.5,3,groom\n")
    scored = tmp_path / "scored.csv"
    scored.write_text("video_id,start,stop\nv,1,4\n")

    def score(rows, *extra):
        (run / "segments.csv").write_text(
            "video_id,start_frame,stop_frame,action_class\n"
            + "".join(f"v,{a},{b},{c}\n" for a, b, c in rows)
        )
        out = tmp_path / "scores.json"
        code = main(["annotate", "score", "--pred", str(run / "segments.csv"), "--truth",
                     str(truth), "--out", str(out), "--bootstrap", "50", *extra])  # fmt: skip
        assert code == 0, capsys.readouterr()
        return json.loads(out.read_text())

    inside = [(15, 30, "0")]
    exact = score([*inside, (50, 90, "0"), (0, 5, "1")], "--scored", str(scored))
    assert exact["scored"] == {"file": str(scored), "videos": 1, "stretches": 1, "frames": 30,
                               "seconds": 3.0}  # fmt: skip
    assert exact["model"]["frame_accuracy"] == 100.0
    assert exact["model"]["f1@50"] == 100.0
    assert exact["agreement"]["overall"]["kappa"]["value"] == 1.0
    assert exact["agreement"]["units"] == 1 and "rough" in exact["agreement"]["note"]
    assert exact["agreement"]["per_class"]["0"]["precision"]["value"] == 100.0
    assert "1" not in exact["agreement"]["per_class"]  # predicted only where nobody scored
    elsewhere = score([*inside, (60, 70, "1")], "--scored", str(scored))
    assert elsewhere["model"] == exact["model"]
    assert elsewhere["agreement"]["overall"] == exact["agreement"]["overall"]
    # without --scored the same prediction's outside bouts are false positives on background
    whole = score([*inside, (50, 90, "0"), (0, 5, "1")])
    assert whole["model"]["frame_accuracy"] == pytest.approx(55.0)
    assert whole["agreement"]["overall"]["kappa"]["value"] < 0.5
    # a cut-off prediction bout: only its scored part counts (frames 30-40 wrong, 10 of 30)
    cut = score([(15, 45, "0")], "--scored", str(scored))
    assert cut["model"]["frame_accuracy"] == pytest.approx(200 / 3, abs=1e-3)


@pytest.mark.parametrize(
    ("rows", "place"),
    [
        ("v,4,1\n", r"scored\.csv:2: stop is not after start"),
        ("w,1,4\n", r"scored\.csv:2: video 'w' is not in the prediction"),
        ("v,1,4\nv,20,30\n", r"scored\.csv:3: 20-30 s holds no frame"),
        ("v,1,x\n", r"scored\.csv:2: field 'stop': not a time"),
        ("", r"scored\.csv: no scored ranges"),
    ],
)
def test_bad_scored_ranges_are_one_line_errors(tmp_path, capsys, rows, place):
    import re

    run = tmp_path / "run"
    run.mkdir()
    (run / "videos.csv").write_text("video_id,fps,num_frames,duration\nv,10,100,10\n")
    (run / "segments.csv").write_text("video_id,start_frame,stop_frame,action_class\nv,1,9,a\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("video_id,start,stop,action\nv,0.1,0.9,a\n")
    scored = tmp_path / "scored.csv"
    scored.write_text("video_id,start,stop\n" + rows)
    code = main(["annotate", "score", "--pred", str(run / "segments.csv"), "--truth", str(truth),
                 "--scored", str(scored)])  # fmt: skip
    captured = capsys.readouterr()
    errors = [x for x in (captured.out + captured.err).splitlines() if x.startswith("verbnoun:")]
    assert code != 0 and "Traceback" not in captured.err
    assert len(errors) == 1 and re.search(place, errors[0]), errors


def _random_pieces(seed: int, videos: int = 3, frames: int = 400) -> list[Piece]:
    rng = np.random.default_rng(seed)

    def sequence(labels):
        out: list[str] = []
        while len(out) < frames:
            out += [labels[rng.integers(len(labels))]] * int(rng.integers(3, 40))
        return out[:frames]

    pieces = []
    for v in range(videos):
        truth = sequence(["", "a", "b", "c"])
        pred = [x if rng.random() < 0.85 else "" for x in truth]
        pred = pred[7:] + sequence(["a", "d"])[:7]  # late by 7 frames, a stray behaviour at the end
        pieces.append(Piece(f"v{v}", 0, frames, pred, truth))
    return pieces


def test_bootstrap_intervals_contain_the_estimate_and_repeat():
    pieces = _random_pieces(3)
    first = agreement(pieces, AgreementSettings(replicates=300, seed=5))
    again = agreement(pieces, AgreementSettings(replicates=300, seed=5))
    other = agreement(pieces, AgreementSettings(replicates=300, seed=6))
    assert first == again
    assert first["overall"] != other["overall"]
    assert first["unit"] == "bout" and first["units"] > 30 and "note" not in first
    for table in (first["overall"], *first["per_class"].values()):
        for metric in ("kappa", "mcc", "precision", "recall", "f1", "f1@10", "f1@25", "f1@50",
                       "edit"):  # fmt: skip
            entry = table[metric]
            if entry["value"] is None:
                continue
            assert entry["low"] <= entry["value"] + 1e-9 <= entry["high"] + 2e-9, (metric, entry)
    kappa = first["overall"]["kappa"]
    assert 0 < kappa["high"] - kappa["low"] < 0.5  # an interval, not a point nor everything
    by_video = agreement(pieces, AgreementSettings(replicates=300, unit="video"))
    assert by_video["units"] == 3
    assert by_video["overall"]["kappa"]["value"] == kappa["value"]


def test_resampling_gives_back_sklearn_and_segment_metrics():
    """With every unit taken once, the vectorised sums give scikit-learn's frame figures and
    the segment metrics of :mod:`verbnoun.annotate.metrics` exactly."""
    from sklearn.metrics import cohen_kappa_score, matthews_corrcoef

    for seed in range(3):
        pieces = _random_pieces(seed)
        stats = unit_stats(pieces)
        overall, per = evaluate(np.ones((1, len(stats.piece))), stats)
        truth = [x for p in pieces for x in p.truth]
        pred = [x for p in pieces for x in p.pred]
        assert overall["kappa"][0] == pytest.approx(cohen_kappa_score(truth, pred))
        assert overall["mcc"][0] == pytest.approx(matthews_corrcoef(truth, pred))
        for col, label in enumerate(stats.labels[1:], start=1):
            t, p = np.array(truth) == label, np.array(pred) == label
            assert per["kappa"][0, col] == pytest.approx(cohen_kappa_score(t, p))
            assert per["mcc"][0, col] == pytest.approx(matthews_corrcoef(t, p))
        reported = agreement(pieces, AgreementSettings(replicates=0))  # sklearn on cells
        assert reported["overall"]["kappa"]["value"] == round(cohen_kappa_score(truth, pred), 4)
        assert reported["overall"]["mcc"]["value"] == round(matthews_corrcoef(truth, pred), 4)
        t, p = np.array(truth) == "a", np.array(pred) == "a"
        assert reported["per_class"]["a"]["kappa"]["value"] == round(cohen_kappa_score(t, p), 4)
        reference = segmentation_metrics([(p.pred, p.truth) for p in pieces])
        for metric in ("f1@10", "f1@25", "f1@50", "edit"):
            assert overall[metric][0] == pytest.approx(reference[metric])
        for col, label in enumerate(stats.labels[1:], start=1):
            for metric in ("f1@10", "f1@25", "f1@50"):
                assert per[metric][0, col] == pytest.approx(reference["per_class"][label][metric])


def test_alignment_is_an_optimal_edit_script():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = list(rng.choice(list("abcd"), size=rng.integers(0, 9)))
        b = list(rng.choice(list("abcd"), size=rng.integers(0, 9)))
        ops = alignment(a, b)
        assert len(ops) == levenshtein(a, b)
        deleted = {j for op, _, j in ops if op == "del"}
        inserted = {i for op, i, _ in ops if op == "ins"}
        assert len(a) - len(inserted) == len(b) - len(deleted)  # the rest is paired in order


def test_annotate_scores_only_the_scored_stretch(clip, truth_csv, tmp_path, capsys):
    """``annotate --truth --scored``: scores.json compares 1.8-6 s only (groom, at 0.5-1.5 s,
    is outside), and summary.json carries the agreement."""
    from annotate_clip import BEHAVIOURS

    scored = tmp_path / "scored.csv"
    scored.write_text("video_id,start,stop\nclip,1.8,6\n")
    out = tmp_path / "run"
    code = main(["annotate", "--video", str(clip), "--out", str(out), "--truth", str(truth_csv),
                 "--scored", str(scored), "--actions", BEHAVIOURS, "--model", "oracle",
                 "--window", "0.0333334", "--stride", "0.0333334", "--smoothing", "none",
                 "--no-thumbnails"])  # fmt: skip
    assert code == 0
    assert "agreement   kappa 1.000" in capsys.readouterr().out
    scores = json.loads((out / "scores.json").read_text())
    assert scores["scored"]["frames"] == 180 - 54
    assert sorted(scores["agreement"]["per_class"]) == ["1", "2"]  # rear and walk
    assert scores["agreement"]["per_class"]["1"]["behaviour"] == "rear"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scores"]["agreement"]["kappa"] == 1.0
    assert main(["annotate", "--video", str(clip), "--out", str(tmp_path / "x"), "--scored",
                 str(scored), "--actions", BEHAVIOURS, "--model", "random"]) == 1  # fmt: skip
    assert "give --truth too" in capsys.readouterr().err
