"""An EK100 annotation folder: which file holds which split, and the action vocabulary.

The action vocabulary is every action id (``"verb:noun"``) seen in the splits given, sorted as
strings (3,806 actions for train + validation), together with the narrations of each action and
their frequencies. Specialist models, the model's action head and the distractor strategies all
index actions by this order.

When ``EPIC_100_train.csv`` is absent (it is over 4 MiB and not in every mirror), the train split
is rebuilt from what is there, and the vocabulary's ``provenance`` says so:

* segments: the three labelled UDA files (all train-split videos, 29,023 segments);
* actions: ``retrieval_annotations/EPIC_100_retrieval_train_sentence.csv`` (one row per distinct
  train narration with its classes), whose actions together with validation's give the 3,806 of
  the full train CSV. Segments of the UDA files whose action is not in that set (two actions,
  where the UDA files and the retrieval file disagree about the same narration) keep their
  narrations out of the vocabulary and are counted in the provenance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from verbnoun.data.ek100 import (
    ClassVocabulary,
    Segment,
    _parse_list,
    action_id,
    read_class_ids,
    read_classes,
    read_id_list,
    read_segments,
)
from verbnoun.errors import AnnotationError, VerbnounError
from verbnoun.fileio import read_csv, sha256_file

SPLIT_FILES = {
    "train": "EPIC_100_train.csv",
    "validation": "EPIC_100_validation.csv",
    "test": "EPIC_100_test_timestamps.csv",
}
UDA_LABELLED_TRAIN = (
    "UDA_annotations/EPIC_100_uda_source_train.csv",
    "UDA_annotations/EPIC_100_uda_source_val.csv",
    "UDA_annotations/EPIC_100_uda_target_val.csv",
)
RETRIEVAL_TRAIN_SENTENCES = "retrieval_annotations/EPIC_100_retrieval_train_sentence.csv"
VERB_CLASSES = "EPIC_100_verb_classes.csv"
NOUN_CLASSES = ("EPIC_100_noun_classes.csv", "EPIC_100_noun_classes_v2.csv")
TAIL_VERBS = "EPIC_100_tail_verbs.csv"
TAIL_NOUNS = "EPIC_100_tail_nouns.csv"
UNSEEN_PARTICIPANTS = "EPIC_100_unseen_participant_ids_{split}.csv"


@dataclass
class ActionVocabulary:
    """Sorted action ids with their narrations and frequencies (segment counts)."""

    actions: tuple[str, ...]
    narrations: dict[str, dict[str, int]] = field(repr=False)
    provenance: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.index = {action: i for i, action in enumerate(self.actions)}

    def __len__(self) -> int:
        return len(self.actions)

    def __contains__(self, action: object) -> bool:
        return action in self.index

    def frequency(self, action: str) -> int:
        """How many labelled segments (or narration rows) carry this action; 0 if unseen."""
        return sum(self.narrations.get(action, {}).values())

    @classmethod
    def from_counts(cls, counts: dict[str, Counter], provenance: dict) -> ActionVocabulary:
        """The vocabulary of ``counts`` (action id -> narration counts): actions sorted as
        strings, each action's narrations most frequent first (ties by text)."""
        actions = tuple(sorted(counts))
        narrations = {
            a: dict(sorted(counts[a].items(), key=lambda item: (-item[1], item[0])))
            for a in actions
        }
        provenance["actions"] = len(actions)
        return cls(actions, narrations, provenance)


class EK100Annotations:
    """A folder laid out like the ``epic-kitchens-100-annotations`` repository.

    Satisfies :class:`verbnoun.data.dataset.ActionDataset` (verb/noun labels); any other data
    set is read through a description YAML by :class:`verbnoun.data.dataset.GenericDataset`.
    """

    single_label = False
    multi_label = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise VerbnounError(f"{self.root}: annotation folder not found")
        self._cache: dict = {}
        self.files_read: list[Path] = []

    def path(self, relative: str) -> Path:
        """A file of the folder; relative paths must stay inside it."""
        candidate = self.root / relative
        if not candidate.resolve().is_relative_to(self.root.resolve()):
            raise VerbnounError(f"{relative}: path leaves the annotation folder {self.root}")
        return candidate

    def relative(self, path: Path) -> str:
        """A file's name relative to the folder, as written in manifests."""
        return path.relative_to(self.root).as_posix()

    def inputs(self, *extra: str | Path | None) -> list[dict]:
        """Every file read so far (relative to the folder) and any ``extra`` files, each with
        its sha256: the ``inputs`` of a manifest."""
        records = [{"path": self.relative(p), "sha256": sha256_file(p)} for p in self.files_read]
        records += [{"path": str(p), "sha256": sha256_file(p)} for p in extra if p is not None]
        return records

    def _record(self, path: Path) -> Path:
        if path not in self.files_read:
            self.files_read.append(path)
        return path

    def verbs(self) -> ClassVocabulary:
        if "verbs" not in self._cache:
            self._cache["verbs"] = read_classes(self._record(self.path(VERB_CLASSES)), "verb")
        return self._cache["verbs"]

    def nouns(self) -> ClassVocabulary:
        if "nouns" not in self._cache:
            name = next((n for n in NOUN_CLASSES if self.path(n).is_file()), NOUN_CLASSES[0])
            self._cache["nouns"] = read_classes(self._record(self.path(name)), "noun")
        return self._cache["nouns"]

    def action_classes(self) -> None:
        """EK100 has verb and noun classes, not single-label action classes."""
        return None

    def has_full_train(self) -> bool:
        return self.path(SPLIT_FILES["train"]).is_file()

    def split_paths(self, split: str) -> list[Path]:
        """The CSV file(s) holding a split; train falls back to the labelled UDA files."""
        if split not in SPLIT_FILES:
            raise VerbnounError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_FILES)}")
        main = self.path(SPLIT_FILES[split])
        if main.is_file() or split != "train":
            return [main]
        fallback = [self.path(name) for name in UDA_LABELLED_TRAIN]
        missing = [str(p) for p in fallback if not p.is_file()]
        if missing:
            raise VerbnounError(
                f"{main}: train split not found, and the fallback UDA files are missing: "
                + ", ".join(missing)
            )
        return fallback

    def segments(self, split: str, *, require_labels: bool = False) -> list[Segment]:
        """All segments of a split, validated against the verb and noun classes."""
        key = ("segments", split, require_labels)
        if key not in self._cache:
            segments: list[Segment] = []
            for path in self.split_paths(split):
                segments.extend(
                    read_segments(
                        self._record(path),
                        verbs=self.verbs(),
                        nouns=self.nouns(),
                        require_labels=require_labels,
                    )
                )
            self._cache[key] = segments
        return self._cache[key]

    def tail_classes(self) -> tuple[set[int], set[int]]:
        """Tail verb and noun class ids (EK100's lists)."""
        verbs = read_class_ids(self._record(self.path(TAIL_VERBS)), "verb", self.verbs())
        nouns = read_class_ids(self._record(self.path(TAIL_NOUNS)), "noun", self.nouns())
        return verbs, nouns

    def unseen_participants(self, split: str) -> set[str]:
        path = self.path(UNSEEN_PARTICIPANTS.format(split=split))
        return set(read_id_list(self._record(path), "participant_id"))

    def retrieval_train_sentences(self) -> list[tuple[str, str, str]]:
        """(narration_id, narration, action id) rows of the retrieval train-sentence file."""
        path = self._record(self.path(RETRIEVAL_TRAIN_SENTENCES))
        if not path.is_file():
            raise AnnotationError(path, "file not found")
        verbs, nouns = self.verbs(), self.nouns()
        rows = []
        required = ("narration_id", "narration", "verb_class", "noun_classes")
        table = read_csv(path, required=required, error=AnnotationError)
        for line, row in table.rows:
            try:
                verb = int(row["verb_class"])
            except (TypeError, ValueError):
                raise AnnotationError(
                    path,
                    f"not an integer: {row['verb_class']!r}",
                    line=line,
                    field="verb_class",
                ) from None
            noun_list = _parse_list(path, line, "noun_classes", row["noun_classes"] or "", int)
            if verb not in verbs or not noun_list or noun_list[0] not in nouns:
                raise AnnotationError(
                    path,
                    "unknown or missing class id",
                    line=line,
                    field="verb_class/noun_classes",
                )
            rows.append(
                (row["narration_id"], row["narration"].strip(), action_id(verb, noun_list[0]))
            )
        return rows

    def action_vocabulary(
        self, splits: Sequence[str] = ("train", "validation")
    ) -> ActionVocabulary:
        """Every action seen in the splits, sorted as strings, with narrations and frequencies."""
        key = ("vocabulary", tuple(splits))
        if key in self._cache:
            return self._cache[key]
        counts: dict[str, Counter] = {}
        provenance: dict = {"splits": list(splits), "sources": []}
        fallback_segments: list[Segment] = []
        for split in splits:
            if split == "train" and not self.has_full_train():
                sentences = self.retrieval_train_sentences()
                _add(counts, ((a, n) for _, n, a in sentences))
                fallback_segments = self.segments("train", require_labels=True)
                provenance["sources"] += [self.relative(p) for p in self.split_paths("train")]
                provenance["sources"].append(RETRIEVAL_TRAIN_SENTENCES)
                provenance["train_fallback"] = {
                    "reason": f"{SPLIT_FILES['train']} not found: train actions come from the "
                    "retrieval train sentences, train narrations and frequencies from the labelled "
                    "UDA files plus one count per retrieval sentence (approximate frequencies)",
                    "retrieval_rows": len(sentences),
                    "uda_segments": len(fallback_segments),
                }
            else:
                segments = self.segments(split, require_labels=True)
                _add(counts, ((s.action_id, s.narration) for s in segments))
                provenance["sources"] += [self.relative(p) for p in self.split_paths(split)]
        if fallback_segments:
            kept = [s for s in fallback_segments if s.action_id in counts]
            _add(counts, ((s.action_id, s.narration) for s in kept))
            outside = sorted({s.action_id for s in fallback_segments} - set(counts))
            provenance["train_fallback"]["uda_segments_outside_vocabulary"] = len(
                fallback_segments
            ) - len(kept)
            provenance["train_fallback"]["uda_actions_outside_vocabulary"] = outside
        vocabulary = ActionVocabulary.from_counts(counts, provenance)
        self._cache[key] = vocabulary
        return vocabulary


def _add(counts: dict[str, Counter], pairs: Iterable[tuple[str, str | None]]) -> None:
    for action, narration in pairs:
        counts.setdefault(action, Counter())[narration or ""] += 1
