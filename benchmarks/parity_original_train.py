"""Training-side parity with the authors' code: the same SFT record must become the same sample.

Run: ``.venv/bin/python benchmarks/parity_original_train.py [--videos 8] [--per-type 4]``
(``--quick``: one record per question type, and a skip when no authors' venv is built).

1. Renders the synthetic kitchen and runs our ``sft build`` with every task (``mqa`` with and
   without prior actions, ``temporal``, ``narration``; prior actions shown whenever a question
   qualifies, so that they occur); adds multi-turn records (a clip's multiple-choice exchange
   followed by one or two further exchanges).
2. Our samples: :class:`verbnoun.train.data.SFTDataset` with the trainer's default
   (``data.supervision: original``) and the real Qwen2 tokenizer (from the BPE ranks in the
   ``dashscope`` wheel, saved with ``save_pretrained`` for both sides).
3. The authors' samples, in the authors' virtual environment (``benchmarks/original_env.py``'s
   ``original_python``, else ``/work/ref/original-venv``; never our venv: the names clash):
   their ``preprocess_multimodal`` and ``preprocess_qwen`` (what ``preprocess`` calls for the
   ``qwen_1_5`` conversation template) and ``DataCollatorForSupervisedDataset``, read from their
   installed ``llavaction/train/train.py`` and run unchanged. Their ``train.py`` cannot be
   imported whole without DeepSpeed, decord and a GPU stack, so the functions are taken from its
   source by name; the stand-ins this needs are printed (``conversation_lib``'s version string,
   the data arguments). Each record's first human turn is the text our dataset writes (with its
   time instruction), which the authors' ``format_llava_prompt`` also writes (checked by the
   inference parity benchmark).
4. Compares input ids and supervised positions record by record (their collator's batch is
   kept for the next step).
5. The loss of the same tiny model: a tiny LLaVAction (0.5B style, 384-px SigLIP tower named by
   a hub id and kept in a local Hugging Face cache) made with the authors' classes, seeded,
   runs its own forward (LM loss, and LM + auxiliary loss with the verb/noun/action labels) on
   their samples and is saved with their ``save_pretrained``; ours loads that directory and
   computes the same on our samples, with the same pixel values, both as the trainer does
   (``loss_only``: logits only at supervised positions) and from every position's logits. One
   batch per question type
   and one padded batch of two. Stand-ins (printed): ``.cuda()`` -> CPU, float32,
   ``config.use_cache = False`` (as their ``train()`` sets it), and a one-process ``gloo``
   group for the ``all_reduce`` in their forward.

Targets: ids and supervised positions identical for every record; |loss difference| <= 1e-4.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from results import Report, quick_flag

ROOT = Path(__file__).resolve().parents[1]
FALLBACK_ENV = Path("/work/ref/original-venv")
FRAMES = 4
SIZE = 32

AUTHORS_SIDE = r"""
import ast, copy, json, re, sys, types
from dataclasses import dataclass
from pathlib import Path
import importlib.util
from typing import Dict, Sequence
import torch, transformers

spec = importlib.util.find_spec("llavaction")  # locates the package without importing it
package = Path(next(iter(spec.submodule_search_locations)))
source = (package / "train" / "train.py").read_text()
constants = {}
exec((package / "constants.py").read_text(), constants)
wanted = {"preprocess_multimodal", "preprocess_qwen", "DataCollatorForSupervisedDataset"}
tree = ast.parse(source)
nodes = [n for n in tree.body if getattr(n, "name", None) in wanted]
assert {n.name for n in nodes} == wanted, [n.name for n in nodes]
conversation_lib = types.SimpleNamespace(
    default_conversation=types.SimpleNamespace(version="qwen"))
namespace = {
    "copy": copy, "re": re, "torch": torch, "transformers": transformers, "Dict": Dict,
    "Sequence": Sequence, "dataclass": dataclass, "conversation_lib": conversation_lib,
    "DataArguments": object,  # an annotation only
    **{k: v for k, v in constants.items() if k.isupper()},
}
exec(compile(ast.Module(body=nodes, type_ignores=[]), str(package / "train" / "train.py"),
             "exec"), namespace)
print("authors: ran", ", ".join(sorted(wanted)), "from", package / "train" / "train.py",
      "(transformers", transformers.__version__ + ")", file=sys.stderr)

job = json.loads(Path(sys.argv[1]).read_text())
tokenizer = transformers.AutoTokenizer.from_pretrained(job["tokenizer"])
data_args = types.SimpleNamespace(is_multimodal=True, mm_use_im_start_end=False)
out, instances = [], []
for record in job["records"]:
    sources = namespace["preprocess_multimodal"](
        copy.deepcopy([record["conversations"]]), data_args)
    has_image = "video" in record
    data = namespace["preprocess_qwen"](sources, tokenizer, has_image=has_image)
    ids, labels = data["input_ids"][0], data["labels"][0]
    instances.append({"input_ids": ids, "labels": labels})
    out.append({"id": record["id"], "input_ids": ids.tolist(), "labels": labels.tolist()})
batch = namespace["DataCollatorForSupervisedDataset"](tokenizer=tokenizer)(instances)
Path(sys.argv[2]).write_text(json.dumps({
    "records": out, "batch_input_ids": batch["input_ids"].tolist(),
    "batch_labels": batch["labels"].tolist(),
    "batch_attention": batch["attention_mask"].long().tolist(),
}))
"""


AUTHORS_LOSS = r"""
import json, sys
from contextlib import contextmanager
from pathlib import Path
import numpy as np
import torch

import llavaction.model  # noqa: F401
from llavaction.model.language_model.llava_qwen import LlavaQwenConfig, LlavaQwenForCausalLM
from llavaction.model.multimodal_encoder.siglip_encoder import SigLipVisionConfig, SigLipVisionModel
from transformers import AutoTokenizer

torch.set_num_threads(2)
job = json.loads(Path(sys.argv[1]).read_text())
# its forward all-reduces whether any rank has action labels: a world of one process
torch.distributed.init_process_group(
    "gloo", init_method="file://" + job["rendezvous"], rank=0, world_size=1)


def init_weights(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            param.copy_(1.0 + 0.1 * noise if "norm" in name and name.endswith("weight")
                        else noise * 0.05)


@contextmanager
def on_cpu():
    original_to, original_cuda = torch.Tensor.to, torch.Tensor.cuda
    def to(self, *args, **kwargs):
        args = tuple("cpu" if a == "cuda" else a for a in args)
        if kwargs.get("device") == "cuda":
            kwargs["device"] = "cpu"
        return original_to(self, *args, **kwargs)
    torch.Tensor.to, torch.Tensor.cuda = to, (lambda self, *a, **k: self)
    try:
        yield
    finally:
        torch.Tensor.to, torch.Tensor.cuda = original_to, original_cuda


snapshot = Path(job["tower_snapshot"])
snapshot.mkdir(parents=True, exist_ok=True)
tower = SigLipVisionModel(SigLipVisionConfig(**job["tower"]))
init_weights(tower, 1)
tower.save_pretrained(str(snapshot))
(snapshot.parent.parent / "refs").mkdir(exist_ok=True)
(snapshot.parent.parent / "refs" / "main").write_text(snapshot.name)
config = LlavaQwenConfig(**job["config"])
config._attn_implementation = "sdpa"
config.use_cache = False  # as their train() sets it (the heads read outputs[1], hidden states)
model = LlavaQwenForCausalLM(config)  # its tower comes from the local cache, by hub id
init_weights(model, 2)
model.float().eval()
tokenizer = AutoTokenizer.from_pretrained(job["tokenizer"])
losses = []
with torch.no_grad(), on_cpu():
    for batch in job["batches"]:
        data = np.load(batch["arrays"])
        ids, labels = torch.from_numpy(data["input_ids"]), torch.from_numpy(data["labels"])
        images = [torch.from_numpy(p) for p in data["pixels"]]
        actions = torch.from_numpy(data["actions"])
        mask = ids.ne(tokenizer.pad_token_id)
        kwargs = dict(input_ids=ids, attention_mask=mask, labels=labels, images=images,
                      modalities=["video"] * len(images), image_sizes=[(s, s) for s in [384]] * len(images))
        lm = model(**kwargs).loss.item()
        total = model(**kwargs, actions=actions).loss.item()
        losses.append({"name": batch["name"], "lm": lm, "total": total})
model.save_pretrained(job["checkpoint"])
tokenizer.save_pretrained(job["checkpoint"])
Path(sys.argv[2]).write_text(json.dumps(losses))
print("authors: LlavaQwenForCausalLM (float32, sdpa) forward with labels and actions on CPU "
      "(.cuda() -> CPU; config.use_cache False as in their train(); a one-process gloo "
      "group for its all_reduce); saved with its "
      "save_pretrained", file=sys.stderr)
"""
TOWER_ID = "verbnoun-parity/siglip-tiny-patch14-384"
TOWER = {  # SigLIP at 384 px / patch 14 (the original asserts 729 tokens), tiny width
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
    "image_size": 384, "patch_size": 14, "layer_norm_eps": 1e-6,
    "hidden_act": "gelu_pytorch_tanh",
}  # fmt: skip


def released_config(vocab_rows: int) -> dict:
    """A tiny LLaVAction (0.5B style: tied head, ``one_token`` action supervision)."""
    return {
        "vocab_size": vocab_rows, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
        "hidden_act": "silu", "tie_word_embeddings": True, "bos_token_id": 151643,
        "eos_token_id": 151645, "use_sliding_window": False, "torch_dtype": "float32",
        "architectures": ["LlavaQwenForCausalLM"], "mm_vision_tower": TOWER_ID,
        "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": TOWER["hidden_size"],
        "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
        "mm_patch_merge_type": "spatial_unpad", "mm_newline_position": "grid",
        "mm_spatial_pool_mode": "bilinear", "mm_spatial_pool_stride": 2,
        "image_aspect_ratio": "anyres_max_9", "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False, "vision_supervision": "one_token",
        "vision_token_training": "last_layer", "action_types": "97,300,3806",
        "add_faster_video": False,
    }  # fmt: skip


def loss_parity(
    python: Path, root: Path, records, videos: Path, ours_original, ours_answer, authors
) -> float:
    """The loss of the authors' tiny LLaVAction (their classes, seeded, saved with their
    ``save_pretrained``) on their samples, against ours loaded from that directory on ours:
    one batch per question type (one record each) and one batch of two (padding); LM loss and
    LM + auxiliary loss. Returns the largest |difference|. For scale, the LM loss of the pair
    batch with answer-only supervision (the old default) is printed too."""
    import numpy as np

    from verbnoun.data.layouts import make_layout
    from verbnoun.model.checkpoint import load_pretrained
    from verbnoun.train.data import SFTDataset

    home = root / "hf-home"
    snapshot = home / "hub" / f"models--{TOWER_ID.replace('/', '--')}" / "snapshots" / ("0" * 40)
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    os.environ.update(HF_HOME=str(home), HF_HUB_OFFLINE="1")
    os.environ.pop("HF_HUB_CACHE", None)
    from verbnoun.model.processor import Processor
    from verbnoun.model.tokenization import load_tokenizer

    tokenizer = load_tokenizer(root / "tokenizer")
    dataset = SFTDataset(records, Processor(tokenizer, 384),
                         make_layout("chunks", videos, chunk_seconds=15.0), frames=FRAMES,
                         size=SIZE)  # fmt: skip
    kinds: dict[str, int] = {}
    for index, record in enumerate(records):
        kind = "multi_turn" if record["id"].startswith("multi:") else record["question_type"]
        kinds.setdefault(kind, index)
    groups = [(kind, [index]) for kind, index in kinds.items()]
    groups.append(("pair", [kinds["mqa"], kinds["multi_turn"]]))
    batches, samples = [], {}
    for name, indices in groups:
        rows = [authors["records"][i] for i in indices]
        width = max(len(r["input_ids"]) for r in rows)
        pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        ids = np.full((len(rows), width), pad, dtype=np.int64)
        labels = np.full((len(rows), width), -100, dtype=np.int64)
        for row, r in enumerate(rows):
            ids[row, : len(r["input_ids"])] = r["input_ids"]
            labels[row, : len(r["labels"])] = r["labels"]
        items = [dataset[i] for i in indices]
        pixels = np.stack([item["pixel_values"].numpy() for item in items])
        actions = np.stack([item["actions"].numpy() for item in items])
        path = root / f"loss-{name}.npz"
        np.savez(path, input_ids=ids, labels=labels, pixels=pixels, actions=actions)
        batches.append({"name": name, "arrays": str(path)})
        samples[name] = (indices, items)
    job = {
        "tower": TOWER, "tower_snapshot": str(snapshot), "config": released_config(151936),
        "tokenizer": str(root / "tokenizer"), "checkpoint": str(root / "authors-ckpt"),
        "batches": batches, "rendezvous": str(root / "rendezvous"),
    }  # fmt: skip
    (root / "loss-job.json").write_text(json.dumps(job))
    (root / "authors_loss.py").write_text(AUTHORS_LOSS)
    run = subprocess.run(
        [str(python), str(root / "authors_loss.py"), str(root / "loss-job.json"),
         str(root / "loss-out.json")], capture_output=True, text=True, cwd=root, env=env,
    )  # fmt: skip
    if run.returncode:
        raise SystemExit(f"the authors' loss side failed:\n{run.stderr[-4000:]}")
    print(run.stderr.strip().splitlines()[-1])
    theirs = {r["name"]: r for r in json.loads((root / "loss-out.json").read_text())}
    model, _ = load_pretrained(root / "authors-ckpt", device="cpu", dtype=torch.float32)
    model.eval()
    worst = 0.0
    print(f"\n{'batch':<20}{'authors LM':>12}{'ours LM':>12}{'authors LM+aux':>16}"
          f"{'ours LM+aux':>13}{'|diff|':>10}")  # fmt: skip
    for name, (indices, items) in samples.items():
        ids = [ours_original[i]["input_ids"] for i in indices]
        labels = [ours_original[i]["labels"] for i in indices]
        pixels = [item["pixel_values"] for item in items]
        actions = torch.stack([item["actions"] for item in items])
        with torch.no_grad():  # the trainer's path: logits only where supervised
            lm = model(ids, pixels, labels, loss_only=True).lm_loss.item()
            total = model(ids, pixels, labels, actions, loss_only=True).loss.item()
            full = model(ids, pixels, labels, actions).loss.item()  # every position's logits
        diff = max(abs(lm - theirs[name]["lm"]), abs(total - theirs[name]["total"]),
                   abs(full - theirs[name]["total"]))  # fmt: skip
        worst = max(worst, diff)
        print(f"{name:<20}{theirs[name]['lm']:>12.6f}{lm:>12.6f}{theirs[name]['total']:>16.6f}"
              f"{total:>13.6f}{diff:>10.2e}")  # fmt: skip
    indices, items = samples["pair"]
    with torch.no_grad():
        answer_only = model(
            [ours_answer[i]["input_ids"] for i in indices],
            [item["pixel_values"] for item in items],
            [ours_answer[i]["labels"] for i in indices],
        ).lm_loss.item()
    print(f"(pair batch, answer-only supervision: LM loss {answer_only:.6f})")
    return worst


def built_authors_python() -> Path | None:
    """The authors' environment's python if one is already built (nothing is created)."""
    from original_env import ready_python

    python = ready_python()
    if python is None and (FALLBACK_ENV / "bin" / "python").is_file():
        python = FALLBACK_ENV / "bin" / "python"
    return python


def authors_python() -> Path:
    """The authors' environment's python: ``benchmarks/original_env.py``'s when it is there."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import original_env  # owner of the inference parity benchmark; makes the venv
    except ImportError:
        original_env = None
    finally:
        sys.path.pop(0)
    if original_env is not None:
        return Path(original_env.original_python())
    python = FALLBACK_ENV / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"no authors' environment: {python} is missing")
    return python


def qwen_tokenizer(out: Path):
    """The real Qwen2 tokenizer from the ``dashscope`` wheel's BPE ranks, saved to ``out``."""
    from verbnoun.model.tokenization import qwen2_from_tiktoken

    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the dashscope wheel (pip install --no-deps dashscope)")
    ranks = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    tokenizer = qwen2_from_tiktoken(ranks)
    tokenizer.save_pretrained(str(out))
    # the released checkpoints' tokenizer_config.json (Qwen2's), which transformers 4.45 reads
    released = {
        "tokenizer_class": "Qwen2Tokenizer", "additional_special_tokens": ["<|im_start|>",
        "<|im_end|>"], "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "errors": "replace", "model_max_length": 32768, "split_special_tokens": False,
        "clean_up_tokenization_spaces": False,
    }  # fmt: skip
    (out / "tokenizer_config.json").write_text(json.dumps(released, indent=2))
    return tokenizer


def sft_records(root: Path, videos: int, per_type: int) -> tuple[Path, list[dict]]:
    """Records of every SFT task from our ``sft build`` on the synthetic kitchen, plus
    multi-turn records."""
    from verbnoun.data.synth import render_kitchen
    from verbnoun.train.sft import TASKS, SftSettings, build_sft

    render_kitchen(root / "kitchen", videos=videos, seed=0, workers=1)
    # every qualifying question shows its prior actions (the default 0.3 may give none here)
    settings = SftSettings(tasks=TASKS, prior_probability=1.0)
    build_sft(root / "kitchen" / "annotations", root / "sft", settings)
    by_type: dict[str, list[dict]] = {}
    for name in ("mqa", "temporal", "narration"):
        for line in (root / "sft" / f"{name}.jsonl").read_text().splitlines():
            record = json.loads(line)
            by_type.setdefault(record["question_type"], []).append(record)
    wanted = {"mqa", "mqa_prior_actions", "temporal_detection", "direct_narration"}
    if set(by_type) != wanted:
        raise SystemExit(f"sft build gave {sorted(by_type)}; render more videos (--videos)")
    records = [r for kind in sorted(by_type) for r in by_type[kind][:per_type]]
    narrations = {r["id"].split(":", 1)[1]: r for r in by_type["direct_narration"]}
    temporal = {r["id"].split(":", 1)[1]: r for r in by_type["temporal_detection"]}
    for number, mqa in enumerate(by_type["mqa"][:per_type]):
        key = mqa["id"].split(":", 1)[1]
        extra = [
            {"from": "human", "value": "What action are you performing, in a few words?"},
            {"from": "gpt", "value": narrations[key]["conversations"][1]["value"]},
        ]
        if number % 2:
            question = temporal[key]["conversations"][0]["value"].removeprefix("<image>\n")
            extra += [
                {"from": "human", "value": question},
                {"from": "gpt", "value": temporal[key]["conversations"][1]["value"]},
            ]
        records.append({**mqa, "id": f"multi:{key}",
                        "conversations": mqa["conversations"] + extra})  # fmt: skip
    return root / "kitchen" / "videos", records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8, help="synthetic kitchen videos")
    parser.add_argument("--per-type", type=int, default=4, help="records per question type")
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("parity_original_train", args.quick)
    if args.quick:
        args.per_type = 1
        if built_authors_python() is None:
            report.skip("no authors' venv is built (python benchmarks/original_env.py builds "
                        f"it; or {FALLBACK_ENV})")  # fmt: skip
    torch.manual_seed(0)
    torch.set_num_threads(2)

    from verbnoun.data.layouts import make_layout
    from verbnoun.model.architecture import IGNORE_INDEX
    from verbnoun.model.processor import Processor
    from verbnoun.train.data import SFTDataset

    python = authors_python()
    print(f"authors' environment: {python}")
    with tempfile.TemporaryDirectory(prefix="parity-train-") as tmp:
        root = Path(tmp)
        tokenizer = qwen_tokenizer(root / "tokenizer")
        videos, records = sft_records(root, args.videos, args.per_type)
        processor = Processor(tokenizer, SIZE)
        layout = make_layout("chunks", videos, chunk_seconds=15.0)
        ours: dict[str, list[dict]] = {}
        for mode in ("original", "answer"):
            dataset = SFTDataset(records, processor, layout, frames=FRAMES, size=SIZE,
                                 supervision=mode)  # fmt: skip
            ours[mode] = [dataset[i] for i in range(len(dataset))]
        for sample in ours["original"]:
            if sample["error"] is not None:
                raise SystemExit(f"{sample['id']}: {sample['error']}")
        job_records = []
        for record in records:
            conversations = [dict(turn) for turn in record["conversations"]]
            conversations[0]["value"] = dataset.user_turn(record)
            job_records.append({**record, "conversations": conversations})
        job = root / "job.json"
        job.write_text(json.dumps({"tokenizer": str(root / "tokenizer"), "records": job_records}))
        result = root / "authors.json"
        script = root / "authors_side.py"
        script.write_text(AUTHORS_SIDE)
        start = time.perf_counter()
        run = subprocess.run([str(python), str(script), str(job), str(result)],
                             capture_output=True, text=True, cwd=root)  # fmt: skip
        if run.returncode:
            raise SystemExit(f"the authors' side failed:\n{run.stderr[-4000:]}")
        print(run.stderr.strip())
        print("stand-ins: conversation_lib.default_conversation.version = 'qwen' (qwen_1_5); "
              "data_args: is_multimodal=True, mm_use_im_start_end=False; the DataArguments "
              "annotation")  # fmt: skip
        authors = json.loads(result.read_text())
        print(f"authors' preprocessing: {time.perf_counter() - start:.1f} s (with start-up)")

        kinds: dict[str, list[bool]] = {}
        first_divergence = None
        supervised = {"original": 0, "answer": 0}
        for record, mine, other, theirs in zip(
            records, ours["original"], ours["answer"], authors["records"], strict=True
        ):
            ids, labels = mine["input_ids"].tolist(), mine["labels"].tolist()
            same = ids == theirs["input_ids"] and labels == theirs["labels"]
            kind = "multi_turn" if record["id"].startswith("multi:") else record["question_type"]
            kinds.setdefault(kind, []).append(same)
            supervised["original"] += sum(x != IGNORE_INDEX for x in labels)
            supervised["answer"] += sum(x != IGNORE_INDEX for x in other["labels"].tolist())
            if not same and first_divergence is None:
                where = next(
                    (
                        i
                        for i, (a, b) in enumerate(zip(ids, theirs["input_ids"], strict=False))
                        if a != b
                    ),
                    None,
                )
                first_divergence = (record["id"], where)
        print(f"\n{'task':<22}{'records':>8}{'identical':>11}")
        for kind, flags in kinds.items():
            print(f"{kind:<22}{len(flags):>8}{sum(flags):>11}")
        total = sum(len(f) for f in kinds.values())
        identical = sum(sum(f) for f in kinds.values())
        print(f"{'all':<22}{total:>8}{identical:>11}")
        if first_divergence:
            print(f"first divergence: record {first_divergence[0]} at token {first_divergence[1]}")
        report.figure("records_differing", total - identical, f"of {total}",
                      reference="the authors' preprocess_qwen and collator on the same records"
                      + (f"; first divergence: record {first_divergence[0]} at token "
                         f"{first_divergence[1]}" if first_divergence else ""),
                      target="0", met=identical == total)  # fmt: skip
        report.figure("supervised_tokens_original_over_answer_only",
                      supervised["original"] / supervised["answer"], "x",
                      reference=f"answer-only supervision {supervised['answer']} tokens, the "
                                f"release's rule {supervised['original']}")  # fmt: skip

        # the loss of the same tiny model (the authors', and ours loaded from its directory)
        diff = loss_parity(python, root, records, videos, ours["original"], ours["answer"], authors)
        report.figure("loss_max_diff", diff, "", reference="the authors' forward on their samples",
                      target="<= 1e-4", met=diff <= 1e-4)  # fmt: skip
        ok = identical == total and diff <= 1e-4
        print(f"\nTARGET ids and supervised positions identical on {identical}/{total} records, "
              f"loss |diff| {diff:.2e}: {'MET' if ok else 'NOT MET'}")  # fmt: skip
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
