"""Trainer config (YAML + dotted overrides, unknown keys refused), schedule, order, and the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml
from trainer_setup import kitchen, losses, tiny_settings, write_config

from verbnoun.cli import main
from verbnoun.train.config import ConfigError, config_from_dict, load_config
from verbnoun.train.data import GlobalBatchSampler
from verbnoun.train.trainer import lr_factor

ROOT = Path(__file__).resolve().parents[2]
BASE = {"model": {"tiny": True}, "data": {"mixture": "m.yaml"}}


def test_yaml_and_dotted_overrides(tmp_path):
    path = write_config(tmp_path / "c.yaml", {**BASE, "optim": {"lr": "2e-4"}, "batch_size": 2})
    config = load_config(
        path, ["optim.lr=1e-3", "data.frames=8", "model.action_types=[3,4,5]", "eval.every=10"]
    )
    assert config.optim.lr == 1e-3 and isinstance(config.optim.lr, float)
    assert config.data.frames == 8 and config.batch_size == 2
    assert config.model.action_types == [3, 4, 5] and config.eval.every == 10
    assert load_config(path).optim.lr == 2e-4  # YAML's "2e-4" string read as a number


@pytest.mark.parametrize(
    ("data", "overrides", "message"),
    [
        ({**BASE, "optim": {"learning_rate": 1}}, [], "unknown config key 'optim.learning_rate'"),
        (BASE, ["data.frame=8"], "unknown config key 'data.frame'"),
        ({**BASE, "bogus": 1}, [], "unknown config key 'bogus'"),
        (BASE, ["data.frames=eight"], "data.frames: expected int"),
        (BASE, ["optim.lr"], "expected key=value"),
        ({"data": {"mixture": "m.yaml"}}, [], "set model.checkpoint or model.tiny"),
        (BASE, ["precision=fp8"], "precision"),
    ],
)
def test_bad_settings_are_one_line_errors(data, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as error:
        config_from_dict(data, overrides)
    assert "\n" not in str(error.value)


def test_learning_rate_warms_up_then_decays_by_cosine():
    factors = [lr_factor(step, 10, 2, 0.1) for step in range(10)]
    assert factors[0] == 0.5 and factors[1] == 1.0 and factors[2] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(factors[2:]))
    assert factors[-1] > 0.1 and lr_factor(10, 10, 2, 0.1) == pytest.approx(0.1)


def test_global_order_is_the_same_for_one_or_two_processes():
    common = {"seed": 3, "micro": 2, "stop": 10}  # 21 records, global batch 4: 5 steps an epoch
    one = list(GlobalBatchSampler(21, accum=2, world=1, rank=0, **common))
    ranks = [list(GlobalBatchSampler(21, accum=1, world=2, rank=r, **common)) for r in (0, 1)]
    assert one[0::2] == ranks[0] and one[1::2] == ranks[1]  # micro batch c -> (step, rank)
    assert len(one) == 2 * 10
    resumed = list(GlobalBatchSampler(21, accum=2, world=1, rank=0, **{**common, "start": 3}))
    assert resumed == one[6:]
    epochs = [[pair for batch in one[e * 10 : (e + 1) * 10] for pair in batch] for e in (0, 1)]
    for epoch, pairs in enumerate(epochs):
        indices = [i for e, i in pairs]
        assert {e for e, _ in pairs} == {epoch} and len(set(indices)) == len(indices) == 20
    assert epochs[0] != epochs[1]  # a new order each epoch


def test_cli_trains_and_saves_the_resolved_config(tmp_path_factory, tmp_path, capsys):
    data = kitchen(tmp_path_factory)
    run = tmp_path / "run"
    path = write_config(tmp_path / "c.yaml", tiny_settings(data, run, steps=2))
    assert main(["train", "--config", str(path), "optim.lr=5e-4", "save_every=1"]) == 0
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["optim"]["lr"] == 5e-4 and resolved["data"]["frames"] == 4
    assert resolved["eval"]["scoring"] == "text"  # defaults written out
    assert sorted(losses(run)) == [1, 2]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "lm_loss", "aux_loss", "lr", "samples_per_s", "data_wait_fraction"} <= set(
        rows[0]
    )
    assert rows[0]["lr"] == pytest.approx(2.5e-4)  # warmup step 1 of 2
    assert (run / "checkpoints" / "latest").read_text() == "step-000002"
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2


def test_cli_unknown_key_is_one_line(tmp_path, capsys):
    path = write_config(tmp_path / "c.yaml", BASE)
    assert main(["train", "--config", str(path), "optim.lrr=1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("verbnoun: error:") and "optim.lrr" in err and "\n" not in err


@pytest.mark.parametrize("name", ["tiny-kitchen", "llavaction-0.5b", "llavaction-7b"])
def test_shipped_configs_load(name):
    config = load_config(f"{ROOT}/configs/{name}.yaml")
    if config.distributed.deepspeed:
        stage = json.loads(Path(ROOT, config.distributed.deepspeed).read_text())
        assert stage["zero_optimization"]["stage"] in (2, 3)


def test_training_from_a_base_checkpoint_adds_the_action_heads(tmp_path_factory, tmp_path):
    """LLaVA-Video / OneVision checkpoints have no action token: the trainer adds it."""
    from verbnoun.model.checkpoint import load_model, write_tiny_released_checkpoint
    from verbnoun.model.config import tiny_config
    from verbnoun.model.tokenization import train_tiny_tokenizer
    from verbnoun.train.data import tokenizer_corpus
    from verbnoun.train.trainer import train

    data = kitchen(tmp_path_factory)
    tokenizer = train_tiny_tokenizer(tokenizer_corpus(data.records), 400)
    base = tmp_path / "base"
    write_tiny_released_checkpoint(
        base, tiny_config(vocab_size=len(tokenizer), action_tokens=0), tokenizer=tokenizer
    )
    assert load_model(base).config.action_types is None
    settings = tiny_settings(data, tmp_path / "run", steps=2)
    settings["model"] = {"checkpoint": str(base), "action_types": [12, 15, 100]}
    summary = train(config_from_dict(settings))
    assert summary["aux_loss"] > 0
    trained = load_model(tmp_path / "run" / "checkpoints" / "step-000002")
    assert trained.config.action_types == (12, 15, 100) and trained.config.action_tokens == 1


def test_evaluation_every_n_steps_uses_the_runner(tmp_path_factory, tmp_path):
    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.train.trainer import train

    data = kitchen(tmp_path_factory)
    questions = tmp_path / "q.jsonl"
    build_benchmark(data.annotations, questions, BuildSettings(distractors="prior-hard"))
    run = tmp_path / "run"
    settings = tiny_settings(data, run, steps=3)
    settings["eval"] = {"questions": str(questions), "every": 2, "scoring": "text"}
    summary = train(config_from_dict(settings))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "eval_accuracy" in row] == [
        2,
        3,
    ]  # every 2, and at the end
    count = len(questions.read_text().splitlines())
    for step in ("step-000002", "step-000003"):
        predictions = (run / "eval" / step / "predictions.jsonl").read_text().splitlines()
        assert len(predictions) == count
        assert len(json.loads(predictions[0])["scores"]) == 5  # option-likelihood scores
    assert 0.0 <= summary["eval"] <= 1.0
