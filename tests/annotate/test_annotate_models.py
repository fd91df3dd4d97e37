"""Window models through the adapter interface: free narration mapped to actions (raw text
kept), multiple choice in chunks over more behaviours than letters, and their errors."""

from __future__ import annotations

import json

import pytest

from verbnoun.annotate.models import AdapterModel, OpenModel
from verbnoun.annotate.runner import AnnotateSettings, VideoSource, run_annotation
from verbnoun.annotate.smoothing import SmoothingSettings
from verbnoun.data.layouts import FileLayout
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Reply


class Narrator:
    """Answers every window in words, by the window's start time."""

    name = "narrator"
    needs_frames = True

    def settings(self) -> dict:
        return {}

    def answer(self, requests):
        assert all(r.frames is not None and r.frames.shape[0] == 2 for r in requests)
        return [
            Reply("I pick up the red bowl." if r.question.start < 3 else "hmm") for r in requests
        ]


class Scorer:
    """Scores each option by its position (the last option of each question wins)."""

    name = "scorer"
    needs_frames = False

    def __init__(self) -> None:
        self.seen: list[int] = []

    def settings(self) -> dict:
        return {}

    def answer(self, requests):
        self.seen += [len(r.question.options) for r in requests]
        return [Reply("A", scores=[float(i) for i in range(len(r.question.options))])
                for r in requests]  # fmt: skip


@pytest.fixture(scope="module")
def kitchen_dataset(tmp_path_factory):
    from verbnoun.data.dataset import open_dataset
    from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
    from verbnoun.data.synth import write_kitchen_description

    root = tmp_path_factory.mktemp("kitchen")
    write_kitchen_annotations(root / "annotations", kitchen_script(10))
    return open_dataset(annotations=write_kitchen_description(root))


@pytest.mark.slow
def test_open_narration_is_mapped_and_kept(clip, kitchen_dataset, tmp_path):
    from verbnoun.annotate.vocabulary import from_dataset
    from verbnoun.interpret.open_vocab import OpenVocabMapper

    behaviours = from_dataset(kitchen_dataset, "kitchen")
    mapper = OpenVocabMapper(kitchen_dataset.verbs(), kitchen_dataset.nouns())
    model = OpenModel(Narrator(), mapper, frames=2, size=32)
    out = tmp_path / "open"
    result = run_annotation(out, [VideoSource("clip", FileLayout(clip))], model, behaviours,
                            AnnotateSettings(window=2, stride=2), SmoothingSettings(method="none"))  # fmt: skip
    records = [json.loads(x) for x in (out / "windows.jsonl").read_text().splitlines()]
    take = kitchen_dataset.verbs().keys.index("take")
    bowl = kitchen_dataset.nouns().keys.index("bowl:red")
    assert (
        records[0]["label"] == f"{take}:{bowl}" and records[0]["raw"] == "I pick up the red bowl."
    )
    assert records[-1]["label"] == "" and records[-1]["raw"] == "hmm"  # unmapped: no behaviour
    assert result["outputs"]["segments"] == 1


def test_chunks_ask_every_behaviour_and_keep_all_scores(clip, tmp_path):
    from verbnoun.annotate.vocabulary import from_list

    behaviours = from_list(",".join(f"b{i}" for i in range(60)))
    adapter = Scorer()
    model = AdapterModel(adapter, behaviours, mode="chunks")
    out = tmp_path / "chunks"
    run_annotation(out, [VideoSource("clip", FileLayout(clip))], model, behaviours,
                   AnnotateSettings(window=6, stride=6), SmoothingSettings())  # fmt: skip
    record = json.loads((out / "windows.jsonl").read_text().splitlines()[0])
    assert adapter.seen == [20, 20, 20] and len(record["scores"]) == 60
    assert record["label"] in {"19", "39", "59"}  # the last option of a chunk


def test_multiple_choice_limits(tmp_path):
    from verbnoun.annotate.vocabulary import from_list

    many = from_list(",".join(f"b{i}" for i in range(30)))
    with pytest.raises(VerbnounError, match="more options than letters"):
        AdapterModel(Scorer(), many, mode="choice")
    with pytest.raises(VerbnounError, match="--specialist"):
        AdapterModel(Scorer(), many, mode="two-stage")
    with pytest.raises(VerbnounError, match="listed twice"):
        from_list("groom,groom")


def test_truth_from_a_verb_noun_data_set_matches_a_users_names(kitchen_dataset):
    from verbnoun.annotate.scoring import read_truth
    from verbnoun.annotate.vocabulary import from_dataset, from_list
    from verbnoun.errors import AnnotationError

    names = from_dataset(kitchen_dataset, "kitchen").names  # "take red bowl", ...
    mine = from_list(",".join(names))
    video = kitchen_dataset.segments("train")[0].video_id
    path = kitchen_dataset.description.path
    spans = read_truth(path, mine, {video}, "train")[video]
    first = kitchen_dataset.segments("train")[0]
    verb, noun = kitchen_dataset.verbs(), kitchen_dataset.nouns()
    expected = f"{verb.display(first.verb_class)} {noun.display(first.noun_class)}"
    assert mine.names[int(spans[0].label)] == expected
    with pytest.raises(AnnotationError, match="unknown class"):
        read_truth(path, from_list("groom,rear"), {video}, "train")
