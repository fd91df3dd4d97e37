"""The distractor-strategy registry: names, needs, the CLI's choices, and adding a strategy.

Adding a strategy is a class (here, in this test module) and one ``register`` line; the builder,
``sft build`` and the CLI's ``--distractors`` then know it without another edit.
"""

from __future__ import annotations

import random

import pytest

from verbnoun.bench import strategies
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.distractors import Distractor
from verbnoun.bench.questions import read_questions
from verbnoun.data.dataset import as_dataset
from verbnoun.data.ek100 import Segment
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.errors import VerbnounError


class SameVerbFirst:
    """An example strategy: the K-1 most frequent other actions that share the answer's verb,
    then any other action, most frequent first (deterministic: no use of ``rng``)."""

    name = "same-verb-first"

    def __init__(self, vocabulary) -> None:
        self.by_frequency = sorted(vocabulary.actions, key=lambda a: -vocabulary.frequency(a))

    def choose(self, segment: Segment, k: int, rng: random.Random) -> list[Distractor]:
        verb = segment.action_id.split(":")[0]
        others = [a for a in self.by_frequency if a != segment.action_id]
        ranked = sorted(others, key=lambda a: a.split(":")[0] != verb)  # stable: by frequency
        return [Distractor(a, self.name) for a in ranked[: k - 1]]


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    return write_kitchen_annotations(tmp_path_factory.mktemp("kitchen"), kitchen_script(12, 0))


@pytest.fixture
def example():
    """The example, registered for one test only."""
    entry = strategies.Strategy("same-verb-first", "frequent actions sharing the verb first",
                                lambda inputs: SameVerbFirst(inputs.vocabulary))  # fmt: skip
    with strategies.STRATEGIES.added(entry):
        yield entry


def test_the_registry_names_every_strategy_once_with_what_it_needs():
    assert strategies.names() == ("random", "specialist", "prior-hard", "prior-grid")
    assert strategies.get("specialist").needs == {"predictions"}
    assert strategies.get("specialist").settings == ("specialist_rule", "specialist_pool")
    assert strategies.get("prior-grid").needs == {"counts"}
    with pytest.raises(VerbnounError, match=r"unknown distractor strategy 'hard'; choose one of "
                       r"random, specialist, prior-hard, prior-grid"):  # fmt: skip
        BuildSettings(distractors="hard").check()


def test_the_command_line_choices_are_the_registry():
    from verbnoun import cli

    choices = [member.value for member in cli.Distractors]
    assert tuple(choices) == strategies.names()


def test_a_strategy_registered_in_one_line_builds_a_benchmark(example, kitchen, tmp_path):
    out = tmp_path / "mqa.jsonl"
    settings = BuildSettings(split="validation", distractors=example.name, num_options=4)
    manifest = build_benchmark(kitchen, out, settings)
    questions = read_questions(out)
    assert manifest["settings"]["distractors"] == "same-verb-first"
    assert len(questions) == manifest["counts"]["questions"] > 10
    actions = as_dataset(kitchen).action_vocabulary(settings.vocabulary_splits).actions
    for question in questions:
        truth = question.options[question.answer_index].action_id
        wrong = [o for i, o in enumerate(question.options) if i != question.answer_index]
        assert {o.source for o in wrong} == {"same-verb-first"} and len(wrong) == 3
        verb = truth.split(":")[0]
        sharing = [a for a in actions if a != truth and a.split(":")[0] == verb]
        shown = sum(o.action_id.split(":")[0] == verb for o in wrong)
        assert shown == min(3, len(sharing))  # verb-sharing actions come first
    assert strategies.get(example.name) is example
    with pytest.raises(VerbnounError, match="--predictions is only used with --distractors "
                       "specialist"):  # fmt: skip
        build_benchmark(kitchen, tmp_path / "x.jsonl", settings, tmp_path / "p.json")


def test_a_strategy_that_is_not_registered_is_refused_before_reading(tmp_path):
    with pytest.raises(VerbnounError, match="unknown distractor strategy 'same-verb-first'"):
        build_benchmark(tmp_path / "absent", tmp_path / "x.jsonl",
                        BuildSettings(distractors="same-verb-first"))  # fmt: skip
    assert not (tmp_path / "x.jsonl").exists()


REGISTERED_BEFORE_THE_CLI = """
import sys
from verbnoun.bench import strategies
from verbnoun.bench.distractors import Distractor

class Last:
    name = "last"
    def __init__(self, vocabulary):
        self.actions = sorted(vocabulary.actions)
    def choose(self, segment, k, rng):
        others = [a for a in self.actions if a != segment.action_id]
        return [Distractor(a, self.name) for a in others[-(k - 1):]]

strategies.register(strategies.Strategy("last", "the last actions", lambda i: Last(i.vocabulary)))
from verbnoun.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_the_command_line_offers_a_strategy_registered_before_it_is_built(kitchen, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "mqa.jsonl"
    args = ["mqa", "build", "--annotations", str(kitchen), "--split", "validation",
            "--distractors", "last", "--num-options", "3", "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", REGISTERED_BEFORE_THE_CLI, *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    questions = read_questions(out)
    assert questions and all(
        {o.source for i, o in enumerate(q.options) if i != q.answer_index} == {"last"}
        for q in questions
    )
    refused = subprocess.run([sys.executable, "-m", "verbnoun.cli", *args], capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "'last' is not one of 'random'" in refused.stderr
