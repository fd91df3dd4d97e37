"""The built-in specialist: a small video action classifier for users without AVION or TIM files.

A tiny conv net embeds each of N frames (resized to ``size`` px); the frame features, kept in
temporal order, go through an MLP to verb, noun and action heads (the action head over the
annotation folder's action vocabulary). Actions are ranked by
``log p(verb) + log p(noun) + log p(action)`` over the vocabulary, best first.

``train_specialist`` fits the final model on the whole train split and, with ``folds`` >= 2,
writes k-fold cross-validated predictions for the train split: train videos are split into folds,
and every train segment is predicted by a model that never saw its video, so the training
distractors of SFT (SPEC 5(a)) are as realistic as the paper's TIM ones.

Prediction files are SPEC 3's original format, ``{key: {"predictions": [top-k "v:n"],
"target": "v:n"}}``, keyed by the 0-based row of the split CSV; when a split spans several CSV
files (the train fallback to the UDA files) rows repeat across files, so keys are narration ids
instead (a format :func:`verbnoun.bench.predictions.load_predictions` also accepts).

A clip that cannot be read stops the run with an error naming it: a prediction file must cover
every segment, and a clip is never replaced by another. Weights are saved with safetensors only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from verbnoun.data.annotations import ActionVocabulary, EK100Annotations
from verbnoun.data.ek100 import Segment, parse_action_id
from verbnoun.data.layouts import VideoLayout
from verbnoun.errors import CheckpointError, CheckpointFileError, VerbnounError
from verbnoun.fileio import atomic_outputs, json_bytes, read_json, write_json

WEIGHTS = "model.safetensors"
CONFIG = "specialist.json"


@dataclass(frozen=True)
class SpecialistSettings:
    """Shape of the classifier and how it is trained."""

    frames: int = 8
    size: int = 32
    width: int = 16
    hidden: int = 128
    epochs: int = 40
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-2
    folds: int = 5
    seed: int = 0
    top_k: int = 20
    workers: int = 0


class SpecialistNet(nn.Module):
    """Per-frame conv features in temporal order -> MLP -> verb, noun and action logits."""

    def __init__(
        self, settings: SpecialistSettings, num_verbs: int, num_nouns: int, num_actions: int
    ) -> None:
        super().__init__()
        w = settings.width
        self.frame_net = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.temporal = nn.Sequential(
            nn.Linear(settings.frames * 2 * w * 16, settings.hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
        )
        self.verb_head = nn.Linear(settings.hidden, num_verbs)
        self.noun_head = nn.Linear(settings.hidden, num_nouns)
        self.action_head = nn.Linear(settings.hidden, num_actions)

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``clips``: uint8 ``(B, T, H, W, 3)`` -> (verb, noun, action) logits."""
        b = clips.shape[0]
        x = clips.flatten(0, 1).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        features = self.frame_net(x).reshape(b, -1)
        hidden = self.temporal(features)
        return self.verb_head(hidden), self.noun_head(hidden), self.action_head(hidden)


def load_clips(
    segments: Sequence[Segment], layout: VideoLayout, settings: SpecialistSettings
) -> torch.Tensor:
    """Frames of every segment, uint8 ``(N, T, size, size, 3)``; an unreadable clip is an error."""
    from verbnoun.data.loader import ClipDataset, ClipItem, clip_loader

    items = [ClipItem(s.video_id, s.start, s.stop, s.narration_id) for s in segments]
    dataset = ClipDataset(items, layout, settings.frames, size=settings.size, decoder_threads=1)
    out = torch.zeros(
        (len(items), settings.frames, settings.size, settings.size, 3), dtype=torch.uint8
    )
    for batch in clip_loader(dataset, batch_size=16, workers=settings.workers):
        if batch["skipped"]:
            skip = batch["skipped"][0]
            raise VerbnounError(f"segment {skip.id} of video {skip.video_id}: {skip.reason}")
        for index, frames in zip(batch["index"], batch["frames"], strict=True):
            out[index] = frames
    return out


def targets(segments: Sequence[Segment], vocabulary: ActionVocabulary) -> torch.Tensor:
    """``(N, 3)`` verb, noun and action-index labels (-1 for an action outside the vocabulary)."""
    rows = [(s.verb_class, s.noun_class, vocabulary.index.get(s.action_id, -1)) for s in segments]
    return torch.tensor(rows, dtype=torch.long)


def fit(
    clips: torch.Tensor,
    labels: torch.Tensor,
    settings: SpecialistSettings,
    sizes: tuple[int, int, int],
    seed: int,
    on_epoch: Callable[[int], None] | None = None,
) -> SpecialistNet:
    """Train a fresh classifier (AdamW, cosine schedule), deterministic in ``seed``;
    ``on_epoch(1)`` after each epoch (progress)."""
    torch.manual_seed(seed)
    model = SpecialistNet(settings, *sizes)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    steps_per_epoch = max(1, -(-len(clips) // settings.batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, settings.epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(len(clips), generator=generator)
        for start in range(0, len(clips), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            verb, noun, action = model(clips[batch])
            y = labels[batch]
            loss = loss_fn(verb, y[:, 0]) + loss_fn(noun, y[:, 1])
            if (y[:, 2] >= 0).any():
                loss = loss + loss_fn(action, y[:, 2])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        if on_epoch is not None:
            on_epoch(1)
    model.eval()
    return model


@torch.no_grad()
def rank_actions(
    model: SpecialistNet, clips: torch.Tensor, vocabulary: ActionVocabulary, top_k: int
) -> list[list[str]]:
    """The ``top_k`` vocabulary actions of each clip, best first."""
    model.eval()
    pairs = torch.tensor([parse_action_id(a) for a in vocabulary.actions], dtype=torch.long)
    ranked = []
    for start in range(0, len(clips), 64):
        verb, noun, action = (x.log_softmax(-1) for x in model(clips[start : start + 64]))
        scores = verb[:, pairs[:, 0]] + noun[:, pairs[:, 1]] + action
        top = scores.topk(min(top_k, len(vocabulary)), dim=-1).indices
        ranked += [[vocabulary.actions[i] for i in row.tolist()] for row in top]
    return ranked


def video_folds(segments: Sequence[Segment], folds: int, seed: int) -> dict[str, int]:
    """Video id -> fold (0..folds-1): the videos shuffled with the seed, dealt round robin."""
    videos = sorted({s.video_id for s in segments})
    if folds > len(videos):
        raise VerbnounError(f"{folds} folds need at least {folds} train videos, got {len(videos)}")
    random.Random(f"llavaction-specialist-folds:{seed}").shuffle(videos)
    return {video: i % folds for i, video in enumerate(videos)}


def prediction_file(
    segments: Sequence[Segment], ranked: Sequence[list[str]], by_narration_id: bool
) -> dict:
    """SPEC 3's original format (row keys), or narration-id keys for multi-file splits."""
    data = {}
    for segment, predictions in zip(segments, ranked, strict=True):
        key = segment.narration_id if by_narration_id else str(segment.row)
        if key in data:
            raise VerbnounError(f"two segments share the prediction key {key}")
        entry: dict = {"predictions": predictions}
        if segment.labelled:
            entry["target"] = segment.action_id
        data[key] = entry
    return data


def accuracy(segments: Sequence[Segment], ranked: Sequence[list[str]]) -> dict:
    """Top-1 / top-5 accuracy of verb, noun and action on labelled segments."""
    labelled = [(s, r) for s, r in zip(segments, ranked, strict=True) if s.labelled]
    if not labelled:
        return {}
    result: dict[str, float | int] = {"n": len(labelled)}
    for k in (1, 5):
        for part, pick in (("verb", 0), ("noun", 1)):
            hits = sum(
                any(parse_action_id(a)[pick] == parse_action_id(s.action_id)[pick] for a in r[:k])
                for s, r in labelled
            )
            result[f"{part}_top{k}"] = hits / len(labelled)
        result[f"action_top{k}"] = sum(s.action_id in r[:k] for s, r in labelled) / len(labelled)
    return result


def write_predictions(path: str | Path, data: dict) -> None:
    write_json(path, data)


def train_specialist(
    annotations_dir: str | Path,
    layout: VideoLayout,
    out_dir: str | Path,
    settings: SpecialistSettings,
    *,
    progress: bool = False,
) -> dict:
    """Train on the train split; write weights, config, and cross-validated train predictions.
    ``progress``: stage lines and epochs (a bar on a terminal, plain lines otherwise)."""
    from verbnoun.progress import Progress, Stages

    annotations = EK100Annotations(annotations_dir)
    segments = annotations.segments("train", require_labels=True)
    _require_segments(segments, annotations, "train")
    vocabulary = annotations.action_vocabulary()
    sizes = (len(annotations.verbs()), len(annotations.nouns()), len(vocabulary))
    stages = Stages("specialist", ["decode clips", "train"], enabled=progress)
    with stages("decode clips", f"{len(segments)} train segments"):
        clips = load_clips(segments, layout, settings)
    labels = targets(segments, vocabulary)
    fits = settings.folds + 1 if settings.folds >= 2 else 1
    with (
        stages("train", f"{fits} fits of {settings.epochs} epochs"),
        Progress("specialist epochs", fits * settings.epochs, enabled=progress) as advance,
    ):
        return _train_and_write(
            annotations, annotations_dir, segments, vocabulary, sizes, clips, labels, out_dir,
            settings, advance,
        )  # fmt: skip


def _train_and_write(
    annotations,
    annotations_dir,
    segments,
    vocabulary,
    sizes,
    clips,
    labels,
    out_dir,
    settings,
    advance,
) -> dict:
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"train_segments": len(segments)}
    files: dict[Path, object] = {}  # written together at the end, only if training succeeded
    if settings.folds >= 2:
        folds = video_folds(segments, settings.folds, settings.seed)
        fold_of = np.array([folds[s.video_id] for s in segments])
        ranked: list[list[str]] = [[] for _ in segments]
        for fold in range(settings.folds):
            held = np.flatnonzero(fold_of == fold)
            seen = torch.from_numpy(np.flatnonzero(fold_of != fold))
            model = fit(
                clips[seen], labels[seen], settings, sizes, settings.seed + 1 + fold, advance
            )
            for i, r in zip(held, rank_actions(model, clips[held], vocabulary, settings.top_k),
                            strict=True):  # fmt: skip
                ranked[i] = r
        multi_file = len(annotations.split_paths("train")) > 1
        files[out_dir / "predictions_train.json"] = prediction_file(segments, ranked, multi_file)
        summary["cross_validation"] = {"folds": folds, "accuracy": accuracy(segments, ranked)}
    model = fit(clips, labels, settings, sizes, settings.seed, advance)
    files[out_dir / WEIGHTS] = {k: v.contiguous() for k, v in model.state_dict().items()}
    config = {
        "kind": "llavaction.specialist",
        "settings": asdict(settings),
        "num_verbs": sizes[0],
        "num_nouns": sizes[1],
        "actions": list(vocabulary.actions),
        "annotations": str(annotations_dir),
        "inputs": annotations.inputs(),
        **summary,
    }
    files[out_dir / CONFIG] = config
    with atomic_outputs(*files) as temporaries:
        for temporary, (path, data) in zip(temporaries, files.items(), strict=True):
            if path.name == WEIGHTS:
                save_file(data, str(temporary))
            else:
                temporary.write_bytes(json_bytes(data))
    return config


def load_specialist(model_dir: str | Path) -> tuple[SpecialistNet, dict]:
    """A trained specialist and its config, from ``specialist.json`` and ``model.safetensors``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    config = read_json(model_dir / CONFIG, error=CheckpointFileError)
    try:
        settings = SpecialistSettings(**config["settings"])
        sizes = (config["num_verbs"], config["num_nouns"], len(config["actions"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{model_dir / CONFIG}: not a specialist config ({error})") from None
    model = SpecialistNet(settings, *sizes)
    try:
        model.load_state_dict(load_file(model_dir / WEIGHTS))
    except (OSError, RuntimeError, ValueError, SafetensorError) as error:
        raise CheckpointError(f"{model_dir / WEIGHTS}: cannot load weights ({error})") from None
    model.eval()
    return model, config


def _require_segments(segments: Sequence[Segment], annotations, split: str) -> None:
    if not segments:
        files = ", ".join(str(p) for p in annotations.split_paths(split))
        raise VerbnounError(f"no segments in {files} (split {split!r})")


def predict_specialist(
    model_dir: str | Path,
    annotations_dir: str | Path,
    layout: VideoLayout,
    split: str,
    out: str | Path,
    *,
    top_k: int | None = None,
    workers: int | None = None,
) -> dict:
    """Write a prediction file for every segment of a split; returns accuracy when labelled.

    The specialist ranks the actions it was trained with, so the annotations may be another
    data set (other videos, other actions seen) as long as its verb and noun class lists are
    the specialist's."""
    model, config = load_specialist(model_dir)
    settings = SpecialistSettings(**config["settings"])
    if workers is not None:
        settings = SpecialistSettings(**{**asdict(settings), "workers": workers})
    annotations = EK100Annotations(annotations_dir)
    classes = (len(annotations.verbs()), len(annotations.nouns()))
    if classes != (config["num_verbs"], config["num_nouns"]):
        raise CheckpointError(
            f"{annotations_dir}: {classes[0]} verb and {classes[1]} noun classes, but the "
            f"specialist in {model_dir} was trained with {config['num_verbs']} and "
            f"{config['num_nouns']}"
        )
    vocabulary = ActionVocabulary(tuple(config["actions"]), narrations={})
    segments = annotations.segments(split)
    _require_segments(segments, annotations, split)
    clips = load_clips(segments, layout, settings)
    ranked = rank_actions(model, clips, vocabulary, top_k or settings.top_k)
    multi_file = len(annotations.split_paths(split)) > 1
    write_predictions(out, prediction_file(segments, ranked, multi_file))
    return {"segments": len(segments), "accuracy": accuracy(segments, ranked)}
