"""Annotation folders: split files, the train fallback and the 3,806-action vocabulary."""

from __future__ import annotations

import shutil

import pytest

from verbnoun.data.annotations import EK100Annotations
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.errors import VerbnounError


def test_vocabulary_from_the_real_folder_without_train_csv(ek100):
    assert not ek100.has_full_train()
    vocabulary = ek100.action_vocabulary(("train", "validation"))
    assert len(vocabulary) == 3806
    assert list(vocabulary.actions) == sorted(vocabulary.actions)  # sorted as strings
    assert vocabulary.actions[:3] == ("0:0", "0:1", "0:10")
    fallback = vocabulary.provenance["train_fallback"]
    assert "EPIC_100_train.csv not found" in fallback["reason"]
    assert fallback["uda_segments"] == 29023
    assert fallback["uda_actions_outside_vocabulary"] == ["35:69", "40:6"]
    assert (
        "retrieval_annotations/EPIC_100_retrieval_train_sentence.csv"
        in vocabulary.provenance["sources"]
    )
    # narrations with frequencies, most frequent first
    plate = vocabulary.narrations["0:2"]
    assert next(iter(plate)) == "pick up plate"
    assert plate["take plate"] > 100
    assert vocabulary.frequency("0:2") == sum(plate.values())
    assert vocabulary.frequency("999:999") == 0


def test_validation_only_vocabulary(ek100):
    vocabulary = ek100.action_vocabulary(("validation",))
    assert len(vocabulary) == 1352
    assert "train_fallback" not in vocabulary.provenance
    assert sum(vocabulary.frequency(a) for a in vocabulary.actions) == 9668


def test_full_train_csv_is_used_when_present(tmp_path, ek100_dir):
    # a folder with a (small) EPIC_100_train.csv: no fallback, vocabulary = union of both splits
    for name in (
        "EPIC_100_verb_classes.csv",
        "EPIC_100_noun_classes.csv",
        "EPIC_100_validation.csv",
    ):
        shutil.copy(ek100_dir / name, tmp_path / name)
    lines = (
        (ek100_dir / "UDA_annotations" / "EPIC_100_uda_source_train.csv").read_text().splitlines()
    )
    (tmp_path / "EPIC_100_train.csv").write_text("\n".join(lines[:1001]) + "\n")
    annotations = EK100Annotations(tmp_path)
    assert annotations.has_full_train()
    vocabulary = annotations.action_vocabulary()
    train = {s.action_id for s in annotations.segments("train")}
    validation = {s.action_id for s in annotations.segments("validation")}
    assert set(vocabulary.actions) == train | validation
    assert "train_fallback" not in vocabulary.provenance
    assert vocabulary.provenance["sources"] == ["EPIC_100_train.csv", "EPIC_100_validation.csv"]


def test_unknown_split_and_path_escape(ek100):
    with pytest.raises(VerbnounError, match="unknown split 'dev'"):
        ek100.split_paths("dev")
    with pytest.raises(VerbnounError, match="leaves the annotation folder"):
        ek100.path("../../etc/passwd")
    with pytest.raises(VerbnounError, match="annotation folder not found"):
        EK100Annotations("/nonexistent/folder")


def test_tail_and_unseen_lists(ek100):
    tail_verbs, tail_nouns = ek100.tail_classes()
    assert 10 in tail_verbs and 56 in tail_nouns
    assert ek100.unseen_participants("validation") == {"P18", "P32"}


def test_kitchen_folder_reads_like_ek100(tmp_path):
    folder = write_kitchen_annotations(tmp_path, kitchen_script(videos=12, seed=3))
    annotations = EK100Annotations(folder)
    assert len(annotations.verbs()) == 12 and len(annotations.nouns()) == 15
    assert annotations.nouns().display(1) == "orange bowl"
    train, validation = annotations.segments("train"), annotations.segments("validation")
    assert train and validation
    assert {s.video_id for s in train}.isdisjoint({s.video_id for s in validation})
    assert "P04" not in {s.participant_id for s in train}
    assert annotations.unseen_participants("validation") == {"P04"}
    # deterministic in the seed
    again = write_kitchen_annotations(tmp_path / "again", kitchen_script(videos=12, seed=3))
    assert (again / "EPIC_100_train.csv").read_bytes() == (
        folder / "EPIC_100_train.csv"
    ).read_bytes()
