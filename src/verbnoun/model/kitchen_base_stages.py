"""The kitchen base's training stages and gate measurements (see :mod:`verbnoun.model.kitchen_base`
for the build that runs them in order).

Data: :class:`Clips`, :func:`render_pool` (pool kitchens) and :func:`demo_validation` (the
demo's seed-0 validation clips). Stages, each training ``model`` in place, deterministic given
the settings and the torch seed: :func:`train_tower` (A), :func:`train_language` (B, with the
training-only :class:`MatchProbe`), :func:`align` (C), :func:`instruct` (D). Gates, each measured
on data its stage never trained on and returning figures, never raising on a miss:
:func:`probe_gate`, :func:`letter_accuracy`, :func:`alignment_figures`,
:func:`video_letter_accuracy`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from verbnoun.bench import prompts
from verbnoun.data.kitchen import NOUNS, VERBS
from verbnoun.model.kitchen_base_questions import (
    parse_narration,
    text_question,
    text_rows,
    video_question,
    visual_turn,
)
from verbnoun.model.kitchen_base_settings import (
    COLOURS,
    DEMO_SEED,
    POOL_FRAMES,
    SHAPES,
    BaseSettings,
)


@dataclass
class Clips:
    """Decoded clips of kitchen segments: uint8 frames ``(N, T, S, S, 3)`` and their labels."""

    frames: np.ndarray
    verbs: np.ndarray
    nouns: np.ndarray
    narrations: list[str]
    durations: np.ndarray

    def __len__(self) -> int:
        return len(self.verbs)

    def sample(self, rows: np.ndarray, count: int, rng: np.random.Generator | None) -> np.ndarray:
        """``count`` frames of each row: one per equal group of its ``T`` frames, at random
        (``rng``) or the groups' middle-right frame (``None``, close to SPEC 2's midpoints)."""
        group = self.frames.shape[1] // count
        if rng is None:
            offsets = np.full((len(rows), count), group // 2)
        else:
            offsets = rng.integers(0, group, size=(len(rows), count))
        picks = np.arange(count) * group + offsets
        return self.frames[np.asarray(rows)[:, None], picks]


def read_clips(
    kitchen: Path, videos: int, seed: int, split: str | None, count: int, size: int
) -> Clips:
    """The segments of a rendered kitchen (``split`` or all), ``count`` frames each at ``size``
    px, read as the demo reads them (chunk layout, :class:`VideoReader`, SPEC 2 midpoints)."""
    from verbnoun.data.kitchen import kitchen_script
    from verbnoun.data.layouts import make_layout
    from verbnoun.data.video import VideoReader

    reader = VideoReader(make_layout("chunks", kitchen / "videos"), size=size)
    frames, verbs, nouns, texts, durations = [], [], [], [], []
    for video in kitchen_script(videos, seed):
        if split is not None and video.split != split:
            continue
        for s in video.segments:
            frames.append(reader.read(s.video_id, s.start, s.stop, count).frames)
            verbs.append(s.verb_class)
            nouns.append(s.noun_class)
            texts.append(s.narration)
            durations.append(s.stop - s.start)
    return Clips(np.stack(frames), np.array(verbs), np.array(nouns), texts, np.array(durations))


def render_pool(out: Path, settings: BaseSettings) -> Clips:
    """Render the pool kitchens under ``out`` (reused when present) and read all their clips."""
    from verbnoun.data.synth import render_kitchen
    from verbnoun.fileio import read_json, write_json

    parts = []
    for seed in settings.pool_seeds():
        kitchen = out / f"pool-{seed}"
        made = {"videos": settings.pool_videos, "seed": seed}
        marker = kitchen / "kitchen.json"
        if not marker.is_file() or read_json(marker) != made:
            render_kitchen(
                kitchen, videos=settings.pool_videos, seed=seed, workers=settings.workers
            )
            write_json(marker, made)
        parts.append(
            read_clips(kitchen, settings.pool_videos, seed, None, POOL_FRAMES, settings.image_size)
        )
    return Clips(
        np.concatenate([p.frames for p in parts]),
        np.concatenate([p.verbs for p in parts]),
        np.concatenate([p.nouns for p in parts]),
        [t for p in parts for t in p.narrations],
        np.concatenate([p.durations for p in parts]),
    )


def demo_validation(out: Path, settings: BaseSettings) -> Clips:
    """The demo's validation clips (seed-0 kitchen, validation split, 4 frames), rendered under
    ``out`` exactly as the demo renders them."""
    from verbnoun.data.synth import render_kitchen
    from verbnoun.fileio import read_json, write_json

    kitchen = out / f"demo-{DEMO_SEED}"
    videos = settings.demo_videos
    made = {"videos": videos, "seed": DEMO_SEED}
    marker = kitchen / "kitchen.json"
    if not marker.is_file() or read_json(marker) != made:
        render_kitchen(kitchen, videos=videos, seed=DEMO_SEED, workers=settings.workers)
        write_json(marker, made)
    return read_clips(
        kitchen, videos, DEMO_SEED, "validation", settings.frames, settings.image_size
    )


def pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, T, S, S, 3)`` -> pixel values ``(B, T, 3, S, S)`` as the processor makes them
    (frames already at the tower's size, so no resize)."""
    from verbnoun.model.processor import LEVELS

    return torch.from_numpy(np.ascontiguousarray(LEVELS[frames].transpose(0, 1, 4, 2, 3)))


def tower_features(model, values: torch.Tensor) -> torch.Tensor:
    """Pixel values ``(B, T, 3, S, S)`` -> the tower's per-frame 2x2-pooled features, flattened
    per clip ``(B, T * 4 * C)`` (the grid the projector's tokens come from)."""
    from verbnoun.model.architecture import pool_frames

    b = values.shape[0]
    out = model.model.vision_tower(values.flatten(0, 1))
    pooled = pool_frames(out, model.config.vision.grid, model.config.pool_stride, "bilinear")
    return pooled.reshape(b, -1)


def train_tower(model, pool: Clips, settings: BaseSettings, log: Callable[[str], None]) -> None:
    """Stage A: the tower with linear heads on its pooled features: the verb on the features of
    all frames and cells in order (motion), noun, shape and colour on their mean over frames and
    cells (what the object is, wherever it stands: features that do not depend on position)."""
    s = settings
    torch.manual_seed(s.seed)
    rng = np.random.default_rng([s.seed, 1])
    width, channels = s.frames * 4 * s.vision_hidden_size, s.vision_hidden_size
    shape_of = torch.tensor([SHAPES.index(n.shape) for n in NOUNS])
    colour_of = torch.tensor([COLOURS.index(n.colour) for n in NOUNS])
    heads = torch.nn.ModuleDict(
        {
            "norm": torch.nn.LayerNorm(width),
            "mean_norm": torch.nn.LayerNorm(channels),
            "verb": torch.nn.Linear(width, len(VERBS)),
            "noun": torch.nn.Linear(channels, len(NOUNS)),
            "shape": torch.nn.Linear(channels, len(SHAPES)),
            "colour": torch.nn.Linear(channels, len(COLOURS)),
        }
    )
    tower = model.model.vision_tower.vision_tower.vision_model
    params = [p for n, p in tower.named_parameters() if "post_layernorm" not in n]
    params += list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=s.tower_lr, weight_decay=0.01)
    warmup = max(1, s.tower_steps // 10)
    tic = time.perf_counter()
    for step in range(s.tower_steps):
        set_lr(optimizer, s.tower_lr * schedule(step, s.tower_steps, warmup))
        rows = rng.integers(0, len(pool), size=s.tower_batch)
        features = tower_features(model, pixels(pool.sample(rows, s.frames, rng)))
        x = heads["norm"](features)
        mean = heads["mean_norm"](features.view(len(rows), -1, channels).mean(1))
        verb, noun = torch.from_numpy(pool.verbs[rows]), torch.from_numpy(pool.nouns[rows])
        loss = (
            F.cross_entropy(heads["verb"](x), verb)
            + F.cross_entropy(heads["noun"](mean), noun)
            + 0.5 * F.cross_entropy(heads["shape"](mean), shape_of[noun])
            + 0.5 * F.cross_entropy(heads["colour"](mean), colour_of[noun])
        )
        descend(optimizer, loss, params)
        if (step + 1) % max(1, s.tower_steps // 5) == 0:
            log(f"  tower step {step + 1}/{s.tower_steps} loss {loss.item():.3f} "
                f"({time.perf_counter() - tic:.0f} s)")  # fmt: skip


@torch.no_grad()
def clip_features(model, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """Frozen tower features (:func:`tower_features`) of uint8 clips ``(N, T, S, S, 3)``."""
    model.eval()
    parts = [
        tower_features(model, pixels(frames[i : i + batch])).numpy()
        for i in range(0, len(frames), batch)
    ]
    return np.concatenate(parts)


def probe_gate(model, pool: Clips, validation: Clips, settings: BaseSettings) -> dict:
    """Stage A's gate: logistic regressions on frozen tower features, fitted on jittered pool
    samples, scored on the demo's validation clips (verb and noun accuracy)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng([settings.seed, 2])
    rows = np.arange(len(pool))
    train = np.concatenate(
        [
            clip_features(model, pool.sample(rows, settings.frames, rng))
            for _ in range(settings.probe_samples)
        ]
    )
    test = clip_features(model, validation.frames)
    result = {"pool_samples": len(train), "validation_clips": len(test)}
    for name in ("verb", "noun"):
        labels = np.tile(getattr(pool, f"{name}s"), settings.probe_samples)
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
        probe.fit(train, labels)
        result[name] = float((probe.predict(test) == getattr(validation, f"{name}s")).mean())
    result["gate"] = {"verb": settings.verb_gate, "noun": settings.noun_gate}
    result["passed"] = result["verb"] >= settings.verb_gate and result["noun"] >= settings.noun_gate
    return result


def encode_sample(processor, turn: str, answer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and labels (the answer and its end token) of one conversation."""
    from verbnoun.model.tokenization import encode_conversation

    ids, labels = encode_conversation(processor, [("user", turn), ("assistant", answer)], "answer")
    return torch.tensor(ids), torch.tensor(labels)


def encode_rows(processor, rows) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Token ids and labels of stage-B questions."""
    encoded = [encode_sample(processor, turn, answer) for turn, answer, _, _ in rows]
    return [e[0] for e in encoded], [e[1] for e in encoded]


def text_batch(
    processor, rng: random.Random, size: int, settings: BaseSettings, compact: float = 0.0,
    exact: float = 0.0,
):  # fmt: skip
    """``size`` stage-B samples as (ids, labels) lists."""
    return encode_rows(processor, text_rows(rng, size, settings, compact, exact))


def option_ends(ids: torch.Tensor, texts: Sequence[str], processor) -> list[int]:
    """Positions of each option's last token in a question's ids: the options end the user
    turn (``... , D. text, E. text<|im_end|>``), so walk back from its ``<|im_end|>``."""
    end = processor.end_ids[0]
    user_end = (ids == end).nonzero().flatten()[1].item()  # the system turn's comes first
    positions, last = [], user_end - 1
    for text in reversed(texts):
        positions.append(last)
        last -= len(processor.tokenizer.tokenize(" " + text)) + 3  # text, ".", letter, ","
    return positions[::-1]


class MatchProbe(torch.nn.Module):
    """Training-only heads on the hidden state of each option's last token, one layer below
    the top: does this option match the statement (a softmax over the options: the answer),
    and which letter is it. They hand the LM a gradient for each step of pointing (read the
    option, compare it with the statement, keep its letter), which the letter loss alone
    gives only once all steps work; the top layer then only has to copy the matching letter.
    Never saved: the base is the LLaVAction model alone."""

    def __init__(self, model, num_options: int) -> None:
        super().__init__()
        hidden = model.config.text.hidden_size
        self.match = torch.nn.Linear(hidden, 1)
        self.letter = torch.nn.Linear(hidden, num_options)
        self.hidden: torch.Tensor | None = None
        layers = model.model.layers  # one below the top (the only one in a 1-layer test model)
        self.handle = layers[max(len(layers) - 2, 0)].register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.hidden = output[0] if isinstance(output, tuple) else output

    def loss(self, ids, rows, processor) -> torch.Tensor:
        """The heads' loss on the last forward pass (rows with options only)."""
        states, answers = [], []
        for row, (_, _, texts, index) in enumerate(rows):
            if index >= 0:
                states.append(self.hidden[row, option_ends(ids[row], texts, processor)])
                answers.append(index)
        if not states:
            return self.hidden.sum() * 0.0
        stacked = torch.stack(states)  # (questions, options, hidden)
        count = stacked.shape[1]
        match = F.cross_entropy(self.match(stacked).squeeze(-1), torch.tensor(answers))
        letters = self.letter(stacked).reshape(-1, self.letter.out_features)[:, :count]
        own = torch.arange(count).repeat(len(states))
        return match + F.cross_entropy(letters, own)


def answer_loss(model, ids, videos, labels, first_weight: float, actions=None):
    """The model's output and a token loss where each row's first supervised token (the
    option letter) weighs ``first_weight`` and the others 1 (the letter is one token of six,
    and the hard one: the rest is copied from the option it names)."""
    from verbnoun.model.architecture import IGNORE_INDEX

    out = model(ids, videos, labels, actions, loss_only=True)
    targets = [lab[1:][lab[1:] != IGNORE_INDEX] for lab in labels]
    weights = torch.cat([torch.tensor([first_weight] + [1.0] * (len(t) - 1)) for t in targets])
    losses = F.cross_entropy(out.logits.float(), torch.cat(targets), reduction="none")
    loss = (losses * weights).sum() / weights.sum()
    return out, loss


def lm_parameters(model) -> list[torch.nn.Parameter]:
    """The language model's parameters (embeddings, decoder layers, final norm)."""
    inner = model.model
    return [
        *inner.embed_tokens.parameters(), *inner.layers.parameters(), *inner.norm.parameters()
    ]  # fmt: skip


def train_language(model, processor, settings: BaseSettings, log: Callable[[str], None]) -> None:
    """Stage B: the LM alone on text questions (a fresh stream of them, seeded), with the
    :class:`MatchProbe` loss (weight ``match_weight``); warm-up forms first (the shares of
    compact and exact ones fall from ``lm_compact`` and ``lm_exact`` to 0 over the first
    ``lm_warm_steps``)."""
    s = settings
    torch.manual_seed(s.seed)
    rng = random.Random(f"kitchen-base-text:{s.seed}")
    probe = MatchProbe(model, s.num_options)
    params = lm_parameters(model) + list(probe.parameters())
    optimizer = torch.optim.AdamW(params, lr=s.lm_lr, weight_decay=0.0)
    model.train()
    tic = time.perf_counter()
    try:
        for step in range(s.lm_steps):
            set_lr(optimizer, s.lm_lr * schedule(step, s.lm_steps, s.lm_warmup))
            warm = max(0.0, 1.0 - step / max(1, s.lm_warm_steps))
            rows = text_rows(rng, s.lm_batch, s, s.lm_compact * warm, s.lm_exact * warm)
            ids, labels = encode_rows(processor, rows)
            _, loss = answer_loss(model, ids, [None] * len(ids), labels, s.letter_weight)
            if s.match_weight > 0:
                loss = loss + s.match_weight * probe.loss(ids, rows, processor)
            descend(optimizer, loss, params)
            if (step + 1) % max(1, s.lm_steps // 10) == 0:
                monitor = letter_accuracy(model, processor, 64, "monitor", s)
                model.train()
                log(f"  language step {step + 1}/{s.lm_steps} loss {loss.item():.3f} letters "
                    f"{monitor:.2f} ({time.perf_counter() - tic:.0f} s)")  # fmt: skip
    finally:
        probe.handle.remove()


@torch.no_grad()
def letter_accuracy(model, processor, questions: int, seed: str, settings: BaseSettings) -> float:
    """Letter accuracy (the evaluator's ``letters`` scoring) on ``questions`` held-out text MQA
    questions drawn with generator ``seed`` (never the training stream's)."""
    from verbnoun.model.inference import score_options

    model.eval()
    rng = random.Random(f"kitchen-base-held-out:{seed}")
    rows = []
    while len(rows) < questions:
        row = text_question(rng, settings.num_options, settings.prior_probability, 0.0,
                            settings.frames)  # fmt: skip
        rows.append(row)
    correct = 0
    for start in range(0, len(rows), 32):
        chunk = rows[start : start + 32]
        ids = [torch.tensor(processor.tokenize(prompts.chat_prompt(r[0]))) for r in chunk]
        choices = score_options(
            model, processor, ids, [None] * len(ids), [r[2] for r in chunk], mode="letters"
        )
        correct += sum(c.index == r[3] for c, r in zip(choices, chunk, strict=True))
    return correct / len(rows)


def align(
    model, processor, pool: Clips, settings: BaseSettings, log: Callable[[str], None]
) -> None:
    """Stage C: video -> narration on pool clips (projector, newline, action token, verb/noun
    heads with the auxiliary loss at ``align_aux_weight``; the LM at ``align_lm_lr``), each
    batch half text questions (stage B's task and loss, :class:`MatchProbe` included) so that
    the LM keeps reading options while it learns to read the video."""
    s = settings
    torch.manual_seed(s.seed)
    rng = np.random.default_rng([s.seed, 3])
    text_rng = random.Random(f"kitchen-base-replay:{s.seed}")
    inner = model.model
    visual = [*inner.mm_projector.parameters(), inner.image_newline, inner.action_supervision]
    visual += [*model.verb_head.parameters(), *model.noun_head.parameters()]
    groups = [{"params": visual, "lr": s.align_lr, "base": s.align_lr}]
    replay = s.align_lm_lr > 0
    probe = MatchProbe(model, s.num_options) if replay and s.match_weight > 0 else None
    if replay:
        lm = lm_parameters(model) + (list(probe.parameters()) if probe is not None else [])
        groups.append({"params": lm, "lr": s.align_lm_lr, "base": s.align_lm_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    model.train()
    missing = torch.full((s.align_batch,), -1)
    tic = time.perf_counter()
    try:
        for step in range(s.align_steps):
            factor = schedule(step, s.align_steps, max(1, s.align_steps // 10))
            for group in optimizer.param_groups:
                group["lr"] = group["base"] * factor
            rows = rng.integers(0, len(pool), size=s.align_batch)
            video = pixels(pool.sample(rows, s.frames, rng))
            encoded = [
                encode_sample(processor, visual_turn(float(pool.durations[r]), s.frames),
                              pool.narrations[r])
                for r in rows
            ]  # fmt: skip
            ids, labels = [e[0] for e in encoded], [e[1] for e in encoded]
            videos: list[torch.Tensor | None] = list(video)
            actions = torch.stack(
                [torch.from_numpy(pool.verbs[rows]), torch.from_numpy(pool.nouns[rows]), missing],
                1,
            )
            questions: list = [("", "", [], -1)] * len(rows)
            if replay:
                text = text_rows(text_rng, s.align_batch, s)
                text_ids, text_labels = encode_rows(processor, text)
                ids, labels, questions = ids + text_ids, labels + text_labels, questions + text
                videos += [None] * len(text_ids)
                actions = torch.cat([actions, torch.full((len(text_ids), 3), -1)])
            out, loss = answer_loss(model, ids, videos, labels, s.letter_weight, actions)
            loss = loss + s.align_aux_weight * out.aux_loss
            if probe is not None:
                loss = loss + s.match_weight * probe.loss(ids, questions, processor)
            descend(optimizer, loss, [p for g in groups for p in g["params"]])
            if (step + 1) % max(1, s.align_steps // 6) == 0:
                log(f"  align step {step + 1}/{s.align_steps} loss {loss.item():.3f} aux "
                    f"{out.aux_loss.item():.3f} ({time.perf_counter() - tic:.0f} s)")  # fmt: skip
    finally:
        if probe is not None:
            probe.handle.remove()


@torch.no_grad()
def alignment_figures(model, processor, validation: Clips, settings: BaseSettings) -> dict:
    """Stage C's figures on the demo's validation clips: greedy narration (verb, noun, both
    right) and the verb / noun heads on the action token."""
    from verbnoun.model.inference import generate

    model.eval()
    hits = {"verb": 0, "noun": 0, "action": 0, "head_verb": 0, "head_noun": 0}
    for start in range(0, len(validation), 32):
        rows = np.arange(start, min(start + 32, len(validation)))
        video = list(pixels(validation.frames[rows]))
        ids = [
            torch.tensor(processor.tokenize(prompts.chat_prompt(
                visual_turn(float(validation.durations[r]), settings.frames))))
            for r in rows
        ]  # fmt: skip
        out = generate(model, ids, video, eos_ids=processor.eos_ids, max_new_tokens=8,
                       vocab_limit=processor.vocab_limit)  # fmt: skip
        for r, tokens in zip(rows, out, strict=True):
            verb, noun = parse_narration(processor.decode(tokens))
            hits["verb"] += verb == validation.verbs[r]
            hits["noun"] += noun == validation.nouns[r]
            hits["action"] += verb == validation.verbs[r] and noun == validation.nouns[r]
        heads = model(ids, video, padding_side="left", logits_to_keep=1)
        hits["head_verb"] += int(
            (heads.verb_logits.argmax(-1).numpy() == validation.verbs[rows]).sum()
        )
        hits["head_noun"] += int(
            (heads.noun_logits.argmax(-1).numpy() == validation.nouns[rows]).sum()
        )
    result = {f"narration_{k}" if not k.startswith("head") else k: float(v) / len(validation)
              for k, v in hits.items()}  # fmt: skip
    result["validation_clips"] = len(validation)
    return result


def instruct(
    model, processor, pool: Clips, settings: BaseSettings, log: Callable[[str], None]
) -> None:
    """Stage D: video MQA on pool clips (:func:`video_question`, jittered frames), each batch
    half stage B's text questions, with the :class:`MatchProbe`; the projector, newline, action
    token and LM train at ``instruct_lr``, the tower stays frozen."""
    s = settings
    torch.manual_seed(s.seed)
    rng = np.random.default_rng([s.seed, 5])
    question_rng = random.Random(f"kitchen-base-instruct:{s.seed}")
    text_rng = random.Random(f"kitchen-base-instruct-text:{s.seed}")
    inner = model.model
    probe = MatchProbe(model, s.num_options)
    params = [*inner.mm_projector.parameters(), inner.image_newline, inner.action_supervision]
    params += lm_parameters(model) + list(probe.parameters())
    optimizer = torch.optim.AdamW(params, lr=s.instruct_lr, weight_decay=0.0)
    model.train()
    tic = time.perf_counter()
    try:
        for step in range(s.instruct_steps):
            set_lr(optimizer, s.instruct_lr * schedule(step, s.instruct_steps,
                                                       max(1, s.instruct_steps // 10)))  # fmt: skip
            rows = rng.integers(0, len(pool), size=s.instruct_batch)
            video = list(pixels(pool.sample(rows, s.frames, rng)))
            questions = [
                video_question(question_rng, int(pool.verbs[r]), int(pool.nouns[r]),
                               float(pool.durations[r]), s)
                for r in rows
            ]  # fmt: skip
            questions += text_rows(text_rng, s.instruct_batch, s)
            ids, labels = encode_rows(processor, questions)
            videos = video + [None] * (len(ids) - len(video))
            _, loss = answer_loss(model, ids, videos, labels, s.letter_weight)
            loss = loss + s.match_weight * probe.loss(ids, questions, processor)
            descend(optimizer, loss, params)
            if (step + 1) % max(1, s.instruct_steps // 8) == 0:
                log(f"  instruct step {step + 1}/{s.instruct_steps} loss {loss.item():.3f} "
                    f"({time.perf_counter() - tic:.0f} s)")  # fmt: skip
    finally:
        probe.handle.remove()


@torch.no_grad()
def video_letter_accuracy(model, processor, clips: Clips, settings: BaseSettings) -> float:
    """Letter accuracy (the evaluator's ``letters`` scoring) on one :func:`video_question` per
    clip (random distractors, a fixed generator), frames at the clips' sampling midpoints."""
    from verbnoun.model.inference import score_options

    model.eval()
    rng = random.Random("kitchen-base-video-gate")
    correct = 0
    for start in range(0, len(clips), 32):
        rows = np.arange(start, min(start + 32, len(clips)))
        questions = [
            video_question(rng, int(clips.verbs[r]), int(clips.nouns[r]),
                           float(clips.durations[r]), settings)
            for r in rows
        ]  # fmt: skip
        frames = clips.sample(rows, settings.frames, None)
        ids = [torch.tensor(processor.tokenize(prompts.chat_prompt(q[0]))) for q in questions]
        choices = score_options(model, processor, ids, list(pixels(frames)),
                                [q[2] for q in questions], mode="letters")  # fmt: skip
        correct += sum(c.index == q[3] for c, q in zip(choices, questions, strict=True))
    return correct / len(clips)


def schedule(step: int, total: int, warmup: int) -> float:
    """Linear warmup, then cosine decay to 10 %."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params) -> None:
    """One optimiser step on ``loss``: gradients cleared, back-propagated, their norm over
    ``params`` clipped to 1, then the step (every stage trains through this)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
