"""The kitchen base: a small pretrained LLaVAction for the synthetic kitchen, shipped with the package.

The paper fine-tunes LLaVA-OneVision (a pretrained SigLIP and a pretrained Qwen2); the demo mirrors
that by fine-tuning this base instead of training from nothing. :func:`kitchen_base_path` is the
shipped checkpoint directory (``verbnoun/assets/kitchen_base/``): a normal verbnoun checkpoint
(``config.json``, ``model.safetensors``, tokenizer files) that
:func:`verbnoun.model.checkpoint.load_model` and the trainer's ``model.checkpoint`` load, plus
``gates.json`` (the gates measured when it was built, the build settings and the seed).

:func:`build_base` makes it (``scripts/build_kitchen_base.py`` is the command), deterministically
given :class:`BaseSettings` (seeds everywhere, torch threads fixed per stage). Stages A and B
train disjoint parameters, so each is kept under ``work/stages/`` by a digest of the settings
it depends on and can be built alone (in parallel) and reused:

0. **Tokenizer**: a byte-level BPE trained on every prompt template of
   :mod:`verbnoun.bench.prompts` and on text questions that use every kitchen verb, synonym,
   colour and shape; byte-level, so no text is out of vocabulary. Fixed with the base.
1. **Pool**: kitchens rendered through :func:`verbnoun.data.synth.render_kitchen` with seeds
   ``POOL_SEED + k`` (10,000 and up; the demo renders seeds 0-4), read back through the same
   H.264 chunks and :class:`~verbnoun.data.video.VideoReader` at 32 px as the demo reads them.
   Each segment is read at 16 frames; a training sample takes one frame of each quarter (SPEC 2's
   jitter, approximately).
2. **Stage A, vision tower**: the SigLIP tower plus linear verb / noun / shape / colour heads on
   its per-frame 2x2-pooled features (the grid the LM sees), trained on pool clips. Gate: a
   scikit-learn logistic regression on the frozen tower's features, fitted on pool clips, reads
   the demo's validation clips (kitchen seed 0, validation split, 4 frames of 32 px through the
   evaluator's frame reader): ``>= 0.85`` verb and ``>= 0.60`` noun.
3. **Stage B, language model**: text-only multiple choice in the MQA templates (with and
   without prior actions) where a statement in words of what the clip shows stands where the
   video goes (``<image>``), with a synonym of the answer's narration; four distractors, random
   or sharing the answer's verb or noun, answer letter uniform; plus direct-narration turns.
   Only the LM trains. Pointing is slow to appear from the letter's loss alone (it needs every
   step at once: read each option, compare it with the statement, keep its letter, copy the
   one that matches), so short and exact forms of the questions come first, the letter weighs
   ``letter_weight`` times the answer's other tokens, and a training-only
   :class:`MatchProbe` supervises each option's last token one layer below the top. Gate:
   letter accuracy (the evaluator's ``letters`` scoring,
   :func:`~verbnoun.model.inference.score_options`) on held-out text questions ``>= 0.90``.
4. **Stage C, alignment** (LLaVA's stage-1 analogue, never MQA): on pool clips, the direct
   narration task (video -> narration) trains the projector, the newline and action token and
   the verb/noun heads (auxiliary loss); the tower stays frozen. The LM trains with it at a lower
   rate, replaying stage B's text questions half of each batch so that it keeps reading options:
   a frozen 3-layer LM cannot learn to combine frames into a motion, and only the LM sees all
   frames at once. Reported: narration verb and noun accuracy (greedy) and the verb / noun
   heads on the demo's validation clips; gated: the letter accuracy of stage B, measured again
   on the shipped (after-C) model.

5. **Stage D, answering about the video** (LLaVA-OneVision's instruction tuning in small): the
   MQA task about pool clips, with distractors drawn at random among the kitchen's other actions
   (general multiple choice, never the specialist's confusions nor stage B's verb- or
   noun-sharing ones), half of each batch stage B's text questions replayed, the
   :class:`MatchProbe` on both. The projector, newline, action token and LM train; the tower
   stays frozen. Stage B's pointing does not carry over to the video by itself: after stage C
   the model reads the clip (its option likelihood ranks the answer first) but its letter is at
   chance on video questions. Gate: letter accuracy on the demo's validation clips with random
   distractors ``>= video_letter_gate``; stage B's text gate measured again on the shipped model.

Every gate is measured on data the stage never trained on; a missed gate is written as measured
(``passed: false``), never hidden.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from verbnoun.bench import prompts
from verbnoun.data.kitchen import NOUNS, VERBS
from verbnoun.errors import VerbnounError
from verbnoun.model.config import LlavactionConfig, TextConfig, VisionConfig

POOL_SEED = 10_000  # pool kitchens use seeds POOL_SEED + k: the demo's kitchens use 0-4
DEMO_SEED = 0  # the gates read the validation clips of the demo's seed-0 kitchen
DEMO_VIDEOS = 40
POOL_FRAMES = 16  # frames read per pool segment; a sample takes one of each quarter
MARKER = "gates.json"
STATEMENT = "Video: {narration}."  # stands where <image> goes in stage B's text questions
SHAPES = tuple(dict.fromkeys(n.shape for n in NOUNS))
COLOURS = tuple(dict.fromkeys(n.colour for n in NOUNS))


def kitchen_base_path() -> Path:
    """The shipped base checkpoint directory (``verbnoun/assets/kitchen_base``)."""
    return Path(__file__).resolve().parent.parent / "assets" / "kitchen_base"


@dataclass(frozen=True)
class BaseSettings:
    """Everything that shapes the base; :func:`build_base` is deterministic in these."""

    seed: int = 0
    threads: int = 2  # torch threads of stage A (and the data)
    lm_threads: int = 1  # of stages B and C: small matrices, one thread wastes least on a busy CPU
    # model
    vocab_size: int = 640
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 3
    vision_hidden_size: int = 96
    vision_layers: int = 2
    frames: int = 4
    image_size: int = 32
    patch_size: int = 8
    num_options: int = 5
    # data
    pool_kitchens: int = 6
    pool_videos: int = 40
    demo_videos: int = DEMO_VIDEOS  # the demo's kitchen size (smaller only in tests)
    # stage A
    tower_steps: int = 1200
    tower_batch: int = 32
    tower_lr: float = 1e-3
    probe_samples: int = 3  # jittered 4-frame samples per pool clip for the probe's fit
    # stage B
    lm_steps: int = 4000
    lm_batch: int = 32
    lm_lr: float = 1e-3
    lm_warmup: int = 100
    lm_compact: float = 1.0
    lm_exact: float = 0.5
    lm_warm_steps: int = 2000
    letter_weight: float = 5.0
    match_weight: float = 1.0
    prior_probability: float = 0.3
    narration_fraction: float = 0.15
    gate_questions: int = 400
    # stage C
    align_steps: int = 1200
    align_batch: int = 8
    align_lr: float = 1e-3
    align_lm_lr: float = 2e-4
    align_aux_weight: float = 0.5
    # stage D
    instruct_steps: int = 2400
    instruct_batch: int = 8
    instruct_lr: float = 5e-4
    # gates
    verb_gate: float = 0.85
    noun_gate: float = 0.60
    letter_gate: float = 0.90
    video_letter_gate: float = 0.60
    workers: int = 2

    def pool_seeds(self) -> list[int]:
        return [POOL_SEED + self.seed * 100 + k for k in range(self.pool_kitchens)]


# ---- tokenizer and model ------------------------------------------------------------------------


def narration_words(verb: int, noun: int, rng: random.Random) -> str:
    """A narration of the action with a random synonym of the verb (``pick up red bowl``)."""
    word = rng.choice(VERBS[verb].instances).replace("-", " ")
    return f"{word} {NOUNS[noun].colour} {NOUNS[noun].shape}"


def kitchen_texts() -> list[str]:
    """Every narration the kitchen can say (each verb synonym with each noun)."""
    return [
        f"{word.replace('-', ' ')} {n.colour} {n.shape}"
        for v in VERBS
        for word in v.instances
        for n in NOUNS
    ]


def base_tokenizer(vocab_size: int, seed: int):
    """The fixed byte-level BPE of the base (see the module docstring)."""
    from verbnoun.model.tokenization import train_tiny_tokenizer

    rng = random.Random(f"kitchen-base-tokenizer:{seed}")
    texts = [prompts.chat_prompt(text_question(rng, 5, 0.3, 0.15)[0]) for _ in range(400)]
    texts += [prompts.MQA, prompts.MQA_PRIOR_ACTIONS, prompts.DIRECT_NARRATION, prompts.CAPTION]
    texts += [prompts.TEMPORAL_DETECTION, prompts.TIME_INSTRUCTION, prompts.SYSTEM]
    texts += [" " + t for t in kitchen_texts()] * 40 + [
        " ".join(prompts.LETTERS),
        "0123456789 .:, A. B. C. D. E.",
    ]
    return train_tiny_tokenizer(texts, vocab_size)


def base_config(settings: BaseSettings, vocab_size: int) -> LlavactionConfig:
    """The base's shape: a Qwen2 LM of ``hidden_size`` and a SigLIP tower on 32-px frames, with
    the action token and verb (12) / noun (15) / action (all 180 pairs) heads."""
    s = settings
    text = TextConfig(
        vocab_size=vocab_size,
        hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
    )
    vision = VisionConfig(
        hidden_size=s.vision_hidden_size,
        intermediate_size=s.vision_hidden_size * 2,
        num_layers=s.vision_layers,
        num_heads=4,
        patch_size=s.patch_size,
        image_size=s.image_size,
    )
    return LlavactionConfig(
        text=text,
        vision=vision,
        newline_position="grid",
        action_tokens=1,
        action_types=(len(VERBS), len(NOUNS), len(VERBS) * len(NOUNS)),
    )


# ---- clips --------------------------------------------------------------------------------------


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


# ---- stage A: the vision tower ------------------------------------------------------------------


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
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
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


# ---- stage B: reading options -------------------------------------------------------------------


def distractor_actions(
    verb: int, noun: int, count: int, rng: random.Random
) -> list[tuple[int, int]]:
    """``count`` distinct actions other than ``(verb, noun)``: each at random, or sharing the
    answer's verb, or its noun (a third each), so that only the whole statement decides."""
    chosen: list[tuple[int, int]] = []
    while len(chosen) < count:
        kind = rng.randrange(3)
        v = verb if kind == 1 else rng.randrange(len(VERBS))
        n = noun if kind == 2 else rng.randrange(len(NOUNS))
        if (v, n) != (verb, noun) and (v, n) not in chosen:
            chosen.append((v, n))
    return chosen


def text_question(
    rng: random.Random, num_options: int, prior_probability: float, narration_fraction: float,
    frames: int = 4, *, compact: bool = False, exact: bool = False,
) -> tuple[str, str, list[str], int]:  # fmt: skip
    """One stage-B sample: ``(user turn, answer, option texts, answer index)``. The statement
    (:data:`STATEMENT`, a synonym of the answer's narration) stands where ``<image>`` goes, then
    the time instruction and the MQA task (with two prior actions at ``prior_probability``), or
    the direct-narration task (``narration_fraction``; index -1, the answer is a narration).
    Warm-up forms of the same question: ``compact``, the statement and the options only (the
    same pointing over a shorter distance, at a third of the cost); ``exact``, the statement in
    the answer's own words (matching without synonyms)."""
    verb, noun = rng.randrange(len(VERBS)), rng.randrange(len(NOUNS))
    statement = STATEMENT.format(narration=narration_words(verb, noun, rng))
    duration = rng.uniform(1.0, 3.5)
    if rng.random() < narration_fraction:
        head = f"{statement}\n{prompts.time_instruction(duration, frames)}"
        task = "" if compact else prompts.DIRECT_NARRATION
        return (statement if compact else head) + task, narration_words(verb, noun, rng), [], -1
    actions = [(verb, noun), *distractor_actions(verb, noun, num_options - 1, rng)]
    rng.shuffle(actions)
    index = actions.index((verb, noun))
    texts = [narration_words(v, n, rng) for v, n in actions]
    answer = prompts.mqa_answer(index, texts[index])
    if exact:
        statement = STATEMENT.format(narration=texts[index])
    if compact:
        return f"{statement}\n{prompts.format_options(texts)}", answer, texts, index
    if rng.random() < prior_probability:
        prior = [
            (rng.uniform(3.0, 9.0), narration_words(*distractor_actions(verb, noun, 1, rng)[0], rng)),
            (rng.uniform(0.5, 3.0), narration_words(*distractor_actions(verb, noun, 1, rng)[0], rng)),
        ]  # fmt: skip
        task = prompts.mqa_prior_actions_task(texts, prior)
    else:
        task = prompts.mqa_task(texts)
    head = f"{statement}\n{prompts.time_instruction(duration, frames)}"
    return head + task, answer, texts, index


def encode_sample(processor, turn: str, answer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and labels (the answer and its end token) of one conversation."""
    from verbnoun.model.tokenization import encode_conversation

    ids, labels = encode_conversation(processor, [("user", turn), ("assistant", answer)], "answer")
    return torch.tensor(ids), torch.tensor(labels)


def text_rows(
    rng: random.Random, size: int, settings: BaseSettings, compact: float = 0.0,
    exact: float = 0.0,
) -> list[tuple[str, str, list[str], int]]:  # fmt: skip
    """``size`` stage-B questions (:func:`text_question`), each compact with probability
    ``compact`` and exact with probability ``exact``."""
    return [
        text_question(rng, settings.num_options, settings.prior_probability,
                      settings.narration_fraction, settings.frames,
                      compact=rng.random() < compact, exact=rng.random() < exact)
        for _ in range(size)
    ]  # fmt: skip


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
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
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


# ---- stage C: alignment -------------------------------------------------------------------------


def visual_turn(duration: float, frames: int) -> str:
    """The direct-narration user turn of a clip, as the trainer writes it."""
    return prompts.user_turn(prompts.DIRECT_NARRATION, duration=duration, n_frames=frames)


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
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            optimizer.step()
            if (step + 1) % max(1, s.align_steps // 6) == 0:
                log(f"  align step {step + 1}/{s.align_steps} loss {loss.item():.3f} aux "
                    f"{out.aux_loss.item():.3f} ({time.perf_counter() - tic:.0f} s)")  # fmt: skip
    finally:
        if probe is not None:
            probe.handle.remove()


def parse_narration(text: str) -> tuple[int, int]:
    """Verb and noun class named by a narration (-1 where none is recognised)."""
    words = " " + " ".join(text.lower().replace("-", " ").split()) + " "
    verb = next(
        (i for i, v in enumerate(VERBS)
         for w in sorted(v.instances, key=len, reverse=True)
         if words.startswith(" " + w.replace("-", " ") + " ")),
        -1,
    )  # fmt: skip
    noun = next((i for i, n in enumerate(NOUNS) if f" {n.colour} {n.shape} " in words), -1)
    return verb, noun


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


# ---- stage D: answering about the video --------------------------------------------------------


def random_actions(verb: int, noun: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    """``count`` distinct kitchen actions other than ``(verb, noun)``, uniformly at random."""
    chosen: list[tuple[int, int]] = []
    while len(chosen) < count:
        action = (rng.randrange(len(VERBS)), rng.randrange(len(NOUNS)))
        if action != (verb, noun) and action not in chosen:
            chosen.append(action)
    return chosen


def video_question(
    rng: random.Random, verb: int, noun: int, duration: float, settings: BaseSettings
) -> tuple[str, str, list[str], int]:
    """One stage-D sample about a clip of ``(verb, noun)``: ``(user turn, answer, option texts,
    answer index)``, the turn as the trainer writes it (``<image>``, time instruction, the MQA
    task, with two prior actions at ``prior_probability``); random distractors, letter uniform."""
    actions = [(verb, noun), *random_actions(verb, noun, settings.num_options - 1, rng)]
    rng.shuffle(actions)
    index = actions.index((verb, noun))
    texts = [narration_words(v, n, rng) for v, n in actions]
    if rng.random() < settings.prior_probability:
        prior = [(offset, narration_words(*random_actions(verb, noun, 1, rng)[0], rng))
                 for offset in (rng.uniform(3.0, 9.0), rng.uniform(0.5, 3.0))]  # fmt: skip
        task = prompts.mqa_prior_actions_task(texts, prior)
    else:
        task = prompts.mqa_task(texts)
    turn = prompts.user_turn(task, duration=duration, n_frames=settings.frames)
    return turn, prompts.mqa_answer(index, texts[index]), texts, index


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
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
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


# ---- schedule and build -------------------------------------------------------------------------


def schedule(step: int, total: int, warmup: int) -> float:
    """Linear warmup, then cosine decay to 10 %."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


# the settings each stage's result depends on (stage A trains only the tower, stage B only the
# LM, so either can be built alone, in parallel, and reused by a later build)
STAGE_FIELDS = {
    "A": ("seed", "threads", "vision_hidden_size", "vision_layers", "frames", "image_size",
          "patch_size", "pool_kitchens", "pool_videos", "demo_videos", "tower_steps",
          "tower_batch", "tower_lr", "probe_samples", "verb_gate", "noun_gate"),
    "B": ("seed", "lm_threads", "vocab_size", "hidden_size", "intermediate_size", "num_layers",
          "num_options", "frames", "lm_steps", "lm_batch", "lm_lr", "lm_warmup", "lm_compact",
          "lm_exact", "lm_warm_steps", "letter_weight", "match_weight", "prior_probability", "narration_fraction",
          "gate_questions", "letter_gate"),
}  # fmt: skip
STAGE_PARTS = {
    "A": ("model.vision_tower.",),
    "B": ("model.embed_tokens.", "model.layers.", "model.norm."),
}


def stage_key(settings: BaseSettings, stage: str) -> str:
    """A short digest of the settings stage ``stage`` depends on (its cache folder's name)."""
    import hashlib
    import json

    values = {name: getattr(settings, name) for name in STAGE_FIELDS[stage]}
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
    return f"{stage}-{digest[:12]}"


def save_stage(model, folder: Path, stage: str, gates: dict) -> None:
    """The weights stage ``stage`` trained and its gates, into ``folder`` (atomically)."""
    from safetensors.torch import save_file

    from verbnoun.fileio import atomic_folder, write_json

    state = {
        k: v.detach().contiguous()
        for k, v in model.state_dict().items()
        if k.startswith(STAGE_PARTS[stage])
    }
    with atomic_folder(folder, marker=MARKER) as staging:
        save_file(state, str(staging / "weights.safetensors"))
        write_json(staging / MARKER, gates)


def load_stage(model, folder: Path) -> dict:
    """Put a saved stage's weights into ``model``; returns its gates."""
    from safetensors.torch import load_file

    from verbnoun.fileio import read_json

    state = load_file(str(folder / "weights.safetensors"))
    _, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise VerbnounError(f"{folder}: unknown weights {unexpected[:3]}")
    return read_json(folder / MARKER)


@dataclass
class BuildResult:
    """What :func:`build_base` made: the checkpoint directory (``None`` when only one stage
    was built) and ``gates.json``'s content."""

    directory: Path | None
    gates: dict = field(default_factory=dict)


def build_base(
    out: str | Path,
    work: str | Path,
    settings: BaseSettings | None = None,
    *,
    log: Callable[[str], None] = print,
    only: str | None = None,
    reuse: bool = True,
) -> BuildResult:
    """Build the base into ``out`` (replaced only if it holds ``gates.json``). Rendered kitchens
    and each stage's result are kept under ``work`` (``work/stages/A-<digest>``, ...) and reused
    when their settings match (``reuse``). ``only`` (``A`` or ``B``): build that stage alone,
    into ``work`` only. Prints each stage's time and gates through ``log``."""
    from verbnoun.fileio import atomic_folder, write_json
    from verbnoun.model.architecture import LlavactionForCausalLM
    from verbnoun.model.checkpoint import save_checkpoint
    from verbnoun.model.processor import Processor

    s = settings or BaseSettings()
    if only not in (None, "A", "B"):
        raise VerbnounError(f"only: {only!r} (A or B: the stages that stand alone)")
    torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    gates: dict = {"settings": asdict(s), "seed": s.seed, "pool_seeds": s.pool_seeds(),
                   "demo_validation": {"kitchen_seed": DEMO_SEED, "videos": s.demo_videos}}  # fmt: skip
    times: dict[str, float | None] = {}

    tic = time.perf_counter()
    tokenizer = base_tokenizer(s.vocab_size, s.seed)
    processor = Processor(tokenizer, s.image_size)
    model = LlavactionForCausalLM(base_config(s, len(tokenizer)))
    model.model.vision_tower.vision_tower.vision_model.post_layernorm.requires_grad_(False)
    pool = validation = None
    if only != "B":
        pool = render_pool(work, s)
        validation = demo_validation(work, s)
    times["data"] = time.perf_counter() - tic
    log(f"data: tokenizer {len(tokenizer)} tokens, {len(pool or [])} pool clips, "
        f"{len(validation or [])} demo validation clips ({times['data']:.0f} s)")  # fmt: skip

    for stage in ("A", "B"):
        if only not in (None, stage):
            continue
        folder = work / "stages" / stage_key(s, stage)
        torch.set_num_threads(s.threads if stage == "A" else s.lm_threads)
        tic = time.perf_counter()
        if reuse and (folder / MARKER).is_file():
            gates[stage] = {**load_stage(model, folder), "reused": folder.name}
            log(f"stage {stage}: reused {folder}")
        else:
            if stage == "A":
                train_tower(model, pool, s, log)
                gates["A"] = probe_gate(model, pool, validation, s)
            else:
                train_language(model, processor, s, log)
                accuracy = letter_accuracy(model, processor, s.gate_questions, "gate", s)
                gates["B"] = {"letter_accuracy": accuracy, "questions": s.gate_questions,
                              "gate": s.letter_gate, "passed": accuracy >= s.letter_gate}  # fmt: skip
            gates[stage]["seconds"] = round(time.perf_counter() - tic, 1)
            save_stage(model, folder, stage, gates[stage])
        # the time of the run that built it (None: a cache from before times were kept)
        times[stage] = gates[stage].get("seconds")
        g = gates[stage]
        took = f"{times[stage]:.0f} s" if times[stage] is not None else "time not recorded"
        verdict = f"{'PASS' if g['passed'] else 'FAIL'} ({took})"
        if stage == "A":
            log(f"stage A (tower): probe verb {g['verb']:.3f} (gate {s.verb_gate}), noun "
                f"{g['noun']:.3f} (gate {s.noun_gate}) on {g['validation_clips']} demo "
                f"validation clips: {verdict}")  # fmt: skip
        else:
            log(
                f"stage B (language): letter accuracy {g['letter_accuracy']:.3f} on "
                f"{g['questions']} held-out text questions (gate {s.letter_gate}): {verdict}"
            )
    if only is not None:
        return BuildResult(None, gates)

    tic = time.perf_counter()
    torch.set_num_threads(s.lm_threads)
    align(model, processor, pool, s, log)
    gates["C"] = alignment_figures(model, processor, validation, s)
    gates["C"]["letter_accuracy_after"] = letter_accuracy(
        model, processor, s.gate_questions, "gate", s
    )
    times["C"] = time.perf_counter() - tic
    c = gates["C"]
    log(f"stage C (alignment): narration verb {c['narration_verb']:.3f}, noun "
        f"{c['narration_noun']:.3f}, both {c['narration_action']:.3f}; heads verb "
        f"{c['head_verb']:.3f}, noun {c['head_noun']:.3f}; letters after "
        f"{c['letter_accuracy_after']:.3f} ({times['C']:.0f} s)")  # fmt: skip
    c["passed"] = c["letter_accuracy_after"] >= s.letter_gate

    tic = time.perf_counter()
    instruct(model, processor, pool, s, log)
    d = gates["D"] = {
        "video_letter_accuracy": video_letter_accuracy(model, processor, validation, s),
        "validation_clips": len(validation),
        "gate": s.video_letter_gate,
        # the shipped model is the one after stage D: its text letters must still pass B's gate
        "letter_accuracy_after": letter_accuracy(model, processor, s.gate_questions, "gate", s),
    }
    d["passed"] = (
        d["video_letter_accuracy"] >= s.video_letter_gate
        and d["letter_accuracy_after"] >= s.letter_gate
    )
    times["D"] = time.perf_counter() - tic
    log(f"stage D (video MQA): letters {d['video_letter_accuracy']:.3f} on "
        f"{d['validation_clips']} demo validation clips (gate {s.video_letter_gate}), text "
        f"letters after {d['letter_accuracy_after']:.3f}: "
        f"{'PASS' if d['passed'] else 'FAIL'} ({times['D']:.0f} s)")  # fmt: skip
    gates["seconds"] = {k: None if v is None else round(v, 1) for k, v in times.items()}
    gates["passed"] = all(gates[k]["passed"] for k in ("A", "B", "C", "D"))
    with atomic_folder(out, marker=MARKER) as staging:
        save_checkpoint(model, staging, tokenizer=tokenizer)
        write_json(staging / MARKER, gates)
    return BuildResult(Path(out), gates)
