"""The adapter registry: every way in builds adapters through one lookup, and adding an adapter
is one module (here, the few lines below) plus one registry entry."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from kitchen_questions import kitchen_questions

from verbnoun.bench.prompts import letter
from verbnoun.bench.questions import read_questions
from verbnoun.cli import main
from verbnoun.errors import VerbnounError
from verbnoun.evaluate import registry
from verbnoun.evaluate.adapters import NO_ABILITIES, AdapterSpec, Reply


# --- the example adapter: what a new adapter module holds -------------------------------------
@dataclass(frozen=True)
class FixedSettings:
    seed: int = 0  # filled by `verbnoun eval --seed`: the option position it always picks


class FixedAdapter:
    """Always answers the option at position ``seed`` (modulo the number of options)."""

    name = "fixed"
    needs_frames = False
    abilities = NO_ABILITIES

    def __init__(self, position: int) -> None:
        self.position = position

    def settings(self) -> dict:
        return {"position": self.position}

    def answer(self, requests):
        return [Reply(letter(self.position % len(r.question.options))) for r in requests]


def _build(settings: FixedSettings, data) -> FixedAdapter:
    if settings.seed < 0:
        raise VerbnounError("--model fixed needs --seed >= 0 (the option position)")
    return FixedAdapter(settings.seed)


SPEC = AdapterSpec("fixed", FixedSettings, _build)
# --- end of the example adapter ----------------------------------------------------------------


@pytest.fixture
def fixed():
    """The example adapter registered for one test."""
    with registry.ADAPTERS.added(SPEC):  # registry.py's one line: ADAPTERS.add(SPEC)
        yield


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    return kitchen_questions(tmp_path_factory.mktemp("registry"), 6, first=10)[1]


def test_a_registered_adapter_runs_end_to_end_from_the_command_line(
    fixed, questions, tmp_path, capsys
):
    run = tmp_path / "run"
    args = ["eval", "--model", "fixed", "--seed", "1", "--questions", str(questions),
            "--out", str(run), "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "fixed" and config["model_settings"] == {"position": 1}
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    asked = read_questions(questions)
    assert [r["id"] for r in records] == [q.id for q in asked]
    assert all(r["raw"] == "B" and r["choice"] == 1 for r in records)
    metrics = json.loads((run / "metrics.json").read_text())
    expected = sum(q.answer_index == 1 for q in asked) / len(asked)
    assert metrics["overall"]["accuracy"] == pytest.approx(expected)
    assert f"{run}: accuracy {100 * expected:.1f}%" in capsys.readouterr().out
    assert main(["eval", "--model", "fixed", "--seed", "-1", "--questions", str(questions),
                 "--out", str(tmp_path / "bad"), "--no-progress"]) == 1  # fmt: skip
    assert "--model fixed needs --seed >= 0" in capsys.readouterr().err


def test_a_registered_adapter_is_a_choice_everywhere(fixed, questions, tmp_path, capsys):
    import verbnoun as lva
    from verbnoun.annotate.job import model_names

    assert "fixed" in model_names()  # annotate offers it: it needs no more than frames
    assert main(["annotate", "--model", "fixed"]) == 0  # accepted (no --out: the options shown)
    assert main(["annotate", "--model", "fixeed"]) == 2  # a usage error, as any unknown choice
    capsys.readouterr()
    run = lva.eval(questions, model="fixed", out=tmp_path / "api", seed=2)
    assert run.config["model_settings"] == {"position": 2}
    with pytest.raises(VerbnounError, match="unknown eval option 'sede'"):
        lva.eval(questions, model="fixed", out=tmp_path / "typo", sede=2)


def test_unregistered_names_and_what_each_built_in_declares(questions, tmp_path, capsys):
    assert main(["eval", "--model", "fixed", "--questions", str(questions),
                 "--out", str(tmp_path / "r")]) == 2  # fmt: skip
    with pytest.raises(VerbnounError, match="unknown model 'fixed'; choose one of random"):
        registry.build_adapter("fixed")
    specs = registry.ADAPTERS
    assert list(specs) == ["random", "specialist", "prior", "openai", "llavaction", "hf"]
    assert {n for n, s in specs.items() if "frames" in s.needs} == {"openai", "llavaction", "hf"}
    hf = registry.settings_for("hf", {"hf_model": "m", "scoring": "generate", "seed": 3})
    assert (hf.model, hf.mode) == ("m", "generate") and specs["hf"].writes_text(hf)
    local = registry.settings_for("llavaction", {"scoring": "letters"})
    assert local.checkpoint is None and not specs["llavaction"].writes_text(local)
    with pytest.raises(VerbnounError, match="--model llavaction needs --checkpoint DIR"):
        registry.build_adapter("llavaction", local)
    with pytest.raises(VerbnounError, match="takes RandomSettings, not HfSettings"):
        registry.build_adapter("random", hf)


def test_eval_options_become_one_job_of_settings(tmp_path):
    from pathlib import Path

    from verbnoun.bench.two_stage import TwoStageSettings
    from verbnoun.evaluate.job import eval_job

    job = eval_job(
        "openai", tmp_path / "run", None, api_model="m", tries=2, price_per_mtok="1,2",
        two_stage=True, top_k=5, predictions=str(tmp_path / "p.json"), seed=4, frames=3,
        videos=str(tmp_path), layout="file", annotations=tmp_path, workers=0,
    )  # fmt: skip
    assert (job.adapter.api_model, job.adapter.retry.tries) == ("m", 2)
    assert job.two_stage == TwoStageSettings(5, "narration", tmp_path / "p.json", 4)
    assert job.prompt.frames == 3 and job.frames.videos == Path(tmp_path)
    assert (job.run.workers, job.run.price_per_mtok) == (0, (1.0, 2.0))
    assert job.data.annotations == tmp_path and job.open_vocab is None
    with pytest.raises(VerbnounError, match="unknown model 'gpt'"):
        eval_job("gpt", tmp_path / "run")
