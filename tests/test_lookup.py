"""lookup.Registry and Entry: what every registry (strategies, annotate modes) does alike."""

from __future__ import annotations

import pytest

from verbnoun.errors import VerbnounError
from verbnoun.lookup import Entry, Registry


class Colour(Entry):
    NEEDS = ("paint",)


def test_a_registry_adds_once_looks_up_and_names_its_choices_in_order():
    colours: Registry[Colour] = Registry("colour")
    red = colours.add(Colour("red", "warm", lambda inputs: "R"))
    colours.add(Colour("blue", "cold", lambda inputs: "B", needs=frozenset({"paint"})))
    assert colours.names() == ("red", "blue") and colours.lookup("red") is red
    assert colours.lookup("blue").build(None) == "B"
    with pytest.raises(VerbnounError, match=r"^unknown colour 'green'; choose one of red, blue$"):
        colours.lookup("green")
    with pytest.raises(ValueError, match="colour 'red' is registered twice"):
        colours.add(Colour("red", "again", lambda inputs: None))
    with pytest.raises(ValueError, match=r"'grey': unknown needs \['brush'\]"):
        Colour("grey", "dull", lambda inputs: None, needs=frozenset({"brush"}))


def test_an_entry_added_for_a_block_is_taken_out_even_when_the_block_fails():
    colours: Registry[Colour] = Registry("colour")
    with colours.added(Colour("red", "warm", lambda inputs: None)) as red:
        assert colours.names() == ("red",) and colours.lookup("red") is red
    assert colours.names() == ()
    with pytest.raises(RuntimeError), colours.added(Colour("red", "warm", lambda i: None)):
        raise RuntimeError("the block failed")
    assert "red" not in colours
