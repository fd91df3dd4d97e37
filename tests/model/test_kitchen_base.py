"""The shipped kitchen base: it loads as a checkpoint, its tokenizer covers the kitchen, small
versions of its gates hold, and the build's stages run in a tiny configuration."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from verbnoun.bench import prompts
from verbnoun.data.kitchen import NOUNS, VERBS
from verbnoun.fileio import read_json
from verbnoun.model import kitchen_base as kb
from verbnoun.model import kitchen_base_questions as kq
from verbnoun.model import kitchen_base_settings as ks
from verbnoun.model import kitchen_base_stages as stages
from verbnoun.model.checkpoint import load_model, load_pretrained
from verbnoun.model.tokenization import load_tokenizer

BASE = kb.kitchen_base_path()


@pytest.fixture(scope="module")
def base():
    torch.set_num_threads(1)
    model, processor = load_pretrained(BASE, device="cpu")
    return model, processor


def test_the_shipped_base_is_a_checkpoint_with_its_gates():
    model = load_model(BASE)
    gates = read_json(BASE / ks.MARKER)
    config = model.config
    assert config.action_types == (len(VERBS), len(NOUNS), len(VERBS) * len(NOUNS))
    assert config.vision.image_size == 32 and config.action_tokens == 1
    assert gates["A"]["passed"] and gates["B"]["passed"] and gates["passed"]
    assert gates["A"]["verb"] >= 0.85 and gates["A"]["noun"] >= 0.60
    assert gates["B"]["letter_accuracy"] >= 0.90
    assert gates["D"]["passed"] and gates["D"]["video_letter_accuracy"] >= 0.60
    assert gates["D"]["letter_accuracy_after"] >= 0.90
    assert gates["settings"]["seed"] == gates["seed"]
    size = sum(p.stat().st_size for p in BASE.iterdir())
    assert size < 8_000_000  # a few MB, shipped in the wheel


def test_the_tokenizer_round_trips_the_kitchen_and_the_prompts():
    tokenizer = load_tokenizer(BASE)
    words = {w for v in VERBS for i in v.instances for w in i.replace("-", " ").split()}
    words |= {n.colour for n in NOUNS} | {n.shape for n in NOUNS}
    for word in sorted(words):
        assert len(tokenizer.tokenize(" " + word)) == 1, word
    for letter in prompts.LETTERS[:5]:
        assert len(tokenizer.encode(letter, add_special_tokens=False)) == 1
    rng = random.Random(3)
    texts = kq.kitchen_texts() + [kq.text_question(rng, 5, 0.5, 0.2)[0] for _ in range(20)]
    texts += [prompts.CAPTION, prompts.TEMPORAL_DETECTION, "Ünïcödé 粥 🍳 never seen"]
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text


def test_the_language_model_reads_the_options(base):
    model, processor = base
    settings = ks.BaseSettings()
    accuracy = stages.letter_accuracy(model, processor, 50, "test", settings)
    assert accuracy >= 0.8


@pytest.fixture(scope="module")
def small_kitchens(tmp_path_factory):
    """Clips of two small kitchens from seeds no build or demo uses."""
    from verbnoun.data.synth import render_kitchen

    root = tmp_path_factory.mktemp("kitchens")
    clips = []
    for seed, videos in ((30_001, 6), (30_002, 3)):
        render_kitchen(root / str(seed), videos=videos, seed=seed, workers=1)
        clips.append(stages.read_clips(root / str(seed), videos, seed, None, 4, 32))
    return clips


@pytest.mark.slow
def test_the_base_answers_questions_about_a_clip_by_letter(base, small_kitchens):
    model, processor = base
    clips = small_kitchens[0]  # a kitchen no build or demo uses; five options, chance 0.2
    assert stages.video_letter_accuracy(model, processor, clips, ks.BaseSettings()) >= 0.5


def test_video_questions_have_random_distractors_and_a_uniform_letter():
    rng = random.Random(0)
    settings = ks.BaseSettings()
    indices = []
    for _ in range(200):
        turn, answer, texts, index = kq.video_question(rng, 3, 4, 2.5, settings)
        assert turn.startswith(prompts.IMAGE_TOKEN) and len(texts) == settings.num_options
        assert kq.parse_narration(texts[index]) == (3, 4)
        assert answer == prompts.mqa_answer(index, texts[index])
        others = [kq.parse_narration(t) for i, t in enumerate(texts) if i != index]
        assert (3, 4) not in others and len(set(others)) == len(others)
        indices.append(index)
    assert set(indices) == set(range(settings.num_options))


def probe_accuracy(model, train: stages.Clips, test: stages.Clips) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
    probe.fit(stages.clip_features(model, train.frames), train.verbs)
    return float((probe.predict(stages.clip_features(model, test.frames)) == test.verbs).mean())


@pytest.mark.slow
def test_the_tower_separates_verbs_better_than_a_fresh_one(base, small_kitchens):
    model, _ = base
    train, test = small_kitchens
    torch.manual_seed(0)
    from verbnoun.model.architecture import LlavactionForCausalLM

    fresh = LlavactionForCausalLM(model.config)
    trained, untrained = probe_accuracy(model, train, test), probe_accuracy(fresh, train, test)
    assert trained >= 1 / len(VERBS) + 0.3
    assert trained >= untrained + 0.15


def test_a_clip_sample_takes_one_frame_of_each_quarter():
    frames = np.arange(2 * 16, dtype=np.uint8).reshape(2, 16, 1, 1, 1).repeat(3, axis=-1)
    clips = stages.Clips(frames, np.zeros(2, int), np.zeros(2, int), ["a", "b"], np.ones(2))
    middle = clips.sample(np.array([1]), 4, None)[0, :, 0, 0, 0]
    assert middle.tolist() == [18, 22, 26, 30]
    drawn = clips.sample(np.array([0, 0, 0]), 4, np.random.default_rng(0))[..., 0, 0, 0]
    assert ((drawn // 4) == np.arange(4)).all()


def test_narrations_parse_back_to_their_classes():
    rng = random.Random(0)
    for verb in range(len(VERBS)):
        for noun in range(len(NOUNS)):
            assert kq.parse_narration(kq.narration_words(verb, noun, rng)) == (verb, noun)
    assert kq.parse_narration("dance with a spoon") == (-1, -1)


@pytest.mark.slow
def test_the_build_runs_its_stages_in_a_tiny_configuration(tmp_path):
    settings = ks.BaseSettings(
        pool_kitchens=1, pool_videos=2, demo_videos=3, tower_steps=2, lm_steps=2,
        lm_warm_steps=1, align_steps=2, instruct_steps=2, tower_batch=4, lm_batch=4,
        align_batch=2, instruct_batch=2,
        gate_questions=8, probe_samples=1, hidden_size=32, intermediate_size=64,
        vision_hidden_size=32, num_layers=2, vision_layers=1, threads=1, workers=1,
    )  # fmt: skip
    logged: list[str] = []
    first = kb.build_base(tmp_path / "base", tmp_path / "work", settings, log=logged.append)
    gates = read_json(tmp_path / "base" / ks.MARKER)
    assert set(gates) >= {"A", "B", "C", "D", "seconds", "settings", "passed"}
    assert not gates["passed"]  # two steps cannot pass: a miss is recorded, not hidden
    assert any(line.startswith("stage A") for line in logged)
    assert load_model(tmp_path / "base").config.text.hidden_size == 32
    weights = (tmp_path / "base" / "model.safetensors").read_bytes()
    kb.build_base(tmp_path / "again", tmp_path / "work", settings, log=logged.append, reuse=False)
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == weights
    again = read_json(tmp_path / "again" / ks.MARKER)
    for stage, key in (("A", "verb"), ("A", "noun"), ("B", "letter_accuracy"),
                       ("D", "video_letter_accuracy")):  # fmt: skip
        assert first.gates[stage][key] == again[stage][key]
