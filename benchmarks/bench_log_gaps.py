"""Logs off a terminal: the longest silence between lines of an evaluation, a demo and its
training, and how soon an evaluation's first request leaves after it says "started".

Each command runs in a fresh process with its output piped (not a terminal, as in a cluster
log); every line is stamped when it arrives. The interval (``VERBNOUN_PROGRESS_SECONDS``,
30 s by default) is scaled down here (``--interval``, 1 s) with a model slower than it, so that
the check takes a minute instead of an hour; the same runs with the timed lines off (an interval
of 10^9 s: the 5 % steps and the stage lines only, as before issue 23) are the reference,
measured in the same run.

1. **eval**: ``verbnoun eval --model openai`` on the synthetic kitchen's videos (2 frame
   workers, the default) against ``tests/fake_openai.py`` answering after ``--latency`` seconds
   (3 s), one request at a time. Printed: the longest silence after the first line, against the
   interval (target: no longer than the interval, plus ``--slack`` for the timer thread's
   wake-up), and the seconds from ``evaluating: started`` to the first request at the server
   (target: under 2 s).
2. **demo**: :func:`verbnoun.demo.run_demo` with small settings (6 videos, 12 training steps,
   2 specialist epochs): every stage, training and evaluation included. Printed: the longest
   silence after the first line and the lines around it.

    nice -n 10 .venv/bin/python benchmarks/bench_log_gaps.py [--interval 1] [--latency 3]
        [--questions 4] [--no-demo] [--quick]

``--quick``: 2 questions answered in 0.5 s at an interval of 0.25 s, no demo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from results import Report, quick_flag

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
OFF = "1000000000"  # the timed lines off: the reference
KEY_ENV = "VERBNOUN_LOG_GAPS_KEY"


def stamped(command: list[str], env: dict) -> tuple[list[tuple[float, str]], float]:
    """Run ``command`` with its output piped; each line with the second it arrived (since the
    process started), and the process's start (``time.monotonic``)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, cwd=ROOT)  # fmt: skip
    lines = [(time.monotonic() - started, line.rstrip("\n")) for line in process.stdout]
    if process.wait() != 0:
        raise RuntimeError("\n".join(text for _, text in lines[-20:]))
    return lines, started


def longest_silence(lines: list[tuple[float, str]]) -> tuple[float, str, str]:
    """The longest gap between two lines after the first, with the lines around it."""
    gap, before, after = 0.0, "", ""
    for (t0, a), (t1, b) in pairwise(lines):
        if t1 - t0 > gap:
            gap, before, after = t1 - t0, a, b
    return gap, before, after


def kitchen(root: Path, count: int) -> tuple[Path, Path]:
    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.bench.questions import read_questions, write_questions
    from verbnoun.data.synth import render_kitchen

    render_kitchen(root / "kitchen", videos=2, seed=0, workers=1)
    questions = root / "q.jsonl"
    build_benchmark(root / "kitchen" / "annotations", questions, BuildSettings(split="train"))
    write_questions(questions, read_questions(questions)[:count])
    return root / "kitchen" / "videos", questions


def run_eval(root: Path, videos: Path, questions: Path, interval: str, latency: float, tag: str):
    from fake_openai import FakeOpenAI, completion

    arrivals: list[float] = []

    def respond(body, headers):
        arrivals.append(time.monotonic())
        time.sleep(latency)
        return 200, completion(json.dumps({"answer": "A"})), {}

    env = {**os.environ, KEY_ENV: "sk-bench", "VERBNOUN_PROGRESS_SECONDS": interval}
    with FakeOpenAI(respond) as server:
        command = [
            sys.executable, "-m", "verbnoun.cli", "eval", "--questions", str(questions),
            "--model", "openai", "--api-model", "slow", "--base-url", server.url,
            "--api-key-env", KEY_ENV, "--videos", str(videos), "--concurrency", "1",
            "--out", str(root / f"run-{tag}"),
        ]  # fmt: skip
        lines, started = stamped(command, env)
    said = next(t for t, text in lines if text.startswith("evaluating: started"))
    first_request = arrivals[0] - started - said
    return lines, first_request


def run_demo(root: Path, interval: str):
    env = {**os.environ, "VERBNOUN_PROGRESS_SECONDS": interval}
    code = (
        "import sys; from verbnoun.demo import run_demo; run_demo(sys.argv[1], seed=0, "
        "videos=6, validation_videos=0, steps=12, specialist_epochs=2, progress=True)"
    )
    lines, _ = stamped([sys.executable, "-c", code, str(root)], env)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--slack", type=float, default=0.5)
    parser.add_argument("--latency", type=float, default=3.0)
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True)
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_log_gaps", args.quick)
    if args.quick:
        args.interval, args.latency, args.questions, args.demo = 0.25, 0.5, 2, False
    interval = str(args.interval)
    limit = args.interval + args.slack
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos, questions = kitchen(root, args.questions)
        results = {}
        for tag, value in (("timed", interval), ("reference", OFF)):
            results[tag] = run_eval(root, videos, questions, value, args.latency, tag)
        (lines, first), (ref_lines, ref_first) = results["timed"], results["reference"]
        gap, before, after = longest_silence(lines)
        ref_gap = longest_silence(ref_lines)[0]
        report.figure("eval_longest_silence", gap, "s",
                      reference=f"{ref_gap:.2f} s with the timed lines off; {args.questions} "
                                f"questions, endpoint answering in {args.latency:g} s, "
                                f"VERBNOUN_PROGRESS_SECONDS={interval}",
                      target=f"<= {limit:g} s (interval + slack)", met=gap <= limit)  # fmt: skip
        print(f"  between {before!r} and {after!r}; first line {lines[0][0]:.1f} s after the "
              "process started")  # fmt: skip
        report.figure("eval_first_request", first, "s",
                      reference=f"{ref_first:.2f} s in the run with the timed lines off; after "
                                "'evaluating: started'", target="< 2 s", met=first < 2)  # fmt: skip
        if not args.demo:
            return
        demo = {tag: run_demo(root / f"demo-{tag}", value)
                for tag, value in (("timed", interval), ("reference", OFF))}  # fmt: skip
        gap, before, after = longest_silence(demo["timed"])
        ref_gap, ref_before, ref_after = longest_silence(demo["reference"])
        report.figure("demo_longest_silence", gap, "s",
                      reference=f"{ref_gap:.2f} s with the timed lines off; demo of 6 videos, "
                                f"12 steps ({demo['timed'][-1][0]:.0f} s), "
                                f"VERBNOUN_PROGRESS_SECONDS={interval}",
                      target=f"<= {limit:g} s (interval + slack)", met=gap <= limit)  # fmt: skip
        print(f"  between {before!r} and {after!r}")
        print(f"  reference: between {ref_before!r} and {ref_after!r}")


if __name__ == "__main__":
    main()
