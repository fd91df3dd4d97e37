"""Endpoints that misbehave: every transient failure retried (bounded), exhausted questions
recorded as failed and asked again by the next run, refusals and dead endpoints stop the run,
and a kill during retries loses nothing. The faults come from a local server (tests/fake_openai)."""

from __future__ import annotations

import base64
import email.utils
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from fake_openai import (
    FakeOpenAI,
    chunked,
    close_without_reply,
    completion,
    cut_body,
    event_stream,
    late,
)
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.cli import main
from verbnoun.data.annotations import EK100Annotations
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.evaluate.adapters import Request
from verbnoun.evaluate.endpoint import (
    EndpointDown,
    EndpointRefused,
    RequestFailed,
    RetryPolicy,
    TransientError,
    retry_after,
    with_retries,
)
from verbnoun.evaluate.openai_adapter import OpenAIAdapter
from verbnoun.evaluate.records import answered, failures
from verbnoun.evaluate.runner import EvalSettings, run_evaluation
from verbnoun.interpret.open_vocab import OpenVocabMapper

KEY = "sk-faults-SECRET-0123456789"
KEY_ENV = "VERBNOUN_FAULTS_KEY"
ANSWER = json.dumps({"answer": "A"})
USAGE = (100, 5)

# fault -> the kind a question records when it keeps failing that way
FAULTS = {
    "http_408": "timeout",
    "http_409": "conflict",
    "http_429": "rate_limit",
    "http_500": "server_error",
    "http_502_html": "server_error",
    "http_503_date": "server_error",
    "timeout": "timeout",
    "reset": "connection",
    "cut": "connection",
    "html_200": "not_json",
    "no_choices": "no_choices",
    "null_content": "null_content",
    "truncated_json": "truncated",
    "truncated_stream": "truncated",
}


def fault(name: str):
    """The server's reply for one fault (``(status, payload, headers)``)."""
    error = {"error": {"message": f"injected {name}"}}
    whole = json.dumps(completion(ANSWER)).encode()
    return {
        "http_408": lambda: (408, error, {}),
        "http_409": lambda: (409, error, {}),
        "http_429": lambda: (429, error, {"Retry-After": "0"}),
        "http_500": lambda: (500, error, {}),
        "http_502_html": lambda: (502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
        "http_503_date": lambda: (
            503, error, {"Retry-After": email.utils.formatdate(time.time(), usegmt=True)}
        ),
        "timeout": lambda: (0, late(2.5, completion(ANSWER)), {}),
        "reset": lambda: (0, close_without_reply, {}),
        "cut": lambda: (0, cut_body(whole), {}),
        "html_200": lambda: (200, b"<html><body>upstream hiccup</body></html>",
                             {"Content-Type": "text/html"}),
        "no_choices": lambda: (200, {"id": "x", "object": "chat.completion", "choices": []}, {}),
        "null_content": lambda: (200, completion(None), {}),
        "truncated_json": lambda: (0, chunked(whole[:60]), {}),
        "truncated_stream": lambda: (0, event_stream(ANSWER, done=False), {}),
    }[name]()  # fmt: skip


def _first_image(body) -> Image.Image:
    part = body["messages"][1]["content"][0]
    if part["type"] == "video_url":
        data = part["video_url"]["url"].split(",", 1)[1].split(",")[0]
    else:
        data = body["messages"][1]["content"][1]["image_url"]["url"].split(",", 1)[1]
    return Image.open(io.BytesIO(base64.b64decode(data)))


def _index_of(body) -> int:
    """The question index that the test's frames carry in their red and green channels."""
    red, green, _ = _first_image(body).getpixel((8, 8))
    return round((red - 8) / 8) + 30 * round((green - 8) / 8)


def _frames_by_index(questions):
    index = {q.id: i for i, q in enumerate(questions)}

    def frames_of(question):
        i = index[question.id]
        frame = np.zeros((2, 16, 16, 3), dtype=np.uint8)
        frame[..., 0], frame[..., 1] = 8 + 8 * (i % 30), 8 + 8 * (i // 30)
        return frame

    return frames_of


class Faulty:
    """Answers ``ANSWER`` (with token usage), except: ``first[i]`` on question i's first try,
    ``always[i]`` on every try, and every try once ``healthy_for`` questions have been answered
    (a server that dies). ``key`` maps a request body to its question."""

    def __init__(self, key=_index_of, first=None, always=None, healthy_for=None, content=ANSWER):
        self.key, self.first, self.always = key, first or {}, always or {}
        self.healthy_for, self.content = healthy_for, content
        self.tries: Counter = Counter()
        self.times: dict[int, list[float]] = {}
        self.ok: set = set()
        self.lock = threading.Lock()

    def __call__(self, body, headers):
        assert headers["authorization"] == f"Bearer {KEY}"
        i = self.key(body)
        with self.lock:
            tried = self.tries[i]
            self.tries[i] += 1
            self.times.setdefault(i, []).append(time.monotonic())
            dead = self.healthy_for is not None and len(self.ok) >= self.healthy_for
            name = self.always.get(i) or (self.first.get(i) if tried == 0 else None)
            if dead and i not in self.ok:
                name = "http_503_date"
            if name is None:
                self.ok.add(i)
        if name is not None:
            return fault(name)
        return 200, completion(self.content, body["model"], usage=USAGE), {}


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    """52 multiple-choice questions of the synthetic kitchen (no videos)."""
    root = tmp_path_factory.mktemp("faults")
    annotations = write_kitchen_annotations(root / "a", kitchen_script(8, 0))
    path = root / "q.jsonl"
    build_benchmark(annotations, path, BuildSettings(split="train"))
    return annotations, path, read_questions(path)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def _adapter(server, tries=4, max_wait=5.0, timeout=1.5, concurrency=4, **options):
    retry = RetryPolicy(tries, max_wait, first_wait=0.01, request_timeout=timeout)
    return OpenAIAdapter("gpt-test", base_url=server.url, api_key_env=KEY_ENV,
                         concurrency=concurrency, retry=retry, **options)  # fmt: skip


def _lines(path):
    return path.read_text().splitlines() if path.is_file() else []


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["gpt4o", "video", "open_vocab"])
def test_every_transient_failure_at_30_percent_is_retried_and_answered_once(
    kitchen, tmp_path, protocol
):
    annotations, path, questions = kitchen
    n = len(questions)
    faulted = [i for i in range(n) if i % 10 in (0, 3, 6)]  # 30 % of the questions
    names = list(FAULTS)
    plan = {i: names[k % len(names)] for k, i in enumerate(faulted)}
    assert set(plan.values()) == set(FAULTS)  # every failure kind occurs
    mapper = None
    if protocol == "open_vocab":
        folder = EK100Annotations(annotations)
        mapper = OpenVocabMapper(folder.verbs(), folder.nouns())
    faulty = Faulty(first=plan, content="I take the plate" if mapper else ANSWER)
    run = tmp_path / "run"
    start = time.perf_counter()
    with FakeOpenAI(faulty) as server:
        adapter = _adapter(server, protocol="video" if protocol == "video" else "gpt4o",
                           structured=False)  # fmt: skip
        metrics = run_evaluation(path, adapter, run, EvalSettings(frames=2),
                                 frame_source=_frames_by_index(questions), progress=False,
                                 open_vocab=mapper, price_per_mtok=(2.5, 10.0))  # fmt: skip
    elapsed = time.perf_counter() - start
    lines = _lines(run / "predictions.jsonl")
    ids = [json.loads(line)["id"] for line in lines]
    assert sorted(ids) == sorted(q.id for q in questions)  # every question once, none twice
    assert not (run / "failed.jsonl").exists()
    # one failed try and one good one for each faulted question, one try for the others
    assert {i: faulty.tries[i] for i in range(n)} == {i: 2 if i in plan else 1 for i in range(n)}
    records = answered(run)
    for i, q in enumerate(questions):
        assert records[q.id]["attempts"] == faulty.tries[i]
        assert records[q.id]["raw"] == faulty.content
        assert records[q.id]["usage"] == {"prompt_tokens": 100, "completion_tokens": 5}
    coverage = metrics["coverage"]
    assert (coverage["answered"], coverage["failed"], coverage["not_asked"]) == (n, 0, 0)
    usage = metrics["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (100 * n, 5 * n)
    assert usage["requests"] == metrics["throughput"]["requests"] == n + len(plan)
    assert usage["estimated_cost"] == pytest.approx((100 * n * 2.5 + 5 * n * 10) / 1e6)
    assert metrics["throughput"]["requests_per_second"] > 0
    assert elapsed < 30
    config = json.loads((run / "config.json").read_text())
    assert config["transport"]["tries"] == 4 and config["transport"]["first_wait"] == 0.01
    assert "transport" not in config["model_settings"]
    for file in run.iterdir():
        assert KEY not in file.read_text()


def test_backoff_is_exponential_jittered_and_bounded_by_tries_and_total_wait():
    def always(kind="server_error", after=None):
        def attempt():
            raise TransientError(kind, "down", 503, after)

        return attempt

    slept: list[float] = []
    policy = RetryPolicy(tries=5, max_wait=100, first_wait=1.0, max_one_wait=4.0)
    with pytest.raises(RequestFailed, match=r"server_error \(HTTP 503\) after 5 tries") as info:
        with_retries(always(), policy, sleep=slept.append, rng=random.Random(0))
    assert len(slept) == 4
    for wait, full in zip(slept, [1, 2, 4, 4], strict=True):
        assert full / 2 <= wait <= full  # half of each wait is jitter
    assert info.value.failure.waited == pytest.approx(sum(slept))
    # the total wait bounds a question: the last wait is cut to what is left, then it stops
    slept.clear()
    with pytest.raises(RequestFailed) as info:
        with_retries(always(), RetryPolicy(10, 2.5, 1.0, 4.0), sleep=slept.append)
    assert sum(slept) == pytest.approx(2.5) and info.value.failure.attempts == len(slept) + 1
    # Retry-After is a floor; one beyond what the question may still wait ends it at once
    slept.clear()
    with pytest.raises(RequestFailed):
        with_retries(always("rate_limit", 7.0), RetryPolicy(3, 100, 0.01), sleep=slept.append)
    assert slept == [7.0, 7.0]
    slept.clear()
    with pytest.raises(RequestFailed) as info:
        with_retries(always("rate_limit", 60.0), RetryPolicy(5, 30, 0.01), sleep=slept.append)
    assert slept == [] and info.value.failure.attempts == 1
    # anything else (a refusal) is not retried
    calls = []

    def refused():
        calls.append(1)
        raise EndpointRefused("HTTP 401")

    with pytest.raises(EndpointRefused):
        with_retries(refused, policy, sleep=slept.append)
    assert calls == [1]


def test_retry_after_reads_seconds_milliseconds_and_http_dates():
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8.5 <= retry_after({"retry-after": in_ten}) <= 10.0
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert retry_after({"retry-after": past}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


@pytest.mark.slow
def test_retry_after_is_honoured_and_a_longer_one_fails_the_question_at_once(kitchen):
    _, _, questions = kitchen
    faulty = Faulty()

    def respond(body, headers):
        i = _index_of(body)
        if faulty.tries[i] == 0 or i == 2:
            faulty(body, headers)
            in_two = email.utils.formatdate(time.time() + 2, usegmt=True)  # 1-2 s ahead
            return {
                0: (429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
                1: (503, {"error": {"message": "busy"}}, {"Retry-After": in_two}),
                2: (429, {"error": {"message": "much later"}}, {"Retry-After": "30"}),
            }[i]
        return faulty(body, headers)

    frames = _frames_by_index(questions)
    requests = [Request(q, q.prompt(2), q.task(), frames(q)) for q in questions[:3]]
    with FakeOpenAI(respond) as server:
        each = _adapter(server, tries=3, max_wait=5.0).answer_each(requests)
        by_id = {request.question.id: reply for request, reply in each}
    got = [by_id[q.id] for q in questions[:3]]
    assert got[0].failure is None and got[1].failure is None
    assert faulty.times[0][1] - faulty.times[0][0] >= 0.95  # Retry-After: 1 (seconds)
    assert faulty.times[1][1] - faulty.times[1][0] >= 0.9  # an HTTP date 1-2 s ahead
    assert got[2].failure["kind"] == "rate_limit" and got[2].failure["status"] == 429
    assert got[2].failure["attempts"] == 1 and faulty.tries[2] == 1  # 30 s > 5 s left


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (401, {"error": {"message": f"Incorrect API key provided: {KEY[:8]}**89"}}, "API key"),
        (404, {"error": {"message": "The model `gpt-test` does not exist"}}, "--api-model"),
        (400, {"error": {"message": "Invalid image"}}, "HTTP 400"),
        (429, {"error": {"message": "quota", "code": "insufficient_quota"}}, "quota"),
    ],
)
def test_refusals_are_not_retried_and_stop_the_run(kitchen, tmp_path, status, body, says):
    _, path, questions = kitchen
    with FakeOpenAI(lambda b, h: (status, body, {})) as server:
        adapter = _adapter(server, concurrency=2)
        with pytest.raises(EndpointRefused, match=says) as info:
            run_evaluation(path, adapter, tmp_path / "run", EvalSettings(frames=2),
                           frame_source=_frames_by_index(questions), progress=False)  # fmt: skip
        assert len(server.requests) <= 2  # the two in flight; nothing retried, nothing more
    message = str(info.value)
    assert "\n" not in message and KEY[:8] not in message and "question " in message
    assert _lines(tmp_path / "run" / "predictions.jsonl") == []
    assert failures(tmp_path / "run") == {}  # a refusal is not a failed question


@pytest.mark.slow
def test_a_dead_endpoint_stops_the_run_after_n_in_a_row_and_nothing_is_lost(kitchen, tmp_path):
    _, path, questions = kitchen
    faulty = Faulty(healthy_for=10)
    run = tmp_path / "run"
    frames = _frames_by_index(questions)
    with FakeOpenAI(faulty) as server:
        adapter = _adapter(server, tries=3, concurrency=2)
        start = time.perf_counter()
        with pytest.raises(EndpointDown, match="4 questions in a row failed") as info:
            run_evaluation(path, adapter, run, EvalSettings(frames=2), frame_source=frames,
                           progress=False, batch_size=8, max_consecutive_failures=4)  # fmt: skip
        assert time.perf_counter() - start < 20
        assert "run the same command again" in str(info.value)
        before = _lines(run / "predictions.jsonl")
        assert len(before) == 10 and {json.loads(x)["id"] for x in before} == {
            questions[i].id for i in faulty.ok
        }
        failed = failures(run)
        assert len(failed) == 4 and all(
            r["failed"]["kind"] == "server_error" for r in failed.values()
        )
        assert all(r["failed"]["status"] == 503 and r["failed"]["attempts"] == 3
                   for r in failed.values())  # fmt: skip
        # 4 failed questions, and at most the 2 (concurrency) in flight, 3 tries each
        assert len(server.requests) <= 10 + (4 + 2) * 3
        assert not (run / "metrics.json").exists()
        # the endpoint comes back: the same run asks only what has no answer, once each
        faulty.healthy_for = None
        asked_before = Counter(faulty.tries)
        metrics = run_evaluation(path, _adapter(server, concurrency=2), run, EvalSettings(frames=2),
                                 frame_source=frames, progress=False)  # fmt: skip
    after = _lines(run / "predictions.jsonl")
    assert after[:10] == before  # answered lines untouched, byte for byte
    assert sorted(json.loads(x)["id"] for x in after) == sorted(q.id for q in questions)
    assert all(faulty.tries[i] == asked_before[i] for i in faulty.ok if i in asked_before
               and questions[i].id in {json.loads(x)["id"] for x in before})  # fmt: skip
    assert metrics["coverage"]["failed"] == 0 and not (run / "failed.jsonl").exists()


# --- the command line, on rendered videos ---------------------------------------------------


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """19 questions about the rendered synthetic kitchen, told apart by their task text."""
    from verbnoun.data.synth import render_kitchen

    root = tmp_path_factory.mktemp("fault-videos")
    render_kitchen(root / "k", videos=2, seed=0, workers=1)
    path = root / "q.jsonl"
    build_benchmark(root / "k" / "annotations", path, BuildSettings(split="train"))
    questions = read_questions(path)
    tasks = {q.task(): i for i, q in enumerate(questions)}
    if len(tasks) != len(questions):  # keep one question per task text
        questions = [questions[i] for i in sorted(tasks.values())]
        write_questions(path, questions)
        tasks = {q.task(): i for i, q in enumerate(questions)}
    return root / "k" / "videos", path, questions, tasks


def _by_task(tasks: dict[str, int]):
    """The question of a request, told by the task text its system prompt ends with."""

    def key(body) -> int:
        system = body["messages"][0]["content"]
        return max((len(t), i) for t, i in tasks.items() if system.endswith(t))[1]

    return key


def _eval_args(videos, run, server, *extra):
    videos_dir, path, _, _ = videos
    return ["eval", "--questions", str(path), "--model", "openai", "--api-model", "gpt-test",
            "--base-url", server.url, "--api-key-env", KEY_ENV, "--videos", str(videos_dir),
            "--frames", "2", "--out", str(run), "--no-progress", "--concurrency", "2",
            "--first-wait", "0.01", "--request-timeout", "2", "--workers", "0", *extra]  # fmt: skip


@pytest.mark.slow
def test_cli_permanent_failures_are_recorded_and_the_next_run_asks_only_them(
    videos, tmp_path, capsys
):
    _, _, questions, tasks = videos
    n = len(questions)
    bad = {1: "http_500", 5: "html_200", 9: "null_content"}
    faulty = Faulty(key=_by_task(tasks), always=bad)
    run = tmp_path / "run"
    with FakeOpenAI(faulty) as server:
        args = _eval_args(videos, run, server, "--tries", "3", "--max-wait", "5",
                          "--price-per-mtok", "2.5,10")  # fmt: skip
        assert main(args) == 3
        err = capsys.readouterr().err
        assert f"{n - 3} answered, 3 failed" in err and "server_error 1" in err
        assert "not_json 1" in err and "null_content 1" in err and "Traceback" not in err
        before = _lines(run / "predictions.jsonl")
        assert sorted(json.loads(x)["id"] for x in before) == sorted(
            q.id for i, q in enumerate(questions) if i not in bad
        )
        failed = [json.loads(x) for x in _lines(run / "failed.jsonl")]
        kinds = {r["id"]: (r["failed"]["kind"], r["failed"]["status"]) for r in failed}
        assert kinds == {
            questions[1].id: ("server_error", 500),
            questions[5].id: ("not_json", 200),
            questions[9].id: ("null_content", 200),
        }
        assert all(r["failed"]["attempts"] == 3 and "choice" not in r for r in failed)
        assert all(faulty.tries[i] == 3 for i in bad)  # bounded: three tries each
        metrics = json.loads((run / "metrics.json").read_text())
        coverage = metrics["coverage"]
        correct = sum(json.loads(x)["correct"] for x in before)
        assert (coverage["answered"], coverage["failed"]) == (n - 3, 3)
        assert coverage["failed_by_kind"] == {"not_json": 1, "null_content": 1, "server_error": 1}
        assert coverage["accuracy_over_answered"] == pytest.approx(correct / (n - 3))
        assert coverage["accuracy_over_all"] == pytest.approx(correct / n)
        assert metrics["overall"]["n"] == n - 3 and metrics["overall"]["unparsed"] == 0
        cost = (100 * (n - 3) * 2.5 + 5 * (n - 3) * 10) / 1e6
        assert metrics["usage"]["estimated_cost"] == pytest.approx(cost)
        # score and report read a run with failed questions
        assert main(["score", str(run), "--json"]) == 0
        row = json.loads(capsys.readouterr().out)["runs"][0]
        assert (row["answered"], row["failed"], row["questions"]) == (n - 3, 3, n)
        assert main(["score", str(run)]) == 0 and "failed" in capsys.readouterr().out
        assert main(["report", str(run), "--out", str(tmp_path / "report.html")]) == 0
        # the server heals: the same command asks the three again, and nothing else
        faulty.always = {}
        asked = len(server.requests)
        assert main(args) == 0, capsys.readouterr().err
        assert len(server.requests) == asked + 3
    after = _lines(run / "predictions.jsonl")
    assert after[: n - 3] == before and len(after) == n
    assert not (run / "failed.jsonl").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["coverage"]["failed"] == 0 and metrics["overall"]["n"] == n


def test_cli_a_bad_key_is_one_line_not_a_failed_question_each(videos, tmp_path, capsys):
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    with FakeOpenAI(lambda b, h: (401, body, {})) as server:
        run = tmp_path / "run"
        assert main(_eval_args(videos, run, server)) == 1
        assert len(server.requests) <= 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("verbnoun: error: question ")
    assert "HTTP 401 (check the API key)" in err and KEY not in err
    assert _lines(run / "predictions.jsonl") == [] and not (run / "metrics.json").exists()


VICTIM = """
import sys

import numpy as np

from verbnoun.bench.questions import read_questions
from verbnoun.evaluate.endpoint import RetryPolicy
from verbnoun.evaluate.openai_adapter import OpenAIAdapter
from verbnoun.evaluate.runner import EvalSettings, run_evaluation

path, run, url, key_env = sys.argv[1:]
index = {q.id: i for i, q in enumerate(read_questions(path))}


def frames_of(question):
    i = index[question.id]
    frame = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    frame[..., 0], frame[..., 1] = 8 + 8 * (i % 30), 8 + 8 * (i // 30)
    return frame


retry = RetryPolicy(tries=1000, max_wait=600, first_wait=0.05, max_one_wait=0.2)
adapter = OpenAIAdapter("gpt-test", base_url=url, api_key_env=key_env, retry=retry, concurrency=2)
run_evaluation(path, adapter, run, EvalSettings(frames=2), frame_source=frames_of,
               progress=False, batch_size=8, max_consecutive_failures=0)
"""


@pytest.mark.slow
def test_sigkill_during_retries_loses_nothing(kitchen, tmp_path):
    """A process killed while it waits to retry keeps every answer it got; the next run asks
    only the others (a real process and a real SIGKILL)."""
    _, path, questions = kitchen
    faulty = Faulty(healthy_for=6)
    run = tmp_path / "run"
    script = tmp_path / "victim.py"
    script.write_text(VICTIM)
    with FakeOpenAI(faulty) as server:
        env = {**os.environ, KEY_ENV: KEY}
        command = [sys.executable, str(script), str(path), str(run), server.url, KEY_ENV]
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if len(faulty.ok) >= 6 and sum(faulty.tries.values()) >= len(faulty.ok) + 12:
                break  # six answered (in a batch of eight), and the others being retried
            time.sleep(0.02)
        assert process.poll() is None, process.stderr.read().decode()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process.stderr.close()
        before = _lines(run / "predictions.jsonl")
        records = [json.loads(x) for x in before]  # every line written is whole
        assert sorted(r["id"] for r in records) == sorted(questions[i].id for i in faulty.ok)
        faulty.healthy_for = None
        tried = Counter(faulty.tries)
        run_evaluation(path, _adapter(server), run, EvalSettings(frames=2),
                       frame_source=_frames_by_index(questions), progress=False)  # fmt: skip
    after = _lines(run / "predictions.jsonl")
    assert after[: len(before)] == before  # the answers from before the kill, byte for byte
    assert sorted(json.loads(x)["id"] for x in after) == sorted(q.id for q in questions)
    kept = {questions.index(q) for q in questions if q.id in {r["id"] for r in records}}
    assert all(faulty.tries[i] == tried[i] for i in kept)  # never asked again


def _captioner_key(body) -> str:
    """A caption or QA request's identity: its schema and its text (the same on every try)."""
    user = body["messages"][1]["content"]
    text = user if isinstance(user, str) else user[0]["text"] + user[1]["image_url"]["url"]
    return body["response_format"]["json_schema"]["name"] + ":" + text


def _caption_reply(body) -> str:
    if body["response_format"]["json_schema"]["name"] == "caption":
        seen = str(hash(body["messages"][1]["content"][1]["image_url"]["url"]))  # one per clip
        return json.dumps({"caption": f"I do it ({seen}).", "agrees_with_label": True})
    return json.dumps({"pairs": [{"question": f"Q{i}", "answer": f"A{i}"} for i in range(3)]})


@pytest.mark.slow
def test_sft_captions_retry_the_same_way_and_stop_when_the_endpoint_dies(tmp_path):
    from verbnoun.train.captions import CaptionSettings, build_captions

    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(3, 0))
    segments = EK100Annotations(annotations).segments("train", require_labels=True)

    def frames(segments):
        for segment in segments:
            yield np.full((4, 16, 16, 3), segment.row * 7 % 256, dtype=np.uint8)

    names = list(FAULTS)
    seen: Counter = Counter()
    dead = [False]

    def respond(body, headers):
        key = _captioner_key(body)
        seen[key] += 1
        if dead[0]:
            return fault("http_500")
        if seen[key] == 1 and len(seen) % 10 in (0, 3, 6):  # 30 % fail their first try
            return fault(names[len(seen) % len(names)])
        return 200, completion(_caption_reply(body), usage=USAGE), {}

    with FakeOpenAI(respond) as server:
        manifest = build_captions(annotations, tmp_path / "out", _adapter(server), frames,
                                  CaptionSettings())  # fmt: skip
        counts = manifest["counts"]
        assert counts["kept"] == len(segments) and counts["failed"] == 0
        assert max(seen.values()) == 2 and len(server.requests) == len(seen) + sum(
            n == 2 for n in seen.values()
        )
        assert counts["prompt_tokens"] == 100 * len(seen)
        assert manifest["transport"]["tries"] == 4
        # the endpoint dies: a new caption run stops after 3 failures in a row, nothing lost
        dead[0] = True
        settings = CaptionSettings(max_consecutive_failures=3)
        with pytest.raises(EndpointDown, match="3 requests in a row failed"):
            build_captions(annotations, tmp_path / "other", _adapter(server, tries=2,
                           concurrency=1), frames, settings)  # fmt: skip
        # the first run's answers are cached: a rerun against the dead endpoint asks nothing
        asked = len(server.requests)
        again = build_captions(annotations, tmp_path / "out", _adapter(server), frames,
                               CaptionSettings())  # fmt: skip
        assert again["counts"]["kept"] == len(segments) and len(server.requests) == asked


def test_reply_bodies_are_read_or_named_by_their_fault():
    from verbnoun.evaluate.endpoint import read_reply

    usage = {"prompt_tokens": 7, "completion_tokens": 2}
    assert read_reply(json.dumps({**completion("B"), "usage": usage})) == ("B", usage)
    refusal = completion(None)
    refusal["choices"][0]["message"]["refusal"] = "I can't help with that."
    assert read_reply(json.dumps(refusal))[0] == "I can't help with that."  # an answer
    parts = completion(None)
    parts["choices"][0]["message"]["content"] = [{"type": "text", "text": "A"}]
    assert read_reply(json.dumps(parts))[0] == "A"
    stream = "".join(
        f"data: {json.dumps({'choices': [{'delta': {'content': c}, 'finish_reason': f}]})}\n\n"
        for c, f in (("Hel", None), ("lo", "stop"))
    )
    assert read_reply(stream, "text/event-stream")[0] == "Hello"
    cases = {
        "<!DOCTYPE html><html>502</html>": "not_json",
        "": "not_json",
        '{"choices": [{"message": {"content": "B"}}': "truncated",
        '{"error": {"message": "upstream failed"}}': "no_choices",
        json.dumps(completion(None)): "null_content",
        "data: " + stream.split("data: ")[1]: "truncated",
        '{"choices": ["B"]}': "no_choices",
        '{"choices": [{"message": "B"}]}': "no_choices",
        "data: [1, 2]\n\n": "not_json",
        "[1, 2]": "not_json",
    }
    for body, kind in cases.items():
        with pytest.raises(TransientError) as info:
            read_reply(body)
        assert info.value.kind == kind, body


def test_cli_sft_captions_exits_3_on_failed_requests_and_the_rerun_asks_only_them(
    videos, tmp_path, capsys
):
    videos_dir = videos[0]
    broken = {"on": True}
    asked: list[str] = []

    def respond(body, headers):
        key = _captioner_key(body)
        asked.append(key)
        if broken["on"] and len(set(asked)) == 1 and key == asked[0]:
            return fault("http_502_html")  # the first caption request fails every try
        return 200, completion(_caption_reply(body), usage=USAGE), {}

    out = tmp_path / "captions"
    with FakeOpenAI(respond) as server:
        args = ["sft", "captions", "--annotations", str(videos_dir.parent / "annotations"),
                "--videos", str(videos_dir), "--api-model", "gpt-test", "--base-url", server.url,
                "--api-key-env", KEY_ENV, "--out", str(out), "--limit", "2", "--concurrency", "1",
                "--tries", "2", "--first-wait", "0.01", "--max-wait", "1"]  # fmt: skip
        assert main(args) == 3
        manifest = json.loads((out / "captions.manifest.json").read_text())
        assert manifest["counts"]["failed"] == 1 and manifest["transport"]["tries"] == 2
        assert "server_error (HTTP 502) after 2 tries" in json.dumps(manifest["not_kept"])
        assert asked.count(asked[0]) == 2
        broken["on"] = False
        before = len(asked)
        assert main(args) == 0, capsys.readouterr().err
        assert asked[before] == asked[0] and len(asked) == before + 2  # that caption and its QA
    manifest = json.loads((out / "captions.manifest.json").read_text())
    assert manifest["counts"]["kept"] == 2 and manifest["counts"]["failed"] == 0
