"""``eval --model hf``: tiny random models of three transformers families (LLaVA-OneVision,
Qwen2-VL, Idefics3) answer synthetic-kitchen questions through the CLI, resumably; a trained
tiny LLaVAction exported with ``export hf`` chooses the letters our own model chooses, and its
letter scores agree with its generated answers."""

from __future__ import annotations

import json
import shutil

import hf_families
import pytest
import torch

from verbnoun.bench import prompts
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.cli import main

FRAMES = 4
SIZE = 32
VOCAB = 448  # the tiny tokenizer's 400 tokens, and free rows for export hf's added tokens


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    from verbnoun.data.synth import render_kitchen

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hf")
    render_kitchen(root / "kitchen", videos=2, seed=0, workers=1)
    everything = root / "all.jsonl"
    build_benchmark(root / "kitchen" / "annotations", everything, BuildSettings(split="train"))
    questions = root / "q.jsonl"
    write_questions(questions, read_questions(everything)[:6])
    return root, questions


def _eval(root, questions, out, *extra) -> tuple[int, list[dict]]:
    args = ["eval", "--questions", str(questions), "--videos", str(root / "kitchen" / "videos"),
            "--frames", str(FRAMES), "--size", str(SIZE), "--batch-size", "4",
            "--workers", "0", "--out", str(out), "--no-progress", *extra]  # fmt: skip
    code = main(args)
    path = out / "predictions.jsonl"
    records = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []
    return code, records


def _llava_onevision(directory, tokenizer=None):
    """A tiny random LLaVAction (one newline per video) exported to LlavaOnevision."""
    from verbnoun.model.checkpoint import write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.export_hf import export_hf
    from verbnoun.model.tokenization import train_tiny_tokenizer

    tokenizer = tokenizer or train_tiny_tokenizer(hf_families.CORPUS * 3, vocab_size=400)
    config = tiny_config(vocab_size=VOCAB, newline_position="one_token")
    write_tiny_released_checkpoint(directory / "ckpt", config, tokenizer=tokenizer)
    export_hf(directory / "ckpt", directory / "hf")
    return directory / "hf"


BUILDERS = {
    "llava_onevision": lambda d: _llava_onevision(d),
    "qwen2_vl": lambda d: hf_families.qwen2_vl(d / "hf"),
    "idefics3": lambda d: hf_families.idefics3(d / "hf"),
}
EXPECTED = {
    "llava_onevision": ("LlavaOnevisionForConditionalGeneration", "video"),
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", "images"),
    "idefics3": ("Idefics3ForConditionalGeneration", "images"),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_a_family_answers_through_eval_and_resumes(kitchen, tmp_path, family, capsys):
    root, questions = kitchen
    model = BUILDERS[family](tmp_path)
    run = tmp_path / "run"
    code, records = _eval(root, questions, run, "--model", "hf", "--hf-model", str(model))
    assert code == 0, capsys.readouterr().err
    n = len(read_questions(questions))
    assert sorted(r["id"] for r in records) == sorted(q.id for q in read_questions(questions))
    for record in records:  # one log-probability per option; the choice is the best one
        assert record["raw"] in "ABCDE" and len(record["scores"]) == 5
        assert all(s < 0 for s in record["scores"])
        assert record["choice"] == max(range(5), key=record["scores"].__getitem__)
    settings = json.loads((run / "config.json").read_text())["model_settings"]
    architecture, frames_as = EXPECTED[family]
    assert settings["architecture"] == architecture and settings["frames_as"] == frames_as
    assert settings["dtype"] == "float32" and settings["model_id"] == str(model.resolve())
    assert settings["revision"] is None and settings["processor"]["image_processor"]["class"]

    # killed after the first answer, mid-line: the resumed run answers the rest, each once,
    # and the same way
    lines = (run / "predictions.jsonl").read_text().splitlines(keepends=True)
    (run / "predictions.jsonl").write_text(lines[0] + lines[1][:20])
    (run / "metrics.json").unlink()
    code, again = _eval(root, questions, run, "--model", "hf", "--hf-model", str(model))
    assert code == 0 and len(again) == n
    assert {r["id"]: r["choice"] for r in again} == {r["id"]: r["choice"] for r in records}
    assert (run / "metrics.json").is_file()

    # another model (or the same one as text scoring) never mixes into this run
    other = tmp_path / "other"
    shutil.copytree(model, other)
    code, _ = _eval(root, questions, run, "--model", "hf", "--hf-model", str(other))
    assert code == 1 and "other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_text_and_generate_scoring(kitchen, tmp_path, capsys):
    root, questions = kitchen
    model = hf_families.qwen2_vl(tmp_path / "hf")
    code, records = _eval(root, questions, tmp_path / "text", "--model", "hf", "--hf-model",
                          str(model), "--scoring", "text")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    for record in records:  # mean log-likelihood per option answer
        assert len(record["scores"]) == 5 and record["raw"] in "ABCDE"
        assert record["choice"] == max(range(5), key=record["scores"].__getitem__)
    import verbnoun as lva  # the notebook API takes the same options

    run = lva.eval(questions, "hf", tmp_path / "gen", videos=root / "kitchen" / "videos",
                   hf_model=model, scoring="generate", frames=FRAMES, size=SIZE, workers=0)  # fmt: skip
    records = [
        json.loads(x) for x in (tmp_path / "gen" / "predictions.jsonl").read_text().splitlines()
    ]
    assert len(records) == len(read_questions(questions))
    assert run.metrics["overall"]["unparsed"] == sum(r["choice"] is None for r in records)
    assert all("scores" not in r for r in records)
    settings = json.loads((tmp_path / "gen" / "config.json").read_text())["model_settings"]
    assert settings["mode"] == "generate" and settings["max_new_tokens"] == 16


def test_missing_model_or_chat_template_is_a_one_line_error(kitchen, tmp_path, capsys):
    root, questions = kitchen
    code, _ = _eval(root, questions, tmp_path / "a", "--model", "hf", "--hf-model",
                    str(tmp_path / "nope"))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "model directory not found" in err and str(tmp_path / "nope") in err
    assert len(err.strip().splitlines()) == 1
    code, _ = _eval(root, questions, tmp_path / "b", "--model", "hf", "--hf-model", "org/absent")
    assert code == 1 and "org/absent: model directory not found" in capsys.readouterr().err
    model = hf_families.idefics3(tmp_path / "hf")
    (model / "chat_template.jinja").unlink()
    capsys.readouterr()
    code, _ = _eval(root, questions, tmp_path / "c", "--model", "hf", "--hf-model", str(model))
    err = capsys.readouterr().err
    assert code == 1 and "has no chat template" in err and len(err.strip().splitlines()) == 1
    (model / "chat_template.jinja").write_text(hf_families.IDEFICS3_TEMPLATE)
    code, _ = _eval(root, questions, tmp_path / "e", "--model", "hf", "--hf-model", str(model),
                    "--hf-frames", "video")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "takes no video" in err and len(err.strip().splitlines()) == 1
    code, _ = _eval(root, questions, tmp_path / "d", "--model", "hf")
    assert code == 1 and "--model hf needs --hf-model" in capsys.readouterr().err


def _train_to_answer(questions, root, tokenizer, steps: int = 150):
    """A tiny LLaVAction (one newline per video) trained on the questions' answers until it
    answers them (a memorised benchmark: what matters is that its answers are decisive)."""
    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.model.architecture import LlavactionForCausalLM
    from verbnoun.model.config import tiny_config
    from verbnoun.model.processor import Processor, preprocess_frames

    torch.manual_seed(0)
    model = LlavactionForCausalLM(tiny_config(vocab_size=VOCAB, newline_position="one_token"))
    processor = Processor(tokenizer, SIZE)
    frames_of = make_frame_source(root / "kitchen" / "videos", "chunks", FRAMES, SIZE)
    encoded = [processor.encode_training(q.user_turn(FRAMES), q.target()) for q in questions]
    pixels = [preprocess_frames(frames_of(q), SIZE) for q in questions]
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-3)
    model.train()
    for _ in range(steps):
        out = model([e.input_ids for e in encoded], pixels, [e.labels for e in encoded])
        if out.loss < 0.03:
            break
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    model.eval()
    return model, float(out.loss.detach())


def _letter_scores(checkpoint, tokenizer, questions, root) -> dict[str, list[float]]:
    """Our model's next-token logits after each prompt, each letter scored as the hf adapter
    does: log-sum-exp over its single-token forms with and without a leading space."""
    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.model.checkpoint import load_model
    from verbnoun.model.processor import Processor, preprocess_frames

    model = load_model(checkpoint, dtype=torch.float32).eval()
    processor = Processor(tokenizer, SIZE)
    frames_of = make_frame_source(root / "kitchen" / "videos", "chunks", FRAMES, SIZE)
    forms = {}
    for index in range(5):
        letter = prompts.letter(index)
        encoded = [tokenizer.encode(f, add_special_tokens=False) for f in (letter, " " + letter)]
        forms[index] = [ids[0] for ids in encoded if len(ids) == 1]
    assert any(len(ids) == 2 for ids in forms.values())  # " B" is one token of this tokenizer
    scores = {}
    for q in questions:
        ids = processor.encode_prompt(q.user_turn(FRAMES)).input_ids
        with torch.no_grad():
            logits = model([ids], [preprocess_frames(frames_of(q), SIZE)], logits_to_keep=1)
        last = logits.logits[0, -1].double()
        scores[q.id] = [float(last[forms[i]].logsumexp(0)) for i in range(5)]
    return scores


@pytest.mark.slow
def test_exported_model_chooses_our_letters_and_letters_agree_with_generate(
    kitchen, tmp_path, capsys
):
    from verbnoun.model.checkpoint import save_checkpoint
    from verbnoun.model.export_hf import export_hf
    from verbnoun.model.tokenization import train_tiny_tokenizer

    root, questions = kitchen
    tokenizer = train_tiny_tokenizer(hf_families.CORPUS * 3, vocab_size=400)
    model, loss = _train_to_answer(read_questions(questions), root, tokenizer)
    assert loss < 0.05
    save_checkpoint(model, tmp_path / "ckpt", tokenizer)
    export_hf(tmp_path / "ckpt", tmp_path / "hf")

    code, ours = _eval(root, questions, tmp_path / "ours", "--model", "llavaction",
                       "--checkpoint", str(tmp_path / "ckpt"))  # fmt: skip
    assert code == 0, capsys.readouterr().err
    code, theirs = _eval(root, questions, tmp_path / "letters", "--model", "hf", "--hf-model",
                         str(tmp_path / "hf"))  # fmt: skip
    assert code == 0, capsys.readouterr().err
    code, generated = _eval(root, questions, tmp_path / "gen", "--model", "hf", "--hf-model",
                            str(tmp_path / "hf"), "--scoring", "generate")  # fmt: skip
    assert code == 0, capsys.readouterr().err

    ours = {r["id"]: r for r in ours}
    expected = _letter_scores(tmp_path / "ckpt", tokenizer, read_questions(questions), root)
    for record in theirs:  # the same letters; the scores are our model's logits read the hf
        assert record["choice"] == ours[record["id"]]["choice"]  # adapter's way ("C" | " C")
        gaps = [s - record["scores"][0] for s in record["scores"]]
        want = expected[record["id"]]
        assert gaps == pytest.approx([s - want[0] for s in want], abs=1e-4)
    letters = {r["id"]: r["choice"] for r in theirs}
    for record in generated:  # the trained model writes "X. text"; its letter is the scored one
        assert record["rule"] != "unparsed" and record["choice"] == letters[record["id"]]
        assert record["raw"].startswith(prompts.letter(record["choice"]) + ". ")
    assert all(r["correct"] for r in theirs)


def _cache(hub, model_id: str, build) -> str:
    """``build`` a model into a Hugging Face cache snapshot of ``model_id``; its commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / ("models--" + model_id.replace("/", "--"))
    build(repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return commit


@pytest.mark.slow
def test_readme_examples_run_from_the_local_cache(kitchen, tmp_path, monkeypatch):
    """The guide's `--model hf` commands, as written, with their model ids in a local cache."""
    import re
    import shlex
    from pathlib import Path

    root, questions = kitchen
    guide = Path(__file__).resolve().parents[2] / "docs" / "guides" / "transformers-models.md"
    section = guide.read_text(encoding="utf-8")
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[0]
    commands = [" ".join(c.split()) for c in block.replace("\\\n", " ").splitlines()]
    commands = [c for c in commands if c.startswith("verbnoun ")]
    assert len(commands) == 2
    hub = tmp_path / "hub"
    onevision = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
    commit = _cache(hub, onevision, lambda d: shutil.copytree(_llava_onevision(tmp_path), d))
    _cache(hub, "Qwen/Qwen2-VL-2B-Instruct", hf_families.qwen2_vl)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command.replace("q.jsonl", str(questions)).replace(
            "VIDEOS", str(root / "kitchen" / "videos")))  # fmt: skip
        assert main([*argv[1:], "--size", str(SIZE), "--workers", "0", "--no-progress"]) == 0
    settings = json.loads((tmp_path / "runs" / "llava-ov-0.5b" / "config.json").read_text())
    assert settings["model_settings"]["model_id"] == onevision
    assert settings["model_settings"]["revision"] == commit
    assert (tmp_path / "runs" / "qwen2-vl-2b" / "metrics.json").is_file()
