"""Model speed and memory, each against a reference measured in the same run.

1. ``scorer``: questions per second of the single-forward multiple-choice scorer (option-letter
   logits) against greedy generation with ``max_new_tokens`` 16 (KV cache, batched), on the tiny
   model with random weights. Generation is forced to 16 tokens (no end token) so both sides do
   the work the target names, at batch 1 (one question, as ``verbnoun ask``) and batch 8.
   Target: scorer >= 3x. On the tiny CPU model the prompt pass dominates and a cached decode
   step is cheap, so the ratio falls with the batch size (measured 4.0x at 1, 1.9x at 8).
2. ``overhead``: forward+backward time of our model against the bare transformers modules it
   wraps (``SiglipVisionModel`` on the same frames + ``Qwen2ForCausalLM`` on an input of the same
   length). Target: overhead <= 15%.
3. ``memory``: peak resident memory of streaming a released-layout checkpoint of a few hundred
   MB (bf16 shards loaded as fp32, and fp32 shards loaded as fp32), in a fresh subprocess, as a
   multiple of the loaded weights' size. Target: <= 1.2x.
4. ``gpu`` (only with CUDA): the 0.5B-shaped model with random weights, bf16, at 16 and 64
   frames: prefill tokens/s and peak GPU memory.

    .venv/bin/python benchmarks/bench_model.py [--threads 1] [--skip-memory] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from timing import best_of

from verbnoun.bench import prompts
from verbnoun.model.architecture import LlavactionForCausalLM, qwen2_config, siglip_config
from verbnoun.model.config import IMAGE_TOKEN_INDEX, LlavactionConfig, TextConfig, tiny_config
from verbnoun.model.inference import generate, score_options

OPTIONS = ["open door", "close cupboard", "take knife", "wash plate", "put pan"]


class _LetterProcessor:
    """Just what the scorer needs, for a model whose vocabulary is ids (no tokenizer)."""

    def option_letter_ids(self, count: int) -> list[int]:
        return list(range(10, 10 + count))


def _prompt_ids(length: int, vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(20, vocab, (length,), generator=g)
    ids[length // 5] = IMAGE_TOKEN_INDEX
    return ids


def bench_scorer(questions: int, batch: int, frames: int, repeats: int) -> float:
    torch.manual_seed(0)
    config = tiny_config(vocab_size=1000)
    model = LlavactionForCausalLM(config).eval()
    # the MQA prompt is ~120 tokens with a Qwen-like tokenizer
    prompt_len = len(prompts.chat_prompt(prompts.user_turn(prompts.mqa_task(OPTIONS)))) // 4
    ids = [_prompt_ids(prompt_len, 1000, i) for i in range(questions)]
    videos = [torch.rand(frames, 3, 32, 32) * 2 - 1 for _ in range(questions)]
    processor = _LetterProcessor()

    def run_scorer():
        for s in range(0, questions, batch):
            score_options(
                model,
                processor,
                ids[s : s + batch],
                videos[s : s + batch],
                [OPTIONS] * len(ids[s : s + batch]),
            )

    def run_generate():
        for s in range(0, questions, batch):
            generate(
                model, ids[s : s + batch], videos[s : s + batch], eos_ids={-1}, max_new_tokens=16
            )

    t_score = best_of(run_scorer, repeats)
    t_gen = best_of(run_generate, repeats)
    print(f"scorer: {questions / t_score:8.1f} questions/s   (best of {repeats}, batch {batch})")
    print(f"generate(16 tokens): {questions / t_gen:8.1f} questions/s")
    ratio = t_gen / t_score
    print(f"scorer / generate speed ratio: {ratio:.1f}x (target >= 3x)")
    return ratio


def bench_overhead(repeats: int) -> float:
    """Forward+backward of ours against bare SigLIP + Qwen2 of the same sizes and lengths."""
    from transformers import Qwen2ForCausalLM, SiglipVisionModel

    torch.manual_seed(0)
    base = tiny_config(
        vocab_size=4000,
        hidden_size=256,
        vision_hidden_size=192,
        num_layers=4,
        image_size=64,
        patch_size=8,
    )
    config = LlavactionConfig(
        **{
            **base.__dict__,
            "text": TextConfig(
                **{**base.text.__dict__, "num_attention_heads": 8, "intermediate_size": 768}
            ),
        }
    )
    ours = LlavactionForCausalLM(config)
    vision = SiglipVisionModel(siglip_config(config.vision))
    text = Qwen2ForCausalLM(qwen2_config(config.text))
    rows, frames, prompt_len = 4, 8, 120
    videos = [torch.rand(frames, 3, 64, 64) * 2 - 1 for _ in range(rows)]
    ids = [_prompt_ids(prompt_len, 4000, i) for i in range(rows)]
    labels = [i.clamp(min=0) for i in ids]
    actions = torch.tensor([[1, 2, 3]] * rows)
    seq = prompt_len - 1 + config.visual_tokens(frames) + config.action_tokens
    text_ids = torch.randint(0, 4000, (rows, seq))

    def step_ours():
        ours.zero_grad(set_to_none=True)
        ours(ids, videos, labels, actions).loss.backward()

    def step_bare():
        vision.zero_grad(set_to_none=True)
        text.zero_grad(set_to_none=True)
        features = vision(torch.cat(videos)).last_hidden_state
        out = text(input_ids=text_ids, labels=text_ids)
        (out.loss + features.float().mean()).backward()

    t_ours, t_bare = [], []
    step_ours(), step_bare()
    for _ in range(repeats):  # interleaved, so drifting machine load hits both alike
        t_ours.append(_timed(step_ours))
        t_bare.append(_timed(step_bare))
    ours_s, bare_s = statistics.median(t_ours), statistics.median(t_bare)
    overhead = ours_s / bare_s - 1
    print(
        f"forward+backward: ours {ours_s * 1e3:.1f} ms, bare SigLIP+Qwen2 {bare_s * 1e3:.1f} ms "
        f"(median of {repeats}; {rows} rows x {seq} tokens, {frames} frames each)"
    )
    print(f"overhead: {overhead * 100:+.1f}% (target <= 15%)")
    return overhead


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


MEMORY_CHILD = r"""
import json, sys, torch
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
from verbnoun.model.checkpoint import load_model
import verbnoun.model.architecture, transformers.models.qwen2.modeling_qwen2
torch.empty(1)
before = rss("VmRSS:")
model = load_model(sys.argv[1], dtype=torch.float32)
weights = sum(p.numel() * p.element_size() for p in model.parameters())
print(json.dumps({"before": before, "peak": rss("VmHWM:"), "weights": weights}))
"""


def bench_memory() -> float:
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint

    config = tiny_config(
        vocab_size=32000,
        hidden_size=1024,
        vision_hidden_size=512,
        num_layers=12,
        image_size=64,
        patch_size=8,
    )
    config = LlavactionConfig(
        **{
            **config.__dict__,
            "text": TextConfig(
                **{
                    **config.text.__dict__,
                    "num_attention_heads": 16,
                    "num_key_value_heads": 4,
                    "intermediate_size": 2816,
                }
            ),
        }
    )
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = LlavactionForCausalLM(config)
        for dtype in (torch.bfloat16, torch.float32):
            directory = Path(tmp) / str(dtype)
            write_tiny_released_checkpoint(directory, model=model, shards=3, dtype=dtype)
            size = sum(p.stat().st_size for p in directory.glob("*.safetensors"))
            result = subprocess.run(
                [sys.executable, "-c", MEMORY_CHILD, str(directory)],
                check=True,
                capture_output=True,
                text=True,
            )
            data = json.loads(result.stdout.strip().splitlines()[-1])
            ratio = (data["peak"] - data["before"]) / data["weights"]
            worst = max(worst, ratio)
            print(
                f"load {size / 2**20:.0f} MiB of {str(dtype)[6:]} shards as float32 "
                f"({data['weights'] / 2**20:.0f} MiB): peak RSS growth {ratio:.2f}x the weights"
            )
        del model
    print(f"worst peak / weights: {worst:.2f}x (target <= 1.2x)")
    return worst


def bench_gpu() -> None:
    """0.5B-shaped model (Qwen2-0.5B + so400m), random weights, bf16: prefill tokens/s, memory."""
    device = torch.device("cuda")
    config = LlavactionConfig(text=TextConfig(), newline_position="grid")
    with torch.device(device):
        model = LlavactionForCausalLM(config).to(torch.bfloat16).eval()
    for frames in (16, 64):
        ids = _prompt_ids(150, config.text.vocab_size, 0)
        video = torch.rand(frames, 3, 384, 384, device=device, dtype=torch.bfloat16) * 2 - 1
        tokens = len(ids) - 1 + config.visual_tokens(frames) + 1
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            for _ in range(2):
                model([ids], [video], logits_to_keep=1)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(5):
                model([ids], [video], logits_to_keep=1)
            torch.cuda.synchronize()
        elapsed = (time.perf_counter() - start) / 5
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(
            f"gpu 0.5B, {frames} frames: {tokens} tokens, {tokens / elapsed:,.0f} tokens/s "
            f"prefill ({elapsed * 1e3:.0f} ms), peak {peak:.2f} GiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    for batch in args.batch:
        bench_scorer(args.questions, batch, args.frames, args.repeats)
    bench_overhead(args.repeats)
    if not args.skip_memory:
        bench_memory()
    if torch.cuda.is_available():
        bench_gpu()


if __name__ == "__main__":
    main()
