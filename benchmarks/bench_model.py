"""Model speed and memory, each against a reference measured in the same run.

1. ``scorer``: questions per second of the single-forward multiple-choice scorer (option-letter
   logits) against greedy generation with ``max_new_tokens`` 16 (KV cache, batched), on the tiny
   model with random weights. Generation is forced to 16 tokens (no end token) so both sides do
   the work the target names, at batch 1 (one question, as ``verbnoun ask``) and batch 8.
   The prompts are real MQA prompts, encoded by the project's :class:`Processor` with a byte-level
   BPE trained on them (vocabulary 1,000; the option letters are single tokens, as the scorer
   needs). Target: scorer >= 3x. On the tiny CPU model the prompt pass dominates and a cached
   decode step is cheap, so the ratio falls with the batch size (figures:
   ``benchmarks/results.md``).
2. ``overhead``: forward+backward time of our model against the bare transformers modules it
   wraps (``SiglipVisionModel`` on the same frames + ``Qwen2ForCausalLM`` on an input of the same
   length). Target: overhead <= 15%.
3. ``memory``: peak resident memory of streaming a released-layout checkpoint of a few hundred
   MB (bf16 shards loaded as fp32, and fp32 shards loaded as fp32), in a fresh subprocess, as a
   multiple of the loaded weights' size. Target: <= 1.2x.
4. ``gpu`` (only with CUDA): the 0.5B-shaped model with random weights, bf16, at 16 and 64
   frames: prefill tokens/s and peak GPU memory.

    .venv/bin/python benchmarks/bench_model.py [--threads 1] [--skip-memory] [--repeats 5]
        [--quick]

``--quick``: 4 questions at batch 1 and 2, one timing, one bf16 checkpoint of a few MB.
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
from results import Report, quick_flag
from timing import best_of

from verbnoun.bench import prompts
from verbnoun.model.architecture import LlavactionForCausalLM, qwen2_config, siglip_config
from verbnoun.model.config import IMAGE_TOKEN_INDEX, LlavactionConfig, TextConfig, tiny_config
from verbnoun.model.inference import generate, score_options
from verbnoun.model.processor import Processor

OPTIONS = ["open door", "close cupboard", "take knife", "wash plate", "put pan"]
NOUNS = ["door", "cupboard", "knife", "plate", "pan", "tap", "drawer", "cup", "sponge", "lid"]
VERBS = ["open", "close", "take", "wash", "put", "turn on", "rinse", "cut", "pour", "stir"]


def mqa_processor(vocab_size: int = 1000, image_size: int = 32) -> Processor:
    """The project's processor with a byte-level BPE trained on MQA prompts (no download)."""
    from verbnoun.model.tokenization import train_tiny_tokenizer

    texts = [prompts.chat_prompt(prompts.user_turn(prompts.mqa_task(_options(i))))
             for i in range(50)]  # fmt: skip
    texts += [" ".join(prompts.LETTERS), "A. B. C. D. E."]
    return Processor(train_tiny_tokenizer(texts, vocab_size), image_size)


def _options(seed: int) -> list[str]:
    return [f"{VERBS[(seed + 3 * k) % 10]} {NOUNS[(seed * 7 + k) % 10]}" for k in range(5)]


def _prompt_ids(length: int, vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(20, vocab, (length,), generator=g)
    ids[length // 5] = IMAGE_TOKEN_INDEX
    return ids


def bench_scorer(
    questions: int, batch: int, frames: int, repeats: int, processor: Processor, report: Report
) -> float:
    torch.manual_seed(0)
    config = tiny_config(vocab_size=len(processor.tokenizer))
    model = LlavactionForCausalLM(config).eval()
    options = [_options(i) for i in range(questions)]
    ids = [
        processor.encode_prompt(prompts.user_turn(prompts.mqa_task(o))).input_ids for o in options
    ]
    videos = [torch.rand(frames, 3, 32, 32) * 2 - 1 for _ in range(questions)]

    def run_scorer():
        for s in range(0, questions, batch):
            score_options(
                model,
                processor,
                ids[s : s + batch],
                videos[s : s + batch],
                options[s : s + batch],
            )

    def run_generate():
        for s in range(0, questions, batch):
            generate(model, ids[s : s + batch], videos[s : s + batch], eos_ids={-1},
                     max_new_tokens=16, vocab_limit=processor.vocab_limit)  # fmt: skip

    t_score = best_of(run_scorer, repeats)
    t_gen = best_of(run_generate, repeats)
    ratio = t_gen / t_score
    report.figure(f"scorer_vs_generate_batch{batch}", ratio, "x",
                  reference=f"greedy generation of 16 tokens {questions / t_gen:.1f} questions/s, "
                            f"scorer {questions / t_score:.1f} (tiny model, {frames} frames, "
                            f"prompts of about {sum(map(len, ids)) // len(ids)} tokens, best of "
                            f"{repeats})", target=">= 3x", met=ratio >= 3)  # fmt: skip
    return ratio


def bench_overhead(repeats: int, report: Report, quick: bool = False) -> float:
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
    rows, frames, prompt_len = (1, 2, 40) if quick else (4, 8, 120)
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
    report.figure("overhead_vs_transformers", 100 * overhead, "%",
                  reference=f"bare SigLIP + Qwen2 forward+backward {bare_s * 1e3:.1f} ms, ours "
                            f"{ours_s * 1e3:.1f} ms (median of {repeats}; {rows} rows x {seq} "
                            f"tokens, {frames} frames each)",
                  target="<= 15%", met=overhead <= 0.15)  # fmt: skip
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


def bench_memory(report: Report, quick: bool = False) -> float:
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint

    config = tiny_config(
        vocab_size=4000 if quick else 32000,
        hidden_size=256 if quick else 1024,
        vision_hidden_size=128 if quick else 512,
        num_layers=2 if quick else 12,
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
                    "intermediate_size": 704 if quick else 2816,
                }
            ),
        }
    )
    worst, loaded = 0.0, []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = LlavactionForCausalLM(config)
        for dtype in (torch.bfloat16,) if quick else (torch.bfloat16, torch.float32):
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
            loaded.append(f"{size / 2**20:.0f} MiB of {str(dtype)[6:]} shards {ratio:.2f}x")
        del model
    report.figure("streaming_load_peak_memory", worst, "x",
                  reference=f"the loaded fp32 weights ({data['weights'] / 2**20:.0f} MiB); peak "
                            f"RSS growth, the larger of: {', '.join(loaded)}",
                  target="<= 1.2x", met=worst <= 1.2)  # fmt: skip
    return worst


def bench_gpu(report: Report) -> None:
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
        report.figure(f"gpu_prefill_{frames}_frames", tokens / elapsed, "tokens/s",
                      reference=f"0.5B shape, bf16, {tokens} tokens in {elapsed * 1e3:.0f} ms; "
                                f"peak GPU memory {peak:.2f} GiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--skip-memory", action="store_true")
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_model", args.quick)
    if args.quick:
        args.questions, args.batch, args.repeats, args.frames = 4, [1, 2], 1, 4
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    processor = mqa_processor()
    for batch in args.batch:
        bench_scorer(args.questions, batch, args.frames, args.repeats, processor, report)
    bench_overhead(args.repeats, report, args.quick)
    if not args.skip_memory:
        bench_memory(report, args.quick)
    if torch.cuda.is_available() and not args.quick:
        bench_gpu(report)


if __name__ == "__main__":
    main()
