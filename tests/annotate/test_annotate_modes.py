"""The annotate-mode registry: names, needs, the CLI's ``--mode`` choices, and adding a mode.

Adding a mode is a window model (here, in this test module) and one ``register`` line; the
annotation runner and ``--mode`` then take it.
"""

from __future__ import annotations

import json

import pytest

from verbnoun.annotate import modes
from verbnoun.annotate.models import AdapterModel, Answer
from verbnoun.annotate.runner import AnnotateSettings, VideoSource, run_annotation
from verbnoun.annotate.smoothing import SmoothingSettings
from verbnoun.annotate.vocabulary import from_list
from verbnoun.data.layouts import FileLayout
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Reply


class Yes:
    """An adapter that says yes to every question (and shows that it was asked)."""

    name = "yes"
    needs_frames = False

    def __init__(self) -> None:
        self.asked: list[str] = []

    def settings(self) -> dict:
        return {}

    def answer(self, requests):
        self.asked += [r.prompt for r in requests]
        return [Reply("yes") for _ in requests]


class AskEachBehaviour:
    """An example mode: one yes/no question per behaviour; the first behaviour said yes to wins."""

    def __init__(self, adapter, behaviours) -> None:
        self.adapter, self.behaviours = adapter, behaviours
        self.name = adapter.name
        self.views: dict = {}

    def settings(self) -> dict:
        return {"adapter": self.adapter.name, "mode": "ask-each"}

    def answer(self, windows, frames):
        from verbnoun.annotate.models import window_question
        from verbnoun.evaluate.adapters import Request

        answers = []
        for window in windows:
            question = window_question(window, ["0", "1"], ["no", "yes"])
            for label in self.behaviours.labels:
                text = f"Is the person doing '{self.behaviours.name(label)}'? Answer yes or no."
                [reply] = self.adapter.answer([Request(question, text, "yes_no", None)])
                if reply.raw.strip().lower().startswith("yes"):
                    answers.append(Answer(label, {label: 0.0}, raw=reply.raw))
                    break
            else:
                answers.append(Answer("", {}))
        return answers


@pytest.fixture
def example():
    """The example, registered for one test only."""
    entry = modes.AnnotateMode(
        "ask-each", "a yes/no question per behaviour",
        lambda inputs: AskEachBehaviour(inputs.adapter, inputs.behaviours),
    )  # fmt: skip
    with modes.MODES.added(entry):
        yield entry


def test_the_registry_names_every_mode_once_with_what_it_needs():
    assert modes.names() == ("choice", "two-stage", "chunks", "open")
    assert modes.get("two-stage").needs == {"specialist"}
    assert modes.get("open").needs == {"verbs_nouns"}
    behaviours = from_list("walk,rear")
    with pytest.raises(VerbnounError, match=r"unknown annotate mode 'vote'; choose one of "
                       r"choice, two-stage, chunks, open"):  # fmt: skip
        modes.window_model("vote", modes.ModeInputs(Yes(), behaviours))
    with pytest.raises(VerbnounError, match=r"^--mode two-stage needs --specialist DIR$"):
        modes.window_model("two-stage", modes.ModeInputs(Yes(), behaviours))
    with pytest.raises(VerbnounError, match=r"^--mode open maps to verbs and nouns"):
        modes.window_model("open", modes.ModeInputs(Yes(), behaviours))
    chunks = modes.window_model("chunks", modes.ModeInputs(Yes(), behaviours, frames=4))
    assert isinstance(chunks, AdapterModel) and chunks.settings()["mode"] == "chunks"
    assert chunks.settings()["frames"] == 4


def test_the_command_line_choices_are_the_registry():
    from verbnoun.annotate import cli

    assert tuple(member.value for member in cli.Mode) == modes.names()


def test_a_mode_registered_in_one_line_annotates_a_video(example, clip, tmp_path):
    adapter = Yes()
    behaviours = from_list("walk,rear")
    model = modes.window_model("ask-each", modes.ModeInputs(adapter, behaviours))
    out = tmp_path / "run"
    result = run_annotation(out, [VideoSource("clip", FileLayout(clip))], model, behaviours,
                            AnnotateSettings(window=2, stride=2, thumbnails=False),
                            SmoothingSettings(method="none"))  # fmt: skip
    records = [json.loads(x) for x in (out / "windows.jsonl").read_text().splitlines()]
    assert len(records) == result["windows"] == 3 and {r["label"] for r in records} == {"0"}
    assert behaviours.name("0") == "walk"
    assert len(adapter.asked) == 3 and "'walk'" in adapter.asked[0]  # yes at the first question
    assert json.loads((out / "config.json").read_text())["model_settings"]["mode"] == "ask-each"
    assert result["outputs"]["segments"] == 1
