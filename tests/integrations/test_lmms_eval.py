"""`verbnoun export lmms-eval` and the lmms-eval model plugin, checked by running lmms-eval.

The synthetic kitchen's questions are exported as an lmms-eval task; lmms-eval itself (its CLI,
in a subprocess, offline) runs it with the ``llavaction`` plugin and a tiny checkpoint, and its
accuracy and every answer must equal ``verbnoun eval --model llavaction`` on the same files.
The plugin's other entry points (a task that gives video file paths, ``loglikelihood``) are
checked against our own decoder and model called directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verbnoun.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lmms_eval") is None,
    reason="lmms-eval is not installed (the Makefile installs it with --no-deps)",
)

FRAMES = 4
QUESTIONS = 8


def _tiny_checkpoint(directory: Path) -> Path:
    """A tiny released-layout checkpoint whose answers vary with the input (weights scaled up:
    at the default initialisation every question gets the same letter)."""
    import torch

    from verbnoun.bench import prompts
    from verbnoun.model.architecture import LlavactionForCausalLM
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer

    corpus = [prompts.MQA, prompts.TIME_INSTRUCTION, "A. B. C. D. E. take put red bowl"] * 3
    tokenizer = train_tiny_tokenizer(corpus, vocab_size=400)
    torch.manual_seed(0)
    model = LlavactionForCausalLM(tiny_config(vocab_size=len(tokenizer)))
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if weight.ndim == 2 and "embed" not in name:
                weight.mul_(20.0)
    write_tiny_released_checkpoint(directory, model=model, tokenizer=tokenizer)
    return directory


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from verbnoun.bench.questions import read_questions, write_questions

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lmms")
    kitchen = root / "kitchen"
    assert main(["synth", "--out", str(kitchen), "--videos", "2", "--workers", "1"]) == 0
    every = root / "all.jsonl"
    args = ["mqa", "build", "--annotations", str(kitchen / "annotations"), "--split", "train",
            "--out", str(every)]  # fmt: skip
    assert main(args) == 0
    questions = root / "kitchen-mqa.jsonl"
    write_questions(questions, read_questions(every)[:QUESTIONS])
    checkpoint = _tiny_checkpoint(root / "checkpoint")
    return root, questions, kitchen / "videos", checkpoint


@pytest.fixture(scope="module")
def exported(setup):
    root, questions, videos, _ = setup
    out = root / "task"
    args = ["export", "lmms-eval", "--questions", str(questions), "--videos", str(videos),
            "--layout", "chunks", "--frames", str(FRAMES), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    return out


def _offline_env(root: Path) -> dict:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(root / "hf-home"),
        HF_DATASETS_CACHE=str(root / "hf-datasets"),
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
    )
    env.pop("LMMS_EVAL_PLUGINS", None)  # the plugin must be found through its entry point
    return env


@pytest.mark.slow
def test_export_writes_a_local_task(setup, exported):
    import yaml

    from verbnoun.bench.questions import read_questions
    from verbnoun.integrations.lmms_eval import task

    _, questions, videos, _ = setup
    files = sorted(p.name for p in exported.iterdir())
    assert files == ["docs.jsonl", "export.json", "llavaction_kitchen_mqa.yaml", "utils.py"]
    text = (exported / "llavaction_kitchen_mqa.yaml").read_text()
    assert "!function utils.process_results" in text
    config = yaml.safe_load(text.replace("!function ", ""))  # the tags are lmms-eval's
    assert config["dataset_path"] == "json" and config["test_split"] == "test"
    assert config["dataset_kwargs"]["data_files"]["test"] == str(
        (exported / "docs.jsonl").resolve()
    )
    assert config["lmms_eval_specific_kwargs"]["default"] == {
        "videos": str(videos.resolve()), "layout": "chunks", "frames": FRAMES, "size": None,
        "time_instruction": True,
    }  # fmt: skip
    docs = [json.loads(line) for line in (exported / "docs.jsonl").read_text().splitlines()]
    kwargs = config["lmms_eval_specific_kwargs"]["default"]
    for doc, question in zip(docs, read_questions(questions), strict=True):
        assert doc["id"] == question.id
        assert "<image>\n" + task.doc_to_text(doc, kwargs) == question.user_turn(FRAMES)
        assert task.doc_to_target(doc) == question.answer_letter
    right = task.process_results(docs[0], [read_questions(questions)[0].answer_letter])
    wrong = task.process_results(docs[0], ["no idea"])
    assert right["mqa_accuracy"]["correct"] and wrong["mqa_accuracy"]["choice"] is None
    items = [right["mqa_accuracy"], wrong["mqa_accuracy"]]
    assert task.aggregate_accuracy(items) == 0.5 and task.aggregate_unparsed_rate(items) == 0.5


def test_exported_frames_are_our_spec2_frames(setup, exported):
    import numpy as np

    from verbnoun.bench.questions import read_questions
    from verbnoun.data.layouts import ChunkLayout
    from verbnoun.data.video import VideoReader
    from verbnoun.integrations.lmms_eval import task

    _, questions, videos, _ = setup
    doc = json.loads((exported / "docs.jsonl").read_text().splitlines()[1])
    kwargs = {"videos": str(videos), "layout": "chunks", "frames": FRAMES, "size": None,
              "time_instruction": True}  # fmt: skip
    images = task.doc_to_visual(doc, kwargs)
    question = read_questions(questions)[1]
    clip = VideoReader(ChunkLayout(videos)).read(
        question.video_id, question.start, question.stop, FRAMES
    )
    assert len(images) == FRAMES
    assert np.array_equal(np.stack([np.asarray(i) for i in images]), clip.frames)


def test_export_errors_name_the_problem(setup, tmp_path, capsys):
    import shutil

    _, questions, videos, _ = setup
    base = ["export", "lmms-eval", "--questions", str(questions), "--layout", "chunks"]
    moved = tmp_path / "videos"
    shutil.copytree(videos, moved)
    video_id = json.loads(questions.read_text().splitlines()[-1])["video_id"]
    shutil.rmtree(next(moved.rglob(f"{video_id}.MP4")))
    assert main([*base, "--videos", str(moved), "--out", str(tmp_path / "a")]) == 1
    assert video_id in capsys.readouterr().err
    args = [*base, "--videos", str(videos), "--out", str(tmp_path / "b"), "--task", "bad-name"]
    assert main(args) == 1
    assert "bad-name" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text(questions.read_text().splitlines()[0][:-5] + "\n")
    args = ["export", "lmms-eval", "--questions", str(broken), "--videos", str(videos),
            "--out", str(tmp_path / "c")]  # fmt: skip
    assert main(args) == 1
    assert "broken.jsonl:1" in capsys.readouterr().err


@pytest.mark.slow
def test_lmms_eval_runs_the_exported_task_like_llavaction_eval(setup, exported, capsys):
    root, questions, videos, checkpoint = setup
    run = root / "eval-run"
    args = ["eval", "--questions", str(questions), "--model", "llavaction", "--checkpoint", str(checkpoint),
            "--videos", str(videos), "--layout", "chunks", "--frames", str(FRAMES), "--batch-size", "1",
            "--workers", "0", "--out", str(run), "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    ours = json.loads((run / "metrics.json").read_text())["overall"]
    answers = {
        r["id"]: r["raw"]
        for r in map(json.loads, (run / "predictions.jsonl").read_text().splitlines())
    }
    assert len(set(answers.values())) > 1  # the checkpoint does not answer everything alike

    results = root / "lmms-results"
    command = [sys.executable, "-m", "lmms_eval", "--model", "llavaction",
               "--model_args", f"checkpoint={checkpoint},frames={FRAMES},scoring=letters",
               "--tasks", "llavaction_kitchen_mqa", "--include_path", str(exported),
               "--batch_size", "1", "--output_path", str(results), "--log_samples"]  # fmt: skip
    done = subprocess.run(
        command, env=_offline_env(root), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result_file,) = results.rglob("*_results.json")
    got = json.loads(result_file.read_text())["results"]["llavaction_kitchen_mqa"]
    assert got["mqa_accuracy,none"] == pytest.approx(ours["accuracy"])
    assert got["mqa_unparsed_rate,none"] == pytest.approx(ours["unparsed_rate"])
    (samples_file,) = results.rglob("*_samples_llavaction_kitchen_mqa.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == QUESTIONS
    assert {s["mqa_accuracy"]["id"]: s["mqa_accuracy"]["raw"] for s in samples} == answers


def _request(kind, arguments):
    from lmms_eval.api.instance import Instance

    return Instance(kind, arguments, 0, metadata={"task": "videos", "doc_id": 0, "repeats": 1})


def test_plugin_answers_a_task_of_video_files(setup):
    """A task that hands over a video path (as MVBench or VideoMME do): frames per SPEC 2 over
    the whole file by our decoder, then greedy generation; and loglikelihood of a continuation."""
    import torch

    from verbnoun.bench import prompts
    from verbnoun.data.video import read_clip
    from verbnoun.integrations.lmms_eval.models import CLASS_PATH, manifests
    from verbnoun.integrations.lmms_eval.models.llavaction import Llavaction
    from verbnoun.model.checkpoint import load_pretrained
    from verbnoun.model.inference import generate

    _, _, videos, checkpoint = setup
    assert (
        manifests()[0].model_id == "llavaction" and manifests()[0].simple_class_path == CLASS_PATH
    )
    path = videos / "P01" / "P01_01.MP4" / "15.MP4"
    doc = {"video": str(path), "question": "What are you doing?"}
    plugin = Llavaction(checkpoint=str(checkpoint), frames="3", device="cpu", batch_size="2")
    plugin.task_dict = {"videos": {"test": [doc]}}

    def visual(d):
        return [d["video"]]

    gen = {"max_new_tokens": 5, "until": []}
    replies = plugin.generate_until(
        [_request("generate_until", (doc["question"], gen, visual, 0, "videos", "test"))] * 2
    )
    model, processor = load_pretrained(checkpoint, device="cpu")
    clip = read_clip(path, 0.0, 15.0, 3)
    prompt = prompts.chat_prompt(f"{prompts.IMAGE_TOKEN}\n{doc['question']}")
    ids = torch.tensor(processor.tokenize(prompt))
    expected = generate(model, [ids], [processor.pixel_values(clip.frames)],
                        eos_ids=processor.eos_ids, max_new_tokens=5)  # fmt: skip
    assert replies == [processor.decode(expected[0]).strip()] * 2

    continuation = "A. take"
    (logprob, greedy), = plugin.loglikelihood(
        [_request("loglikelihood", (doc["question"], continuation, visual, 0, "videos", "test"))]
    )  # fmt: skip
    target = processor.tokenizer.encode(continuation, add_special_tokens=False)
    full = torch.cat([ids, torch.tensor(target)])
    with torch.no_grad():
        batch = model.prepare([full], [processor.pixel_values(clip.frames)])
        logp = model.run(batch).logits[0].float().log_softmax(-1)
    tail = logp[-len(target) - 1 : -1]
    assert logprob == pytest.approx(float(tail[range(len(target)), target].sum()), abs=1e-4)
    assert greedy == bool((tail.argmax(-1) == torch.tensor(target)).all())


def test_plugin_refuses_letters_on_a_foreign_task(setup):
    from verbnoun.errors import VerbnounError
    from verbnoun.integrations.lmms_eval.models.llavaction import Llavaction

    _, _, videos, checkpoint = setup
    doc = {"video": str(videos / "P01" / "P01_01.MP4" / "0.MP4"), "question": "Which?"}
    plugin = Llavaction(checkpoint=str(checkpoint), scoring="letters", device="cpu")
    plugin.task_dict = {"videos": {"test": [doc]}}
    request = _request(
        "generate_until", ("Which?", {}, lambda d: [d["video"]], 0, "videos", "test")
    )
    with pytest.raises(VerbnounError, match="scoring=letters"):
        plugin.generate_until([request])
    with pytest.raises(VerbnounError, match="not found"):
        Llavaction(checkpoint=str(videos / "nope"))
