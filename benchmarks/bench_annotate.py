"""``verbnoun annotate`` on the synthetic kitchen: quality, decoding and memory, in one run.

1. **Quality** (held-out videos of the demo's kitchen, ground truth from its annotations): the
   demo's specialist and its trained tiny LLaVAction (two-stage: the specialist's top-5 as
   options, option likelihood) against the majority-class baseline, each smoothed (Viterbi over a
   sticky prior, minimum duration) and unsmoothed (per-window answers); the oracle (true label
   at each window's centre) shows the ceiling at this window size.
   Targets: smoothing beats unsmoothed windows on edit score and F1@25; the specialist and the
   tiny model far above the majority baseline on F1@25.
2. **Decoding**: overlapping windows over a kitchen video, streamed (each packet decoded at most
   once) against naive per-window decoding (one seek and decode per window), in the same run.
   Target: packets decoded per video frame <= 1.05 streamed; the speed ratio is printed.
3. **Memory**: peak resident memory of a whole annotate run (streaming, model, windows.jsonl,
   thumbnails, outputs) over a video and over one 10x longer, each in a fresh process.
   Target: within 1.2x.

Needs a finished demo run (``make demo``; ``--demo`` elsewhere); the other stages reuse it.

    nice -n 10 .venv/bin/python benchmarks/bench_annotate.py [--demo runs/demo] [--videos 6]
        [--window 1.0] [--stride 0.5] [--repeats 3] [--skip quality,decoding,memory]
        [--work DIR] [--quick]

``--quick``: no demo needed: decoding on a 3-video kitchen rendered here (one timing turn) and
memory over 4 s and 40 s; quality needs the demo's trained models and is left out.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import Report, quick_flag

KEYS = ("frame_accuracy", "edit", "f1@10", "f1@25", "f1@50")


def line(name: str, m: dict) -> str:
    return f"  {name:<28}" + "".join(f"{m[k]:>8.1f}" for k in KEYS)


def quality(demo: Path, work: Path, args, report: Report) -> dict:
    from verbnoun.annotate.models import AdapterModel, OracleModel, SpecialistModel
    from verbnoun.annotate.runner import AnnotateSettings, VideoSource, plan, run_annotation
    from verbnoun.annotate.scoring import rasterise, read_truth
    from verbnoun.annotate.smoothing import SmoothingSettings
    from verbnoun.annotate.vocabulary import from_dataset
    from verbnoun.data.dataset import open_dataset
    from verbnoun.evaluate.local_adapter import LlavactionAdapter

    frames, size = _demo_frames()
    description = demo / "kitchen" / "dataset.yaml"
    dataset = open_dataset(annotations=description)
    videos = sorted({s.video_id for s in dataset.segments("validation")})[: args.videos]
    behaviours = from_dataset(dataset, str(description))
    sources = [VideoSource(v, dataset.video_layout()) for v in videos]
    settings = AnnotateSettings(window=args.window, stride=args.stride, thumbnails=False)
    smooth = SmoothingSettings(method="viterbi", switch=args.switch, min_duration=args.min_duration)
    specialist = SpecialistModel(demo / "specialist", behaviours)
    checkpoint = sorted((demo / "train" / "model" / "checkpoints").glob("step-*"))[-1]
    tiny = AdapterModel(
        LlavactionAdapter(checkpoint, mode="text", device="cpu"), behaviours, mode="two-stage",
        frames=frames, size=size, specialist=specialist, top_k=5,
    )  # fmt: skip
    planned = plan(sources, settings)
    spans = read_truth(description, behaviours, set(videos), "validation")
    truth = {p.info.video_id: rasterise(spans[p.info.video_id], p.info.num_frames, p.info.fps)
             for p in planned}  # fmt: skip
    models = {"oracle": OracleModel(truth, "truth"), "specialist": specialist, "tiny-model": tiny}
    seconds = sum(p.info.num_frames / p.info.fps for p in planned)
    print(f"quality: {len(videos)} held-out kitchen videos ({seconds:.0f} s), window "
          f"{args.window:g} s, stride {args.stride:g} s, {len(behaviours)} actions; smoothing: "
          f"viterbi switch {args.switch:g}, min duration {args.min_duration:g} s")  # fmt: skip
    print(f"  {'':<28}" + "".join(f"{k:>8}" for k in ("acc", "edit", "F1@10", "F1@25", "F1@50")))
    results: dict = {}
    for name, model in models.items():
        start = time.perf_counter()
        result = run_annotation(
            work / name, sources, model, behaviours, settings, smooth, truth=description,
            truth_split="validation",
        )  # fmt: skip
        took = time.perf_counter() - start
        scores = json.loads((work / name / "scores.json").read_text())
        results[name] = scores
        print(line(f"{name} smoothed", scores["model"]) + f"   ({took:.0f} s, "
              f"{result['windows']} windows)")  # fmt: skip
        print(line(f"{name} unsmoothed", scores["unsmoothed"]))
    print(line("majority baseline", results["specialist"]["majority"]))
    majority = results["specialist"]["majority"]["f1@25"]
    for name in ("specialist", "tiny-model"):
        s, u = results[name]["model"], results[name]["unsmoothed"]
        key = name.replace("-", "_")
        report.figure(f"{key}_edit_smoothed", s["edit"], "",
                      reference=f"unsmoothed windows {u['edit']:.1f}",
                      target="above unsmoothed", met=s["edit"] > u["edit"])  # fmt: skip
        report.figure(f"{key}_f1_25_smoothed", s["f1@25"], "",
                      reference=f"unsmoothed windows {u['f1@25']:.1f}; majority baseline "
                                f"{majority:.1f}", target="above unsmoothed and far above "
                                "the majority baseline",
                      met=s["f1@25"] > u["f1@25"] and s["f1@25"] > majority)  # fmt: skip
    return results


def _demo_frames() -> tuple[int, int]:
    """Frames and size the demo's model was trained with."""
    try:
        from verbnoun.demo import DemoRecipe

        return DemoRecipe().frames, DemoRecipe().size
    except ImportError:
        from verbnoun.demo import FRAMES, SIZE

        return FRAMES, SIZE


def decoding(demo: Path, args, report: Report) -> None:
    from verbnoun.annotate.windows import StreamingReader, naive_windows, sliding_windows
    from verbnoun.data.dataset import open_dataset
    from verbnoun.data.video import PyAVBackend, VideoReader

    dataset = open_dataset(annotations=demo / "kitchen" / "dataset.yaml")
    layout = dataset.video_layout()
    video = sorted({s.video_id for s in dataset.segments("validation")})[0]
    views = {"model": (8, 32), "thumb": (1, (64, 64))}
    for window, stride in ((2.0, 0.5), (2.0, 0.25)):
        info = VideoReader(layout).info(video)
        windows = sliding_windows(video, info.num_frames, info.fps, window, stride)
        times: dict[str, list[float]] = {"stream": [], "naive": []}
        for _ in range(args.repeats):  # the methods take turns; the fastest of each counts
            stream = StreamingReader(VideoReader(layout), views)
            start = time.perf_counter()
            ours = sum(1 for _ in stream.windows(info, windows))
            times["stream"].append(time.perf_counter() - start)
            backend = PyAVBackend()
            start = time.perf_counter()
            naive = sum(1 for _ in naive_windows(VideoReader(layout, backend), info, windows,
                                                 views))  # fmt: skip
            times["naive"].append(time.perf_counter() - start)
            assert ours == naive == len(windows)
        t_stream, t_naive = min(times["stream"]), min(times["naive"])
        per_frame = stream.decoded / info.num_frames
        setting = (f"{video} ({info.num_frames} frames), window {window:g} s stride "
                   f"{stride:g} s ({len(windows)} windows)")  # fmt: skip
        key = f"overlap_{window / stride:.0f}x".replace(".", "_")
        report.figure(f"{key}_packets_per_frame", per_frame, "",
                      reference=f"{backend.decoded_packets / info.num_frames:.2f} decoding "
                                f"each window on its own; {setting}",
                      target="<= 1.05", met=per_frame <= 1.05)  # fmt: skip
        report.figure(f"{key}_windows_per_s", len(windows) / t_stream, "windows/s",
                      reference=f"{len(windows) / t_naive:.1f} windows/s decoding each window "
                                f"on its own ({t_naive / t_stream:.1f}x); best of "
                                f"{args.repeats}")  # fmt: skip


class FrameMeanModel:
    """A model without weights that needs frames: the label by mean brightness (memory test)."""

    name = "frame-mean"

    def __init__(self, labels):
        self.labels = list(labels)
        self.views = {"model": (8, 64)}

    def settings(self) -> dict:
        return {}

    def answer(self, windows, frames):
        from verbnoun.annotate.models import Answer

        out = []
        for clip in frames:
            k = int(clip["model"].mean()) % len(self.labels)
            out.append(Answer(self.labels[k], {self.labels[k]: 0.0}))
        return out


def memory_child(video: Path, out: Path) -> None:
    from verbnoun.annotate.runner import AnnotateSettings, VideoSource, run_annotation
    from verbnoun.annotate.smoothing import SmoothingSettings
    from verbnoun.annotate.vocabulary import from_list
    from verbnoun.data.layouts import FileLayout

    behaviours = from_list("a,b,c,d")
    result = run_annotation(
        out, [VideoSource("long", FileLayout(video))], FrameMeanModel(behaviours.labels),
        behaviours, AnnotateSettings(window=2.0, stride=0.5), SmoothingSettings(),
    )  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rss_mb": rss, "windows": result["windows"]}))


def memory(work: Path, args, report: Report) -> None:
    from verbnoun.data.synth import draw_frame_number, write_video

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    peaks = {}
    for seconds in (args.memory_seconds, 10 * args.memory_seconds):
        path = work / f"long-{seconds}.mp4"
        if not path.is_file():
            frames = (draw_frame_number(np.roll(texture, 2 * i, axis=1).copy(), i % 65536)
                      for i in range(seconds * 15))  # fmt: skip
            write_video(path, frames, 15, gop=30)
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(path), str(work / f"mem-{seconds}")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        peaks[seconds] = json.loads(out.stdout.strip().splitlines()[-1])
    (short, a), (long, b) = peaks.items()
    ratio = b["rss_mb"] / a["rss_mb"]
    report.figure("peak_rss_10x_longer_video", ratio, "x",
                  reference=f"peak RSS {a['rss_mb']:.0f} MB over {short} s, "
                            f"{b['rss_mb']:.0f} MB over {long} s", target="<= 1.2x",
                  met=ratio <= 1.2)  # fmt: skip


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--memory-child":
        memory_child(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"))
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--stride", type=float, default=0.5)
    parser.add_argument("--switch", type=float, default=0.1)
    parser.add_argument("--min-duration", type=float, default=0.5)
    parser.add_argument("--memory-seconds", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3, help="decoding timing turns")
    parser.add_argument("--skip", default="", help="comma-separated: quality,decoding,memory")
    parser.add_argument("--work", type=Path, default=None)
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_annotate", args.quick)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    work.mkdir(parents=True, exist_ok=True)
    skip = set(args.skip.split(","))
    if args.quick:
        from verbnoun.data.synth import render_kitchen

        render_kitchen(work / "quick-demo" / "kitchen", videos=3, seed=0, workers=1)
        args.demo, args.repeats, args.memory_seconds = work / "quick-demo", 1, 4
        skip.add("quality")
        print("quality: left out (it needs a finished demo's specialist and model)")
    elif not (args.demo / "specialist" / "specialist.json").is_file():
        sys.exit(f"no finished demo run at {args.demo}: run `make demo` (or pass --demo DIR)")
    if "decoding" not in skip:
        decoding(args.demo, args, report)
    if "memory" not in skip:
        memory(work, args, report)
    if "quality" not in skip:
        quality(args.demo, work, args, report)
    if args.quick and args.work is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
