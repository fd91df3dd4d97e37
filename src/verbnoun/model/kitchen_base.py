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
it depends on and can be built alone (in parallel) and reused.

This module is the shipped path, the tokenizer and model shape, the stage cache and the build's
order. The settings and constants are in :mod:`verbnoun.model.kitchen_base_settings`, the
question generators in :mod:`verbnoun.model.kitchen_base_questions`, the stages and their gate
measurements in :mod:`verbnoun.model.kitchen_base_stages`. The stages:

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

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from verbnoun.bench import prompts
from verbnoun.data.kitchen import NOUNS, VERBS
from verbnoun.errors import VerbnounError
from verbnoun.model.config import LlavactionConfig, TextConfig, VisionConfig
from verbnoun.model.kitchen_base_questions import kitchen_texts, text_question
from verbnoun.model.kitchen_base_settings import DEMO_SEED, MARKER, BaseSettings
from verbnoun.model.kitchen_base_stages import (
    align,
    alignment_figures,
    demo_validation,
    instruct,
    letter_accuracy,
    probe_gate,
    render_pool,
    train_language,
    train_tower,
    video_letter_accuracy,
)


def kitchen_base_path() -> Path:
    """The shipped base checkpoint directory (``verbnoun/assets/kitchen_base``)."""
    return Path(__file__).resolve().parent.parent / "assets" / "kitchen_base"


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
