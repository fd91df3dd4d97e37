"""Answer parsing: a model's raw output -> the chosen option, deterministically, never guessing.

``parse_answer`` (version :data:`PARSER_VERSION`) accepts, in this order:

1. JSON ``{"answer": ...}`` (the structured-output form), whose value is parsed by the rules below;
2. a letter form: ``B``, ``B.``, ``(B)``, ``B)``, ``Answer: B``, ``The answer is B.``, ``B. open
   door`` (a letter followed by text must not contradict itself: when the text names a different
   option exactly, the answer is ambiguous and stays unparsed);
3. the option text alone (case-insensitive, surrounding quotes and a final period ignored).

Anything else is *unparsed* (``index is None``): counted and reported, never replaced by a guess.

``parse_answer_original`` reproduces the LLaVAction release's scoring for comparison with the
paper (:func:`original_prediction`, their ``process_raw_pred``): of a structured reply
``{"answer": ...}`` (GPT-4o's) it reads the ``answer`` field, of any other output it drops trailing
commas (their local-model path); then it takes the text after the last ``X. `` (a capital letter,
a period, one whitespace character: matches do not overlap and run to the end of the line) cut at
its first period (with ``None`` in the output: the output without ``None. ``; without a match: the
whole text), and the chosen option is the one whose text equals it exactly (their ``pred ==
gt_name``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

PARSER_VERSION = "1"
PARSERS = ("strict", "original")
# Each parser's own version (a run records its parser's): "original" 2 reads structured replies'
# answer field and follows process_raw_pred to the character.
PARSER_VERSIONS = {"strict": PARSER_VERSION, "original": "2"}

_LETTER_ALONE = re.compile(r"^\(?([A-Z])\)?[.):]?$")
_LETTER_PREFIXED = re.compile(
    r"^(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:：]?\s*\(?([A-Z])\)?[.):]?"
    r"(?:\s+(.*))?$",
    re.IGNORECASE | re.DOTALL,
)
_LETTER_THEN_TEXT = re.compile(r"^\(?([A-Z])[.):]\)?\s+(.+)$", re.DOTALL)
_ORIGINAL = re.compile(r"[A-Z]\.\s(.+)")
_ORIGINAL_CUT = re.compile(r"\.\s*.*$")


@dataclass(frozen=True)
class ParsedAnswer:
    """The chosen option (0-based) or ``None`` when unparsed, and which rule decided."""

    index: int | None
    rule: str  # "json", "letter", "letter+text", "text", "original", "unparsed"


def _normalise(text: str) -> str:
    text = " ".join(text.strip().split()).lower()
    text = text.strip("\"'`")
    return text[:-1].rstrip() if text.endswith(".") else text


def _text_index(text: str, options: Sequence[str]) -> int | None:
    wanted = _normalise(text)
    matches = [i for i, option in enumerate(options) if _normalise(option) == wanted]
    return matches[0] if len(matches) == 1 else None


def _letter_index(letter: str, options: Sequence[str]) -> int | None:
    index = ord(letter) - ord("A")
    return index if 0 <= index < len(options) else None


def parse_answer(output: str, options: Sequence[str]) -> ParsedAnswer:
    """Parse a raw model output against the question's option texts (in letter order)."""
    text = output.strip()
    answer = structured_answer(text)
    if answer is not None:
        inner = parse_answer(answer, options)
        return ParsedAnswer(inner.index, "json" if inner.index is not None else "unparsed")
    match = _LETTER_ALONE.match(text)
    if match:
        index = _letter_index(match.group(1), options)
        return ParsedAnswer(index, "letter" if index is not None else "unparsed")
    for pattern in (_LETTER_PREFIXED, _LETTER_THEN_TEXT):
        match = pattern.match(text)
        if not match:
            continue
        index = _letter_index(match.group(1), options)
        rest = match.group(2)
        if index is None:
            return ParsedAnswer(None, "unparsed")
        if not rest:
            return ParsedAnswer(index, "letter")
        named = _text_index(rest, options)
        if named is None or named == index:
            return ParsedAnswer(index, "letter+text")
        return ParsedAnswer(None, "unparsed")  # the letter and the text disagree
    index = _text_index(text, options)
    return ParsedAnswer(index, "text" if index is not None else "unparsed")


def structured_answer(output: str) -> str | None:
    """The ``answer`` field of a JSON object reply (structured output), else ``None``."""
    text = output.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    answer = data.get("answer") if isinstance(data, dict) else None
    return answer if isinstance(answer, str) else None


def original_prediction(text: str) -> str:
    """The release's ``process_raw_pred``: the predicted option text of an answer."""
    matches = _ORIGINAL.findall(text)
    if "None" in text:
        return text.replace("None. ", "")
    if matches:
        return _ORIGINAL_CUT.sub("", matches[-1])
    return text


def parse_answer_original(output: str, options: Sequence[str]) -> ParsedAnswer:
    """The original release's scoring (see the module's docstring): the option whose text equals
    the predicted text of the reply's ``answer`` field (structured) or of the output."""
    answer = structured_answer(output)
    text = answer if answer is not None else output.rstrip(",")
    prediction = original_prediction(text)
    index = next((i for i, option in enumerate(options) if option == prediction), None)
    return ParsedAnswer(index, "original" if index is not None else "unparsed")


def get_parser(name: str):
    """The parser named ``strict`` (default) or ``original``."""
    if name == "strict":
        return parse_answer
    if name == "original":
        return parse_answer_original
    raise ValueError(f"unknown parser {name!r}; choose one of {', '.join(PARSERS)}")
