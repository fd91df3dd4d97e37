"""The multi-select parser on lists whose last letter has words after it ("A and C apply"), and
on commentary that names another option by its bare letter ("E is also visible"): the list's
every letter is read, and a set the reply itself widens is left unparsed, never cut short."""

from __future__ import annotations

import pytest

from verbnoun.interpret.multiselect import parse_selection

OPTIONS = ["walk", "eat", "sleep", "groom", "run"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("A and C apply.", {0, 2}),
        ("Options A and C apply.", {0, 2}),
        ("A and C are correct.", {0, 2}),
        ("A, C apply", {0, 2}),
        ("Options A, C and D apply.", {0, 2, 3}),
        ("Both B and E are shown.", {1, 4}),
        ("B. A dog is walking.", {1}),  # "A" the article
        ("C, D. A bird is seen.", {2, 3}),
        ("A, and I think that is all.", {0}),  # "I" the pronoun
        ("A, C. C is clear.", {0, 2}),
    ],
)
def test_every_letter_of_the_list_is_read(reply, expected):
    assert parse_selection(reply, OPTIONS).indices == frozenset(expected)


@pytest.mark.parametrize(
    "reply",
    [
        "A and F apply.",  # F is no option
        "A and C are wrong.",
        "A and C apply, maybe.",
        "A, C. B too.",
        "A, C. E is also visible.",
    ],
)
def test_a_set_the_reply_widens_or_doubts_is_unparsed(reply):
    assert parse_selection(reply, OPTIONS).indices is None
