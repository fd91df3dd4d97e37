"""GPT-4o captions and caption QA against a local fake OpenAI server: the disagreement filter,
the request cache, resuming, the rate limiter, and the key never written."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from fake_openai import FakeOpenAI, completion
from verbnoun.bench import prompts
from verbnoun.cli import main
from verbnoun.data.annotations import EK100Annotations
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.evaluate.endpoint import RetryPolicy
from verbnoun.evaluate.openai_adapter import OpenAIAdapter
from verbnoun.train.captions import CaptionSettings, RateLimiter, build_captions
from verbnoun.train.sft import load_mixture

KEY = "sk-test-SECRET-caption-42"
LABEL = re.compile(r"annotated action of this clip is '(.*?)'")


class Captioner:
    """Captions agree with the label unless its narration mentions 'blue'; QA gives 3 pairs."""

    def __init__(self):
        self.failures: set[str] = set()  # narrations whose caption request answers HTTP 500

    def __call__(self, body, headers):
        assert headers.get("authorization") == f"Bearer {KEY}"
        name = body["response_format"]["json_schema"]["name"]
        user = body["messages"][1]["content"]
        if name == "caption":
            narration = LABEL.search(user[0]["text"]).group(1)
            if narration in self.failures:
                return 500, {"error": {"message": "boom"}}, {}
            seen = hashlib.sha256(user[1]["image_url"]["url"].encode()).hexdigest()[:8]
            reply = {"caption": f"I {narration} with my right hand ({seen}).",
                     "agrees_with_label": "blue" not in narration}  # fmt: skip
        else:
            caption = user.split("\n")[1]
            reply = {"pairs": [{"question": f"Q{i} about: {caption}", "answer": f"A{i}"}
                               for i in range(3)]}  # fmt: skip
        return 200, completion(json.dumps(reply), body["model"]), {}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("LLAVACTION_CAPTION_KEY", KEY)
    captioner = Captioner()
    with FakeOpenAI(captioner) as fake:
        fake.failures = captioner.failures
        yield fake


@pytest.fixture(scope="module")
def annotations(tmp_path_factory):
    return write_kitchen_annotations(tmp_path_factory.mktemp("kitchen"), kitchen_script(3, 0))


def adapter(server):
    return OpenAIAdapter("gpt-test", base_url=server.url, api_key_env="LLAVACTION_CAPTION_KEY",
                         concurrency=3, retry=RetryPolicy(tries=1, request_timeout=5.0))  # fmt: skip


def frames(segments):
    for segment in segments:
        yield np.full((4, 24, 32, 3), segment.row * 7 % 256, dtype=np.uint8)


def test_captions_filter_disagreements_and_reruns_make_no_request(server, annotations, tmp_path):
    segments = EK100Annotations(annotations).segments("train", require_labels=True)
    blue = {s.narration_id for s in segments if "blue" in s.narration}
    assert 0 < len(blue) < len(segments)
    manifest = build_captions(annotations, tmp_path, adapter(server), frames, CaptionSettings())
    counts = manifest["counts"]
    kept = len(segments) - len(blue)
    assert (counts["kept"], counts["disagreed"], counts["qa_pairs"]) == (kept, len(blue), 3 * kept)
    assert counts["requests"] == len(server.requests) == len(segments) + kept
    assert set(manifest["not_kept"]) == blue
    first = server.requests[0]["body"]
    text, *images = first["messages"][1]["content"]
    assert text["text"].startswith(prompts.CAPTION) and len(images) == 4
    assert first["temperature"] == 0
    qa_requests = [r for r in (q["body"] for q in server.requests) if r["response_format"]["json_schema"]["name"] != "caption"]  # fmt: skip
    assert all(isinstance(r["messages"][1]["content"], str) for r in qa_requests)  # text only
    captions = [json.loads(x) for x in (tmp_path / "captions.jsonl").read_text().splitlines()]
    qa = [json.loads(x) for x in (tmp_path / "caption_qa.jsonl").read_text().splitlines()]
    assert len(captions) == kept and len(qa) == 3 * kept
    by_id = {s.narration_id: s for s in segments}
    for r in captions:
        segment = by_id[r["id"].split(":", 1)[1]]
        assert segment.narration_id not in blue
        assert r["conversations"][0]["value"] == "<image>\n" + prompts.CAPTION
        assert r["conversations"][1]["value"].startswith(f"I {segment.narration} with my right")
        assert (r["verb_id"], r["noun_id"]) == (segment.verb_class, segment.noun_class)
    assert qa[0]["conversations"][0]["value"].startswith("<image>\nQ0 about: I ")
    assert len(load_mixture(tmp_path / "mixture.yaml")) == 4 * kept

    before = len(server.requests)
    again = build_captions(annotations, tmp_path, adapter(server), frames, CaptionSettings())
    assert len(server.requests) == before and again["counts"]["requests"] == 0
    assert again["counts"]["cache_hits"] == len(segments) + kept
    assert again["outputs"] == manifest["outputs"]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(), path
    assert "LLAVACTION_CAPTION_KEY" in (tmp_path / "captions.manifest.json").read_text()


@pytest.mark.slow
def test_an_interrupted_run_resumes_and_failures_are_retried(server, annotations, tmp_path):
    segments = EK100Annotations(annotations).segments("train", require_labels=True)

    def crashing(segs):
        yield from list(frames(segs))[:5]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_captions(annotations, tmp_path, adapter(server), crashing, CaptionSettings())
    done = len(server.requests)
    assert 5 <= done <= 10 and not (tmp_path / "captions.jsonl").exists()
    victim = next(s for s in segments[5:] if "blue" not in s.narration)
    server.failures.add(victim.narration)
    first = build_captions(annotations, tmp_path, adapter(server), frames, CaptionSettings())
    assert first["counts"]["cache_hits"] == done
    assert first["counts"]["failed"] >= 1 and victim.narration_id in first["not_kept"]
    server.failures.clear()
    second = build_captions(annotations, tmp_path, adapter(server), frames, CaptionSettings())
    assert second["counts"]["failed"] == 0 and second["counts"]["requests"] >= 2  # retried
    assert victim.narration_id not in second["not_kept"]


def test_rate_limiter_spaces_requests():
    now, slept = [100.0], []
    limiter = RateLimiter(30, clock=lambda: now[0], sleep=slept.append)
    for _ in range(4):
        limiter.wait()
    assert slept == [2.0, 4.0, 6.0]  # 30 per minute: one every 2 s
    now[0] = 200.0
    limiter.wait()
    assert slept == [2.0, 4.0, 6.0]  # after a pause, the next call goes at once
    RateLimiter(None, sleep=slept.append).wait()
    assert len(slept) == 3


@pytest.mark.slow
def test_cli_captions_reads_four_frames_from_videos(server, tmp_path, capsys):
    from verbnoun.data.synth import render_kitchen

    render_kitchen(tmp_path / "k", videos=3, workers=1)
    out = tmp_path / "out"
    code = main(["sft", "captions", "--annotations", str(tmp_path / "k" / "annotations"),
                 "--videos", str(tmp_path / "k" / "videos"), "--api-model", "gpt-test",
                 "--base-url", server.url, "--api-key-env", "LLAVACTION_CAPTION_KEY",
                 "--out", str(out), "--limit", "3", "--rpm", "6000"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    captions = [r for r in (q["body"] for q in server.requests) if r["response_format"]["json_schema"]["name"] == "caption"]  # fmt: skip
    assert len(captions) == 3
    assert all(len(r["messages"][1]["content"]) == 5 for r in captions)
    manifest = json.loads((out / "captions.manifest.json").read_text())
    assert manifest["counts"]["segments"] == 3 and manifest["counts"]["skipped"] == 0
