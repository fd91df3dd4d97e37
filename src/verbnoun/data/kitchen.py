"""The synthetic kitchen: the project's own embedded data set, in EK100's schema.

This module writes the *annotations* of the kitchen (its script): verb and noun classes, and for
each video a sequence of segments with start and stop times, narrations and class ids, split into
train and validation by video, with one participant kept out of train (the unseen participant).
Rendering the script into pixels is the job of the video side (``verbnoun synth``).

Vocabulary: 12 verbs, each a distinct motion of hand and object, and 15 nouns, each a shape in a
colour (``bowl:red`` displays as ``red bowl``). Confusable pairs are there on purpose, so that hard
distractors exist: take/put, open/close, push/pull, shake/wipe (motions that mirror or resemble
each other) and red/orange (colours that are close).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from verbnoun.fileio import atomic_write_bytes, csv_bytes

FPS = 30
FRAME_SIZE = 128


@dataclass(frozen=True)
class KitchenVerb:
    key: str
    instances: tuple[str, ...]  # the first is the key; the others are narration synonyms
    category: str
    motion: str  # what the hand and object do, for the renderer


@dataclass(frozen=True)
class KitchenNoun:
    key: str  # "shape:colour", displayed "colour shape"
    shape: str
    colour: str
    category: str


VERBS: tuple[KitchenVerb, ...] = (
    KitchenVerb(
        "take",
        ("take", "pick-up", "grab"),
        "retrieve",
        "object rises from the counter with the hand",
    ),
    KitchenVerb(
        "put",
        ("put", "put-down", "place"),
        "leave",
        "object descends onto the counter with the hand",
    ),
    KitchenVerb("open", ("open",), "access", "lid slides off the object"),
    KitchenVerb("close", ("close", "shut"), "block", "lid slides onto the object"),
    KitchenVerb("push", ("push", "slide"), "move", "hand pushes the object away to the right"),
    KitchenVerb("pull", ("pull", "drag"), "move", "hand pulls the object towards the left"),
    KitchenVerb(
        "shake", ("shake",), "manipulate", "object and hand oscillate quickly side to side"
    ),
    KitchenVerb(
        "wipe", ("wipe", "clean"), "clean", "hand sweeps back and forth over a still object"
    ),
    KitchenVerb("turn", ("turn", "rotate"), "manipulate", "object rotates in place under the hand"),
    KitchenVerb("pour", ("pour", "tip"), "distribute", "object tilts and drops fall from it"),
    KitchenVerb("tap", ("tap", "knock"), "manipulate", "hand taps the object up and down"),
    KitchenVerb("lift", ("lift", "raise"), "retrieve", "object rises high and comes back down"),
)

_SHAPES = ("bowl", "box", "bottle", "plate", "jar")
_COLOURS = ("red", "orange", "blue")
_CATEGORIES = {
    "bowl": "crockery",
    "box": "storage",
    "bottle": "container",
    "plate": "crockery",
    "jar": "container",
}
NOUNS: tuple[KitchenNoun, ...] = tuple(
    KitchenNoun(f"{shape}:{colour}", shape, colour, _CATEGORIES[shape])
    for shape in _SHAPES
    for colour in _COLOURS
)
PARTICIPANTS = ("P01", "P02", "P03", "P04")
UNSEEN_PARTICIPANT = "P04"  # appears in validation only


@dataclass(frozen=True)
class KitchenSegment:
    narration_id: str
    participant_id: str
    video_id: str
    start: float
    stop: float
    narration: str
    verb_class: int
    noun_class: int
    split: str


@dataclass(frozen=True)
class KitchenVideo:
    video_id: str
    participant_id: str
    duration: float
    split: str
    segments: tuple[KitchenSegment, ...]


def _timestamp(seconds: float) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:05.2f}"


def _narration(verb: KitchenVerb, noun: KitchenNoun, rng: random.Random) -> str:
    word = rng.choice(verb.instances).replace("-", " ")
    return f"{word} {noun.colour} {noun.shape}"


def kitchen_script(
    videos: int = 40, seed: int = 0, validation_videos: int = 0
) -> list[KitchenVideo]:
    """The kitchen's videos and segments, deterministic in ``videos`` and ``seed``.

    Actions follow a long-tailed frequency (some pairs common, many rare, some never used), each
    video holds 8-14 segments of 1.0-3.5 s separated by 0.2-2.5 s gaps, and one video in five goes
    to validation, as does every video of the unseen participant. ``validation_videos`` more
    videos follow, all in validation (more questions for the same training videos): the first
    ``videos`` stay exactly as they are without them.
    """
    if videos < 2:
        raise ValueError("the kitchen needs at least 2 videos (train and validation)")
    if validation_videos < 0:
        raise ValueError(f"validation_videos must be 0 or more, got {validation_videos}")
    rng = random.Random(f"llavaction-kitchen:{seed}")
    pairs = [(v, n) for v in range(len(VERBS)) for n in range(len(NOUNS))]
    rng.shuffle(pairs)
    pairs = pairs[: int(len(pairs) * 0.6)]  # 108 of 180 pairs occur at all
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(pairs))]
    result = []
    for index in range(videos + validation_videos):
        participant = PARTICIPANTS[index % len(PARTICIPANTS)]
        video_id = f"{participant}_{index // len(PARTICIPANTS) + 1:02d}"
        split = "validation" if participant == UNSEEN_PARTICIPANT or index % 5 == 2 else "train"
        if index == 0:
            split = "train"
        if index >= videos:
            split = "validation"
        t = round(rng.uniform(0.3, 1.0), 2)
        segments = []
        for number in range(rng.randint(8, 14)):
            verb, noun = rng.choices(pairs, weights)[0]
            length = round(rng.uniform(1.0, 3.5), 2)
            segments.append(
                KitchenSegment(
                    narration_id=f"{video_id}_{number}",
                    participant_id=participant,
                    video_id=video_id,
                    start=t,
                    stop=round(t + length, 2),
                    narration=_narration(VERBS[verb], NOUNS[noun], rng),
                    verb_class=verb,
                    noun_class=noun,
                    split=split,
                )
            )
            t = round(t + length + rng.uniform(0.2, 2.5), 2)
        duration = round(t + 0.5, 2)
        result.append(KitchenVideo(video_id, participant, duration, split, tuple(segments)))
    return result


def write_kitchen_annotations(out: str | Path, script: list[KitchenVideo]) -> Path:
    """Write the script as an EK100-schema annotation folder; returns the folder."""
    out = Path(out)
    class_header = ["id", "key", "instances", "category"]
    atomic_write_bytes(
        out / "EPIC_100_verb_classes.csv",
        csv_bytes(
            class_header,
            [[i, v.key, str(list(v.instances)), v.category] for i, v in enumerate(VERBS)],
        ),
    )
    atomic_write_bytes(
        out / "EPIC_100_noun_classes.csv",
        csv_bytes(
            class_header, [[i, n.key, str([n.key]), n.category] for i, n in enumerate(NOUNS)]
        ),
    )
    header = [
        "narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
        "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
        "noun_class", "all_nouns", "all_noun_classes",
    ]  # fmt: skip
    for split, name in (("train", "EPIC_100_train.csv"), ("validation", "EPIC_100_validation.csv")):
        rows = []
        for video in script:
            if video.split != split:
                continue
            for s in video.segments:
                noun = NOUNS[s.noun_class]
                rows.append([
                    s.narration_id, s.participant_id, s.video_id, _timestamp(s.start),
                    _timestamp(s.start), _timestamp(s.stop), round(s.start * FPS),
                    round(s.stop * FPS), s.narration, VERBS[s.verb_class].key, s.verb_class,
                    noun.key, s.noun_class, str([noun.key]), str([s.noun_class]),
                ])  # fmt: skip
        atomic_write_bytes(out / name, csv_bytes(header, rows))
    atomic_write_bytes(
        out / "EPIC_100_video_info.csv",
        csv_bytes(
            ["video_id", "duration", "fps", "resolution"],
            [[v.video_id, v.duration, FPS, f"{FRAME_SIZE}x{FRAME_SIZE}"] for v in script],
        ),
    )
    atomic_write_bytes(
        out / "EPIC_100_unseen_participant_ids_validation.csv",
        csv_bytes(["participant_id"], [[UNSEEN_PARTICIPANT]]),
    )
    counts_verb: dict[int, int] = {}
    counts_noun: dict[int, int] = {}
    for video in script:
        for s in video.segments:
            if video.split == "train":
                counts_verb[s.verb_class] = counts_verb.get(s.verb_class, 0) + 1
                counts_noun[s.noun_class] = counts_noun.get(s.noun_class, 0) + 1
    tail_verbs = sorted(range(len(VERBS)), key=lambda v: (counts_verb.get(v, 0), v))[:3]
    tail_nouns = sorted(range(len(NOUNS)), key=lambda n: (counts_noun.get(n, 0), n))[:4]
    atomic_write_bytes(
        out / "EPIC_100_tail_verbs.csv", csv_bytes(["verb"], [[v] for v in sorted(tail_verbs)])
    )
    atomic_write_bytes(
        out / "EPIC_100_tail_nouns.csv", csv_bytes(["noun"], [[n] for n in sorted(tail_nouns)])
    )
    return out
