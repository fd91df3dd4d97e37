"""The free-text mapper returning every action an answer names (multi-label answers)."""

from __future__ import annotations

import pytest

from verbnoun.data.ek100 import ClassVocabulary
from verbnoun.interpret.open_vocab import OpenVocabMapper


def _vocabulary(kind, keys):
    return ClassVocabulary(kind, tuple(keys), tuple((k,) for k in keys),
                           tuple("" for _ in keys), f"{kind}.csv")  # fmt: skip


@pytest.fixture(scope="module")
def mapper():
    verbs = _vocabulary("verb", ["open", "stir", "take", "wash", "cut"])
    nouns = _vocabulary("noun", ["door", "pot", "cup", "tap", "knife", "bread"])
    return OpenVocabMapper(verbs, nouns)


def ids(mappings):
    return [m.action_id for m in mappings]


def test_every_action_of_every_sentence(mapper):
    # stir=1 pot=1, open=0 door=0, take=2 cup=2
    answer = "The person stirs the pot and opens the door. Then she takes a cup."
    assert ids(mapper.map_all(answer)) == ["1:1", "0:0", "2:2"]
    assert mapper.map(answer).action_id == "1:1"  # the single mapping is unchanged: the first


def test_one_action_and_repeats(mapper):
    assert ids(mapper.map_all("cutting bread")) == ["4:5"]
    assert ids(mapper.map_all("She cuts the bread. She cuts the bread again.")) == ["4:5"]


def test_purposes_refusals_and_unmapped_parts_are_left_out(mapper):
    # "to open the door" is a purpose, not an action done
    assert ids(mapper.map_all("He takes the knife to open the door.")) == ["2:4"]
    assert mapper.map_all("I cannot tell what the person is doing.") == []
    assert ids(mapper.map_all("She stirs the pot and juggles.")) == ["1:1"]  # no noun, no verb
    assert mapper.map_all("") == []
