"""Standing parity check against the authors' code (issue 12): same clip, same checkpoint, same
answer, step by step.

A person runs it (not in the test suite; it builds a venv with the authors' package the first
time, a few minutes):

    .venv/bin/python benchmarks/parity_original.py [--frames 8] [--max-new-tokens 12]
    .venv/bin/python benchmarks/parity_original.py --timing-only   # step 6 alone, no venv
    .venv/bin/python benchmarks/parity_original.py --quick   # 2 frames, 2 tokens, temp folder;
                                                             # without a built venv: step 6 only

What it does, in ``runs/parity-original/`` (kept for inspection):

1. the authors' venv (``original_env.py``); the real Qwen2 tokenizer (built from the BPE ranks of
   the ``dashscope`` test dependency);
2. a chunk-layout video (``P01/P01_01.MP4/{0,15}.MP4``, 30 fps, 910x512) re-encoded from a real
   EPIC-KITCHENS clip of ``shared/data/sample-videos``;
3. with the ORIGINAL's own classes and ``save_pretrained``: two tiny random checkpoints, bf16 and
   sharded, in the released styles: ``tied`` (LLaVAction-0.5B: tied head, 151,936 embedding
   rows, ``one_token`` newline) and ``untied`` (LLaVAction-7B: separate head, 152,064 rows,
   ``grid`` newlines); their tower is named by a hub id and lives in a local Hugging Face cache,
   as a downloaded release does (our loader finds it there, offline); the head's rows past the
   tokenizer are scaled up so that they would win every argmax if they were ever scored;
4. the original's documented inference path (``SelectiveInferencer`` -> ``avion_video_loader``
   -> ``llava_inference``) in a subprocess with the authors' venv, and ours, on three segments:
   inside a chunk, across the 15 s chunk boundary, and past the video's end;
5. compares, in order, frame ids, frames, pixel values, prompt text, input ids, last-position
   logits (over the tokenizer's tokens; the original resizes its embeddings to the tokenizer),
   the chosen letter (argmax of the option letters' logits), greedy tokens and their text, and
   names the first step that differs;
6. times our preprocessing of an 8-frame clip against the float-resize path it replaced.

Targets (printed with the measured values): pixels max |diff| <= 1e-6; logits max |diff| <=
1e-4 (float32, both styles); greedy tokens and letters identical. Exit status 1 if one is missed.
The CPU shims the original needs are printed by its side (``parity_original_side.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from timing import best_of

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from original_env import original_python, ready_python  # noqa: E402
from results import Report, quick_flag  # noqa: E402

SIDE = Path(__file__).resolve().parent / "parity_original_side.py"
SAMPLE = ROOT.parent / "shared/data/sample-videos/epic-kitchens-avt-demo/248.mp4"
TOWER_ID = "verbnoun-parity/siglip-tiny-patch14-384"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"
VIDEO_ID = "P01_01"
FPS = 30
CHUNK = 15
OPTIONS = ["open tap", "wash plate", "take sponge", "rinse knife", "close tap"]
SEGMENTS = {  # name: (start, stop) in seconds; the video is 25 s long (chunks 0 and 15)
    "inside": (2.3, 6.8),
    "boundary": (12.4, 17.9),
    "past_end": (21.0, 27.5),
}
PIXEL_TARGET = 1e-6
LOGIT_TARGET = 1e-4
TOWER = {  # SigLIP at 384 px / patch 14 (729 tokens: the original asserts it), tiny width
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "image_size": 384,
    "patch_size": 14,
    "layer_norm_eps": 1e-6,
    "hidden_act": "gelu_pytorch_tanh",
}


def qwen_text(vocab_rows: int, tied: bool) -> dict:
    """A tiny Qwen2 language model with the released vocabulary rows and special ids."""
    return {
        "vocab_size": vocab_rows,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "tie_word_embeddings": tied,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "use_sliding_window": False,
        "torch_dtype": "bfloat16",
    }


def released_config(vocab_rows: int, tied: bool, newline: str) -> dict:
    return {
        **qwen_text(vocab_rows, tied),
        "architectures": ["LlavaQwenForCausalLM"],
        "mm_vision_tower": TOWER_ID,
        "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": TOWER["hidden_size"],
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_patch_merge_type": "spatial_unpad",
        "mm_newline_position": newline,
        "mm_spatial_pool_mode": "bilinear",
        "mm_spatial_pool_stride": 2,
        "image_aspect_ratio": "anyres_max_9",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "vision_supervision": "one_token",
        "vision_token_training": "last_layer",
        "action_types": "97,300,3806",
        "add_faster_video": False,
    }


STYLES = {
    "tied": dict(vocab_rows=151936, tied=True, newline="one_token", seed=2),
    "untied": dict(vocab_rows=152064, tied=False, newline="grid", seed=3),
}


# ---- inputs --------------------------------------------------------------------------------


def write_tokenizer(directory: Path) -> Path:
    """The real Qwen2 tokenizer, saved so that transformers 4.45 (the original's) reads it."""
    sys.path.insert(0, str(ROOT / "tests" / "model"))
    from conftest import qwen_tiktoken_file
    from verbnoun.model.tokenization import qwen2_from_tiktoken

    ranks = qwen_tiktoken_file()
    if ranks is None:
        sys.exit("needs the dashscope wheel's Qwen BPE ranks: pip install --no-deps dashscope")
    tokenizer = qwen2_from_tiktoken(ranks)
    tokenizer.save_pretrained(str(directory))
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "Qwen2TokenizerFast"  # the released directories' class
    path.write_text(json.dumps(config, indent=2))
    return directory


def write_chunks(root: Path, short: bool = False) -> Path:
    """A 25 s chunk-layout video at 30 fps, 910x512, from a real EPIC-KITCHENS clip (16:9 crop
    of the 768x768 sample, resampled in time to 30 fps); ``short``: its first 8 s only (what
    the timing of the ``inside`` segment reads)."""
    from PIL import Image

    from verbnoun.data.synth import write_video
    from verbnoun.data.video import read_clip

    folder = root / "P01" / f"{VIDEO_ID}.MP4"
    if (folder / "15.MP4").is_file() or (short and (folder / "0.MP4").is_file()):
        return root
    folder.mkdir(parents=True, exist_ok=True)
    for start, seconds in ((0, 8),) if short else ((0, CHUNK), (CHUNK, 10)):
        count = seconds * FPS
        clip = read_clip(SAMPLE, start, start + seconds, count)

        def frames(clip=clip):
            for frame in clip.frames:
                crop = Image.fromarray(np.ascontiguousarray(frame[168:600]))
                yield np.asarray(crop.resize((910, 512), Image.Resampling.BILINEAR))

        write_video(folder / f"{start}.MP4", frames(), FPS, crf=18)
    return root


def run_side(python: Path, mode: str, job: dict, work: Path, env: dict) -> Path:
    out = work / f"original-{mode}-{job.get('style', 'all')}"
    job_path = work / f"job-{mode}-{job.get('style', 'all')}.json"
    job_path.write_text(json.dumps(job, indent=2))
    command = [str(python), str(SIDE), mode, str(job_path), str(out)]
    completed = subprocess.run(command, cwd=work, env=env, text=True, capture_output=True)
    for line in completed.stdout.splitlines():
        if line.startswith("[original]"):
            print("  " + line)
    if completed.returncode:
        sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-6000:])
        sys.exit(f"the original's side failed ({mode}, exit {completed.returncode})")
    return out


# ---- ours ----------------------------------------------------------------------------------


@dataclass
class Ours:
    frame_ids: list[int]
    frames: np.ndarray
    pixels: np.ndarray
    prompt: str
    input_ids: list[int]
    logits: np.ndarray
    tokens: list[int]
    text: str
    letter_ids: list[int]


def run_ours(checkpoint: Path, root: Path, start: float, stop: float, args) -> Ours:
    from verbnoun.bench import prompts
    from verbnoun.data.layouts import ChunkLayout
    from verbnoun.data.video import VideoReader
    from verbnoun.model.checkpoint import load_pretrained
    from verbnoun.model.inference import generate, within_vocab

    model, processor = load_pretrained(checkpoint, device="cpu", dtype=torch.float32)
    clip = VideoReader(ChunkLayout(root, chunk_seconds=CHUNK)).read(
        VIDEO_ID, start, stop, args.frames
    )
    pixels = processor.pixel_values(clip.frames)
    turn = prompts.user_turn(prompts.mqa_task(OPTIONS), duration=stop - start, n_frames=args.frames)
    prompt = prompts.chat_prompt(turn)
    ids = processor.tokenize(prompt)
    tensor = torch.tensor(ids, dtype=torch.long)
    with torch.no_grad():
        batch = model.prepare([tensor], [pixels], padding_side="left")
        logits = model.run(batch, logits_to_keep=1).logits[0, -1].float()
    logits = within_vocab(logits, processor.vocab_limit)
    (tokens,) = generate(
        model,
        [tensor],
        [pixels],
        eos_ids=processor.eos_ids,
        max_new_tokens=args.max_new_tokens,
        vocab_limit=processor.vocab_limit,
    )
    return Ours(
        frame_ids=[int(i) for i in clip.indices],
        frames=clip.frames,
        pixels=pixels.numpy(),
        prompt=prompt,
        input_ids=ids,
        logits=logits.numpy(),
        tokens=tokens,
        text=processor.decode(tokens),
        letter_ids=processor.option_letter_ids(len(OPTIONS)),
    )


def old_pixels(frames: np.ndarray, size: int) -> torch.Tensor:
    """The path this project used before issue 12: one float bicubic pass (antialiased),
    rounded to 8 bits, then scaled; the reference of the timing ratio."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(
        x, size=(size, size), mode="bicubic", antialias=True, align_corners=False
    )
    return (x.round().clamp(0, 255) / 255.0 - 0.5) / 0.5


# ---- comparison ----------------------------------------------------------------------------


def compare(name: str, style: str, ours: Ours, theirs: Path, stop_ids: set[int]) -> dict:
    record = json.loads((theirs / "infer.json").read_text())
    frames = np.load(theirs / "frames.npy", allow_pickle=False)
    pixels = np.load(theirs / "pixels.npy", allow_pickle=False)
    logits = np.load(theirs / "logits.npy", allow_pickle=False)
    their_tokens = [t for t in record["tokens"]]
    while their_tokens and their_tokens[-1] in stop_ids:  # generate keeps the end token
        their_tokens.pop()
    vocab = min(len(logits), len(ours.logits))
    letters_ours = int(np.argmax(ours.logits[ours.letter_ids]))
    letters_theirs = int(np.argmax(logits[ours.letter_ids]))
    steps = [
        ("frame ids", record["frame_ids"][-1] == ours.frame_ids, ""),
        (
            "frames",
            frames.shape == ours.frames.shape and np.array_equal(frames, ours.frames),
            "",
        ),
        ("pixels", None, ""),
        ("prompt text", record["prompt"] == ours.prompt, ""),
        ("input ids", record["input_ids"] == ours.input_ids, ""),
        ("logits", None, ""),
        ("letter", letters_ours == letters_theirs, f"{'ABCDE'[letters_ours]}"),
        ("greedy tokens", their_tokens == ours.tokens, ""),
        ("text", record["text"].strip() == ours.text.strip(), ""),
    ]
    pixel_diff = (
        float(np.abs(pixels - ours.pixels).max()) if pixels.shape == ours.pixels.shape else np.inf
    )
    logit_diff = float(np.abs(logits[:vocab] - ours.logits[:vocab]).max())
    result = {
        "style": style,
        "segment": name,
        "pixels_max_diff": pixel_diff,
        "logits_max_diff": logit_diff,
        "their_rows": record["vocab_rows"],
        "first_divergence": None,
    }
    for step, same, note in steps:
        if step == "pixels":
            same = pixel_diff <= PIXEL_TARGET
        if step == "logits":
            same = logit_diff <= LOGIT_TARGET
        result[step.replace(" ", "_")] = bool(same)
        if not same and result["first_divergence"] is None:
            result["first_divergence"] = step
        if step == "letter":
            result["letter_ours"] = note
    result["tokens"] = ours.tokens
    result["their_tokens"] = their_tokens
    return result


def time_preprocessing(frames: np.ndarray, repeats: int) -> dict:
    from verbnoun.model.processor import preprocess_frames

    ours = best_of(lambda: preprocess_frames(frames, 384), repeats)
    old = best_of(lambda: old_pixels(frames, 384), repeats)
    return {"ours_s": ours, "old_s": old, "ratio_ours_over_old": ours / old}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "parity-original")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--timing-only", action="store_true", help="only time our preprocessing (no venv)"
    )
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("parity_original", args.quick)
    if not SAMPLE.is_file():  # the real EK100 clip every step reads
        report.skip(f"the sample video {SAMPLE} is not here")
    if args.quick:
        import tempfile

        args.work = Path(tempfile.mkdtemp(prefix="parity-original-quick-"))
        args.frames, args.max_new_tokens, args.repeats = 2, 2, 1
        if ready_python() is None:
            print("parity with the authors' code: left out, their venv is not built "
                  "(python benchmarks/original_env.py builds it); step 6 only")  # fmt: skip
            args.timing_only = True
    torch.set_num_threads(args.threads)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.timing_only:
        return timing_only(work, args, report)
    python = original_python()
    home = work / "hf-home"
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    env.pop("HF_HUB_CACHE", None)
    os.environ.update(HF_HOME=str(home), HF_HUB_OFFLINE="1")
    os.environ.pop("HF_HUB_CACHE", None)

    print("inputs: Qwen2 tokenizer, chunk-layout video, tiny checkpoints (original's save)")
    tokenizer = write_tokenizer(work / "tokenizer")
    videos = write_chunks(work / "videos")
    snapshot = home / "hub" / f"models--{TOWER_ID.replace('/', '--')}" / "snapshots" / SNAPSHOT
    styles = []
    for style, spec in STYLES.items():
        config = released_config(spec["vocab_rows"], spec["tied"], spec["newline"])
        # relative names: the original switches settings on substrings of the path (ov, 7b, video)
        styles.append(
            {
                "directory": str(work / style),
                "config": config,
                "seed": spec["seed"],
                "max_shard_size": "8MB",
                "beyond_scale": 50.0,
            }
        )
    save_job = {
        "tower": {"config": TOWER},
        "tower_snapshot": str(snapshot),
        "tokenizer": str(tokenizer),
        "styles": styles,
    }
    run_side(python, "save", save_job, work, env)

    results = []
    for style in STYLES:
        checkpoint = work / style
        segments = [
            {
                "name": name,
                "uid": f"P01-{VIDEO_ID}_{start}_{stop}",
                "options": [f"{'ABCDE'[i]}. {text}" for i, text in enumerate(OPTIONS)],
            }
            for name, (start, stop) in SEGMENTS.items()
        ]
        job = {
            "style": style,
            "data_root": str(videos),
            "checkpoint": style,  # relative to the work folder (see above)
            "frames": args.frames,
            "max_new_tokens": args.max_new_tokens,
            "time_instruction": True,
            "task": "mc_top5_GT_random_narration",
            "segments": segments,
            "threads": args.threads,
        }
        print(f"\n== {style}: the original's inference path")
        theirs = run_side(python, "infer", job, work, env)
        from verbnoun.model.checkpoint import end_token_ids, read_config

        stop_ids = end_token_ids(checkpoint, read_config(checkpoint)) or set()
        for name, (start, stop) in SEGMENTS.items():
            ours = run_ours(checkpoint, videos, start, stop, args)
            results.append(compare(name, style, ours, theirs / name, stop_ids))
            print_result(results[-1])

    frames = np.load(work / "original-infer-tied" / "inside" / "frames.npy", allow_pickle=False)
    timing = time_preprocessing(frames, args.repeats)
    old = old_pixels(frames, 384).numpy()
    theirs = np.load(work / "original-infer-tied" / "inside" / "pixels.npy", allow_pickle=False)
    timing["old_path_pixels_max_diff"] = float(np.abs(old - theirs).max())
    summary = summarise(results, timing, args, report)
    (work / "parity.json").write_text(json.dumps({"results": results, **summary}, indent=2))
    print(f"\nwritten: {work / 'parity.json'}")
    return 0 if summary["all_targets_met"] else 1


def timing_only(work: Path, args, report: Report) -> int:
    """Our preprocessing of an 8-frame clip of the chunk video against the old float path."""
    from verbnoun.data.layouts import ChunkLayout
    from verbnoun.data.video import VideoReader
    from verbnoun.model.processor import preprocess_frames

    videos = write_chunks(work / "videos", short=args.quick)
    start, stop = SEGMENTS["inside"]
    reader = VideoReader(ChunkLayout(videos, chunk_seconds=CHUNK))
    frames = reader.read(VIDEO_ID, start, stop, args.frames).frames
    timing = time_preprocessing(frames, args.repeats)
    diff = np.abs(old_pixels(frames, 384).numpy() - preprocess_frames(frames, 384).numpy())
    report.figure("preprocessing_time_vs_float_path", timing["ratio_ours_over_old"], "x",
                  reference=f"the old float-resize path {timing['old_s'] * 1e3:.1f} ms per "
                            f"{args.frames}-frame clip ({frames.shape[2]}x{frames.shape[1]}), ours "
                            f"{timing['ours_s'] * 1e3:.1f} ms, {args.threads} thread(s); pixels "
                            f"differ by up to {diff.max():.3f}")  # fmt: skip
    if args.quick:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


def print_result(result: dict) -> None:
    first = result["first_divergence"] or "none"
    flags = " ".join(
        f"{k}={'ok' if result[k] else 'DIFF'}"
        for k in ("frame_ids", "frames", "prompt_text", "input_ids", "letter", "greedy_tokens")
    )
    print(
        f"  {result['segment']:<9} {flags} pixels {result['pixels_max_diff']:.2e} "
        f"logits {result['logits_max_diff']:.2e} first divergence: {first}"
    )


def summarise(results: list[dict], timing: dict, args, report: Report) -> dict:
    pixels = max(r["pixels_max_diff"] for r in results)
    logits = {s: max(r["logits_max_diff"] for r in results if r["style"] == s) for s in STYLES}
    tokens = all(r["greedy_tokens"] for r in results)
    letters = all(r["letter"] for r in results)
    exact = all(r[k] for r in results for k in ("frame_ids", "frames", "prompt_text", "input_ids"))
    met = pixels <= PIXEL_TARGET and max(logits.values()) <= LOGIT_TARGET and tokens and letters
    print("\n== targets")
    print(f"  frame ids, frames, prompt text, input ids identical: {exact}")
    print(f"  pixels max |diff| {pixels:.2e} (target <= {PIXEL_TARGET:g})")
    for style, value in logits.items():
        print(f"  logits max |diff| {style:<6} {value:.2e} (target <= {LOGIT_TARGET:g}, float32)")
    print(f"  greedy tokens identical: {tokens}; chosen letters identical: {letters}")
    print(
        f"  preprocessing per {args.frames}-frame clip: ours {timing['ours_s'] * 1e3:.1f} ms, "
        f"old float path {timing['old_s'] * 1e3:.1f} ms, ratio {timing['ratio_ours_over_old']:.2f}"
        f" ({args.threads} thread(s)); old path vs original pixels max |diff| "
        f"{timing['old_path_pixels_max_diff']:.3f}"
    )
    print(f"  all targets met: {met}")
    report.figure("pixels_max_diff", pixels, "", reference="the original's pixel values",
                  target=f"<= {PIXEL_TARGET:g}", met=pixels <= PIXEL_TARGET)  # fmt: skip
    for style, value in logits.items():
        report.figure(f"logits_max_diff_{style}", value, "",
                      reference="the original's last-position logits (float32)",
                      target=f"<= {LOGIT_TARGET:g}", met=value <= LOGIT_TARGET)  # fmt: skip
    differ = sum(not (r["greedy_tokens"] and r["letter"]) for r in results)
    report.figure("segments_differing", differ, f"of {len(results)}",
                  reference="greedy tokens and chosen letter against the original's",
                  target="0", met=differ == 0)  # fmt: skip
    report.figure("preprocessing_time_vs_float_path", timing["ratio_ours_over_old"], "x",
                  reference=f"the old float-resize path {timing['old_s'] * 1e3:.1f} ms per "
                            f"{args.frames}-frame clip")  # fmt: skip
    return {
        "pixels_max_diff": pixels,
        "logits_max_diff": logits,
        "tokens_identical": tokens,
        "letters_identical": letters,
        "steps_identical": exact,
        "timing": timing,
        "all_targets_met": met,
    }


if __name__ == "__main__":
    sys.exit(main())
