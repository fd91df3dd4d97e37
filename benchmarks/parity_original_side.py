"""The authors' side of ``parity_original.py``: runs ONLY in the venv of ``original_env.py``.

Never imported by our package or tests (the authors' import name is ``llavaction``). Two jobs,
each read from a JSON file and answered with plain files (JSON and ``.npy``) in ``out``:

* ``save``: a tiny random checkpoint made and written by the original's own classes and
  ``save_pretrained`` (bf16, sharded), and the tiny SigLIP tower it names by hub id, written
  into a local Hugging Face cache (``HF_HOME``), as a released directory is used offline;
* ``infer``: the original's documented inference path, ``SelectiveInferencer`` -> its video
  loader (``avion_video_loader``) -> ``llava_inference``, on one segment, recording each step:
  frame ids, frames, pixel values, prompt text, input ids, last-position logits, greedy tokens.

CPU shims, each printed: flash attention -> sdpa (``use_flash_attention=False`` requests it
under a misspelt key), ``.cuda()`` / ``"cuda"`` -> the CPU, the bf16 casts of model and pixels
-> float32, the module-level ``n_frames`` (it overrides the constructor's) and
``max_new_tokens`` -> the job's values, and ``torchvision.io`` (imported by ``ek_eval`` for a
debug writer only) -> an empty module. Its logic is never changed.

    python parity_original_side.py save|infer JOB.json OUT_DIR
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
import types
from contextlib import contextmanager
from pathlib import Path

PATCHES: list[str] = []


def patch(note: str) -> None:
    PATCHES.append(note)
    print(f"[original] patch: {note}", flush=True)


def stub_torchvision() -> None:
    """``ek_eval`` imports ``torchvision.io`` for a debug video writer only (torchvision does not
    install beside CPU torch 2.13). Imported after transformers, which then never sees it."""
    import llavaction.model  # noqa: F401  (transformers decides on torchvision here)

    for name in ("torchvision", "torchvision.io"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
    sys.modules["torchvision"].io = sys.modules["torchvision.io"]
    patch("torchvision.io -> empty module (ek_eval's debug writer only)")


# ---- save --------------------------------------------------------------------------------------


def init_weights(model, seed: int) -> None:
    """Every parameter drawn from a seeded normal (the original leaves its tower, image_newline
    and action token uninitialised: ``torch.empty``); norms around 1."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.1 * noise)
            else:
                param.copy_(noise * 0.05)


def save(job: dict, out: Path) -> None:
    import torch
    from llavaction.model.language_model.llava_qwen import LlavaQwenConfig, LlavaQwenForCausalLM
    from llavaction.model.multimodal_encoder.siglip_encoder import (
        SigLipVisionConfig,
        SigLipVisionModel,
    )
    from transformers import AutoTokenizer

    tower = job["tower"]
    snapshot = Path(job["tower_snapshot"])
    snapshot.mkdir(parents=True, exist_ok=True)
    tower_config = SigLipVisionConfig(**tower["config"])
    tower_model = SigLipVisionModel(tower_config)
    init_weights(tower_model, 1)
    tower_model.save_pretrained(str(snapshot))
    refs = snapshot.parent.parent / "refs"
    refs.mkdir(exist_ok=True)
    (refs / "main").write_text(snapshot.name)

    tokenizer = AutoTokenizer.from_pretrained(job["tokenizer"])
    for style in job["styles"]:
        directory = Path(style["directory"])
        config = LlavaQwenConfig(**style["config"])
        torch.manual_seed(0)
        model = LlavaQwenForCausalLM(config)  # loads the tower from the local cache
        init_weights(model, style["seed"])
        with torch.no_grad():  # rows past the tokenizer would win every argmax if ever scored
            model.get_output_embeddings().weight[len(tokenizer) :] *= style["beyond_scale"]
        model.to(torch.bfloat16)
        model.save_pretrained(str(directory), max_shard_size=style["max_shard_size"])
        tokenizer.save_pretrained(str(directory))
        names = sorted(p.name for p in directory.iterdir())
        print(f"[original] saved {directory.name}: {', '.join(names)}", flush=True)
    (out / "save.json").write_text(json.dumps({"patches": PATCHES}))


# ---- infer -------------------------------------------------------------------------------------


@contextmanager
def on_cpu_in_float32():
    """``.cuda()`` and ``.to("cuda")`` stay on the CPU; ``.to(torch.bfloat16)`` keeps float32."""
    import torch

    original_to, original_cuda = torch.Tensor.to, torch.Tensor.cuda

    def to(self, *args, **kwargs):
        args = tuple(
            "cpu" if a == "cuda" else (torch.float32 if a is torch.bfloat16 else a) for a in args
        )
        if kwargs.get("device") == "cuda":
            kwargs["device"] = "cpu"
        if kwargs.get("dtype") is torch.bfloat16:
            kwargs["dtype"] = torch.float32
        return original_to(self, *args, **kwargs)

    torch.Tensor.to = to
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.to, torch.Tensor.cuda = original_to, original_cuda


def infer(job: dict, out: Path) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(job.get("threads", 1))
    stub_torchvision()
    import llavaction.action.llava_inference as llava_inference_module
    import llavaction.action.selective_inference as selective
    import llavaction.action.utils as action_utils
    import llavaction.model.builder as builder

    record: dict = {}
    where = {"out": out}  # the current segment's folder

    load = builder.load_pretrained_model

    def load_on_cpu(*args, **kwargs):
        kwargs["attn_implementation"] = "sdpa"
        tokenizer, model, processor, length = load(*args, **kwargs)
        model.to(torch.float32)
        return tokenizer, model, processor, length

    builder.load_pretrained_model = load_on_cpu
    patch("load_pretrained_model: attn_implementation flash_attention_2 -> sdpa; model -> float32")
    selective.n_frames = job["frames"]
    patch(f"selective_inference.n_frames 32 -> {job['frames']} (overrides the constructor's)")

    frame_ids = action_utils.get_frame_ids

    def recording_frame_ids(*args, **kwargs):
        ids = frame_ids(*args, **kwargs)
        record.setdefault("frame_ids", []).append(list(ids))
        return ids

    action_utils.get_frame_ids = recording_frame_ids
    loader = selective.avion_video_loader

    def recording_loader(*args, **kwargs):
        frames, meta = loader(*args, **kwargs)
        np.save(where["out"] / "frames.npy", frames)
        record["time_meta"] = {k: (float(v) if k != "frame_time" else v) for k, v in meta.items()}
        return frames, meta

    selective.avion_video_loader = recording_loader
    tokenize = llava_inference_module.tokenizer_image_token

    def recording_tokenize(prompt, *args, **kwargs):
        ids = tokenize(prompt, *args, **kwargs)
        record["prompt"] = prompt
        record["input_ids"] = ids.tolist()
        return ids

    llava_inference_module.tokenizer_image_token = recording_tokenize

    inferencer = selective.SelectiveInferencer(
        job["data_root"],
        job["checkpoint"],
        include_time_instruction=job["time_instruction"],
        n_frames=job["frames"],
        use_flash_attention=False,
    )
    model = inferencer.model
    processor = inferencer.image_processor
    preprocess = processor.preprocess

    def recording_preprocess(images, return_tensors):
        result = preprocess(images, return_tensors=return_tensors)
        np.save(where["out"] / "pixels.npy", result["pixel_values"].float().numpy())
        return result

    processor.preprocess = recording_preprocess
    generate = model.generate

    def recording_generate(inputs, images=None, image_sizes=None, modalities=None, **kwargs):
        with torch.no_grad():
            logits = model(input_ids=inputs, images=images, modalities=modalities).logits
        np.save(where["out"] / "logits.npy", logits[0, -1].float().numpy())
        kwargs["max_new_tokens"] = job["max_new_tokens"]
        tokens = generate(
            inputs, images=images, image_sizes=image_sizes, modalities=modalities, **kwargs
        )
        record["tokens"] = tokens[0].tolist()
        return tokens

    model.generate = recording_generate
    patch(f"generate max_new_tokens 4096 -> {job['max_new_tokens']}")
    patch(".cuda() / .to('cuda') -> CPU; .to(torch.bfloat16) of the pixels -> float32")
    for segment in job["segments"]:
        record.clear()
        where["out"] = out / segment["name"]
        where["out"].mkdir(parents=True, exist_ok=True)
        with on_cpu_in_float32():
            question = {"options": [segment["options"]]}
            text = inferencer.inference(question, segment["uid"], job["task"])
        record["text"] = text
        record["vocab_rows"] = int(model.get_input_embeddings().weight.shape[0])
        record["eos_token_id"] = model.generation_config.eos_token_id
        record["patches"] = PATCHES
        (where["out"] / "infer.json").write_text(json.dumps(record))


def main() -> None:
    mode, job_path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    job = json.loads(job_path.read_text())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    {"save": save, "infer": infer}[mode](job, out)


if __name__ == "__main__":
    main()
