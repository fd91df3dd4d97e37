"""``verbnoun export hf``: a checkpoint in transformers' ``LlavaOnevisionForConditionalGeneration``
format, for ``from_pretrained`` and for servers that implement that architecture (vLLM, sglang).

What carries over exactly (the exported model's logits equal ours on the same frames and prompt):

* the SigLIP tower (kept layers, no post-layernorm), the 2-layer GELU projector, the Qwen2 LM;
* ``mm_newline_position`` ``one_token`` (one ``image_newline`` after the whole video), which is
  the only newline placement LlavaOnevision implements for videos;
* ``mm_spatial_pool_mode`` ``bilinear`` with stride 2 (LlavaOnevision resizes each frame's grid
  to ``ceil(side / 2)``, as we do);
* the action token: 0, 1 or 3 learned vectors. Each becomes an added special token
  (``<|action|>``, or ``<|action_0|>`` .. ``<|action_2|>``) whose input-embedding row is the
  learned vector; the chat template writes them right after ``<video>``, so the sequence is
  ours: text, visual tokens, action token(s), text. The rows are free rows of the padded
  vocabulary, and when the LM ties its input and output embeddings the export unties them (the
  output projection keeps the original rows), so every logit is unchanged.

Refused with an error that names the setting: ``grid``, ``frame`` and ``none`` newlines (a
newline after each row or frame, or none: LlavaOnevision always appends exactly one per video),
``average`` / ``max`` pooling and strides other than 2, and a vocabulary without free rows for
the added tokens. The verb / noun / action heads are training-only and are not exported.

Only videos reproduce our model: LlavaOnevision's image path (anyres tiles, no pooling) is a
different input format that our model never saw.

The vision tower is written with one extra, all-zero encoder layer (an identity layer) and
``vision_feature_layer = -2``: transformers reads the output of the kept layers, and servers that
build the tower only up to the feature layer (vLLM) never build the extra layer nor apply the
post-layernorm, whichever version they are.

Weights are written under the key names of the transformers 4.x LlavaOnevision checkpoints
(``language_model.model.*``, ``vision_tower.*``, ``multi_modal_projector.*``, ``image_newline``),
which transformers 5 renames on load and vLLM reads directly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from verbnoun.errors import CheckpointError

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
SYSTEM = "You are a helpful assistant."
EXPORT_INFO_FILE = "llavaction_export.json"
SHARD_BYTES = 5 * 1024**3


def action_token_names(count: int) -> list[str]:
    """The added special tokens of ``count`` action vectors (0, 1 or 3)."""
    if count == 1:
        return ["<|action|>"]
    return [f"<|action_{i}|>" for i in range(count)]


def unsupported_reasons(config) -> list[str]:
    """Why a model config cannot be exported exactly to LlavaOnevision (empty when it can)."""
    reasons = []
    if config.newline_position != "one_token":
        reasons.append(
            f"mm_newline_position {config.newline_position!r}: LlavaOnevision appends exactly one "
            "image_newline per video ('one_token'); a newline after each row ('grid'), after "
            "each frame ('frame') or none changes the visual token sequence"
        )
    if config.pool_mode != "bilinear":
        reasons.append(
            f"mm_spatial_pool_mode {config.pool_mode!r}: LlavaOnevision pools video frames "
            "bilinearly only"
        )
    if config.pool_stride != 2:
        reasons.append(
            f"mm_spatial_pool_stride {config.pool_stride}: LlavaOnevision pools with stride 2 only"
        )
    return reasons


def check_exportable(config) -> None:
    """Raise :class:`CheckpointError` naming every setting that LlavaOnevision cannot express."""
    reasons = unsupported_reasons(config)
    if reasons:
        raise CheckpointError(
            "cannot export exactly to LlavaOnevisionForConditionalGeneration: " + "; ".join(reasons)
        )


def chat_template(action_tokens: list[str]) -> str:
    """The qwen_1_5 chat template (SPEC 3.1) with ``<video>`` followed by the action token(s).

    Content may be a string (``<video>`` inside it is followed by the action tokens) or a list of
    ``{"type": "image" | "video" | "text"}`` parts: images and videos first, then a newline and
    the text, as LLaVA's ``<image>\\n`` + text. Without a system message the default one is used."""
    action = "".join(action_tokens)
    return (
        "{%- set action = " + json.dumps(action) + " -%}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set system = messages[0]['content'] -%}{%- set rest = messages[1:] -%}"
        "{%- else -%}{%- set system = " + json.dumps(SYSTEM) + " -%}{%- set rest = messages -%}"
        "{%- endif -%}"
        "{%- if system is not string -%}"
        "{%- set system = system | selectattr('type', 'equalto', 'text') | map(attribute='text')"
        " | join('') -%}{%- endif -%}"
        "{{- '<|im_start|>system\\n' + system + '<|im_end|>\\n' -}}"
        "{%- for message in rest -%}"
        "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        "{%- if message['content'] is string -%}"
        "{{- message['content'] | replace('<video>', '<video>' + action) -}}"
        "{%- else -%}"
        "{%- set media = namespace(any=false) -%}"
        "{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}{{- '<image>' -}}{%- set media.any = true -%}"
        "{%- elif part['type'] == 'video' -%}{{- '<video>' + action -}}"
        "{%- set media.any = true -%}{%- endif -%}"
        "{%- endfor -%}"
        "{%- set texts = message['content'] | selectattr('type', 'equalto', 'text')"
        " | map(attribute='text') | join('') -%}"
        "{%- if media.any and texts -%}{{- '\\n' -}}{%- endif -%}"
        "{{- texts -}}"
        "{%- endif -%}"
        "{{- '<|im_end|>\\n' -}}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: the output folder, the ids of the added tokens, whether the
    embeddings were untied, the dtype and the weight files."""

    out: Path
    token_ids: dict[str, int]
    untied: bool
    dtype: str
    files: list[str]


def _add_tokens(tokenizer, names: list[str], vocab_rows: int, directory: Path) -> dict[str, int]:
    """Add the placeholders and action tokens (special, never split); their ids must be rows of
    the LM's vocabulary, which Qwen2 pads beyond the tokenizer."""
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    new = [n for n in names if n not in vocab]
    tokenizer.add_tokens(
        [AddedToken(n, special=True, normalized=False) for n in new], special_tokens=True
    )
    ids = {n: int(tokenizer.convert_tokens_to_ids(n)) for n in names}
    largest = max(len(tokenizer), *(i + 1 for i in ids.values()))
    if largest > vocab_rows:
        raise CheckpointError(
            f"{directory}: the tokenizer has {len(tokenizer) - len(new)} tokens and the model "
            f"{vocab_rows} embedding rows: no free rows for {', '.join(new)} (an exact export "
            "needs one free row per added token)"
        )
    return ids


def _state(model, ids: dict[str, int], action_names: list[str]):
    """Our weights under LlavaOnevision's (transformers 4.x) key names; returns the tensors and
    whether the embeddings were untied."""
    import torch

    config = model.config
    inner = model.model
    state: dict[str, torch.Tensor] = {}
    embed = inner.embed_tokens.weight.detach()
    untied = False
    if action_names:
        table = embed.clone()
        vectors = inner.action_supervision.detach().to(table.dtype)
        for row, name in enumerate(action_names):
            table[ids[name]] = vectors[row]
        untied = config.text.tie_word_embeddings
        if untied:
            state["language_model.lm_head.weight"] = embed
        embed = table
    for key, tensor in inner.state_dict().items():
        if key.startswith(("vision_tower.", "mm_projector.")) or key in (
            "image_newline",
            "action_supervision",
        ):
            continue
        state[f"language_model.model.{key}"] = tensor.detach()
    state["language_model.model.embed_tokens.weight"] = embed
    if not config.text.tie_word_embeddings:
        state["language_model.lm_head.weight"] = model.lm_head.weight.detach()
    tower = inner.vision_tower.vision_tower.vision_model.state_dict()
    for key, tensor in tower.items():
        if key.startswith("head."):
            continue
        state[f"vision_tower.vision_model.{key}"] = tensor.detach()
    last = config.vision.num_layers - 1
    prefix = f"encoder.layers.{last}."
    for key, tensor in tower.items():
        if key.startswith(prefix):  # the identity layer read past by vision_feature_layer -2
            extra = f"encoder.layers.{last + 1}.{key[len(prefix) :]}"
            state[f"vision_tower.vision_model.{extra}"] = torch.zeros_like(tensor)
    state["multi_modal_projector.linear_1.weight"] = inner.mm_projector[0].weight.detach()
    state["multi_modal_projector.linear_1.bias"] = inner.mm_projector[0].bias.detach()
    state["multi_modal_projector.linear_2.weight"] = inner.mm_projector[2].weight.detach()
    state["multi_modal_projector.linear_2.bias"] = inner.mm_projector[2].bias.detach()
    state["image_newline"] = inner.image_newline.detach()
    return {k: v.contiguous() for k, v in state.items()}, untied


def _hf_config(config, ids: dict[str, int], untied: bool, dtype):
    """The ``LlavaOnevisionConfig`` of our model config."""
    from transformers import LlavaOnevisionConfig

    from verbnoun.model.architecture import qwen2_config, siglip_config

    tie = config.text.tie_word_embeddings and not untied
    text = qwen2_config(config.text)
    text.tie_word_embeddings = tie
    vision = siglip_config(config.vision)
    vision.num_hidden_layers = config.vision.num_layers + 1
    side = config.vision.image_size
    hf = LlavaOnevisionConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        image_token_index=ids[IMAGE_TOKEN],
        video_token_index=ids[VIDEO_TOKEN],
        projector_hidden_act="gelu",
        vision_feature_select_strategy="full",
        vision_feature_layer=-2,
        vision_aspect_ratio="anyres_max_9",
        image_grid_pinpoints=_pinpoints(side),
        tie_word_embeddings=tie,
        multimodal_projector_bias=True,
    )
    hf.architectures = ["LlavaOnevisionForConditionalGeneration"]
    hf.dtype = dtype
    return hf


def _add_legacy_config_keys(path: Path, config) -> None:
    """Also spell the settings that transformers 5 renamed the 4.x way (``rope_theta``,
    ``torch_dtype``), so that a server on transformers 4.x reads the same rotary base."""
    from verbnoun.fileio import write_json

    data = json.loads(path.read_text(encoding="utf-8"))
    data["text_config"]["rope_theta"] = config.text.rope_theta
    data["torch_dtype"] = data.get("dtype")
    write_json(path, data)


def _pinpoints(side: int) -> list[list[int]]:
    """LLaVA-OneVision's anyres grid (1..6 tiles per side) for a tower of ``side`` pixels."""
    return [[side * i, side * j] for i in range(1, 7) for j in range(1, 7)]


def _processor_files(out: Path, config, tokenizer, action_names: list[str]) -> None:
    """Tokenizer with the chat template, image and video preprocessor configs, processor config.

    The video processor class needs torchvision only to process frames, not to write its
    config, so it is imported from its module; ``processor_config.json`` holds the processor's
    own settings (what ``LlavaOnevisionProcessor.save_pretrained`` writes besides the
    sub-processors), written directly because the processor object cannot be built without
    torchvision."""
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )
    from transformers.models.llava_onevision.video_processing_llava_onevision import (
        LlavaOnevisionVideoProcessor,
    )

    from verbnoun.fileio import write_json
    from verbnoun.model.processor import MEAN, STD

    side = config.vision.image_size
    size = {"height": side, "width": side}
    common = {"size": size, "image_mean": [MEAN] * 3, "image_std": [STD] * 3}
    template = chat_template(action_names)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(str(out))
    image = LlavaOnevisionImageProcessorPil(image_grid_pinpoints=_pinpoints(side), **common)
    image.save_pretrained(str(out))
    LlavaOnevisionVideoProcessor(**common).save_pretrained(str(out))
    write_json(
        out / "processor_config.json",
        {
            "processor_class": "LlavaOnevisionProcessor",
            "image_token": IMAGE_TOKEN,
            "video_token": VIDEO_TOKEN,
            "num_image_tokens": config.vision.grid**2,
            "vision_feature_select_strategy": "full",
            "vision_aspect_ratio": "anyres_max_9",
        },
    )
    (out / "chat_template.jinja").write_text(template, encoding="utf-8")


def _stored_dtype(directory: Path):
    """The floating dtype of the checkpoint's weights (bf16 for the released ones)."""
    from verbnoun.model.checkpoint import DTYPES, read_header, weight_files

    header, _ = read_header(weight_files(directory)[0])
    for entry in header.values():
        dtype = DTYPES.get(entry.get("dtype"))
        if dtype is not None and dtype.is_floating_point:
            return dtype
    raise CheckpointError(f"{directory}: no floating-point weights")


def weight_dtype(checkpoint: Path, dtype: str):
    """The torch dtype an export writes: ``auto`` keeps the checkpoint's own, else ``bfloat16``,
    ``float16`` or ``float32``."""
    import torch

    if dtype == "auto":
        return _stored_dtype(checkpoint)
    if dtype in ("bfloat16", "float16", "float32"):
        return getattr(torch, dtype)
    raise CheckpointError(f"dtype {dtype!r} (auto, bfloat16, float16 or float32)")


def export_hf(
    checkpoint: str | Path,
    out: str | Path,
    *,
    dtype: str = "auto",
    shard_bytes: int = SHARD_BYTES,
) -> ExportSummary:
    """Write ``checkpoint`` (released LLaVA-NeXT layout or ours) to ``out`` in LlavaOnevision's
    format: ``config.json``, ``generation_config.json``, safetensors weights (sharded with an
    index past ``shard_bytes``), tokenizer, chat template and processor configs.

    ``dtype``: ``auto`` (the checkpoint's own), ``bfloat16``, ``float16`` or ``float32``.
    Raises :class:`CheckpointError` for a variant that would not reproduce our logits."""
    from transformers import GenerationConfig

    from verbnoun import __version__
    from verbnoun.fileio import atomic_folder, check_replaceable, write_json
    from verbnoun.model.checkpoint import end_token_ids, load_model, read_config, write_weights
    from verbnoun.model.processor import Processor
    from verbnoun.model.tokenization import load_tokenizer

    checkpoint, out = Path(checkpoint), Path(out)
    if out.resolve() == checkpoint.resolve():
        raise CheckpointError(f"{out}: the output folder is the checkpoint itself")
    check_replaceable(out, marker=EXPORT_INFO_FILE)  # before any work: never someone's folder
    config = read_config(checkpoint)
    check_exportable(config)
    torch_dtype = weight_dtype(checkpoint, dtype)
    tokenizer = load_tokenizer(checkpoint)
    action_names = action_token_names(config.action_tokens) if config.action_tokens else []
    ids = _add_tokens(
        tokenizer, [IMAGE_TOKEN, VIDEO_TOKEN, *action_names], config.text.vocab_size, checkpoint
    )
    # Everything is written to a folder beside --out, moved into place only when complete.
    with atomic_folder(out, marker=EXPORT_INFO_FILE) as staging:
        model = load_model(checkpoint, dtype=torch_dtype)
        state, untied = _state(model, ids, action_names)
        total = sum(t.numel() * t.element_size() for t in state.values())
        files = write_weights(state, staging, shards=max(1, math.ceil(total / shard_bytes)))
        dtype_name = str(torch_dtype).removeprefix("torch.")
        _hf_config(config, ids, untied, dtype_name).save_pretrained(str(staging))
        _add_legacy_config_keys(staging / "config.json", config)
        # the end tokens our generation stops on (the checkpoint's own, else <|im_end|>)
        ends = Processor(tokenizer, config.vision.image_size, end_token_ids(checkpoint, config))
        end_ids = sorted(ends.eos_ids)
        endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        usable = isinstance(endoftext, int) and endoftext != tokenizer.unk_token_id
        pad = int(endoftext) if usable else end_ids[-1]
        GenerationConfig(eos_token_id=end_ids, pad_token_id=pad, do_sample=False).save_pretrained(
            str(staging)
        )
        _processor_files(staging, config, tokenizer, action_names)
        summary = ExportSummary(out, ids, untied, dtype_name, [f.name for f in files])
        info: dict[str, Any] = {
            "format": "llavaction-export-hf",
            "llavaction_version": __version__,
            "source": str(checkpoint),
            "architecture": "LlavaOnevisionForConditionalGeneration",
            "exact": True,
            "newline_position": config.newline_position,
            "pool_mode": config.pool_mode,
            "action_tokens": action_names,
            "token_ids": ids,
            "untied_embeddings": untied,
            "dtype": dtype_name,
            "dropped": ["verb_head", "noun_head", "action_head"] if config.action_types else [],
        }
        write_json(staging / EXPORT_INFO_FILE, info)
    return summary


class ExportDtype(StrEnum):
    auto = "auto"
    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


def export_hf_command(
    checkpoint: Annotated[
        Path, typer.Option(help="Checkpoint directory (released LLaVA-NeXT layout or ours).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder (transformers / vLLM layout).")],
    dtype: Annotated[
        ExportDtype, typer.Option(help="Weight dtype; auto keeps the checkpoint's.")
    ] = ExportDtype.auto,
    max_shard_gb: Annotated[
        float, typer.Option(min=0.001, help="Largest safetensors shard, GiB.")
    ] = 5.0,
) -> None:
    """Export a checkpoint to transformers' LlavaOnevisionForConditionalGeneration format
    (exact for one_token newlines and bilinear stride-2 pooling, action token on or off)."""
    summary = export_hf(checkpoint, out, dtype=dtype.value, shard_bytes=int(max_shard_gb * 1024**3))
    added = ", ".join(f"{name}={i}" for name, i in summary.token_ids.items())
    untied = " (input and output embeddings untied)" if summary.untied else ""
    typer.echo(
        f"wrote {summary.out} ({summary.dtype}, {len(summary.files)} weight file(s)); "
        f"tokens {added}{untied}"
    )
