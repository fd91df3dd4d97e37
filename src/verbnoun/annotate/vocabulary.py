"""The behaviours a video is annotated with: a closed list, a class CSV, or a data set's actions.

A :class:`Behaviours` holds, per behaviour, its label (an action id: ``"verb:noun"`` or a class
id ``"7"``, as everywhere in the project), a readable name (ethogram rows, CSV narrations) and
the option text a model is shown. The user's own list (``--actions "groom,rear,walk"``) makes a
single-label vocabulary with class ids 0, 1, 2 in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from verbnoun.data.ek100 import ClassVocabulary, parse_action_id, single_action_class
from verbnoun.errors import VerbnounError


@dataclass(frozen=True)
class Behaviours:
    """Labels (action ids), names and option texts, in one order; ``kind``: ``action`` (single
    label) or ``verb_noun``; the class lists for writing EK100-schema tables."""

    labels: tuple[str, ...]
    names: tuple[str, ...]
    option_texts: tuple[str, ...]
    kind: str
    source: str
    actions: ClassVocabulary | None = field(default=None, repr=False)
    by_name: bool = False  # a user's own list: truth is matched by behaviour name
    verbs: ClassVocabulary | None = field(default=None, repr=False)
    nouns: ClassVocabulary | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.labels:
            raise VerbnounError(f"{self.source}: the action list is empty")
        if len(set(self.labels)) != len(self.labels):
            raise VerbnounError(f"{self.source}: two behaviours share a label")
        if len(set(self.option_texts)) != len(self.option_texts):
            raise VerbnounError(f"{self.source}: two behaviours share a name")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def name_of(self) -> dict[str, str]:
        return dict(zip(self.labels, self.names, strict=True))

    def name(self, label: str) -> str:
        """A label's readable name (labels outside the list: from the class lists, or as is)."""
        known = self.name_of.get(label)
        if known is not None:
            return known
        single = single_action_class(label)
        if single is not None and self.actions is not None and single in self.actions:
            return self.actions.display(single)
        if ":" in label and self.verbs is not None and self.nouns is not None:
            verb, noun = parse_action_id(label)
            if verb in self.verbs and noun in self.nouns:
                return f"{self.verbs.display(verb)} {self.nouns.display(noun)}"
        return label

    def settings(self) -> dict:
        return {"source": self.source, "kind": self.kind, "labels": list(self.labels),
                "option_texts": list(self.option_texts)}  # fmt: skip


def from_list(text: str) -> Behaviours:
    """``"groom, rear, walk"``: a single-label vocabulary, ids in the order given."""
    names = [part.strip() for part in text.split(",")]
    names = [n for n in names if n]
    if not names:
        raise VerbnounError("--actions: the action list is empty")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise VerbnounError(f"--actions: {duplicates[0]!r} is listed twice")
    classes = ClassVocabulary(
        "action", tuple(names), tuple((n,) for n in names), ("",) * len(names), "--actions"
    )
    return _single_label(classes, "--actions")


def from_class_file(path: str | Path) -> Behaviours:
    """A class CSV (``key`` column, or EK100's ``id,key,instances,category``)."""
    from verbnoun.data.class_lists import read_class_list

    path = Path(path)
    if not path.is_file():
        raise VerbnounError(f"{path}: action list file not found")
    return _single_label(read_class_list(path, "action"), str(path))


def _single_label(classes: ClassVocabulary, source: str) -> Behaviours:
    names = tuple(classes.display(i) for i in range(len(classes)))
    return Behaviours(
        labels=tuple(str(i) for i in range(len(classes))),
        names=names,
        option_texts=names,
        kind="action",
        source=source,
        actions=classes,
        by_name=True,
    )


def from_dataset(dataset, source: str, option_text: str = "narration") -> Behaviours:
    """Every action of a data set's labelled splits (the vocabulary the specialist is trained
    on); names are class keys (``take red bowl``), option texts the most frequent narration
    (``option_text="narration"``) or the keys."""
    from verbnoun.bench.build import OptionTexts

    vocabulary = dataset.action_vocabulary()
    if not len(vocabulary):
        raise VerbnounError(f"{source}: the data set has no labelled actions")
    texts = OptionTexts.of(dataset, vocabulary, "official_key")
    names = tuple(texts.key_text(a) for a in vocabulary.actions)
    if option_text == "narration":
        shown = []
        for action, name in zip(vocabulary.actions, names, strict=True):
            narrations = [t for t in vocabulary.narrations.get(action, {}) if t]
            text = narrations[0] if narrations else name
            shown.append(name if text in shown else text)
    else:
        shown = list(names)
    single = dataset.single_label
    return Behaviours(
        labels=tuple(vocabulary.actions),
        names=names,
        option_texts=tuple(shown),
        kind="action" if single else "verb_noun",
        source=source,
        actions=dataset.action_classes() if single else None,
        verbs=None if single else dataset.verbs(),
        nouns=None if single else dataset.nouns(),
    )


def restrict(behaviours: Behaviours, labels: Sequence[str], why: str) -> Behaviours:
    """The behaviours whose labels are in ``labels`` (order kept); an error when none is."""
    keep = [i for i, label in enumerate(behaviours.labels) if label in set(labels)]
    if not keep:
        raise VerbnounError(f"{why}: none of the {len(behaviours)} behaviours is known to it")
    return Behaviours(
        labels=tuple(behaviours.labels[i] for i in keep),
        names=tuple(behaviours.names[i] for i in keep),
        option_texts=tuple(behaviours.option_texts[i] for i in keep),
        kind=behaviours.kind,
        source=behaviours.source,
        actions=behaviours.actions,
        verbs=behaviours.verbs,
        nouns=behaviours.nouns,
        by_name=behaviours.by_name,
    )
