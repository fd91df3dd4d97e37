"""An evaluation off a terminal keeps talking: with a model slower than the progress interval
(``VERBNOUN_PROGRESS_SECONDS``, 0.2 s here) a line with the count, rate and time left still
comes every interval, and the first request leaves before the frame workers start (it does
not wait for a whole batch to be decoded)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from itertools import pairwise

import numpy as np
import pytest

from fake_openai import FakeOpenAI, completion
from timed_lines import TimedLines
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.evaluate.openai_adapter import OpenAIAdapter
from verbnoun.evaluate.records import answered
from verbnoun.evaluate.runner import EvalSettings, run_evaluation

KEY_ENV = "VERBNOUN_PROGRESS_TEST_KEY"
INTERVAL = 0.2
LATENCY = 1.0  # seconds the server takes per answer: five intervals


def _questions(tmp_path, count: int):
    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(12, 2))
    path = tmp_path / "q.jsonl"
    build_benchmark(annotations, path, BuildSettings(distractors="random"))
    write_questions(path, read_questions(path)[:count])
    return path


class GreyFrames:
    """Two grey frames per question; ``batches`` (the worker processes' path) waits until the
    server has seen a request, or ``wait`` seconds, and records which came first."""

    def __init__(self, first_request: threading.Event, wait: float = 10.0) -> None:
        self.first_request, self.wait = first_request, wait
        self.request_came_first: bool | None = None

    def __call__(self, question):
        return np.full((2, 16, 16, 3), 128, dtype=np.uint8)

    def batches(self, questions, batch_size, workers):
        self.request_came_first = self.first_request.wait(self.wait)
        for start in range(0, len(questions), batch_size):
            yield [self(q) for q in questions[start : start + batch_size]]


@pytest.mark.slow
def test_a_slow_model_still_gets_a_line_every_interval(tmp_path, monkeypatch):
    questions = _questions(tmp_path, 3)
    first_request = threading.Event()

    def respond(body, headers):
        first_request.set()
        time.sleep(LATENCY)
        return 200, completion(json.dumps({"answer": "A"})), {}

    monkeypatch.setenv(KEY_ENV, "sk-test")
    monkeypatch.setenv("VERBNOUN_PROGRESS_SECONDS", str(INTERVAL))
    out = TimedLines()
    monkeypatch.setattr(sys, "stdout", out)
    frames = GreyFrames(first_request)
    with FakeOpenAI(respond) as server:
        adapter = OpenAIAdapter("slow", base_url=server.url, api_key_env=KEY_ENV, concurrency=1)
        run_evaluation(questions, adapter, tmp_path / "run", EvalSettings(frames=2),
                       frame_source=frames, batch_size=8, progress=True)  # fmt: skip
    monkeypatch.undo()
    assert len(answered(tmp_path / "run")) == 3
    # the first question was sent before the frame workers were asked for anything
    assert frames.request_came_first is True

    times = [t for t, _ in out.lines]
    texts = [x for _, x in out.lines if x.startswith("evaluating: ")]
    assert texts[0] == "evaluating: started, 3 to do"
    pattern = (
        r"evaluating: (\d)/3 \(\d+%\), (-|[\d.]+)/s, elapsed 0:0\d, (ETA [\d:]+|ETA unknown|done)"
    )
    counts = [int(re.match(pattern, x).group(1)) for x in texts[1:]]
    # while the first answer is out: lines with nothing done, no rate and no time left yet
    waiting = [x for x in texts if x.startswith("evaluating: 0/3 (0%)")]
    tail = r"-/s, elapsed 0:0\d, ETA unknown, answered 0 failed 0 retrying 0"
    assert len(waiting) >= 2 and all(re.search(tail, x) for x in waiting)
    # between the first and the second answer: the count, a rate and the time left
    after_one = [x for x in texts if x.startswith("evaluating: 1/3 (33%)")]
    assert len(after_one) >= 3 and all(re.search(r"/s, elapsed 0:0\d, ETA 0:0\d", x)
                                       for x in after_one)  # fmt: skip
    assert counts == sorted(counts) and counts[-1] == 3
    # without the timed lines the log would be silent for a whole answer (LATENCY)
    gaps = [b - a for a, b in pairwise(times)]
    assert max(gaps) < LATENCY * 0.7, gaps
