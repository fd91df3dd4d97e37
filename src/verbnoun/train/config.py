"""Training settings: nested dataclasses read from YAML, with dotted overrides from the command line.

A config file mirrors :class:`TrainConfig`::

    run_dir: runs/tiny
    model: {tiny: true, hidden_size: 64}
    data: {mixture: sft/mixture.yaml, videos: kitchen/videos, frames: 8}
    optim: {lr: 1.0e-3, warmup_steps: 50}
    lora: {rank: 8, alpha: 16}   # optional: LoRA adapters instead of training the LM's weights

``load_config(path, ["optim.lr=5e-4", "data.frames=4"])`` applies overrides (values parsed as YAML
scalars), rejects unknown keys with one line naming the key, and checks types. The resolved
config is saved as ``run_dir/config.yaml`` by the trainer (lingua style).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from verbnoun.errors import VerbnounError
from verbnoun.fileio import read_yaml
from verbnoun.train.parts import part_names


class ConfigError(VerbnounError):
    """A config file or override that cannot be used: names the key."""


@dataclass
class ModelSettings:
    """Where the model comes from: a checkpoint directory, or a tiny model built here.

    ``tokenizer``: a directory with tokenizer files (defaults to the checkpoint's); for a tiny
    model without one, a byte-level BPE of ``vocab_size`` is trained on the prompts and the data.
    ``action_types``: sizes of the verb/noun/action heads of a tiny model (``null``: one more than
    the largest class id of the data). ``tunable_parts``: which parts train, a list of
    ``vision_tower``, ``projector``, ``language_model``, ``action_heads`` or the release's
    ``mm_tunable_parts`` string (``"mm_vision_tower,mm_mlp_adapter,mm_language_model"``);
    ``null``: the checkpoint's ``mm_tunable_parts``, else everything (see
    :mod:`verbnoun.train.parts`)."""

    checkpoint: str | None = None
    tokenizer: str | None = None
    tiny: bool = False
    vocab_size: int = 512
    hidden_size: int = 64
    vision_hidden_size: int = 48
    num_layers: int = 2
    image_size: int = 32
    patch_size: int = 8
    newline_position: str = "grid"
    action_tokens: int = 1
    action_types: list[int] | None = None
    aux_loss_weight: float | None = None
    gradient_checkpointing: bool = False
    tunable_parts: list[str] | str | None = None


@dataclass
class DataSettings:
    """The SFT mixture and how its clips are read (SPEC 2, 5).

    ``size``: decode frames to this square size (``null``: the file's size; the processor resizes
    to the tower's size either way). ``max_skip_fraction``: the run stops once more than this
    fraction of its planned samples had a missing or corrupt video. ``supervision``: which tokens
    the LM loss trains on: ``original`` (LLaVA-NeXT's Qwen rule, as the released checkpoints were
    trained: whole assistant turns, header line and final newline included, plus every
    ``<|im_start|>``, ``<|im_end|>`` and single-newline token of the system and user turns) or
    ``answer`` (only each answer and its ``<|im_end|>``)."""

    mixture: str = ""
    videos: str = ""
    layout: str = "chunks"
    chunk_seconds: float | None = 15.0
    frames: int = 8
    size: int | None = None
    time_instruction: bool = True
    supervision: str = "original"
    jitter: bool = True
    workers: int = 2
    prefetch: int = 2
    max_skip_fraction: float = 0.01


@dataclass
class OptimSettings:
    """AdamW with a learning rate per part, cosine decay after linear warmup: ``lr`` for the
    language model and the action heads, ``vision_lr`` for the vision tower (the release's
    ``mm_vision_tower_lr``), ``projector_lr`` for the projector (``mm_projector_lr``); ``null``:
    ``lr``."""

    lr: float = 1e-3
    vision_lr: float | None = None
    projector_lr: float | None = None
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    warmup_steps: int | None = None
    warmup_ratio: float = 0.03
    min_lr_ratio: float = 0.0
    clip_grad: float | None = 1.0


@dataclass
class EvalSettings:
    """Evaluation on an MQA question file every ``every`` steps (0: only at the end; needs
    ``questions``). ``scoring``: ``text`` (option likelihood) or ``letters``."""

    questions: str | None = None
    every: int = 0
    scoring: str = "text"
    batch_size: int = 8


@dataclass
class DistributedSettings:
    """``backend``: ``auto`` (nccl on GPU, gloo on CPU); ``deepspeed``: a DeepSpeed JSON config
    (ZeRO-2/3) or ``null`` for DDP."""

    backend: str = "auto"
    deepspeed: str | None = None
    find_unused_parameters: bool = False


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    """LoRA adapters (``peft``) on the language model, and on the vision tower when ``vision``
    (see :mod:`verbnoun.train.lora`). ``target_modules``: the last names of the linear layers that
    get an adapter, in every decoder layer of each adapted part (Qwen2: ``q_proj``, ``k_proj``,
    ``v_proj``, ``o_proj``, ``gate_proj``, ``up_proj``, ``down_proj``; SigLIP: ``q_proj``,
    ``k_proj``, ``v_proj``, ``out_proj``, ``fc1``, ``fc2``); each must name a layer of some adapted
    part. The update is ``alpha / rank * B A``; ``dropout`` applies to the adapter's input."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    vision: bool = False


@dataclass
class TrainConfig:
    """One training run. The global batch is ``batch_size * grad_accum * world_size``; the run
    lasts ``steps`` optimizer steps, or ``epochs`` passes over the mixture when ``steps`` is null."""

    run_dir: str = "runs/train"
    seed: int = 0
    steps: int | None = None
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    precision: str = "auto"
    log_every: int = 1
    save_every: int = 0
    keep_checkpoints: int = 2
    resume: bool = True
    progress: bool = True
    tensorboard: bool = False
    wandb: bool = False
    threads: int | None = None
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    distributed: DistributedSettings = field(default_factory=DistributedSettings)
    lora: LoraSettings | None = None

    def check(self) -> None:
        """Refuse settings that cannot work, naming the key."""
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision: {self.precision!r} (auto, fp32 or bf16)")
        if self.model.checkpoint is None and not self.model.tiny:
            raise ConfigError("model: set model.checkpoint or model.tiny: true")
        if not self.data.mixture:
            raise ConfigError("data.mixture: the SFT mixture YAML is required")
        for key, value in (("batch_size", self.batch_size), ("grad_accum", self.grad_accum)):
            if value < 1:
                raise ConfigError(f"{key}: must be at least 1, got {value}")
        if self.data.frames < 1:
            raise ConfigError(f"data.frames: must be at least 1, got {self.data.frames}")
        if not 0.0 <= self.data.max_skip_fraction <= 1.0:
            raise ConfigError("data.max_skip_fraction: must be in [0, 1]")
        if self.data.supervision not in ("original", "answer"):
            raise ConfigError(f"data.supervision: {self.data.supervision!r} (original or answer)")
        if self.eval.scoring not in ("text", "letters"):
            raise ConfigError(f"eval.scoring: {self.eval.scoring!r} (text or letters)")
        if self.lora is not None:  # before the general bounds: lora.rank -3 is "at least 1"
            self._check_lora(self.lora)
        for key, value in _numbers(self):
            if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{key}: must be a finite number >= 0, got {value}")
            if isinstance(value, int) and value < 0 and key != "seed":
                raise ConfigError(f"{key}: must be >= 0, got {value}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps: must be at least 1, got {self.steps}")
        if not self.optim.lr > 0:
            raise ConfigError(f"optim.lr: must be positive, got {self.optim.lr}")
        try:
            part_names(self.model.tunable_parts)
        except ValueError as error:
            raise ConfigError(f"model.tunable_parts: {error}") from None

    def _check_lora(self, lora: LoraSettings) -> None:
        if lora.rank < 1:
            raise ConfigError(f"lora.rank: must be at least 1, got {lora.rank}")
        if not lora.alpha > 0:
            raise ConfigError(f"lora.alpha: must be positive, got {lora.alpha}")
        if not lora.dropout < 1.0:
            raise ConfigError(f"lora.dropout: must be below 1, got {lora.dropout}")
        if not lora.target_modules or not all(
            name and name.isidentifier() for name in lora.target_modules
        ):
            raise ConfigError(
                f"lora.target_modules: expected layer names such as q_proj, got {lora.target_modules}"
            )
        if self.model.checkpoint is None:
            raise ConfigError("lora: needs model.checkpoint, the base model the adapters adapt")
        if self.distributed.deepspeed:
            raise ConfigError(
                "lora: not with distributed.deepspeed (LoRA runs use one process or DDP)"
            )


def _numbers(settings: Any, prefix: str = "") -> Iterator[tuple[str, int | float]]:
    """Every number of a (nested) settings dataclass with its dotted key; bools are not numbers."""
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        if dataclasses.is_dataclass(value):
            yield from _numbers(value, f"{prefix}{item.name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield f"{prefix}{item.name}", value


# ---- reading ------------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Check (and lightly coerce) a YAML value against a type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(hint, value, key + ".")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{key}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _build(cls: type, data: dict, prefix: str = "") -> Any:
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}' (known under "
            f"'{prefix or '(top)'}': {', '.join(sorted(names))})"
        )
    kwargs = {name: _convert(value, hints[name], prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def apply_override(data: dict, override: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as a YAML scalar or list."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r}: expected key=value (e.g. optim.lr=1e-3)")
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        raise ConfigError(f"override {override!r}: unreadable value") from None
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)  # YAML 1.1 reads 1e-3 as a string
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(c.isdigit() for c in text)


def _numeric_strings(data: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: read such values as floats."""
    if isinstance(data, dict):
        return {k: _numeric_strings(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_numeric_strings(v) for v in data]
    if isinstance(data, str) and _looks_numeric(data) and not data.strip().isdigit():
        return float(data)
    return data


def config_from_dict(data: dict, overrides: list[str] | None = None) -> TrainConfig:
    """A checked :class:`TrainConfig` from a plain dict plus dotted overrides."""
    data = _numeric_strings(dict(data))
    for override in overrides or []:
        apply_override(data, override)
    config = _build(TrainConfig, data)
    config.check()
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (``yaml.safe_load``) and apply dotted overrides."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    data = read_yaml(path, expect=None) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return config_from_dict(data, overrides)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def dump_config(config: TrainConfig) -> str:
    """The resolved config as YAML (what the run actually used)."""
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
