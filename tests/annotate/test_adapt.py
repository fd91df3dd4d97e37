"""``verbnoun annotate adapt`` on a generated arena video with known bouts: adapt from the first
part, annotate the rest (agreement far above the majority baseline), the review files, the
``label_next.csv`` fed back into adapt; the forest kept as arrays equals scikit-learn; how
labels become frame classes (gaps, held-out bouts). Bad labels files: tests/damaged/."""

from __future__ import annotations

import csv
import itertools
import json
import re

import numpy as np
import pytest

from verbnoun.cli import main

SECONDS, SEED, SIZE = 80.0, 2, 64
LABELLED = 0.3  # the first 30 % of the video is scored


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """``arena.mp4`` (80 s, 64 px), its true bouts, and ``scored.csv``: the bouts of the first
    30 %, cut there."""
    from verbnoun.data.arena import arena_bouts, render_arena

    folder = tmp_path_factory.mktemp("arena")
    bouts = arena_bouts(SECONDS, SEED)
    video = render_arena(folder / "arena.mp4", bouts, size=SIZE, seed=SEED)
    cut = SECONDS * LABELLED
    rows = [f"arena,{b.behaviour},{b.start:.2f},{min(b.stop, cut):.2f}\n" for b in bouts
            if b.start < cut and min(b.stop, cut) - b.start >= 0.5]  # fmt: skip
    scored = folder / "scored.csv"
    scored.write_text("video,behaviour,start,stop\n" + "".join(rows), encoding="utf-8")
    truth = folder / "truth.csv"
    truth.write_text("video,behaviour,start,stop\n" + "".join(
        f"arena,{b.behaviour},{b.start:.2f},{b.stop:.2f}\n" for b in bouts), encoding="utf-8")  # fmt: skip
    order = list(dict.fromkeys(r.split(",")[1] for r in rows))
    assert len(order) == 4  # every behaviour is scored
    return {"video": video, "bouts": bouts, "scored": scored, "truth": truth, "folder": folder,
            "order": order}  # fmt: skip


@pytest.fixture(scope="module")
def adapted(arena):
    """The adapted model and a whole-video annotate run with it."""
    folder = arena["folder"]
    model, run = folder / "model", folder / "run"
    assert main(["annotate", "adapt", "--videos", str(arena["video"]), "--labels",
                 str(arena["scored"]), "--out", str(model)]) == 0  # fmt: skip
    assert main(["annotate", "--video", str(arena["video"]), "--adapted", str(model),
                 "--out", str(run)]) == 0  # fmt: skip
    return model, run


def _frames(arena, fps: float, frames: int) -> list[str]:
    truth = [""] * frames
    for bout in arena["bouts"]:
        for f in range(round(bout.start * fps), min(round(bout.stop * fps), frames)):
            truth[f] = bout.behaviour
    return truth


def _predicted(run, frames: int) -> list[str]:
    pred = [""] * frames
    for row in csv.DictReader((run / "segments.csv").open(encoding="utf-8")):
        for f in range(int(row["start_frame"]), int(row["stop_frame"])):
            pred[f] = row["action"]
    return pred


@pytest.mark.slow
def test_adapt_then_annotate_agrees_on_the_unlabelled_rest(arena, adapted):
    from sklearn.metrics import cohen_kappa_score

    model, run = adapted
    config = json.loads((model / "adapted.json").read_text())
    assert config["behaviours"] == arena["order"]  # in the order of first appearance
    assert config["no_behaviour_class"] is False  # the scored range has no gap
    assert config["window"] == 1.0 and config["stride"] == 0.5
    held = json.loads((model / "agreement.json").read_text())
    assert held["held_out_bouts"] >= 1 and held["windows"] > 0
    assert held["kappa"] is not None and held["accuracy"] > held["majority"]["accuracy"]
    frames = round(SECONDS * 30)
    cut = round(frames * LABELLED)
    truth, pred = _frames(arena, 30, frames)[cut:], _predicted(run, frames)[cut:]
    majority = max(set(truth), key=truth.count)
    kappa = cohen_kappa_score(truth, pred)
    accuracy = np.mean(np.array(truth) == np.array(pred))
    baseline = truth.count(majority) / len(truth)
    assert kappa > 0.6, kappa  # the majority baseline's kappa is 0
    assert accuracy > baseline + 0.3, (accuracy, baseline)
    # the run used the model's own window and stride
    assert json.loads((run / "config.json").read_text())["window"] == 1.0


@pytest.mark.slow
def test_review_files_are_linked_from_the_timeline(arena, adapted):
    _, run = adapted
    page = (run / "timeline.html").read_text(encoding="utf-8")
    sheets = sorted((run / "review").glob("*.jpg"))
    assert [p.name for p in sheets] == [f"{k:02d}-{name}.jpg"
                                        for k, name in enumerate(arena["order"], start=1)]  # fmt: skip
    for sheet in sheets:
        assert f"src='review/{sheet.name}'" in page
    assert "href='label_next.csv'" in page and "(most confident)" in page
    # every example bout links to its segment's row in the table
    for anchor in re.findall(r"href='#([^']+)'", page):
        if anchor != "review":
            assert f"id='{anchor}'" in page, anchor
    from PIL import Image

    with Image.open(sheets[0]) as image:
        assert image.size[0] > 6 * 64  # six thumbnails a row


@pytest.mark.slow
def test_label_next_lists_the_least_sure_windows_apart_from_the_labels(adapted):
    model, run = adapted
    rows = list(csv.DictReader((run / "label_next.csv").open(encoding="utf-8")))
    assert rows and list(rows[0]) == ["video", "start", "stop", "predicted", "confidence",
                                      "behaviour"]  # fmt: skip
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences)
    assert all(r["behaviour"] == "" for r in rows)
    spans = sorted((float(r["start"]), float(r["stop"])) for r in rows)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # no overlap
    scored = json.loads((model / "adapted.json").read_text())["scored"]["arena"]
    assert all(stop <= a or start >= b for start, stop in spans for a, b in scored)
    windows = [json.loads(x) for x in (run / "windows.jsonl").read_text().splitlines()]
    least = min(np.exp(max(w["scores"].values())) for w in windows
                if w["first"] / 30 >= scored[-1][1])  # fmt: skip
    assert confidences[0] == pytest.approx(least, abs=2e-3)


@pytest.mark.slow
def test_label_next_filled_in_feeds_back_into_adapt(arena, adapted, tmp_path):
    model, run = adapted
    rows = list(csv.DictReader((run / "label_next.csv").open(encoding="utf-8")))
    fps = 30
    truth = _frames(arena, fps, round(SECONDS * fps))
    for row in rows[:8]:  # a person fills in eight rows; the others stay empty
        centre = (round(float(row["start"]) * fps) + round(float(row["stop"]) * fps) - 1) // 2
        row["behaviour"] = truth[centre]
    filled = tmp_path / "label_next.csv"
    with filled.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    again = tmp_path / "model2"
    assert main(["annotate", "adapt", "--videos", str(arena["video"]), "--labels",
                 str(arena["scored"]), "--labels", str(filled), "--out", str(again)]) == 0  # fmt: skip
    before = json.loads((model / "adapted.json").read_text())
    after = json.loads((again / "adapted.json").read_text())
    assert [f["kind"] for f in after["labels"]] == ["scored", "label_next"]
    assert after["labels"][1]["rows"] == 8
    assert after["training"]["windows"] > before["training"]["windows"]
    # the eight windows count as labelled stretches (and leave the next label_next list)
    assert len(after["scored"]["arena"]) == len(before["scored"]["arena"]) + 8


def test_forest_arrays_give_scikit_learns_probabilities():
    from sklearn.ensemble import RandomForestClassifier

    from verbnoun.annotate.forest import Forest

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 7)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int) + 2 * (x[:, 2] > 1)  # classes 0..3, 2 rare
    model = RandomForestClassifier(n_estimators=25, min_samples_leaf=2, random_state=0)
    model.fit(x, y)
    forest = Forest(Forest.arrays_of(model, 5), 5)  # class 4 never seen
    test = rng.normal(size=(200, 7)).astype(np.float32)
    expected = np.zeros((200, 5))
    expected[:, model.classes_] = model.predict_proba(test)
    np.testing.assert_allclose(forest.proba(test), expected, atol=1e-6)
    assert forest.proba(test)[:, 4].max() == 0.0
    np.testing.assert_allclose(np.exp(forest.log_proba(test)).sum(axis=1), 1.0, atol=1e-6)


def _facts():
    from verbnoun.annotate.adapt import VideoFacts

    return {"v": VideoFacts(10.0, 600), "w": VideoFacts(10.0, 600)}


def test_gaps_in_a_scored_range_are_no_behaviour_or_left_out(tmp_path):
    from verbnoun.annotate.adapt import NO_BEHAVIOUR, AdaptSettings, read_labels

    path = tmp_path / "l.csv"
    # v: groom 0-5 s, gap 5-8 s, rear 8-10 s, gap 10-10.3 s (shorter than min_gap), groom to 12
    path.write_text("video,behaviour,start,stop\nv,groom,0,5\nv,rear,8,10\nv,groom,10.3,12\n"
                    "w,rear,1,2\n")  # fmt: skip
    labels = read_labels([path], _facts(), AdaptSettings())
    assert labels.classes == ["groom", "rear", NO_BEHAVIOUR]
    v = labels.frames["v"]
    assert (v[:50] == 0).all() and (v[50:80] == 2).all() and (v[80:100] == 1).all()
    assert (v[100:103] == -1).all() and (v[103:120] == 0).all() and (v[120:] == -1).all()
    ignored = read_labels([path], _facts(), AdaptSettings(gaps="ignore"))
    assert ignored.classes == ["groom", "rear"] and (ignored.frames["v"][50:80] == -1).all()
    assert labels.scored == {"v": [(0.0, 12.0)], "w": [(1.0, 2.0)]}


def test_held_out_bouts_are_spread_over_each_class():
    from verbnoun.annotate.adapt import held_out_bouts

    spans = [("a", 0, k * 10, k * 10 + 5) for k in range(10)] + [("b", 1, 0, 9)]
    assert held_out_bouts(spans, 0.2) == {3, 7}  # 2 of 10 class-0 bouts, evenly; class 1 once
    spans = [("a", 0, 0, 5), ("a", 1, 5, 9), ("b", 0, 0, 5), ("b", 1, 5, 9)]
    assert held_out_bouts(spans, 0.2) == {2, 3}  # of two bouts, the second
    assert held_out_bouts(spans, 0.0) == set()


def test_window_features_tell_which_way_things_move():
    from verbnoun.annotate.forest import translations, window_features

    def square(step: int) -> np.ndarray:
        clip = np.full((16, 32, 32, 3), 90, np.uint8)
        for t in range(16):
            x = 13 + step * (t - 8) // 2
            clip[t, 12:20, x : x + 6] = 220
        return clip

    clips = np.stack([square(1), square(-1), square(0)])
    u, v = translations(clips.astype(np.float32).mean(axis=-1) / 255)
    assert u[0].mean() > 0.3 and u[1].mean() < -0.3  # right, left
    assert abs(u[2]).max() == 0 and abs(v).max() < 0.05
    features = window_features(clips)
    assert features.shape[0] == 3 and np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])  # the mirror images differ


def test_labels_may_name_videos_by_file_name():
    from verbnoun.annotate.adapt import resolve_video

    known = {"mouse_1", "w"}
    assert resolve_video(" videos/mouse 1.mp4 ", known) == "mouse_1"
    assert resolve_video("w", known) == "w" and resolve_video("C:\\data\\w.MP4", known) == "w"
    assert resolve_video("other.mp4", known) == "other.mp4"  # left for the unknown-video error


def test_scored_stretches_make_their_unlabelled_time_no_behaviour(tmp_path):
    from verbnoun.annotate.adapt import NO_BEHAVIOUR, AdaptSettings, read_labels
    from verbnoun.annotate.agreement import ScoredRange
    from verbnoun.errors import VerbnounError

    path = tmp_path / "l.csv"
    path.write_text("video,behaviour,start,stop\nv,groom,1,5\nv,rear,5,8\n")
    scored = [ScoredRange("v", 0, 10, "s.csv:2"), ScoredRange("w.mp4", 2, 3, "s.csv:3")]
    labels = read_labels([path], _facts(), AdaptSettings(), scored=scored)
    assert labels.classes == ["groom", "rear", NO_BEHAVIOUR]
    v, w = labels.frames["v"], labels.frames["w"]
    assert (v[:10] == 2).all() and (v[10:50] == 0).all() and (v[80:100] == 2).all()
    assert (v[100:] == -1).all()
    assert (w[20:30] == 2).all() and (w[:20] == -1).all()  # a scored stretch with nothing in it
    bad = [ScoredRange("x", 0, 1, "s.csv:4")]
    with pytest.raises(VerbnounError, match=r"s\.csv:4: video 'x' is not among the videos"):
        read_labels([path], _facts(), AdaptSettings(), scored=bad)
