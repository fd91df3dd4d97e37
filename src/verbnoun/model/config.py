"""The model's settings in one dataclass, read from a released checkpoint's ``config.json``.

A released LLaVA-NeXT checkpoint (LLaVAction-7B / -0.5B) stores the Qwen2 settings at the top
level of ``config.json`` and the multimodal ones under ``mm_*`` keys; the vision tower is named
only by ``mm_vision_tower``. The so400m tower (``google/siglip-so400m-patch14-384``, the
released one) has its shape built in here (:data:`SIGLIP_SO400M`); another tower's shape is read,
as the original reads it, from its own ``config.json``: in the local directory the key names, or
in the local Hugging Face cache for a hub id (:func:`tower_config`, offline, never downloaded).
Our own format stores the same dataclass as JSON, with the vision shape written out, so that
nothing is ever looked up.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from verbnoun.errors import CheckpointError

IMAGE_TOKEN_INDEX = -200  # the ``<image>`` placeholder in token ids (the original's value)
NEWLINE_POSITIONS = ("grid", "frame", "one_token", "none")
POOL_MODES = ("bilinear", "average", "max")
ACTION_SUPERVISION = {None: 0, "one_token": 1, "three_tokens": 3}


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP vision tower shape. ``num_layers`` counts the layers kept (the original drops the
    last one and reads the output of the remaining stack, without the post-layernorm)."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_layers: int = 26
    num_heads: int = 16
    patch_size: int = 14
    image_size: int = 384
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"

    @property
    def grid(self) -> int:
        """Patches per side (27 for so400m at 384 px)."""
        return self.image_size // self.patch_size


# google/siglip-so400m-patch14-384 has 27 layers; LLaVA-NeXT keeps 26 (mm_vision_select_layer -2).
SIGLIP_SO400M = VisionConfig()
SIGLIP_SO400M_LAYERS = 27
SO400M_ID = "siglip-so400m-patch14-384"
# A tower config.json's keys -> VisionConfig fields; a missing key takes the so400m value, as the
# original's SigLIP config class does.
TOWER_KEYS = {
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "patch_size": "patch_size",
    "image_size": "image_size",
    "layer_norm_eps": "layer_norm_eps",
    "hidden_act": "hidden_act",
}


@dataclass(frozen=True)
class TextConfig:
    """Qwen2 language-model shape (the keys of a Qwen2 ``config.json``)."""

    vocab_size: int = 151936
    hidden_size: int = 896
    intermediate_size: int = 4864
    num_hidden_layers: int = 24
    num_attention_heads: int = 14
    num_key_value_heads: int = 2
    max_position_embeddings: int = 32768
    rope_theta: float = 1000000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    bos_token_id: int | None = 151643
    eos_token_id: int | None = 151645


@dataclass(frozen=True)
class LlavactionConfig:
    """Everything that shapes a LLaVAction model (SPEC 6).

    ``newline_position``: ``grid`` (a newline after each pooled row, LLaVA-Video), ``frame`` (one
    after each frame), ``one_token`` (one per video, LLaVA-OneVision) or ``none``.
    ``action_tokens``: 0 (off), 1 or 3 learned vectors inserted right after the visual tokens;
    ``action_types``: sizes of the verb, noun and action heads, or ``None`` for no heads.
    The auxiliary loss is ``(w_verb*CE_verb + w_noun*CE_noun + w_action*CE_action) / aux_divisor``
    and is added to the LM loss with weight ``aux_loss_weight``.
    """

    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    projector_type: str = "mlp2x_gelu"
    pool_stride: int = 2
    pool_mode: str = "bilinear"
    newline_position: str = "grid"
    action_tokens: int = 1
    action_types: tuple[int, int, int] | None = (97, 300, 3806)
    aux_weights: tuple[float, float, float] = (0.5, 0.5, 0.1)
    aux_divisor: float = 2.0
    aux_loss_weight: float = 0.1
    attn_implementation: str = "sdpa"

    def __post_init__(self) -> None:
        if self.projector_type != "mlp2x_gelu":
            raise CheckpointError(f"projector type {self.projector_type!r} (only mlp2x_gelu)")
        if self.newline_position not in NEWLINE_POSITIONS:
            raise CheckpointError(f"newline position {self.newline_position!r}")
        if self.pool_mode not in POOL_MODES:
            raise CheckpointError(f"spatial pool mode {self.pool_mode!r}")
        if self.action_tokens not in (0, 1, 3):
            raise CheckpointError(f"{self.action_tokens} action tokens (0, 1 or 3)")
        if self.action_types is not None and self.action_tokens == 0:
            raise CheckpointError("action heads need an action token")

    @property
    def pooled_grid(self) -> int:
        """Pooled tokens per side of a frame (14 for so400m at 384 px, stride 2)."""
        grid = self.vision.grid
        if self.pool_mode == "bilinear":
            return -(-grid // self.pool_stride)
        return grid // self.pool_stride

    def visual_tokens(self, num_frames: int) -> int:
        """Visual tokens (pooled features plus newlines) for a video of ``num_frames``."""
        side = self.pooled_grid
        per_frame = side * side
        if self.newline_position == "grid":
            per_frame += side
        elif self.newline_position == "frame":
            per_frame += 1
        extra = 1 if self.newline_position == "one_token" else 0
        return num_frames * per_frame + extra

    # ---- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Our own format: the dataclass as plain JSON types."""
        data = asdict(self)
        data["format"] = "llavaction"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LlavactionConfig:
        """Inverse of :meth:`to_dict`; a released ``config.json`` goes to :meth:`from_released`."""
        if data.get("format") != "llavaction":
            return cls.from_released(data)
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["text"] = TextConfig(**data["text"])
        kwargs["vision"] = VisionConfig(**data["vision"])
        for key in ("action_types", "aux_weights"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    @classmethod
    def from_released(cls, data: dict[str, Any]) -> LlavactionConfig:
        """Read a LLaVA-NeXT ``config.json`` (Qwen2 keys + ``mm_*`` keys)."""
        if "mm_vision_tower" not in data and "vision_config" not in data:
            raise CheckpointError("config.json has no mm_vision_tower: not a LLaVA checkpoint")
        text_keys = {f.name for f in fields(TextConfig)}
        text = TextConfig(**{k: data[k] for k in text_keys if k in data})
        vision = _released_vision(data)
        supervision = data.get("vision_supervision")
        if supervision not in ACTION_SUPERVISION:
            raise CheckpointError(
                f"vision_supervision {supervision!r} is not supported "
                f"(one of {sorted(k for k in ACTION_SUPERVISION if k)} or absent)"
            )
        n_action = ACTION_SUPERVISION[supervision]
        types = data.get("action_types")
        action_types = None
        if n_action and types is not None:
            parts = types.split(",") if isinstance(types, str) else types
            action_types = tuple(int(p) for p in parts)
            if len(action_types) != 3:
                raise CheckpointError(f"action_types {types!r} needs three sizes")
        # vision_token_training other than last_layer supervised every layer's state at the
        # token (the loss divides by layers + 1); it changes training only, never inference.
        newline = data.get("mm_newline_position", "one_token")
        newline = "none" if newline == "no_token" else newline
        if data.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
            raise CheckpointError(f"mm_projector_type {data.get('mm_projector_type')!r}")
        hidden = data.get("mm_hidden_size", vision.hidden_size)
        if hidden != vision.hidden_size:
            raise CheckpointError(f"mm_hidden_size {hidden} != vision width {vision.hidden_size}")
        return cls(
            text=text,
            vision=vision,
            pool_stride=int(data.get("mm_spatial_pool_stride", 2)),
            pool_mode=data.get("mm_spatial_pool_mode", "bilinear"),
            newline_position=newline,
            action_tokens=n_action,
            action_types=action_types,
        )

    def to_released(self) -> dict[str, Any]:
        """A LLaVA-NeXT style ``config.json`` for this shape (used to write tiny test checkpoints;
        ``vision_config`` spells the tower out because a tiny tower has no hub id)."""
        data: dict[str, Any] = {
            "architectures": ["LlavaQwenForCausalLM"],
            "model_type": "llava_qwen",
            **asdict(self.text),
            "hidden_act": "silu",
            "mm_vision_tower": "google/siglip-so400m-patch14-384",
            "mm_projector_type": self.projector_type,
            "mm_hidden_size": self.vision.hidden_size,
            "mm_vision_select_layer": -2,
            "mm_patch_merge_type": "spatial_unpad",
            "mm_newline_position": "no_token"
            if self.newline_position == "none"
            else self.newline_position,
            "mm_spatial_pool_mode": self.pool_mode,
            "mm_spatial_pool_stride": self.pool_stride,
            "torch_dtype": "bfloat16",
        }
        if self.vision != SIGLIP_SO400M:
            data["vision_config"] = {
                **asdict(self.vision),
                "num_layers": self.vision.num_layers + 1,
            }
        if self.action_tokens:
            inverse = {v: k for k, v in ACTION_SUPERVISION.items()}
            data["vision_supervision"] = inverse[self.action_tokens]
            data["vision_token_training"] = "last_layer"
        if self.action_types is not None:
            data["action_types"] = ",".join(str(n) for n in self.action_types)
        return data


def _released_vision(data: dict[str, Any]) -> VisionConfig:
    """The vision shape: spelled out (``vision_config``, which :func:`tower_config` fills for a
    tower other than so400m) or the built-in so400m one."""
    select = int(data.get("mm_vision_select_layer", -2))
    if select >= 0:
        raise CheckpointError(f"mm_vision_select_layer {select} (need a negative index)")
    spelled = data.get("vision_config")
    if spelled is not None:
        total = int(spelled["num_layers"])
        return VisionConfig(**{**spelled, "num_layers": total + select + 1})
    tower = str(data.get("mm_vision_tower", ""))
    if SO400M_ID not in tower:
        raise CheckpointError(
            f"mm_vision_tower {tower!r}: only SigLIP so400m-patch14-384 is built in; "
            "add a 'vision_config' entry (the tower's SigLIP vision settings) to config.json"
        )
    return replace(SIGLIP_SO400M, num_layers=SIGLIP_SO400M_LAYERS + select + 1)


def tower_config(tower: str, base: str | Path | None = None) -> dict[str, Any] | None:
    """The vision shape (``vision_config`` form, all layers counted) of the tower a released
    ``config.json`` names in ``mm_vision_tower``, or ``None`` when nothing needs looking up (the
    built-in so400m tower). A local directory (as given, or relative to ``base``, the checkpoint
    directory) is read directly; a hub id is read from the local Hugging Face cache only (the
    cache ``HF_HOME`` / ``HF_HUB_CACHE`` point to; nothing is downloaded). When neither exists,
    a :class:`CheckpointError` says which key and what to add."""
    candidates = [Path(tower)] + ([Path(base) / tower] if base is not None else [])
    local = next((c for c in candidates if tower and c.is_dir()), None)
    if local is not None:
        path = local / "config.json"
        if not path.is_file():
            raise CheckpointError(f"mm_vision_tower {tower!r}: the directory has no config.json")
        return _tower_shape(path)
    if SO400M_ID in tower:
        return None
    cached = _cached_config(tower)
    if cached is None:
        raise CheckpointError(
            f"mm_vision_tower {tower!r} is not a local directory and its config.json is not in "
            "the local Hugging Face cache: download it (huggingface-cli download "
            f"{tower} config.json), point mm_vision_tower at a directory holding it, or add a "
            "'vision_config' entry (the tower's SigLIP vision settings) to config.json"
        )
    return _tower_shape(cached)


def _cached_config(repo_id: str) -> Path | None:
    """``config.json`` of a hub repository in the local cache (its ``main`` snapshot), if any."""
    if repo_id.count("/") != 1 or any(not part for part in repo_id.split("/")):
        return None
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return None
    # read the environment now (huggingface_hub reads it once, at import)
    home = os.environ.get("HF_HOME")
    cache = os.environ.get("HF_HUB_CACHE") or (
        str(Path(home) / "hub") if home else constants.HF_HUB_CACHE
    )
    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache)
    except ValueError:  # not a valid repository id
        return None
    return Path(found) if isinstance(found, str) else None


def _tower_shape(path: Path) -> dict[str, Any]:
    """A SigLIP tower's ``config.json`` (full SigLIP or vision-only) -> ``vision_config`` form."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable tower config: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: tower config is not a JSON object")
    if data.get("model_type") == "siglip":
        data = data.get("vision_config") or {}
    kind = data.get("model_type", "siglip_vision_model")
    if kind != "siglip_vision_model":
        raise CheckpointError(
            f"{path}: model_type {kind!r}: only SigLIP vision towers are supported"
        )
    shape = asdict(replace(SIGLIP_SO400M, num_layers=SIGLIP_SO400M_LAYERS))
    for key, name in TOWER_KEYS.items():
        if key in data:
            shape[name] = data[key]
    return shape


def tiny_config(
    *,
    vocab_size: int = 512,
    newline_position: str = "grid",
    action_tokens: int = 1,
    action_types: tuple[int, int, int] | None = (10, 16, 40),
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = 64,
    vision_hidden_size: int = 48,
    num_layers: int = 2,
) -> LlavactionConfig:
    """A tiny model for CPU tests and the demo: hidden 64, 2 layers, 32-px frames, patch 8."""
    text = TextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
    )
    vision = VisionConfig(
        hidden_size=vision_hidden_size,
        intermediate_size=vision_hidden_size * 2,
        num_layers=num_layers,
        num_heads=4,
        patch_size=patch_size,
        image_size=image_size,
    )
    return LlavactionConfig(
        text=text,
        vision=vision,
        newline_position=newline_position,
        action_tokens=action_tokens,
        action_types=action_types if action_tokens else None,
    )
