"""Training-side parity with the authors' code: the same SFT record must become the same sample.

Run: ``.venv/bin/python benchmarks/parity_original_train.py [--videos 8] [--per-type 4]``.

1. Renders the synthetic kitchen and runs our ``sft build`` with every task (``mqa`` with and
   without prior actions, ``temporal``, ``narration``; prior actions shown whenever a question
   qualifies, so that they occur); adds multi-turn records (a clip's multiple-choice exchange
   followed by one or two further exchanges).
2. Our samples: :class:`verbnoun.train.data.SFTDataset` with the trainer's default
   (``data.supervision: original``) and the real Qwen2 tokenizer (from the BPE ranks in the
   ``dashscope`` wheel, saved with ``save_pretrained`` for both sides).
3. The authors' samples, in the authors' virtual environment (``benchmarks/original_env.py``
   when it exists, else ``/work/ref/original-venv``; never our venv, the import names clash):
   their ``preprocess_multimodal`` and ``preprocess_qwen`` (what ``preprocess`` calls for the
   ``qwen_1_5`` conversation template) and ``DataCollatorForSupervisedDataset``, read from their
   installed ``llavaction/train/train.py`` and run unchanged. Their ``train.py`` cannot be
   imported whole without DeepSpeed, decord and a GPU stack, so the functions are taken from its
   source by name; the stand-ins this needs are printed (``conversation_lib``'s version string,
   the data arguments). Each record's first human turn is the text our dataset writes (with its
   time instruction), which the authors' ``format_llava_prompt`` also writes (checked by the
   inference parity benchmark).
4. Compares input ids and supervised positions record by record, and the LM loss of one tiny
   model (ours, seeded) on the collated batch of each side.

Targets: ids and supervised positions identical for every record; |loss difference| <= 1e-4.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

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
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)

    from verbnoun.data.layouts import make_layout
    from verbnoun.model.architecture import IGNORE_INDEX, LlavactionForCausalLM
    from verbnoun.model.config import tiny_config
    from verbnoun.model.processor import Processor
    from verbnoun.train.data import SFTDataset, collate, model_inputs

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
        print(f"supervised tokens: original rule {supervised['original']}, "
              f"answer-only {supervised['answer']} "
              f"({supervised['original'] / supervised['answer']:.2f}x)")  # fmt: skip

        # the LM loss of one tiny model on each side's collated batch
        config = tiny_config(vocab_size=len(tokenizer), action_types=(20, 40, 200))
        model = LlavactionForCausalLM(config).eval()
        batch = collate(ours["original"])
        ids, videos_, labels = model_inputs(batch)
        their_ids = torch.tensor(authors["batch_input_ids"])
        their_labels = torch.tensor(authors["batch_labels"])
        lengths = torch.tensor(authors["batch_attention"]).sum(1).tolist()
        their_rows = [their_ids[r, :n] for r, n in enumerate(lengths)]
        their_label_rows = [their_labels[r, :n] for r, n in enumerate(lengths)]
        with torch.no_grad():
            loss_ours = model(ids, videos_, labels).lm_loss.item()
            loss_theirs = model(their_rows, videos_, their_label_rows).lm_loss.item()
        diff = abs(loss_ours - loss_theirs)
        print(f"\nLM loss, tiny model, {len(ids)} samples: ours {loss_ours:.6f}, "
              f"authors' batch {loss_theirs:.6f}, |diff| {diff:.2e} (target <= 1e-4)")  # fmt: skip
        ok = identical == total and diff <= 1e-4
        print(f"\nTARGET ids and supervised positions identical on {identical}/{total} records, "
              f"loss |diff| {diff:.2e}: {'MET' if ok else 'NOT MET'}")  # fmt: skip
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
