"""annotate score against a truth with several behaviours at once (overlapping bouts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verbnoun.annotate.scoring import score_run
from verbnoun.cli import main


def write_run(folder, rows, videos, labels=("0", "1", "2"), names=("eat", "walk", "groom")):
    """A run folder's segments.csv (rows: video, first frame, end frame, label), videos.csv
    and behaviours.json, as `annotate` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["video_id,start_frame,stop_frame,action_class"]
    lines += [f"{v},{a},{b},{label}" for v, a, b, label in rows]
    (folder / "segments.csv").write_text("\n".join(lines) + "\n")
    facts = ["video_id,fps,num_frames"] + [f"{v},{fps},{n}" for v, (fps, n) in videos.items()]
    (folder / "videos.csv").write_text("\n".join(facts) + "\n")
    (folder / "behaviours.json").write_text(json.dumps({
        "labels": list(labels), "names": list(names), "option_texts": list(names),
        "kind": "action", "source": "test", "by_name": False,
    }))  # fmt: skip
    return folder / "segments.csv"


def test_overlapping_truth_rows_by_hand(tmp_path):
    # truth: eat 0-4 s, walk 2-6 s (both from 2 to 4 s); 10 fps, 100 frames
    truth = tmp_path / "truth.csv"
    truth.write_text("video_id,start,stop,action\nv1,0,4,0\nv1,2,6,1\n")
    pred = write_run(tmp_path / "run", [("v1", 0, 30, "0"), ("v1", 30, 60, "1")],
                     {"v1": (10, 100)})  # fmt: skip
    scores, _ = score_run(pred, truth)
    multi = scores["multilabel"]
    # frames 0-19 eat/eat 1; 20-29 {eat, walk}/eat 0.5; 30-39 {eat, walk}/walk 0.5; 40-59
    # walk/walk 1; 60-99 background on both sides, not counted
    assert multi["jaccard"]["value"] == pytest.approx(50 / 60)
    assert multi["jaccard"]["frames"] == 60 and multi["frames_with_several"] == 20
    eat, walk = multi["per_class"]["0"], multi["per_class"]["1"]
    assert (eat["support"], eat["predicted"], eat["precision"], eat["recall"]) == (40, 30, 1, 0.75)
    assert (walk["support"], walk["predicted"], walk["precision"], walk["recall"]) == (
        40, 30, 1, 0.75
    )  # fmt: skip
    # the one-label-per-frame figures are computed as before (the later row wins overlaps)
    assert "model" in scores and "agreement" not in scores


def test_single_label_truth_has_no_multilabel_part(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("video_id,start,stop,action\nv1,0,4,0\nv1,4,6,1\n")
    pred = write_run(tmp_path / "run", [("v1", 0, 60, "0")], {"v1": (10, 100)})
    scores, _ = score_run(pred, truth)
    assert "multilabel" not in scores


def test_the_overlapping_kitchen_as_truth(tmp_path, capsys):
    """A prediction that names each segment's first label, against the overlapping kitchen's
    description: each labelled frame scores 1 / (its number of true behaviours)."""
    from verbnoun.data.dataset import open_dataset
    from verbnoun.data.overlap import write_overlap_annotations

    description = write_overlap_annotations(tmp_path / "kitchen", videos=3, seed=0)
    dataset = open_dataset(description, None)
    segments = dataset.segments("validation", require_labels=True)
    fps, video = 30, segments[0].video_id
    mine = [s for s in segments if s.video_id == video]
    frames = round(max(s.stop for s in mine) * fps) + 30
    labels = sorted({a for s in segments for a in s.all_action_ids})
    rows = [(video, round(s.start * fps), round(s.stop * fps), s.action_id) for s in mine]
    lines = ["video_id,start_frame,stop_frame,verb_class,noun_class"]
    lines += [f"{v},{a},{b},{x.split(':')[0]},{x.split(':')[1]}" for v, a, b, x in rows]
    run = tmp_path / "run"
    write_run(run, [], {video: (fps, frames)}, labels=labels, names=labels)
    (run / "segments.csv").write_text("\n".join(lines) + "\n")
    truth_sets = [set() for _ in range(frames)]
    for s in mine:
        for f in range(round(s.start * fps), round(s.stop * fps)):
            truth_sets[f].update(s.all_action_ids)
    predicted = [None] * frames
    for _, a, b, x in rows:
        for f in range(a, b):
            predicted[f] = x
    values = [len({p} & t) / len({p} | t) for p, t in zip(predicted, truth_sets, strict=True)
              if t]  # fmt: skip
    assert any(len(t) == 2 for t in truth_sets)
    out = tmp_path / "scores.json"
    assert main(["annotate", "score", "--pred", str(run / "segments.csv"), "--truth",
                 str(description), "--split", "validation", "--out", str(out),
                 "--bootstrap", "50"]) == 0  # fmt: skip
    multi = json.loads(out.read_text())["multilabel"]
    assert multi["jaccard"]["value"] == pytest.approx(np.mean(values))
    assert "Jaccard" in capsys.readouterr().out
