"""The kitchen base's settings and fixed constants (a leaf: no other kitchen-base module imported).

:class:`BaseSettings` holds everything that shapes the base (:func:`verbnoun.model.kitchen_base.
build_base` is deterministic in it); the constants name the pool's and the demo's kitchen seeds,
the frames read per pool segment, the marker file of a built base or stage (``gates.json``), the
statement that stands for the video in stage B's text questions, and the kitchen's shapes and
colours.
"""

from __future__ import annotations

from dataclasses import dataclass

from verbnoun.data.kitchen import NOUNS

POOL_SEED = 10_000  # pool kitchens use seeds POOL_SEED + k: the demo's kitchens use 0-4
DEMO_SEED = 0  # the gates read the validation clips of the demo's seed-0 kitchen
DEMO_VIDEOS = 40
POOL_FRAMES = 16  # frames read per pool segment; a sample takes one of each quarter
MARKER = "gates.json"
STATEMENT = "Video: {narration}."  # stands where <image> goes in stage B's text questions
SHAPES = tuple(dict.fromkeys(n.shape for n in NOUNS))
COLOURS = tuple(dict.fromkeys(n.colour for n in NOUNS))


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
