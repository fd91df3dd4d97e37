"""Evaluations against an endpoint that misbehaves, measured on a local fault-injecting server.

The same questions (the synthetic kitchen's) are asked of ``tests/fake_openai.py`` answering
after ``--latency`` seconds, ``--concurrency`` at a time, in these runs:

1. **clean**: no faults (the reference of this run);
2. **30 % faults**: 30 % of the questions fail their first try, cycling through every failure
   kind (408, 409, 429 + Retry-After, 500, 502 HTML, 503 + Retry-After date, a timeout, a
   connection reset, a body cut mid-way, HTTP 200 HTML, no choices, null content, truncated JSON,
   a truncated event stream). Printed: every question answered exactly once, requests per
   question, wall time as a ratio to the clean run;
3. **dead**: the endpoint dies after a quarter of the questions; printed: when the run stopped
   (``--max-consecutive-failures 20``), the requests it spent on the dead endpoint, and that a
   rerun after it comes back asks only the rest;
4. **varying latency** (0 to 10x ``--latency`` per question, 30 % with one HTTP 500 first):
   replies streamed as they arrive (the runner now) against the same adapter seen through
   ``answer`` only, where each batch waits for its slowest question; printed: the ratio;
5. **bad key**: HTTP 401 on every request; printed: the requests sent before the run stopped.

Waits are scaled down (``--first-wait``) so the whole run takes under a minute.

    nice -n 10 .venv/bin/python benchmarks/bench_endpoint.py [--videos 64] [--concurrency 8]
        [--latency 0.02] [--first-wait 0.05] [--quick]

``--quick``: an 8-video kitchen's questions, concurrency 4, retries after 0.01 s, latency 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from results import Report, quick_flag

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "evaluate"))

KEY_ENV = "VERBNOUN_FAULTS_KEY"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=64, help="synthetic kitchen videos")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.02, help="server seconds per reply")
    parser.add_argument("--first-wait", type=float, default=0.05)
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("bench_endpoint", args.quick)
    if args.quick:
        args.videos, args.concurrency, args.first_wait, args.latency = 8, 4, 0.01, 0.005

    from test_endpoint_faults import FAULTS, KEY, Faulty, _frames_by_index

    from fake_openai import FakeOpenAI
    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.bench.questions import read_questions
    from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
    from verbnoun.evaluate.endpoint import EndpointDown, EndpointRefused, RetryPolicy
    from verbnoun.evaluate.openai_adapter import OpenAIAdapter
    from verbnoun.evaluate.records import failures
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation

    os.environ[KEY_ENV] = KEY
    work = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    annotations = write_kitchen_annotations(work / "a", kitchen_script(args.videos, 0))
    path = work / "q.jsonl"
    build_benchmark(annotations, path, BuildSettings(split="train"))
    questions = read_questions(path)[:870]  # the frames carry the index: at most 30 x 29
    from verbnoun.bench.questions import write_questions

    write_questions(path, questions)
    n = len(questions)
    frames = _frames_by_index(questions)

    class Slow(Faulty):
        def __call__(self, body, headers):
            time.sleep(args.latency)
            return super().__call__(body, headers)

    class BatchWise:
        """The adapter seen through ``answer`` only: each batch waits for its slowest question
        (how the runner asked before replies were streamed), the reference of stage 5."""

        def __init__(self, adapter):
            self.adapter, self.name, self.needs_frames = adapter, adapter.name, True
            self.stats = adapter.stats

        def settings(self):
            return self.adapter.settings()

        def answer(self, requests):
            return self.adapter.answer(requests)

    def evaluate(name, faulty, server=None, wrap=None):
        """One run against ``faulty`` (on ``server`` when given, so that a rerun has the same
        address): its folder, seconds, answered ids, requests the server saw, and the error
        that stopped it."""
        if server is None:
            with FakeOpenAI(faulty) as server:
                return evaluate(name, faulty, server, wrap)
        run = work / name
        retry = RetryPolicy(6, 300.0, args.first_wait, request_timeout=1.5)
        adapter = OpenAIAdapter("gpt-test", base_url=server.url, api_key_env=KEY_ENV,
                                concurrency=args.concurrency, retry=retry)  # fmt: skip
        if wrap is not None:
            adapter = wrap(adapter)
        start, error = time.perf_counter(), None
        try:
            run_evaluation(path, adapter, run, EvalSettings(frames=2), frame_source=frames,
                           progress=False, batch_size=4 * args.concurrency)  # fmt: skip
        except (EndpointDown, EndpointRefused) as stopped:
            error = stopped
        seconds = time.perf_counter() - start
        predictions = run / "predictions.jsonl"
        lines = predictions.read_text().splitlines() if predictions.is_file() else []
        ids = [json.loads(x)["id"] for x in lines]
        return run, seconds, ids, len(server.requests), error

    print(f"{n} questions, concurrency {args.concurrency}, server latency {args.latency} s")
    _, clean_s, ids, requests, _ = evaluate("clean", Slow())
    once = sorted(ids) == sorted(q.id for q in questions)
    print(f"clean:      {clean_s:6.2f} s  {requests / n:.2f} requests/question  "
          f"every question answered once: {once}")  # fmt: skip
    clean_requests = requests

    names = list(FAULTS)
    faulted = [i for i in range(n) if i % 10 in (0, 3, 6)]
    plan = {i: names[k % len(names)] for k, i in enumerate(faulted)}
    faulty = Slow(first=plan)
    _, faults_s, ids, requests, _ = evaluate("faults", faulty)
    once = sorted(ids) == sorted(q.id for q in questions)
    bounded = max(faulty.tries.values())
    print(f"30% faults: every question answered once: {once}; most tries of one question: "
          f"{bounded} ({len(plan)} faulted, {len(set(plan.values()))} kinds)")  # fmt: skip
    report.figure("faults_requests_per_question", requests / n, "",
                  reference=f"clean run {clean_requests / n:.2f}; {n} questions, 30% faulted "
                            "once", target="every question answered exactly once", met=once)  # fmt: skip
    report.figure("faults_wall_ratio", faults_s / clean_s, "x",
                  reference=f"clean run {clean_s:.2f} s (concurrency {args.concurrency}, "
                            f"latency {args.latency} s)")  # fmt: skip

    dead = Slow(healthy_for=n // 4)
    with FakeOpenAI(dead) as server:
        run, dead_s, ids, requests, error = evaluate("dead", dead, server)
        failed = failures(run)
        spent = requests - len(dead.ok)
        print(f"dead after {n // 4}: stopped in {dead_s:.2f} s with {len(ids)} answered, "
              f"{len(failed)} failed, {n - len(ids) - len(failed)} not asked; {spent} requests "
              f"spent on the dead endpoint; {type(error).__name__}")  # fmt: skip
        dead.healthy_for = None
        before, answered_before = dict(dead.tries), set(ids)
        run, healed_s, ids, _, _ = evaluate("dead", dead, server)
    again = sum(dead.tries[i] - before.get(i, 0) for i in dead.tries)
    repeated = sum(dead.tries[i] > before[i] for i in before if questions[i].id in answered_before)
    healed_once = sorted(ids) == sorted(q.id for q in questions)
    print(f"rerun after it heals: {healed_s:.2f} s, {again} requests for the "
          f"{n - len(answered_before)} questions without an answer; every question answered "
          f"once: {healed_once}")  # fmt: skip
    report.figure("dead_requests_spent", spent, "requests",
                  reference=f"endpoint dead after {n // 4} of {n} questions; "
                            f"{type(error).__name__}")  # fmt: skip
    report.figure("rerun_asked_again", repeated, "",
                  reference="questions answered before the endpoint died and asked again",
                  target="0, every question answered once", met=repeated == 0 and healed_once)  # fmt: skip

    class Jittery(Faulty):
        """Replies after 0 to 10x ``--latency`` (seeded): real endpoints vary this much."""

        def __call__(self, body, headers):
            i = self.key(body)
            time.sleep(args.latency * 10 * ((i * 7919) % 100) / 100)
            return super().__call__(body, headers)

    subset = 200
    first = {i: "http_500" for i in faulted if i < subset}
    write_questions(path, questions[:subset])
    _, streamed_s, ids, _, _ = evaluate("streamed", Jittery(first=first))
    _, batch_s, _, _, _ = evaluate("batch-wise", Jittery(first=first), wrap=BatchWise)
    report.figure("streamed_speedup", batch_s / streamed_s, "x",
                  reference=f"batch-wise {batch_s:.2f} s (each batch waits for its slowest), "
                            f"{min(subset, n)} questions of varying latency")  # fmt: skip
    write_questions(path, questions)

    def refuse(body, headers):
        return 401, {"error": {"message": "Incorrect API key provided"}}, {}

    _, key_s, ids, requests, error = evaluate("bad-key", refuse)
    report.figure("bad_key_requests", requests, "requests",
                  reference=f"stopped in {key_s:.2f} s, concurrency {args.concurrency}; "
                            f"{len(ids)} recorded; {type(error).__name__}")  # fmt: skip
    if args.quick:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
