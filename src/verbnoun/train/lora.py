"""LoRA adapters with ``peft``: train a released model's language model (and, if asked, its vision
tower) through low-rank adapters, save the adapters beside the run, merge them into a full model.

Which parameters train (``lora`` set in the training config, see
:class:`~verbnoun.train.config.LoraSettings`):

* the language model's own weights (embeddings, decoder layers, norm, output head) never train;
  an adapter ``B A`` (rank ``r``, scaled by ``alpha / r``) sits on every linear layer of every
  decoder layer whose last name is in ``lora.target_modules``. ``model.tunable_parts`` must list
  ``language_model``;
* the vision tower: with ``lora.vision`` its layers get adapters too (its weights frozen), without
  it the tower trains in full or not at all as ``model.tunable_parts`` says;
* everything else (the projector, ``image_newline``, the action token, the verb / noun / action
  heads) trains in full when ``model.tunable_parts`` lists the part that holds it
  (:mod:`verbnoun.train.parts`).

An adapter folder (``run_dir/checkpoints/step-N/adapter/``) holds:

* ``adapter_config.json`` and ``adapter_model.safetensors``: peft's own adapter format (keys
  ``base_model.model.<module>.lora_A.weight``), so peft can read them;
* ``parameters.safetensors``: the parameters trained in full, under the released names, plus any
  the base checkpoint does not have (verb / noun / action heads added to a base without them);
* ``adapter.json``: the base it was made for (its path and a digest of its ``config.json``, its
  safetensors headers and bytes sampled from every tensor), the LoRA settings, the parts that
  trained and the model config, so that the adapter is refused on any other base, naming the one
  it was made for.

:func:`load_adapted` puts an adapter on its base (unmerged: for evaluation and to check a merge);
:func:`merge` folds every adapter into its linear layer (peft's ``merge``) and gives back the
plain model, which :func:`export_merged` writes in the released layout (``config.json``, sharded
safetensors with an index, the base's tokenizer), loadable wherever a release is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from verbnoun.errors import CheckpointError, VerbnounError
from verbnoun.fileio import atomic_folder, check_replaceable, read_json, write_json
from verbnoun.train.config import ConfigError, LoraSettings
from verbnoun.train.parts import parts_of

ADAPTER_DIR = "adapter"
INFO_FILE = "adapter.json"
PEFT_CONFIG_FILE = "adapter_config.json"
LORA_FILE = "adapter_model.safetensors"
FULL_FILE = "parameters.safetensors"
MERGED_INFO_FILE = "llavaction_merged.json"
FORMAT = "verbnoun-lora"
PEFT_PREFIX = "base_model.model."
ADAPTER = "default"  # peft's adapter name
# the decoder layers of each part that can carry adapters, as module-name prefixes
LM_LAYERS = r"model\.layers\.\d+\.\w+\."
TOWER_LAYERS = r"model\.vision_tower\.vision_tower\.vision_model\.encoder\.layers\.\d+\.\w+\."
LM_OWN = ("model.layers.", "model.embed_tokens.", "model.norm.", "lm_head.")
SAMPLE_BYTES = 64


class AdapterError(CheckpointError):
    """An adapter folder that cannot be used (damaged, or made for another base)."""


# ---- the base's identity ------------------------------------------------------------------------


def base_identity(directory: str | Path) -> dict:
    """The base checkpoint's path and digest: SHA-256 of its ``config.json``, the headers of its
    safetensors files and ``SAMPLE_BYTES`` bytes at the start, middle and end of every tensor
    (shapes alone do not tell a fine-tuned model from its base; reading 15 GB would take long)."""
    from verbnoun.model.checkpoint import read_header, weight_files

    directory = Path(directory)
    config = directory / "config.json"
    if not config.is_file():
        raise CheckpointError(f"{directory}: no config.json (not a checkpoint directory)")
    digest = hashlib.sha256(config.read_bytes())
    for path in weight_files(directory):
        header, base = read_header(path)
        with path.open("rb") as handle:
            digest.update(path.name.encode("utf-8"))
            digest.update(handle.read(base))
            for key in sorted(header):
                start, stop = header[key]["data_offsets"]
                middle = max(start, (start + stop) // 2 - SAMPLE_BYTES // 2)
                for offset in sorted({start, middle, max(start, stop - SAMPLE_BYTES)}):
                    handle.seek(base + offset)
                    digest.update(handle.read(min(SAMPLE_BYTES, stop - offset)))
    return {"path": str(directory.resolve()), "digest": f"sha256:{digest.hexdigest()}"}


# ---- putting adapters on a model ----------------------------------------------------------------


def target_pattern(model: nn.Module, settings: LoraSettings) -> str:
    """The regular expression (peft matches it against whole module names) of the linear layers
    that get adapters; a target name that matches no linear layer of an adapted part is refused,
    naming some that exist."""
    scopes = [LM_LAYERS] + ([TOWER_LAYERS] if settings.vision else [])
    found: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and any(re.match(s, name) for s in scopes):
            found.setdefault(name.rpartition(".")[2], []).append(name)
    for target in settings.target_modules:
        if target not in found:
            where = "language model or vision tower" if settings.vision else "language model"
            raise ConfigError(
                f"lora.target_modules: {target!r} is not a linear layer of the {where} "
                f"(its layers have: {', '.join(sorted(found))})"
            )
    return pattern_of(settings)


def pattern_of(settings: LoraSettings) -> str:
    """The regular expression of the adapted layers' full names (checked by
    :func:`target_pattern`)."""
    scopes = [LM_LAYERS] + ([TOWER_LAYERS] if settings.vision else [])
    names = "|".join(re.escape(t) for t in dict.fromkeys(settings.target_modules))
    return f"({'|'.join(scopes)})({names})"


def peft_config(settings: LoraSettings, pattern: str):
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=pattern,
        bias="none",
    )


def attach(
    model: nn.Module, settings: LoraSettings, parts: list[str], *, seed: int = 0
) -> nn.Module:
    """Put fresh adapters on ``model`` (in place; the LoRA ``A`` matrices drawn from ``seed``,
    ``B`` zero, so the model's outputs are unchanged) and set which parameters train. Call after
    :func:`~verbnoun.train.parts.freeze`: a parameter frozen there stays frozen."""
    from peft import inject_adapter_in_model

    if "language_model" not in parts:
        raise ConfigError(
            f"lora: adapts the language model, but model.tunable_parts {parts} does not train it"
        )
    if settings.vision and "vision_tower" not in parts:
        raise ConfigError(
            f"lora.vision: true, but model.tunable_parts {parts} does not train the vision tower"
        )
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    pattern = target_pattern(model, settings)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inject_adapter_in_model(peft_config(settings, pattern), model, adapter_name=ADAPTER)
    for name, param in model.named_parameters():
        if ".lora_" in name:
            param.requires_grad_(True)
        else:
            param.requires_grad_(trains_fully(name, trainable, settings))
    return model


def trains_fully(name: str, trainable: set[str], settings: LoraSettings) -> bool:
    """Whether the (non-adapter) parameter ``name`` trains in full beside the adapters."""
    if name not in trainable or name.startswith(LM_OWN):
        return False
    return not (settings.vision and "vision_tower" in parts_of(name))


def is_adapted(model: nn.Module) -> bool:
    return any(".lora_" in name for name, _ in model.named_parameters())


def _released_name(name: str) -> str:
    """A parameter's name without peft's wrapper level (``q_proj.base_layer.weight``)."""
    return name.replace(".base_layer.", ".")


# ---- saving and loading adapters ----------------------------------------------------------------


@dataclass
class AdapterInfo:
    """What ``adapter.json`` records."""

    directory: Path
    base: dict
    lora: LoraSettings
    tunable_parts: list[str]
    model_config: dict


def save_adapter(
    model: nn.Module,
    directory: str | Path,
    *,
    settings: LoraSettings,
    parts: list[str],
    base: dict,
    base_keys: set[str],
) -> Path:
    """Write ``model``'s adapters and its fully trained parameters to ``directory`` (created;
    the caller makes the checkpoint folder appear atomically). ``base_keys``: the names of the
    base checkpoint's weights (parameters missing there are saved whatever trains)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    from verbnoun import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lora = get_peft_model_state_dict(model, adapter_name=ADAPTER)
    lora = {PEFT_PREFIX + k: v.detach().to("cpu").contiguous() for k, v in lora.items()}
    save_file(lora, str(directory / LORA_FILE), metadata={"format": "pt"})
    config = peft_config(settings, pattern_of(settings))
    config.base_model_name_or_path = base["path"]
    config.save_pretrained(str(directory))
    full = {
        name: param.detach().to("cpu").contiguous()
        for name, param in model.named_parameters()
        if ".lora_" not in name and (param.requires_grad or _released_name(name) not in base_keys)
    }
    full = {_released_name(k): v for k, v in full.items()}
    tied = getattr(model.config.text, "tie_word_embeddings", False)
    if tied:
        full.pop("lm_head.weight", None)
    save_file(full, str(directory / FULL_FILE), metadata={"format": "pt"})
    write_json(
        directory / INFO_FILE,
        {
            "format": FORMAT,
            "verbnoun_version": __version__,
            "base": base,
            "lora": dataclasses.asdict(settings),
            "tunable_parts": list(parts),
            "model_config": model.config.to_dict(),
            "files": {"lora": LORA_FILE, "parameters": FULL_FILE, "peft_config": PEFT_CONFIG_FILE},
        },
    )
    return directory


def find_adapter(path: str | Path) -> Path:
    """The adapter folder that ``path`` names: an adapter folder, a LoRA run's checkpoint
    (``step-N``) or a LoRA run folder (its latest checkpoint)."""
    from verbnoun.train import state

    path = Path(path)
    if (path / INFO_FILE).is_file():
        return path
    if (path / ADAPTER_DIR / INFO_FILE).is_file():
        return path / ADAPTER_DIR
    if not path.exists():
        raise AdapterError(f"{path}: adapter not found")
    latest = state.latest_checkpoint(path) if (path / "checkpoints").is_dir() else None
    if latest is not None and (latest / ADAPTER_DIR / INFO_FILE).is_file():
        return latest / ADAPTER_DIR
    raise AdapterError(
        f"{path}: no {INFO_FILE} here, in {ADAPTER_DIR}/ or in the latest checkpoint "
        "(not a LoRA adapter, a LoRA checkpoint or a LoRA run folder)"
    )


def read_adapter(path: str | Path) -> AdapterInfo:
    """The adapter folder's ``adapter.json``, checked; ``path`` as :func:`find_adapter` takes it."""
    from verbnoun.errors import CheckpointFileError
    from verbnoun.train.config import _build

    directory = find_adapter(path)
    info_path = directory / INFO_FILE
    info = read_json(info_path, error=CheckpointFileError)
    if info.get("format") != FORMAT:
        raise CheckpointFileError(info_path, f"format {info.get('format')!r}, not {FORMAT}")
    for key, kind in (("base", dict), ("lora", dict), ("tunable_parts", list),
                      ("model_config", dict)):  # fmt: skip
        if not isinstance(info.get(key), kind):
            raise CheckpointFileError(info_path, f"expected {kind.__name__}", key=key)
    base = info["base"]
    if not isinstance(base.get("digest"), str) or not isinstance(base.get("path"), str):
        raise CheckpointFileError(info_path, "expected path and digest", key="base")
    try:
        lora = _build(LoraSettings, info["lora"], "lora.")
    except ConfigError as error:
        raise CheckpointFileError(info_path, str(error)) from None
    for name in (LORA_FILE, FULL_FILE):
        if not (directory / name).is_file():
            raise AdapterError(f"{directory}: {name} missing (incomplete adapter)")
    return AdapterInfo(directory, base, lora, list(info["tunable_parts"]), info["model_config"])


def check_base(info: AdapterInfo, base: dict) -> None:
    """Refuse an adapter made for another base, naming the base it was made for."""
    if info.base["digest"] != base["digest"]:
        raise AdapterError(
            f"{info.directory}: made for the base {info.base['path']} "
            f"({info.base['digest'][:19]}...), not for {base['path']} "
            f"({base['digest'][:19]}...): use the base it was made for"
        )


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from verbnoun.model.checkpoint import read_header

    read_header(path)  # refuses a damaged header with one line before safetensors reads it
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise AdapterError(
            f"{path}: cannot be read ({' '.join(str(error).split())[:160]})"
        ) from None


def load_adapter_weights(model: nn.Module, info: AdapterInfo) -> None:
    """Fill ``model``'s adapters (put on by :func:`attach` with ``info.lora``) and the
    parameters the adapter trained in full from ``info.directory``."""
    from peft import set_peft_model_state_dict

    directory = info.directory
    lora = _read_tensors(directory / LORA_FILE)
    stripped = {k.removeprefix(PEFT_PREFIX): v for k, v in lora.items()}
    params = dict(model.named_parameters())
    expected = {re.sub(rf"\.{ADAPTER}\.weight$", ".weight", n) for n in params if ".lora_" in n}
    if set(stripped) != expected:
        odd = sorted(set(stripped) ^ expected)[:3]
        raise AdapterError(f"{directory / LORA_FILE}: holds other adapters than expected: {odd}")
    for key, tensor in stripped.items():
        wanted = params[key.replace(".weight", f".{ADAPTER}.weight")].shape
        if tensor.shape != wanted:
            raise AdapterError(
                f"{directory / LORA_FILE} [{key}]: shape {list(tensor.shape)}, expected "
                f"{list(wanted)}"
            )
    set_peft_model_state_dict(model, stripped, adapter_name=ADAPTER)
    full = _read_tensors(directory / FULL_FILE)
    by_name = {_released_name(n): p for n, p in params.items()}
    with torch.no_grad():
        for key, tensor in full.items():
            target = by_name.get(key)
            if target is None or target.shape != tensor.shape:
                raise AdapterError(f"{directory / FULL_FILE} [{key}]: not a weight of this model")
            target.copy_(tensor)


def base_keys(directory: str | Path) -> set[str]:
    """The weight names a checkpoint directory holds."""
    from verbnoun.model.checkpoint import read_header, weight_files

    keys: set[str] = set()
    for path in weight_files(directory):
        keys.update(read_header(path)[0])
    return keys


def shaped_like(model: nn.Module, info: AdapterInfo) -> nn.Module:
    """The base model with the module tree the adapter was trained on: the verb / noun / action
    heads added when the base has none, the adapter run's config (e.g. its auxiliary weight)."""
    from verbnoun.model.checkpoint import with_action_heads
    from verbnoun.model.config import LlavactionConfig

    try:
        config = LlavactionConfig.from_dict(info.model_config)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise AdapterError(f"{info.directory / INFO_FILE}: model_config: {error}") from None
    if config.action_types is not None:
        model = with_action_heads(model, config.action_tokens, list(config.action_types))
    model.config = dataclasses.replace(model.config, aux_loss_weight=config.aux_loss_weight)
    return model


def load_adapted(
    base: str | Path,
    adapter: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """The base checkpoint with the adapter on it, unmerged, in eval mode. An adapter made for
    another base is refused, naming the base it was made for."""
    from verbnoun.model.checkpoint import load_model

    info = read_adapter(adapter)
    check_base(info, base_identity(base))
    model = shaped_like(load_model(base, dtype=torch.float32), info)
    # every parameter frozen, adapters on the same layers as in training
    for param in model.parameters():
        param.requires_grad_(False)
    attach(model, dataclasses.replace(info.lora, dropout=0.0), info.tunable_parts)
    load_adapter_weights(model, info)
    model.to(device=device, dtype=dtype)
    model.requires_grad_(False)
    model.eval()
    return model


def merge(model: nn.Module) -> nn.Module:
    """Fold every adapter into its layer (peft's ``merge``: ``W + alpha / r * B A``) and put the
    plain layer back: the model is again the released module tree."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in layers:
        layer.merge(safe_merge=True)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, layer.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return model


# ---- export -------------------------------------------------------------------------------------


@dataclass
class MergedSummary:
    out: Path
    dtype: str
    files: list[str]
    base: dict


def export_merged(
    base: str | Path,
    adapter: str | Path,
    out: str | Path,
    *,
    dtype: str = "auto",
    shards: int = 2,
) -> MergedSummary:
    """Merge ``adapter`` into ``base`` and write a full model in the released layout to ``out``
    (``config.json`` with the release's keys, ``shards`` safetensors files and their index, the
    base's tokenizer and ``generation_config.json``). ``dtype``: ``auto`` (the base's own),
    ``bfloat16``, ``float16`` or ``float32``; the merge itself is done in fp32."""
    import json

    from verbnoun import __version__
    from verbnoun.fileio import atomic_write_bytes
    from verbnoun.model.checkpoint import _unique_state, write_weights
    from verbnoun.model.export_hf import weight_dtype
    from verbnoun.model.tokenization import load_tokenizer

    base, out = Path(base), Path(out)
    if out.resolve() == base.resolve():
        raise CheckpointError(f"{out}: the output folder is the base checkpoint itself")
    check_replaceable(out, marker=MERGED_INFO_FILE)  # before any work: never someone's folder
    torch_dtype = weight_dtype(base, dtype)
    model = merge(load_adapted(base, adapter))
    info = read_adapter(adapter)
    tokenizer = load_tokenizer(base)
    with atomic_folder(out, marker=MERGED_INFO_FILE) as staging:
        released = json.dumps(model.config.to_released(), indent=2)
        atomic_write_bytes(staging / "config.json", released.encode("utf-8"))
        files = write_weights(_unique_state(model, torch_dtype), staging, shards=shards)
        tokenizer.save_pretrained(str(staging))
        if (base / "generation_config.json").is_file():
            shutil.copyfile(base / "generation_config.json", staging / "generation_config.json")
        name = str(torch_dtype).removeprefix("torch.")
        write_json(
            staging / MERGED_INFO_FILE,
            {
                "format": "llavaction-merged",
                "verbnoun_version": __version__,
                "base": info.base,
                "adapter": str(info.directory.resolve()),
                "lora": dataclasses.asdict(info.lora),
                "dtype": name,
            },
        )
    return MergedSummary(out, name, [f.name for f in files], info.base)


def trainable_counts(model: nn.Module) -> dict[str, int]:
    """Parameters (elements) of ``model`` by kind: ``lora`` (adapters), ``full`` (trained in
    full beside them), ``frozen``, ``total``; tied weights counted once."""
    counts = {"lora": 0, "full": 0, "frozen": 0}
    for name, param in model.named_parameters():
        kind = "lora" if ".lora_" in name else ("full" if param.requires_grad else "frozen")
        counts[kind] += param.numel()
    counts["total"] = sum(counts.values())
    return counts


def check_resumable(info: AdapterInfo, settings: LoraSettings, parts: list[str]) -> None:
    """A LoRA run resumes with the adapters it trained."""
    if dataclasses.asdict(info.lora) != dataclasses.asdict(settings):
        raise VerbnounError(
            f"lora: {dataclasses.asdict(settings)} but {info.directory} was trained with "
            f"{dataclasses.asdict(info.lora)}; resume with the same settings or start a new run_dir"
        )


def prepare_run(model: nn.Module, config, resume: Path | None):
    """A training run's adapters: put them on ``model`` (built from ``model.checkpoint``), fill
    them from the checkpoint ``resume`` when resuming (refused when it was made for another base
    or with other LoRA settings), and return the function that writes a checkpoint's model
    (:func:`save_adapter` into its ``adapter/`` folder)."""
    settings, parts = config.lora, list(config.model.tunable_parts)
    base_dir = Path(config.model.checkpoint)
    base = base_identity(base_dir)
    keys = base_keys(base_dir)
    attach(model, settings, parts, seed=config.seed)
    if resume is not None:
        if not (resume / ADAPTER_DIR).is_dir():
            raise VerbnounError(
                f"lora: {resume} holds a whole model, not adapters (the run trained without "
                "lora); resume without lora or start a new run_dir"
            )
        info = read_adapter(resume / ADAPTER_DIR)
        check_base(info, base)
        check_resumable(info, settings, parts)
        load_adapter_weights(model, info)

    def write(model: nn.Module, directory: Path, tokenizer) -> None:
        save_adapter(
            model, directory / ADAPTER_DIR, settings=settings, parts=parts, base=base,
            base_keys=keys,
        )  # fmt: skip

    return write
