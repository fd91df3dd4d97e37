"""Checkpoint IO: released LLaVA-NeXT directories and our own format, safetensors only.

A checkpoint directory holds ``config.json`` (a released one with Qwen2 + ``mm_*`` keys, or ours
with ``"format": "llavaction"``), the weights as ``model.safetensors`` or as shards listed in
``model.safetensors.index.json``, and the tokenizer files. Weight names are the released ones in
both formats (our module tree produces them).

Loading streams: the model is built on the ``meta`` device (no memory, no initialisation), each
parameter is then allocated once in its final dtype and filled straight from the file with
``readinto`` (safetensors is a JSON header plus raw little-endian tensors), one tensor at a time.
Peak memory is the weights plus the largest single tensor when a dtype conversion is needed, and
no pages of a memory map pile up. Nothing is unpickled and nothing is fetched from a hub.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import torch
from torch import nn

from verbnoun.errors import CheckpointError, CheckpointFileError, VerbnounError
from verbnoun.fileio import atomic_write_bytes, os_problem, read_json, require
from verbnoun.model.architecture import LlavactionForCausalLM
from verbnoun.model.config import LlavactionConfig, tower_config

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "U8": torch.uint8,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
# Keys some LLaVA-NeXT checkpoints carry that the model does not use.
IGNORED_KEYS = re.compile(r"(\.vision_model\.head\.|rotary_emb\.inv_freq$)")


def _lora_hint(directory: str | Path) -> str:
    """What to do when ``directory`` is a LoRA run, checkpoint or adapter rather than a model
    (:mod:`verbnoun.train.lora` writes ``adapter.json`` into each checkpoint's ``adapter/``;
    looked up here by name, since the trainer's modules import this one)."""
    path = Path(directory)
    found = [*path.glob("adapter.json"), *path.glob("adapter/adapter.json"),
             *sorted(path.glob("checkpoints/step-*/adapter/adapter.json"))]  # fmt: skip
    if not found:
        return ""
    try:
        base = read_json(found[-1], expect=dict).get("base", {}).get("path", "BASE")
    except (VerbnounError, OSError, ValueError, AttributeError):
        base = "BASE"
    return (
        f": it holds a LoRA adapter; merge it into its base first (verbnoun export merged "
        f"--checkpoint {base} --adapter {directory} --out DIR)"
    )


def read_config(directory: str | Path) -> LlavactionConfig:
    """The model config of a checkpoint directory (released or ours)."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory}: no config.json (not a checkpoint directory)"
                              f"{_lora_hint(directory)}")  # fmt: skip
    data = read_json(path, expect=dict, error=CheckpointFileError)
    try:
        if data.get("format") != "llavaction" and "vision_config" not in data:
            tower = data.get("mm_vision_tower")
            shape = tower_config(str(tower), directory) if tower else None
            if shape is not None:
                data = {**data, "vision_config": shape}
        config = LlavactionConfig.from_dict(data)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path}: bad setting: {error}") from None
    _check_numbers(config, path)
    return config


def _check_numbers(config: LlavactionConfig, path: Path) -> None:
    """Refuse a shape setting of the wrong type (``"two"`` layers, zero heads) before a model
    is built from it."""
    import dataclasses
    import math

    for part in ("text", "vision"):
        settings = getattr(config, part)
        for setting in dataclasses.fields(settings):
            value, default = getattr(settings, setting.name), setting.default
            if value is None and "None" in str(setting.type):
                continue
            if isinstance(default, bool):
                ok, wanted = isinstance(value, bool), "true or false"
            elif isinstance(default, int):  # sizes are positive; token ids may be 0
                least = 0 if setting.name.endswith("_id") else 1
                ok = type(value) is int and value >= least
                wanted = "a positive integer" if least else "an integer >= 0"
            elif isinstance(default, float):
                ok, wanted = type(value) in (int, float) and math.isfinite(value), "a number"
            elif isinstance(default, str):
                ok, wanted = isinstance(value, str), "text"
            else:
                continue
            if not ok:
                key = setting.name if part == "text" else f"vision.{setting.name}"
                raise CheckpointFileError(path, f"expected {wanted}, got {value!r}", key=key)
    text, vision = config.text, config.vision
    for width, heads, key in (
        (text.hidden_size, text.num_attention_heads, "num_attention_heads"),
        (vision.hidden_size, vision.num_heads, "vision.num_heads"),
    ):
        if width % heads:
            raise CheckpointFileError(
                path, f"{heads} heads do not divide the width {width}", key=key
            )
    if text.num_attention_heads % text.num_key_value_heads:
        raise CheckpointFileError(
            path,
            f"{text.num_key_value_heads} key/value heads do not divide "
            f"{text.num_attention_heads} attention heads",
            key="num_key_value_heads",
        )


def weight_files(directory: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint, from its index when sharded."""
    directory = Path(directory)
    index = directory / INDEX_FILE
    if index.is_file():
        weight_map = require(
            read_json(index, error=CheckpointFileError),
            "weight_map",
            dict,
            index,
            error=CheckpointFileError,
        )
        for key, name in weight_map.items():
            if not isinstance(name, str) or not name or Path(name).name != name:
                raise CheckpointFileError(
                    index, f"not a file name in this folder: {name!r}", key=f"weight_map.{key}"
                )
        names = sorted(set(weight_map.values()))
        if not names:
            raise CheckpointFileError(index, "lists no weights", key="weight_map")
        files = [directory / name for name in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{index}: lists missing shard(s) {', '.join(missing)}")
        return files
    if (directory / SINGLE_FILE).is_file():
        return [directory / SINGLE_FILE]
    raise CheckpointError(f"{directory}: no {SINGLE_FILE} and no {INDEX_FILE}")


def read_header(path: Path) -> tuple[dict, int]:
    """The JSON header of a safetensors file and the offset where its data begins."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise CheckpointFileError(path, os_problem(error)) from None
    with handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise CheckpointError(f"{path}: truncated safetensors file")
        (size,) = struct.unpack("<Q", raw)
        file_size = os.fstat(handle.fileno()).st_size
        if size > 100_000_000 or 8 + size > file_size:
            raise CheckpointError(
                f"{path}: implausible safetensors header ({size} bytes in a {file_size}-byte file)"
            )
        try:
            header = json.loads(handle.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise CheckpointError(f"{path}: unreadable safetensors header") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    for key, entry in header.items():
        _check_entry(path, key, entry, file_size - 8 - size)
    return header, 8 + size


def _check_entry(path: Path, key: str, entry: object, data_size: int) -> None:
    """Refuse a header entry that is not ``{dtype, shape, data_offsets}`` inside the file."""
    if not isinstance(entry, dict):
        raise CheckpointFileError(path, "header entry is not an object", key=key)
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(entry.get("dtype"), str):
        raise CheckpointFileError(path, "header entry has no dtype", key=key)
    if not isinstance(shape, list) or not all(_natural(n) for n in shape):
        raise CheckpointFileError(path, f"bad shape {shape!r}", key=key)
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_natural(n) for n in offsets)
        or offsets[0] > offsets[1]
    ):
        raise CheckpointFileError(path, f"bad data_offsets {offsets!r}", key=key)
    if offsets[1] > data_size:
        raise CheckpointFileError(
            path, f"tensor ends at byte {offsets[1]}, after the file's end (truncated?)", key=key
        )


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _build_empty(config: LlavactionConfig, device: torch.device, dtype: torch.dtype):
    """The model with uninitialised parameters in their final place, and fresh buffers."""
    with torch.device("meta"):
        model = LlavactionForCausalLM(config)
    model.to(dtype=dtype)
    model.to_empty(device=device)
    # Non-persistent buffers are computed at construction: recompute them for real.
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

    with torch.device(device):
        model.model.rotary_emb = Qwen2RotaryEmbedding(config=model.model.config)
        embeddings = model.model.vision_tower.vision_tower.vision_model.embeddings
        embeddings.position_ids = nn.Buffer(
            torch.arange(embeddings.num_positions).expand((1, -1)), persistent=False
        )
    model.tie_weights()
    return model


def _fill(target: torch.Tensor, handle, entry: dict, base: int, path: Path, key: str) -> None:
    """Read one tensor's bytes from an open file into ``target`` (converting dtype if needed)."""
    source = DTYPES.get(entry.get("dtype"))
    if source is None:
        raise CheckpointError(f"{path} [{key}]: unsupported dtype {entry.get('dtype')!r}")
    if list(entry["shape"]) != list(target.shape):
        raise CheckpointError(
            f"{path} [{key}]: shape {entry['shape']}, the model expects {list(target.shape)}"
        )
    start, stop = entry["data_offsets"]
    nbytes = stop - start
    if nbytes != target.numel() * torch.empty((), dtype=source).element_size():
        raise CheckpointError(f"{path} [{key}]: {nbytes} bytes do not match its shape")
    if nbytes == 0:
        return
    handle.seek(base + start)
    direct = target.device.type == "cpu" and target.dtype == source and target.is_contiguous()
    buffer = target.detach() if direct else torch.empty(target.shape, dtype=source)
    view = buffer.view(-1).view(torch.uint8).numpy()
    if handle.readinto(memoryview(view)) != nbytes:
        raise CheckpointError(f"{path} [{key}]: file ends inside the tensor")
    if not direct:
        target.detach().copy_(buffer)


def load_model(
    directory: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LlavactionForCausalLM:
    """Load a checkpoint directory (released LLaVA-NeXT layout or ours), streaming tensor by tensor.

    Missing weights are an error, except ``lm_head.weight`` when embeddings are tied."""
    directory = Path(directory)
    config = read_config(directory)
    files = weight_files(directory)
    model = _build_empty(config, torch.device(device), dtype)
    params = dict(model.named_parameters(remove_duplicate=False))
    filled: set[str] = set()
    unexpected: list[str] = []
    for path in files:
        header, base = read_header(path)
        with path.open("rb", buffering=0) as handle:
            for key, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
                if key not in params:
                    if not IGNORED_KEYS.search(key) and not _dropped_vision_layer(key, config):
                        unexpected.append(key)
                    continue
                with torch.no_grad():
                    _fill(params[key], handle, entry, base, path, key)
                filled.add(key)
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (" ..." if len(unexpected) > 5 else "")
        raise CheckpointError(f"{directory}: {len(unexpected)} unknown weight(s): {shown}")
    if config.text.tie_word_embeddings and "model.embed_tokens.weight" in filled:
        filled.add("lm_head.weight")
    missing = sorted(set(params) - filled)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise CheckpointError(f"{directory}: {len(missing)} weight(s) missing: {shown}")
    model.eval()
    return model


def _dropped_vision_layer(key: str, config: LlavactionConfig) -> bool:
    """A vision encoder layer beyond those kept (the original deletes the last one)."""
    match = re.search(r"\.vision_model\.encoder\.layers\.(\d+)\.", key)
    return bool(match) and int(match.group(1)) >= config.vision.num_layers


def _unique_state(model: nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The state dict without tied duplicates (``lm_head.weight`` when tied), contiguous."""
    state: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, tensor in model.state_dict().items():
        if id(tensor) in seen or tensor.data_ptr() in seen:
            continue
        seen.update((id(tensor), tensor.data_ptr()))
        tensor = tensor.detach().to("cpu")
        state[key] = (tensor.to(dtype) if dtype is not None else tensor).contiguous()
    return state


def write_weights(
    state: dict[str, torch.Tensor], directory: Path, *, shards: int = 1
) -> list[Path]:
    """Write tensors as ``model.safetensors`` or as ``shards`` files plus the index."""
    from safetensors.torch import save_file

    keys = list(state)
    if shards <= 1:
        save_file(state, str(directory / SINGLE_FILE), metadata={"format": "pt"})
        return [directory / SINGLE_FILE]
    total = sum(t.numel() * t.element_size() for t in state.values())
    groups: list[list[str]] = [[] for _ in range(shards)]
    running = 0
    for key in keys:
        size = state[key].numel() * state[key].element_size()
        groups[min(shards - 1, running * shards // max(total, 1))].append(key)
        running += size
    groups = [g for g in groups if g]
    names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    weight_map = {}
    for name, group in zip(names, groups, strict=True):
        save_file({k: state[k] for k in group}, str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    atomic_write_bytes(directory / INDEX_FILE, json.dumps(index, indent=2).encode("utf-8"))
    return [directory / name for name in names]


def save_checkpoint(
    model: LlavactionForCausalLM,
    directory: str | Path,
    tokenizer=None,
    *,
    shards: int = 1,
    dtype: torch.dtype | None = None,
) -> Path:
    """Save in our format: ``config.json`` (the dataclass), safetensors weights, tokenizer."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = json.dumps(model.config.to_dict(), indent=2, sort_keys=True)
    atomic_write_bytes(directory / "config.json", config.encode("utf-8"))
    write_weights(_unique_state(model, dtype), directory, shards=shards)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
    return directory


def write_tiny_released_checkpoint(
    directory: str | Path,
    config: LlavactionConfig | None = None,
    *,
    tokenizer=None,
    model: LlavactionForCausalLM | None = None,
    shards: int = 2,
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
) -> LlavactionForCausalLM:
    """Write a checkpoint in the released LLaVA-NeXT layout (same key names and config keys,
    sharded with an index, bf16 like the release); returns the model whose weights it holds."""
    from verbnoun.model.config import tiny_config

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if model is None:
        torch.manual_seed(seed)
        model = LlavactionForCausalLM(config or tiny_config())
    config = model.config
    released = json.dumps(config.to_released(), indent=2)
    atomic_write_bytes(directory / "config.json", released.encode("utf-8"))
    write_weights(_unique_state(model, dtype), directory, shards=shards)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
    return model


def with_action_heads(model, tokens: int, types: list[int]):
    """A base checkpoint (LLaVA-Video, LLaVA-OneVision) turned into LLaVAction: the action
    token(s) and verb/noun/action heads added, initialised as SPEC 6 says. A checkpoint that has
    them already must have the same sizes."""
    import dataclasses

    from verbnoun.errors import VerbnounError

    wanted = tuple(types)
    if model.config.action_types is not None:
        if model.config.action_types != wanted:
            raise VerbnounError(
                f"model.action_types {list(wanted)}: the checkpoint's heads are "
                f"{list(model.config.action_types)}"
            )
        return model
    config = dataclasses.replace(model.config, action_tokens=tokens or 1, action_types=wanted)
    new = LlavactionForCausalLM(config).to(model.dtype)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    added = {
        "model.action_supervision",
        "verb_head.weight",
        "noun_head.weight",
        "action_head.weight",
    }
    if unexpected or set(missing) - added - {"lm_head.weight"}:
        raise VerbnounError(f"cannot add action heads: missing {missing}, unexpected {unexpected}")
    return new


def load_pretrained(
    directory: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
):
    """Model and :class:`~verbnoun.model.processor.Processor` of a checkpoint directory:
    bf16 on a GPU and fp32 on a CPU unless ``dtype`` says otherwise."""
    from verbnoun.model.inference import default_device, default_dtype
    from verbnoun.model.processor import Processor
    from verbnoun.model.tokenization import load_tokenizer

    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    model = load_model(directory, device=device, dtype=dtype)
    eos = end_token_ids(directory, model.config)
    processor = Processor(load_tokenizer(directory), model.config.vision.image_size, eos)
    return model, processor


def end_token_ids(directory: str | Path, config: LlavactionConfig) -> set[int] | None:
    """The ids that end generation, as the original's ``generate`` takes them: the
    ``eos_token_id`` of ``generation_config.json`` when the directory has one, else that of
    ``config.json``; ``None`` when neither names one (the processor then uses ``<|im_end|>``)."""
    path = Path(directory) / "generation_config.json"
    value = config.text.eos_token_id
    if path.is_file():
        try:
            generation = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path}: invalid JSON: {error}") from None
        if isinstance(generation, dict) and generation.get("eos_token_id") is not None:
            value = generation["eos_token_id"]
    if value is None:
        return None
    ids = value if isinstance(value, list) else [value]
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise CheckpointError(f"{directory}: eos_token_id {value!r} is not a token id or a list")
    return set(ids)
